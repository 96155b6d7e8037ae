/**
 * `npm run numbering:import -- <folder with Ofcom's CSV files> [--out <dir>]`
 * Converts Ofcom's number-range files (S1.csv, S3.csv, S5.csv, S7.csv, S8.csv, S9.csv and
 * sabc.csv from Ofcom's "numbering data" page, unzipped) into the one compact file the service
 * loads at start: `<dir>/numbering.json`, where `<dir>` is `--out` or NUMBERING_DATA_DIR.
 * Restart (or roll) the service afterwards: the data is read once, at start.
 */
import { parseArgs } from 'node:util';
import { importOfcomFolder, loadNumbering, NumberingDataError, writeNumbering } from '../src/numbering';

function main(): number {
  const { values, positionals } = parseArgs({ options: { out: { type: 'string' } }, allowPositionals: true });
  const folder = positionals[0];
  const out = values.out ?? process.env.NUMBERING_DATA_DIR;
  if (!folder || positionals.length > 1 || !out) {
    process.stderr.write('usage: npm run numbering:import -- <folder with Ofcom CSV files> [--out <dir>] (default --out: NUMBERING_DATA_DIR)\n');
    return 2;
  }
  const started = Date.now();
  const { document, index, files } = importOfcomFolder(folder);
  for (const f of files) {
    if (f.skipped) {
      process.stdout.write(`  ${f.file}: skipped (${f.skipped})\n`);
      continue;
    }
    const p = f.parsed!;
    const cols = [...p.columns.block, p.columns.status, p.columns.operator ?? '(no provider column)'].join(' | ');
    process.stdout.write(`  ${f.file}: ${p.rows} rows, ${p.ranges} ranges, ${p.rejected.length} rejected; columns read: ${cols}\n`);
    for (const r of p.rejected.slice(0, 5)) process.stdout.write(`    line ${r.line}: ${r.error}\n`);
    if (p.rejected.length > 5) process.stdout.write(`    ... and ${p.rejected.length - 5} more\n`);
  }
  const target = writeNumbering(out, document);
  // Read back as the service will, so a file the service would refuse is caught here.
  loadNumbering(out);
  process.stdout.write(`wrote ${target}: ${index.size} ranges after compaction, version ${index.version}, in ${Date.now() - started} ms\n`);
  return 0;
}

try {
  process.exitCode = main();
} catch (err) {
  process.stderr.write(`numbering:import: ${err instanceof NumberingDataError ? err.message : String(err)}\n`);
  process.exitCode = 1;
}

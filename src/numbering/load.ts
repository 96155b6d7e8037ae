import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { NumberingDataError, NumberingIndex, type NumberingDocument } from './numbering-index';
import { decodeOfcomFile, OfcomFormatError, parseOfcomCsv, type OfcomFile, type OfcomRange } from './ofcom-csv';

/** The one file `NUMBERING_DATA_DIR` holds. */
export const NUMBERING_FILE = 'numbering.json';

/** Larger than any file Ofcom publishes (S1, the largest, is a few MB). */
const MAX_CSV_BYTES = 64 * 1024 * 1024;

/**
 * Loads the imported numbering data at start. A folder that is configured but holds no data
 * stops the start: running without the check an operator asked for is worse than not running.
 */
export function loadNumbering(dir: string): NumberingIndex {
  const file = join(dir, NUMBERING_FILE);
  if (!existsSync(file)) {
    throw new NumberingDataError(
      `NUMBERING_DATA_DIR ${dir} has no ${NUMBERING_FILE}: run npm run numbering:import -- <folder with Ofcom's CSV files>`,
    );
  }
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new NumberingDataError(`${file} cannot be read as JSON: ${(err as Error).message}`);
  }
  return NumberingIndex.fromDocument(doc, file);
}

export interface ImportedFile {
  file: string;
  /** Why the file was skipped; absent when it was read. */
  skipped?: string;
  parsed?: Omit<OfcomFile, 'ranges'> & { ranges: number };
}

export interface NumberingImport {
  index: NumberingIndex;
  document: NumberingDocument;
  files: ImportedFile[];
}

/**
 * Files in Ofcom's download that are not number ranges: S10 lists short codes (`118118`),
 * which read as prefixes would claim ordinary numbers (0118 118 ...) for themselves.
 */
const NOT_RANGES = /^s10/i;
/** Names Ofcom gives its range files: a file so named that cannot be read fails the import. */
const OFCOM_NAMES = /^(s\d+|sabc)/i;

/** Reads every `.csv` in a folder of Ofcom's files into one index. */
export function importOfcomFolder(folder: string, now: Date = new Date()): NumberingImport {
  if (!existsSync(folder) || !statSync(folder).isDirectory()) throw new NumberingDataError(`${folder} is not a folder`);
  const names = readdirSync(folder)
    .filter((n) => n.toLowerCase().endsWith('.csv'))
    .sort();
  const files: ImportedFile[] = [];
  const sources: NumberingDocument['sources'] = [];
  const ranges: OfcomRange[] = [];
  for (const name of names) {
    if (NOT_RANGES.test(name)) {
      files.push({ file: name, skipped: 'short codes, not number ranges' });
      continue;
    }
    const path = join(folder, name);
    const size = statSync(path).size;
    if (size > MAX_CSV_BYTES) throw new NumberingDataError(`${name} is larger than ${MAX_CSV_BYTES} bytes: not one of Ofcom's files`);
    const bytes = readFileSync(path);
    let parsed: OfcomFile;
    try {
      parsed = parseOfcomCsv(decodeOfcomFile(bytes), basename(name));
    } catch (err) {
      if (err instanceof OfcomFormatError && !OFCOM_NAMES.test(name)) {
        files.push({ file: name, skipped: err.message });
        continue;
      }
      throw err instanceof OfcomFormatError ? new NumberingDataError(err.message) : err;
    }
    for (const r of parsed.ranges) ranges.push(r);
    files.push({ file: name, parsed: { ...parsed, ranges: parsed.ranges.length } });
    sources.push({
      file: name,
      sha256: createHash('sha256').update(bytes).digest('hex'),
      rows: parsed.rows,
      ranges: parsed.ranges.length,
      rejected: parsed.rejected.length,
    });
  }
  if (ranges.length === 0) throw new NumberingDataError(`${folder} holds no number ranges in Ofcom's format (files: ${names.join(', ') || 'none'})`);
  const index = NumberingIndex.fromRanges(ranges);
  return { index, document: index.toDocument(sources, now), files };
}

/** Writes the document into the data folder; a reader never sees half a file. */
export function writeNumbering(dir: string, document: NumberingDocument): string {
  mkdirSync(dir, { recursive: true });
  const target = join(dir, NUMBERING_FILE);
  const temp = `${target}.${process.pid}.tmp`;
  writeFileSync(temp, `${JSON.stringify(document)}\n`);
  renameSync(temp, target);
  return target;
}

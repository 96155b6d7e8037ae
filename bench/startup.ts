/**
 * `npx tsx bench/startup.ts`: start-up time and memory with a registry of a million numbers
 * (BENCH_REGISTRY_NUMBERS), alone: the same measurement `npm run bench` makes at its end.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { perEntryLine, startLine, measureStartup } from './lib/startup';

async function main(): Promise<void> {
  const tmp = mkdtempSync(join(tmpdir(), 'callguard-startup-'));
  const goals = { readyMs: 3000, rssMb: 250 };
  try {
    const r = await measureStartup({ numbers: Number(process.env.BENCH_REGISTRY_NUMBERS ?? 1_000_000), tmp, profilesDir: join(tmp, 'profiles'), timeoutMs: 180_000, goals });
    console.log(`registry: ${r.registry.numbers} numbers, ${r.registry.prefixes} prefixes, ${r.registry.banks} banks (${r.registry.fileMb.toFixed(0)} MB)`);
    console.log(startLine('sample registry', r.sample));
    console.log(startLine('first start (validates the file)', r.first, goals));
    console.log(startLine('restart (validates the file, reads the snapshot)', r.restart, goals));
    const per = perEntryLine(r);
    if (per) console.log(per);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});

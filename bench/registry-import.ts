/**
 * `npx tsx bench/registry-import.ts`: how long importing 100,000 registry entries takes through
 * `POST /v1/registry/import`, on the embedded default (journal on disk) and on Redis (a
 * redis-server of its own on a free port). Issue goal: under 5 s.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp } from '../src/app';
import { loadConfig } from '../src/config';
import { freePort, sleep, startRedisServer } from '../scripts/lib/process';

const ENTRIES = Number(process.env.IMPORT_ENTRIES ?? 100_000);

/** Valid UK geographic numbers: 10,000 per area code (0115 400 is not a valid range). */
const AREA_CODES = ['113', '114', '116', '117', '118', '121', '131', '141', '151', '161', '191', '1223'];
function csv(): string {
  const lines = ['number,bankId,inboundOnly,authorisedSpcs'];
  for (let i = 0; i < ENTRIES; i++) {
    const area = AREA_CODES[Math.floor(i / 10_000) % AREA_CODES.length]!;
    const subscriber = `4${String(Math.floor(i / 120_000)).padStart(2, '0')}${String(i % 10_000).padStart(4, '0')}`.slice(0, 7);
    lines.push(`+44${area}${subscriber},examplebank,${i % 3 === 0},${i % 2 ? '1234;5678' : ''}`);
  }
  return lines.join('\n');
}

async function measure(label: string, env: Record<string, string>, body: string): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'callguard-import-'));
  const app = await buildApp({ config: loadConfig({ LOG_LEVEL: 'silent', REGISTRY_DATA_DIR: dataDir, ...env }), logger: false });
  await app.ready();
  if (app.services.redisGuard) while (app.services.redisGuard.client.status !== 'ready') await sleep(20);
  const started = performance.now();
  const res = await app.inject({ method: 'POST', url: '/v1/registry/import?mode=merge', payload: body, headers: { 'content-type': 'text/csv' } });
  const ms = performance.now() - started;
  const result = res.json() as { added: number; rejected: unknown[] };
  console.log(`${label}: ${result.added} added, ${result.rejected.length} rejected in ${(ms / 1000).toFixed(2)} s (HTTP ${res.statusCode}); registry now ${JSON.stringify(app.services.registryStore.index.size)}`);
  await app.close();
  rmSync(dataDir, { recursive: true, force: true });
}

async function main(): Promise<void> {
  const body = csv();
  console.log(`importing ${ENTRIES} entries as CSV (${(body.length / 1e6).toFixed(1)} MB)`);
  await measure('embedded default (journal + audit fsynced)', {}, body);
  const port = await freePort();
  const redis = await startRedisServer(port);
  try {
    await measure('Redis (one Lua script: entries, change log, audit stream)', { REDIS_URL: `redis://127.0.0.1:${port}`, REDIS_COMMAND_TIMEOUT_MS: '5000' }, body);
  } finally {
    await redis.kill();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});

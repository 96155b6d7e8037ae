/**
 * `npx tsx bench/shadow-cost.ts`: what a shadow policy costs a scored call, in CPU, measured where
 * nothing else moves. One process, one app (embedded store, logging off), calls through
 * `inject` (the whole route: parsing, hooks, validation, the call, serialisation; no socket), in
 * blocks of SHADOW_BLOCK_CALLS that alternate without and with a shadow policy set (ABBA order);
 * each mode's figure is the median of its blocks' CPU per call (process.cpuUsage). With no
 * socket work in the denominator the share is an upper bound of what a real call pays (`npm
 * run bench` measures the same over HTTP, where the machine's noise is larger than the effect).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../src/app';
import { loadConfig } from '../src/config';

const BLOCK_CALLS = Number(process.env.SHADOW_BLOCK_CALLS ?? 500);
const BLOCKS = Number(process.env.SHADOW_BLOCKS ?? 160);
/** Differs from the built-in policy in a weight and a threshold, so every call is decided twice for real. */
const CANDIDATE = { baseScore: 20, thresholds: { flag: 45, block: 75 } };

let seq = 0;
const paths = {
  'cache hit': () => ({ from: '+447400123456', to: '+442079460999', callId: 'shadow-hit' }),
  'cache miss': () => ({ from: `+4474${String(++seq).padStart(8, '0')}`, to: '+442079460999', callId: `shadow-${seq}` }),
};

const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) * q)]!;
const median = (xs: number[]) => quantile(xs, 0.5);
const quartiles = (xs: number[]) => [0.25, 0.5, 0.75].map((q) => quantile(xs, q).toFixed(1)).join(' / ');

async function cpuPerCall(app: FastifyInstance, body: () => object): Promise<number> {
  const before = process.cpuUsage();
  for (let i = 0; i < BLOCK_CALLS; i++) {
    const res = await app.inject({ method: 'POST', url: '/v1/calls/score', payload: body() });
    if (res.statusCode !== 200) throw new Error(`score: ${res.statusCode} ${res.body}`);
  }
  const used = process.cpuUsage(before);
  return (used.user + used.system) / BLOCK_CALLS;
}

async function main(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'callguard-shadow-'));
  const app = await buildApp({ config: loadConfig({ LOG_LEVEL: 'silent', REGISTRY_DATA_DIR: dataDir, LOAD_SHED_EVENT_LOOP_DELAY_MS: '0' }), logger: false });
  await app.ready();
  const shadow = app.services.shadowPolicy;
  try {
    console.log(`shadow policy cost: ${BLOCKS} blocks of ${BLOCK_CALLS} calls per path, ABBA, in-process (inject), node ${process.version}`);
    for (const [name, body] of Object.entries(paths)) {
      await cpuPerCall(app, body); // warm
      const cpu = { without: [] as number[], with: [] as number[] };
      for (let k = 0; k < BLOCKS; k++) {
        const on = k % 4 === 1 || k % 4 === 2;
        if (on && shadow.candidate() === null) await shadow.set(CANDIDATE);
        if (!on && shadow.candidate() !== null) await shadow.clear();
        (on ? cpu.with : cpu.without).push(await cpuPerCall(app, body));
      }
      if (shadow.candidate() !== null) await shadow.clear();
      const a = median(cpu.without);
      const b = median(cpu.with);
      console.log(
        `  ${name}: ${a.toFixed(1)} µs CPU a call without, ${b.toFixed(1)} µs with a shadow policy: ${b >= a ? '+' : ''}${(b - a).toFixed(1)} µs, ${(((b - a) / a) * 100).toFixed(1)} % ` +
          `(quartiles of the blocks without ${quartiles(cpu.without)}, with ${quartiles(cpu.with)})`,
      );
    }
  } finally {
    await app.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});

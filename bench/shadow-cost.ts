/**
 * `npx tsx bench/shadow-cost.ts`: what a shadow policy costs a scored call, in CPU, two ways.
 *
 *  1. The shadow's own work, alone: what a call does when a candidate is set and not otherwise
 *     (one more decision under the candidate, and its tally), timed over a million calls on the
 *     facts of an ordinary caller, both as a cache hit (the facts' own reasons remembered) and as
 *     a miss (worked out afresh). Precise: nothing else runs in the loop.
 *  2. The whole route with and without a candidate: one app (embedded store, logging off), calls
 *     through `inject` (parsing, hooks, validation, the call, serialisation; no socket), in blocks
 *     of SHADOW_BLOCK_CALLS alternating without and with a shadow policy (ABBA), each mode's
 *     figure the median of its blocks' CPU per call. This is the denominator of (1); its own
 *     difference is within the blocks' spread (GC, the machine), as over HTTP in `npm run bench`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../src/app';
import { loadConfig } from '../src/config';
import { parseNumber } from '../src/numbers';
import { decide, DEFAULT_POLICY, type CallSignals, type Decision } from '../src/scoring';
import { MemoryShadowStore } from '../src/state';
import { ShadowPolicy } from '../src/usecases/shadow-policy';

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

/** µs of CPU a call spends on the shadow when one is set: the candidate read, its decision, the tally. */
async function shadowWorkUs(reused: boolean): Promise<number> {
  const shadow = new ShadowPolicy({ store: new MemoryShadowStore(), live: () => ({ policy: DEFAULT_POLICY, profiles: {} }) as never, now: Date.now, log: { warn() {}, info() {} } });
  await shadow.set(CANDIDATE);
  const n = (s: string) => parseNumber(s, 'GB');
  const facts = {
    caller: n('+447400123456'),
    callee: n('+442079460999'),
    origin: {},
    registry: null,
    shaken: { source: 'none', verstat: 'No-TN-Validation', attestation: null, errors: [] },
    behaviour: { distinctCallees: 1, replayed: false },
  } as unknown as CallSignals;
  const live: Decision = decide(facts, DEFAULT_POLICY, facts.behaviour, reused);
  const once = () => {
    const candidate = shadow.candidate();
    if (candidate) shadow.record(candidate.version, 'c-1', 0, live, decide(facts, candidate.document.policy, facts.behaviour, reused));
  };
  for (let i = 0; i < 200_000; i++) once();
  const calls = 1_000_000;
  const before = process.cpuUsage();
  for (let i = 0; i < calls; i++) once();
  const used = process.cpuUsage(before);
  return (used.user + used.system) / calls;
}

async function main(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'callguard-shadow-'));
  const app = await buildApp({ config: loadConfig({ LOG_LEVEL: 'silent', REGISTRY_DATA_DIR: dataDir, LOAD_SHED_EVENT_LOOP_DELAY_MS: '0' }), logger: false });
  await app.ready();
  const shadow = app.services.shadowPolicy;
  try {
    console.log(`shadow policy cost, node ${process.version}`);
    const own = { 'cache hit': await shadowWorkUs(true), 'cache miss': await shadowWorkUs(false) };
    console.log(`  the shadow's own work a call: ${own['cache hit'].toFixed(2)} µs on a cache hit, ${own['cache miss'].toFixed(2)} µs on a miss (1,000,000 calls each)`);
    console.log(`  the route, ${BLOCKS} blocks of ${BLOCK_CALLS} calls per path, ABBA, in-process (inject):`);
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
        `  ${name}: ${a.toFixed(1)} µs CPU a call without, ${b.toFixed(1)} µs with a shadow policy (quartiles of the blocks without ${quartiles(cpu.without)}, ` +
          `with ${quartiles(cpu.with)}); the shadow's own ${own[name as keyof typeof own].toFixed(2)} µs is ${((own[name as keyof typeof own] / a) * 100).toFixed(1)} % of it`,
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

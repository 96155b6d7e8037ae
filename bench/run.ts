/**
 * `npm run bench`: the whole performance picture of the built server (dist/server.js) in one run.
 *
 *  1. Load (autocannon, BENCH_CONNECTIONS connections, BENCH_SECONDS per path): score cache
 *     hit, cache miss on the embedded store, cache miss with Redis (a second server on a
 *     redis-server of the bench's own), score with a fresh PASSporT per call (our own PKI, x5u
 *     on a local HTTP server), each against the baseline: a bare Fastify app in a process of its
 *     own (lib/bare-server.cjs: same JSON body parsing, no plugins, no hooks, no work); then the peer, secsipidx, checking the same PASSporTs. Req/s, p50/p99,
 *     ratio to the baseline, errors, server CPU per request.
 *     And a shadow policy's cost: the cache hit and miss paths without and with one set.
 *  2. Peak RSS (VmHWM) of every server process.
 *  3. The hot path profiled under load (node --cpu-prof): cache hit, cache miss (embedded and
 *     Redis), PASSporT.
 *  4. Start-up with a registry of BENCH_REGISTRY_NUMBERS numbers (lib/startup.ts).
 *
 * BENCH_PATHS=hit,miss (scenario keys) times only those paths, against the baseline as
 * always, and leaves out the profiles (unless BENCH_PROFILE=1) and the start-up: a quick look at
 * one change.
 *
 * Prints one markdown table for README.md and the lines that go with it, and writes the same
 * to bench/results/latest.json (raw profiles to bench/results/profiles/, not committed).
 * Only 127.0.0.1 is ever contacted, and every load is bounded in time.
 */
import { generateKeyPairSync, sign as cryptoSign, verify as cryptoVerify } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join, relative } from 'node:path';
import { CALLEE, uniqueCall } from './lib/calls';
import { load, send, Tally, type LoadResult, type LoadSpec } from './lib/load';
import { int, median, positiveEnv } from './lib/numbers';
import { Pool, startPassportLab, type PassportLab } from './lib/passports';
import { cpuMs, memory, ROOT, secsipidxVersion, startBareFastify, startCallguard, startRedis, startSecsipidx, runScript, type ProcMemory, type Service } from './lib/procs';
import { summariseCpuProfile, type ProfileSummary } from './lib/profile';
import { judge, markdownTable, profileLines, type Goal, type PathResult } from './lib/report';
import { measureStartup, perEntryLine, startLine, type StartupResult } from './lib/startup';

const SECONDS = positiveEnv('BENCH_SECONDS', 8);
const CONNECTIONS = positiveEnv('BENCH_CONNECTIONS', 50);
/**
 * A score path runs in slices of about this length, each next to a baseline slice of the same
 * length on the same server. Other processes' load (this is often a shared machine) comes and
 * goes within seconds: the median of the slices' ratios stays steady where one baseline taken
 * a minute earlier does not.
 */
const SLICE_SECONDS = 2;
const WARMUP_SECONDS = 2;
const PROFILE_SECONDS = positiveEnv('BENCH_PROFILE_SECONDS', 5);
const REGISTRY_NUMBERS = positiveEnv('BENCH_REGISTRY_NUMBERS', 1_000_000);
const STARTUP_TIMEOUT_S = positiveEnv('BENCH_STARTUP_TIMEOUT_S', 300);
const ONLY_PATHS = process.env.BENCH_PATHS?.split(',').map((k) => k.trim()).filter(Boolean);
/** BENCH_PROFILE=1 with BENCH_PATHS: profile those of the paths that have a hot-path profile too. */
const PROFILE_ONLY_PATHS = process.env.BENCH_PROFILE === '1';
/** The issues' goals for this machine. */
const GOALS = { hit: 0.6, miss: 0.45, passport: 0.3, p99Ms: 10, startup: { readyMs: 3000, rssMb: 250 } };
/**
 * PASSporTs are signed right before the paths that use them; those must finish inside the
 * freshness window, which callguard (SHAKEN_MAX_AGE_S) and secsipidx (-expire) get alike.
 */
const FRESHNESS_S = Math.max(60, Math.ceil(3 * SECONDS + 30));

const RESULTS = join(ROOT, 'bench/results');
const PROFILES = join(RESULTS, 'profiles');
const SCORE = '/v1/calls/score';
const JSON_HEADERS = { 'content-type': 'application/json' };

type Target = 'bare' | 'embedded' | 'redis' | 'secsipidx';

interface Scenario {
  key: string;
  name: string;
  target: Target;
  path: string;
  headers?: Record<string, string>;
  body: () => string;
  /** What a response on this path must look like; a path that fails, or takes another branch than it claims to, is not timed. */
  expect: (status: number, text: string) => string | null;
  goal: Goal;
  /** Measured in slices interleaved with slices of the baseline (the score paths). */
  vsBaseline?: true;
  /** Runs right before the path (signing PASSporTs, so they are fresh while it runs). */
  before?: (svc: Service) => Promise<void>;
}

/** Checks a score response: status, and the fields that show which branch it took. */
function scored(want: { cached: boolean; verstat?: string }) {
  return (status: number, text: string): string | null => {
    if (status !== 200) return `status ${status}: ${text.slice(0, 200)}`;
    const body = JSON.parse(text) as { cached?: boolean; shaken?: { verstat?: string; errors?: string[] } };
    if (body.cached !== want.cached) return `expected cached: ${want.cached}, got ${String(body.cached)}`;
    if (want.verstat && body.shaken?.verstat !== want.verstat) return `expected ${want.verstat}, got ${body.shaken?.verstat} ${JSON.stringify(body.shaken?.errors)}`;
    return null;
  };
}

/** µs of one ES256 verification in this process: with the cache-miss rate, bounds the PASSporT path's rate. */
function es256VerifyUs(): number {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const data = Buffer.alloc(300, 1);
  const sig = cryptoSign('sha256', data, privateKey);
  const t0 = performance.now();
  for (let i = 0; i < 300; i++) cryptoVerify('sha256', data, publicKey, sig);
  return ((performance.now() - t0) * 1000) / 300;
}

/**
 * A shadow policy that differs from the live one in a weight and a threshold, so every call is
 * decided twice for real (the same policy twice would be one memoised decision).
 */
const SHADOW_POLICY = JSON.stringify({ baseScore: 20, thresholds: { flag: 45, block: 75 } });
async function setShadow(svc: Service, on: boolean): Promise<void> {
  const res = await fetch(`${svc.url}/v1/policy/shadow`, on ? { method: 'PUT', headers: JSON_HEADERS, body: SHADOW_POLICY } : { method: 'DELETE' });
  if (res.status !== (on ? 200 : 204)) throw new Error(`${on ? 'PUT' : 'DELETE'} /v1/policy/shadow: ${res.status} ${await res.text()}`);
}

interface ShadowCost {
  path: string;
  /** Server CPU a request, µs: medians of the slices without and with a shadow policy. */
  withoutUs: number;
  withUs: number;
  /** (with - without) / without, from the slices' medians. */
  share: number;
  slices: { withoutUs: number[]; withUs: number[] };
}

/**
 * What a shadow policy costs a path: slices of the path without and with one set, in ABBA order
 * on the same server, server CPU per request compared. Slices next to each other see the same
 * machine, where two paths timed a minute apart may not.
 */
async function shadowCost(s: Scenario, svc: Service): Promise<ShadowCost> {
  const seconds = SLICE_SECONDS;
  const slices = Math.max(4, 2 * Math.round(SECONDS / SLICE_SECONDS));
  const cpu = { withoutUs: [] as number[], withUs: [] as number[] };
  let set = false;
  for (let k = 0; k < slices; k++) {
    const on = k % 4 === 1 || k % 4 === 2;
    if (on !== set) await setShadow(svc, (set = on));
    const problem = await check(s, svc);
    if (problem) throw new Error(`${s.name}${on ? ', shadow set' : ''}: ${problem}`);
    const tally = new Tally();
    await timed(specFor(s, svc, seconds), svc, tally);
    (on ? cpu.withUs : cpu.withoutUs).push(tally.totals()!.serverCpuUsPerRequest!);
  }
  if (set) await setShadow(svc, false);
  const withoutUs = median(cpu.withoutUs);
  const withUs = median(cpu.withUs);
  return { path: s.name, withoutUs, withUs, share: (withUs - withoutUs) / withoutUs, slices: cpu };
}

/** The one list of what is measured, in the order it runs; the first is the yardstick of the others. */
function scenarios(lab: PassportLab, pool: Pool, results: Map<string, PathResult>): Scenario[] {
  // The same body every time, call id included: the verdict cache hit and nothing else changing.
  const hitBody = JSON.stringify({ from: '+447400123456', to: CALLEE, callId: 'bench-hit' });
  const score = { path: SCORE, headers: JSON_HEADERS, vsBaseline: true } as const;
  return [
    {
      key: 'baseline',
      name: 'baseline: bare Fastify, own process (parse body, no work)',
      target: 'bare',
      path: SCORE,
      headers: JSON_HEADERS,
      body: () => uniqueCall(),
      expect: (status) => (status === 200 ? null : `status ${status}`),
      goal: { p99Ms: GOALS.p99Ms },
    },
    { ...score, key: 'hit', name: 'score, cache hit', target: 'embedded', body: () => hitBody, expect: scored({ cached: true }), goal: { ratio: GOALS.hit, p99Ms: GOALS.p99Ms } },
    { ...score, key: 'miss', name: 'score, cache miss (embedded)', target: 'embedded', body: () => uniqueCall(), expect: scored({ cached: false }), goal: { ratio: GOALS.miss, p99Ms: GOALS.p99Ms } },
    { ...score, key: 'missRedis', name: 'score, cache miss (Redis)', target: 'redis', body: () => uniqueCall(), expect: scored({ cached: false }), goal: { p99Ms: GOALS.p99Ms } },
    {
      ...score,
      key: 'passport',
      name: 'score, fresh PASSporT per call',
      target: 'embedded',
      before: async () => {
        // Every call needs a token of its own (a reused one is a verdict cache hit and a replay).
        // The path cannot outrun a cache miss plus one ES256 verification: sign for that, with margin.
        const missRps = results.get('miss')?.rps ?? 8000;
        const bound = 1e6 / (1e6 / missRps + es256VerifyUs());
        const seconds = Math.max(SECONDS, WARMUP_SECONDS + PROFILE_SECONDS) + 1;
        const count = Math.max(2000, Math.ceil(bound * seconds * 1.5));
        const t0 = performance.now();
        pool.fill(lab.sign(count, Math.floor(Date.now() / 1000)));
        console.log(`    signed ${count.toLocaleString('en-GB')} PASSporTs in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      },
      body: () => {
        const c = pool.next('callguard');
        return uniqueCall({ identity: c.identity }, c.from, c.to);
      },
      expect: scored({ cached: false, verstat: 'TN-Validation-Passed' }),
      goal: { ratio: GOALS.passport, p99Ms: GOALS.p99Ms },
    },
    {
      key: 'secsipidx',
      name: 'peer: secsipidx /v1/check, same PASSporTs',
      target: 'secsipidx',
      path: '/v1/check',
      body: () => pool.next('secsipidx').identity,
      expect: (status, text) => (status === 200 && text.trim() === 'OK' ? null : `status ${status}: ${text.trim().slice(0, 200)}`),
      goal: {},
    },
  ];
}

const specFor = (s: Scenario, svc: Service, seconds: number): LoadSpec => ({
  url: svc.url + s.path,
  ...(s.headers ? { headers: s.headers } : {}),
  body: s.body,
  seconds,
  connections: CONNECTIONS,
});

/** Checks one answer of the path; twice, and the second judged: the first fills whatever cache the path claims to hit. */
async function check(s: Scenario, svc: Service): Promise<string | null> {
  const spec = specFor(s, svc, 0);
  await send(spec);
  const probe = await send(spec);
  return s.expect(probe.status, probe.text);
}

/** One autocannon run counted into `tally`, with the server's CPU time over it. */
async function timed(spec: LoadSpec, svc: Service, tally: Tally): Promise<LoadResult> {
  const cpu0 = cpuMs(svc.pid);
  const r = await load(spec, tally.latencies);
  tally.add(r, cpuMs(svc.pid) - cpu0);
  return r;
}

/** The yardstick: its scenario, its process, and the tally of every baseline slice (the baseline's own row). */
interface Yardstick {
  scenario: Scenario;
  svc: Service;
  tally: Tally;
}

/**
 * A score path: slices of it alternate with slices of the bare baseline process (ABBA order, so
 * that a steady drift weighs on both alike); its ratio is the median of the slices' ratios.
 */
async function runPath(s: Scenario, svc: Service | undefined, yardstick: Yardstick): Promise<PathResult> {
  const row: PathResult = { key: s.key, name: s.name, server: svc?.name ?? s.target, goal: s.goal };
  if (!svc) return { ...row, note: `${s.target} not running` };
  await s.before?.(svc);
  const problem = await check(s, svc);
  if (problem) return { ...row, note: problem };
  const tally = new Tally();
  const ratios: number[] = [];
  const slices = s.vsBaseline ? Math.max(1, Math.round(SECONDS / SLICE_SECONDS)) : 1;
  const seconds = SECONDS / slices;
  for (let k = 0; k < slices; k++) {
    if (!s.vsBaseline) {
      await timed(specFor(s, svc, seconds), svc, tally);
      continue;
    }
    const baselineSlice = () => timed(specFor(yardstick.scenario, yardstick.svc, seconds), yardstick.svc, yardstick.tally);
    const pathSlice = () => timed(specFor(s, svc, seconds), svc, tally);
    let b: LoadResult;
    let p: LoadResult;
    if (k % 2 === 0) {
      b = await baselineSlice();
      p = await pathSlice();
    } else {
      p = await pathSlice();
      b = await baselineSlice();
    }
    ratios.push(p.rps / b.rps);
  }
  const result: PathResult = { ...row, ...tally.totals()!, ...(ratios.length ? { ratio: median(ratios), ratioPerSlice: ratios } : {}), loadAvg1m: loadavg()[0]! };
  return { ...result, goalMet: judge(result) };
}

/** JIT and connection pools warm on the routes that will be measured, so the first path is not the one that pays. */
async function warmUp(svc: Service, baseline: Scenario): Promise<void> {
  const problem = await check(baseline, svc);
  if (problem) throw new Error(`${svc.name}: ${problem}`);
  const hit = JSON.stringify({ from: '+447400123456', to: CALLEE, callId: 'warm-up' });
  let i = 0;
  await load({ ...specFor(baseline, svc, WARMUP_SECONDS), body: () => (i++ % 2 ? hit : uniqueCall()) });
}

interface HotPathProfile {
  path: string;
  file: string;
  seconds: number;
  rps: number;
  summary: ProfileSummary;
}

/**
 * One server with --cpu-prof per path, configured as the measured one, warmed, then loaded;
 * only the samples of the load itself are summarised (V8's profile timestamps and
 * process.hrtime read the same monotonic clock).
 */
async function profileHotPath(s: Scenario, env: Record<string, string>, tmp: string): Promise<HotPathProfile> {
  const name = `hot-${s.key}`;
  const svc = await startCallguard(name, {
    env: { ...env, REGISTRY_DATA_DIR: join(tmp, name) },
    nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${PROFILES}`, `--cpu-prof-name=${name}.cpuprofile`],
  });
  try {
    await s.before?.(svc);
    await load(specFor(s, svc, WARMUP_SECONDS));
    const fromUs = Number(process.hrtime.bigint() / 1000n);
    const r = await load(specFor(s, svc, PROFILE_SECONDS));
    const toUs = Number(process.hrtime.bigint() / 1000n);
    await svc.stop();
    const file = join(PROFILES, `${name}.cpuprofile`);
    return { path: s.name, file: relative(ROOT, file), seconds: PROFILE_SECONDS, rps: r.rps, summary: summariseCpuProfile(file, { window: { fromUs, toUs } }) };
  } finally {
    await svc.stop();
  }
}

const la = (xs: number[]) => xs.map((x) => x.toFixed(2)).join(' ');
const mb = (x: number) => `${x.toFixed(0)} MB`;

interface Run {
  rows: PathResult[];
  peakRss: Record<string, ProcMemory>;
  hot: Record<string, HotPathProfile>;
  shadow: ShadowCost[];
  /** Left out when BENCH_PATHS picks paths. */
  startup?: StartupResult;
  secsipidx: string | null;
  loadAverage: { before: number[]; afterPaths: number[]; end: number[] };
  seconds: number;
}

function report(run: Run): string {
  const { rows, peakRss, hot, startup } = run;
  const row = (key: string) => rows.find((r) => r.key === key);
  const baseline = row('baseline');
  const passport = row('passport');
  const peer = row('secsipidx');
  const out: string[] = [];
  out.push('', `### callguard bench, ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC`, '');
  out.push(
    `${cpus().length} × ${cpus()[0]?.model.trim()}, node ${process.version}, ${CONNECTIONS} connections, ${SECONDS} s per path; load average (1/5/15 min) before the run ${la(run.loadAverage.before)}, after the loads ${la(run.loadAverage.afterPaths)}, at the end ${la(run.loadAverage.end)}`,
    '',
  );
  out.push(markdownTable(rows), '');
  out.push(
    `- vs baseline: each score path ran in ${SLICE_SECONDS} s slices alternating with slices of the baseline, a bare Fastify app in a process of its own (no plugins, no hooks, the same JSON body); the ratio is the median of the slices' ratios (all in latest.json), so that load from other processes weighs on both alike. The baseline row pools those baseline slices.`,
  );
  for (const r of rows) if (r.note && r.rps !== undefined) out.push(`- ${r.name}: ${r.note}`);
  if (baseline?.rps) {
    out.push(
      `- p99 with ${CONNECTIONS} connections: each connection sends its next request when the last one is answered, so mean latency = ${CONNECTIONS} / req/s (Little's law), mostly queueing on the one event loop. The baseline itself has p99 ${baseline.p99!.toFixed(1)} ms. A p99 under ${GOALS.p99Ms} ms needs a mean well under ${GOALS.p99Ms} ms, i.e. well over ${int((CONNECTIONS * 1000) / GOALS.p99Ms)} req/s on the path at ${CONNECTIONS} connections.`,
    );
  }
  out.push(`- Peak RSS (VmHWM) over the load: ${Object.entries(peakRss).map(([n, m]) => `${n} ${mb(m.peakRssMb)}`).join(', ')}`);
  if (passport?.rps && peer?.rps) {
    out.push(
      `- PASSporT verification against secsipidx (${run.secsipidx}), same PASSporTs, same x5u, both with warm certificate caches: callguard ${int(passport.rps)} req/s, p99 ${passport.p99!.toFixed(1)} ms; secsipidx ${int(peer.rps)} req/s, p99 ${peer.p99!.toFixed(1)} ms: callguard runs at ${(passport.rps / peer.rps).toFixed(2)} × secsipidx's rate. Server CPU per check ${int(passport.serverCpuUsPerRequest ?? NaN)} µs vs ${int(peer.serverCpuUsPerRequest ?? NaN)} µs (secsipidx, in Go, may use both cores; callguard scores on one event loop, and does the whole score besides the verification).`,
    );
  }
  for (const c of run.shadow)
    out.push(`- Shadow policy, ${c.path}: server CPU ${c.withoutUs.toFixed(1)} µs a request without, ${c.withUs.toFixed(1)} µs with one set (medians of ${c.slices.withUs.length} + ${c.slices.withoutUs.length} slices in ABBA order): ${(c.share * 100).toFixed(1)} % (goal: under 5 %).`);
  if (startup) startupLines(startup, out);
  out.push('', '```');
  for (const p of Object.values(hot)) out.push(...profileLines(`hot path, ${p.path} (${p.seconds} s at ${int(p.rps)} req/s)`, p.summary, 'ms'), '');
  const sp = startup?.profile;
  if (sp) {
    for (const key of Object.keys(sp.cpu)) {
      const m = key === 'first' ? sp.first : sp.restart;
      out.push(...profileLines(`start-up CPU, ${key} start, ${int(sp.numbers)} numbers (ready in ${(m.readyMs! / 1000).toFixed(1)} s)`, sp.cpu[key]!, 'ms'), '');
      out.push(...profileLines(`start-up memory, ${key} start, allocated and not yet collected at exit`, sp.heap[key]!, 'MB'), '');
    }
  }
  out.push('```', '', `Run took ${(run.seconds / 60).toFixed(1)} min. Raw profiles: ${relative(ROOT, PROFILES)}/ (open in Chrome DevTools).`);
  const missed = [...rows.filter((r) => r.goalMet === false).map((r) => r.name), ...(!startup || startup.goalsMet ? [] : ['start-up'])];
  out.push(`Goals: ${missed.length ? `missed by ${missed.join('; ')}` : 'all met'}. Results: ${relative(ROOT, join(RESULTS, 'latest.json'))}.`);
  return out.join('\n');
}

function startupLines(startup: StartupResult, out: string[]): void {
  const reg = startup.registry;
  out.push(`- Start-up with ${int(reg.numbers)} numbers, ${int(reg.prefixes)} prefixes, ${reg.banks} banks (${reg.fileMb.toFixed(0)} MB file), embedded store:`);
  out.push(`  - ${startLine('reference, sample registry', startup.sample)}`);
  out.push(`  - ${startLine('first start (validates the file; its first change writes the snapshot)', startup.first, GOALS.startup)}`);
  out.push(`  - ${startLine('restart (snapshot present)', startup.restart, GOALS.startup)}`);
  const perEntry = perEntryLine(startup);
  if (perEntry) out.push(`  - ${perEntry}`);
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const loadBefore = loadavg();
  const tmp = mkdtempSync(join(tmpdir(), 'callguard-bench-'));
  rmSync(PROFILES, { recursive: true, force: true });
  mkdirSync(PROFILES, { recursive: true });
  const services: Partial<Record<Target, Service>> = {};
  let lab: PassportLab | undefined;
  let redis: Service | undefined;
  try {
    console.log(`callguard bench: ${CONNECTIONS} connections, ${SECONDS} s per path, node ${process.version}, load average ${la(loadBefore)}`);
    lab = await startPassportLab();
    redis = await startRedis();
    const secsipidx = secsipidxVersion();
    const shaken = { SHAKEN_TRUST_ANCHORS: lab.rootPemFile, SHAKEN_X5U_ALLOW_INSECURE: 'true', SHAKEN_MAX_AGE_S: String(FRESHNESS_S) };
    [services.bare, services.embedded, services.redis] = await Promise.all([
      startBareFastify(),
      startCallguard('callguard (embedded)', { env: { ...shaken, REGISTRY_DATA_DIR: join(tmp, 'embedded') } }),
      startCallguard('callguard (Redis)', { env: { ...shaken, REDIS_URL: redis.url, REGISTRY_DATA_DIR: join(tmp, 'redis') } }),
    ]);
    if (secsipidx) {
      mkdirSync(join(tmp, 'secsipidx-cache'));
      services.secsipidx = await startSecsipidx({ caFile: lab.rootPemFile, expireS: FRESHNESS_S, cacheDir: join(tmp, 'secsipidx-cache') });
    } else {
      console.log('  secsipidx not installed (apt-get install -y secsipidx): the peer is left out');
    }

    const pool = new Pool();
    const results = new Map<string, PathResult>();
    const [baseline, ...all] = scenarios(lab, pool, results);
    const paths = ONLY_PATHS ? all.filter((s) => ONLY_PATHS.includes(s.key)) : all;
    if (ONLY_PATHS && paths.length !== ONLY_PATHS.length) throw new Error(`BENCH_PATHS: known paths are ${all.map((s) => s.key).join(', ')}`);
    for (const svc of [services.bare, services.embedded, services.redis]) await warmUp(svc, baseline!);
    const yardstick: Yardstick = { scenario: baseline!, svc: services.bare, tally: new Tally() };
    for (const s of paths) {
      console.log(`  ${s.name} ...`);
      const r = await runPath(s, services[s.target], yardstick);
      results.set(s.key, r);
      if (r.note && r.rps === undefined) console.log(`    not timed: ${r.note}`);
    }
    for (const [consumer, n] of pool.wraps) {
      const r = results.get(consumer === 'callguard' ? 'passport' : 'secsipidx');
      // callguard keeps state per token (verdict cache, replay); secsipidx keeps none, so reuse changes nothing there.
      if (r) r.note = `PASSporT pool reused ${n} time(s)${consumer === 'callguard' ? ': later calls were cache hits, the rate is overstated' : ' (secsipidx keeps no per-token state)'}`;
    }
    const shadow: ShadowCost[] = [];
    for (const key of ['hit', 'miss']) {
      const s = paths.find((x) => x.key === key);
      if (!s) continue;
      console.log(`  shadow policy's cost, ${s.name} ...`);
      shadow.push(await shadowCost(s, services.embedded));
    }
    const baselineTotals = yardstick.tally.totals();
    const baselineRow: PathResult = { key: baseline!.key, name: baseline!.name, server: services.bare.name, goal: baseline!.goal, ...(baselineTotals ?? { note: 'no score path ran' }) };
    const rows = [{ ...baselineRow, goalMet: judge(baselineRow) }, ...paths.map((s) => results.get(s.key)!)];
    const loadAfterPaths = loadavg();
    const peakRss: Record<string, ProcMemory> = {};
    for (const svc of [...Object.values(services), redis]) peakRss[svc.name] = memory(svc.pid);
    for (const svc of Object.values(services)) await svc.stop();

    console.log('  profiling the hot path ...');
    const hot: Record<string, HotPathProfile> = {};
    const profiled = ONLY_PATHS && !PROFILE_ONLY_PATHS ? [] : ['hit', 'miss', 'missRedis', 'passport'].filter((key) => paths.some((x) => x.key === key));
    for (const key of profiled) {
      const s = paths.find((x) => x.key === key)!;
      hot[key] = await profileHotPath(s, s.target === 'redis' ? { ...shaken, REDIS_URL: redis.url } : shaken, tmp);
    }

    if (!ONLY_PATHS) console.log(`  start-up with ${int(REGISTRY_NUMBERS)} numbers ...`);
    const startup = ONLY_PATHS ? undefined : await measureStartup({ numbers: REGISTRY_NUMBERS, tmp, profilesDir: PROFILES, timeoutMs: STARTUP_TIMEOUT_S * 1000, goals: GOALS.startup });

    const run: Run = { rows, peakRss, hot, shadow, startup, secsipidx, loadAverage: { before: loadBefore, afterPaths: loadAfterPaths, end: loadavg() }, seconds: (performance.now() - t0) / 1000 };
    console.log(report(run));
    const passport = results.get('passport');
    const peer = results.get('secsipidx');
    const json = {
      generatedAt: new Date().toISOString(),
      machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model.trim(), memoryGb: Math.round(totalmem() / 2 ** 30), node: process.version },
      settings: { seconds: SECONDS, connections: CONNECTIONS, sliceSeconds: SLICE_SECONDS, warmupSeconds: WARMUP_SECONDS, profileSeconds: PROFILE_SECONDS, freshnessS: FRESHNESS_S },
      loadAverage: run.loadAverage,
      goals: GOALS,
      paths: rows,
      peakRssMb: Object.fromEntries(Object.entries(peakRss).map(([n, m]) => [n, m.peakRssMb])),
      secsipidx: passport?.rps && peer?.rps ? { version: secsipidx, rateRatio: passport.rps / peer.rps, callguard: { rps: passport.rps, p99: passport.p99 }, secsipidx: { rps: peer.rps, p99: peer.p99 } } : null,
      startup,
      shadowCost: shadow,
      hotPathProfiles: hot,
      durationS: run.seconds,
    };
    writeFileSync(join(RESULTS, 'latest.json'), JSON.stringify(json, null, 2) + '\n');
  } finally {
    for (const svc of Object.values(services)) await svc.stop();
    await redis?.stop();
    await lab?.close();
    rmSync(tmp, { recursive: true, force: true });
  }
}

if (require.main === module) runScript(main);

/**
 * `npm run bench:scale`: one, two and three callguard instances behind the compose file's
 * HAProxy (docker/haproxy/haproxy.cfg, run as lib/haproxy.ts makes it local), on one Redis, the
 * same traffic each time; one instance with no HAProxy, the reference; and first a bare Fastify
 * process (lib/bare-server.cjs), the yardstick of how fast the machine is at the time.
 *
 * The traffic is the cache-miss call with Redis (bench/run.ts's "score, cache miss (Redis)"): a
 * new caller and call id every call, BENCH_CONNECTIONS connections for BENCH_SECONDS after a
 * warm-up, BENCH_ROUNDS times over the setups in turn (rounds pooled). Per setup: calls/s,
 * p50/p99, errors; CPU per call of Redis, of each instance, of HAProxy and of this process (the
 * load generator), from /proc; Redis script calls and commands per call, from INFO
 * commandstats; failed Redis commands and seconds degraded, from each instance's /metrics; and
 * how busy the whole machine was, so that what other work took shows.
 *
 * Prints a markdown table for README.md and writes bench/results/scale-out.json. Only
 * 127.0.0.1 is contacted, and every load is bounded in time.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join, relative } from 'node:path';
import Redis from 'ioredis';
import { freePort } from '../scripts/lib/process';
import { uniqueCall } from './lib/calls';
import { localHaproxyConfig } from './lib/haproxy';
import { load, send, Tally, type LoadSpec } from './lib/load';
import { int, positiveEnv } from './lib/numbers';
import { Pool, startPassportLab, type PassportCall, type PassportLab } from './lib/passports';
import { cpuMs, ROOT, runScript, startBareFastify, startCallguard, startHaproxy, startRedis, type Service } from './lib/procs';

const SECONDS = positiveEnv('BENCH_SECONDS', 8);
const CONNECTIONS = positiveEnv('BENCH_CONNECTIONS', 50);
const ROUNDS = positiveEnv('BENCH_ROUNDS', 1);
/**
 * BENCH_PASSPORT_SHARE=0.3: that share of the calls carries a freshly signed PASSporT of its own
 * (verified on each instance's thread pool), with verification on; 0, the default, is the
 * compose file's traffic (SHAKEN_VERIFY=false, no PASSporTs).
 */
const PASSPORT_SHARE = Number(process.env.BENCH_PASSPORT_SHARE ?? 0);
if (!(PASSPORT_SHARE >= 0 && PASSPORT_SHARE <= 1)) throw new Error('BENCH_PASSPORT_SHARE must be between 0 and 1');
/** PASSporTs are signed before each setup for this rate at most, calls a second; a pool that runs out is reused and said so. */
const PASSPORT_RATE_BOUND = 5000;
const WARMUP_SECONDS = 3;
/** PASSporTs are signed right before each set-up's load, which must end inside their freshness window (SHAKEN_MAX_AGE_S). */
const FRESHNESS_S = Math.max(120, WARMUP_SECONDS + SECONDS + 60);
const MAX_INSTANCES = 3;

const RESULTS = join(ROOT, 'bench/results');
const COMMITTED_CFG = join(ROOT, 'docker/haproxy/haproxy.cfg');
const SCORE = '/v1/calls/score';
const BACKEND = 'callguard';

interface Setup {
  key: string;
  name: string;
  instances: number;
  haproxy: boolean;
  /** The yardstick instead of callguard: how fast this machine is at the time, against the figures of `npm run bench`. */
  bare?: true;
}

const SETUPS: Setup[] = [
  { key: 'bare', name: 'yardstick: bare Fastify, own process, no HAProxy', instances: 1, haproxy: false, bare: true },
  { key: 'direct', name: '1 instance, no HAProxy (reference)', instances: 1, haproxy: false },
  ...Array.from({ length: MAX_INSTANCES }, (_, i) => ({ key: `haproxy-${i + 1}`, name: `${i + 1} instance${i ? 's' : ''} behind HAProxy`, instances: i + 1, haproxy: true })),
];

/**
 * The compose file gives HAProxy 65,536 open files (two a connection for its maxconn of 20,000).
 * Where this process's hard limit is lower, and cannot be raised without privileges, HAProxy
 * refuses to start; it runs with the maxconn that fits instead, far above the bench's connections.
 */
function maxconnThatFits(): number | undefined {
  const hard = Number(/^Max open files\s+\S+\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1]);
  return Number.isFinite(hard) && hard < 65_536 ? Math.floor((hard - 100) / 2) : undefined;
}
const MAXCONN = maxconnThatFits();

/** Busy and all jiffies of the whole machine, from /proc/stat (iowait counts as idle). */
function machineTicks(): { busy: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: total - f[3]! - f[4]!, total };
}

/** Commands Redis has run since start, from INFO commandstats: script calls (a round trip each), and all (those inside scripts too), INFO itself left out. */
async function redisCommands(redis: Redis): Promise<{ scripts: number; all: number }> {
  const text = await redis.info('commandstats');
  let scripts = 0;
  let all = 0;
  for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    const [, name, calls] = m;
    if (name === 'info') continue;
    all += Number(calls);
    if (/^(eval|evalsha|eval_ro|evalsha_ro|fcall|fcall_ro)$/.test(name!)) scripts += Number(calls);
  }
  return { scripts, all };
}

/**
 * The instances' own count of Redis trouble, from their /metrics: failed commands (a command
 * over REDIS_COMMAND_TIMEOUT_MS among them) and seconds spent degraded, scoring on in-process
 * state with Redis skipped. A setup with either did not measure the Redis path all along.
 */
async function redisTrouble(instances: Service[]): Promise<{ errors: number; degradedS: number }> {
  let errors = 0;
  let degradedS = 0;
  for (const svc of instances) {
    const text = await (await fetch(`${svc.url}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
    const value = (name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
    errors += value('callguard_redis_errors_total');
    degradedS += value('callguard_redis_degraded_seconds_total');
  }
  return { errors, degradedS };
}

/** What the processes and the machine have spent so far: read before and after a load, the difference is the load's. */
interface Reading {
  redisMs: number;
  instancesMs: number[];
  haproxyMs: number;
  selfMs: number;
  machine: { busy: number; total: number };
  redis: { scripts: number; all: number };
  trouble: { errors: number; degradedS: number };
  haproxyLogLines: number;
}

interface Procs {
  redis: Service;
  redisClient: Redis;
  instances: Service[];
  bare: Service;
}

async function read(p: Procs, s: Setup, haproxy: Service | undefined): Promise<Reading> {
  const self = process.cpuUsage();
  return {
    redisMs: cpuMs(p.redis.pid),
    instancesMs: (s.bare ? [p.bare] : p.instances).map((svc) => cpuMs(svc.pid)),
    haproxyMs: haproxy ? cpuMs(haproxy.pid) : 0,
    selfMs: (self.user + self.system) / 1000,
    machine: machineTicks(),
    redis: await redisCommands(p.redisClient),
    trouble: s.bare ? { errors: 0, degradedS: 0 } : await redisTrouble(p.instances),
    haproxyLogLines: haproxy ? haproxy.child.output().split('\n').filter(Boolean).length : 0,
  };
}

/** The differences of readings over a setup's loads, added up over the rounds. */
class Spent {
  seconds = 0;
  redisMs = 0;
  instancesMs: number[] = [];
  haproxyMs = 0;
  selfMs = 0;
  busyTicks = 0;
  allTicks = 0;
  scripts = 0;
  commands = 0;
  redisErrors = 0;
  degradedS = 0;
  haproxyLogLines = 0;

  add(a: Reading, b: Reading, seconds: number, instances: number): void {
    this.seconds += seconds;
    this.redisMs += b.redisMs - a.redisMs;
    this.instancesMs = Array.from({ length: instances }, (_, i) => (this.instancesMs[i] ?? 0) + b.instancesMs[i]! - a.instancesMs[i]!);
    this.haproxyMs += b.haproxyMs - a.haproxyMs;
    this.selfMs += b.selfMs - a.selfMs;
    this.busyTicks += b.machine.busy - a.machine.busy;
    this.allTicks += b.machine.total - a.machine.total;
    this.scripts += b.redis.scripts - a.redis.scripts;
    this.commands += b.redis.all - a.redis.all;
    this.redisErrors += b.trouble.errors - a.trouble.errors;
    this.degradedS += b.trouble.degradedS - a.trouble.degradedS;
    this.haproxyLogLines += b.haproxyLogLines - a.haproxyLogLines;
  }
}

interface Row {
  key: string;
  name: string;
  instances: number;
  haproxy: boolean;
  rps: number;
  requests: number;
  seconds: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
  /** CPU per call, µs. */
  cpuUs: { redis: number; redisPerScriptCall: number | null; instances: number[]; instancesTotal: number; haproxy: number | null; loadGenerator: number };
  redisPerCall: { scriptCalls: number; commands: number };
  /** Failed Redis commands, and seconds an instance spent scoring without Redis (summed over instances). */
  redisErrors: number;
  redisDegradedS: number;
  /** Cores the whole machine was busy over the loads, and the part no process of this run took. */
  machineBusyCores: number;
  otherWorkCores: number;
  haproxyLogLines: number;
}

function row(s: Setup, tally: Tally, spent: Spent): Row {
  const t = tally.totals()!;
  const per = (ms: number) => (ms * 1000) / t.requests;
  const coresOfMachine = cpus().length;
  const busyCores = (spent.busyTicks / spent.allTicks) * coresOfMachine;
  const oursCores = (spent.redisMs + spent.instancesMs.reduce((a, b) => a + b, 0) + spent.haproxyMs + spent.selfMs) / 1000 / spent.seconds;
  const instancesMs = spent.instancesMs.slice(0, s.instances);
  return {
    key: s.key,
    name: s.name,
    instances: s.instances,
    haproxy: s.haproxy,
    rps: t.rps,
    requests: t.requests,
    seconds: t.seconds,
    p50: t.p50,
    p99: t.p99,
    errors: t.errors,
    non2xx: t.non2xx,
    cpuUs: {
      redis: per(spent.redisMs),
      redisPerScriptCall: spent.scripts > 0 ? (spent.redisMs * 1000) / spent.scripts : null,
      instances: instancesMs.map(per),
      instancesTotal: per(instancesMs.reduce((a, b) => a + b, 0)),
      haproxy: s.haproxy ? per(spent.haproxyMs) : null,
      loadGenerator: per(spent.selfMs),
    },
    redisPerCall: { scriptCalls: spent.scripts / t.requests, commands: spent.commands / t.requests },
    redisErrors: spent.redisErrors,
    redisDegradedS: spent.degradedS,
    machineBusyCores: busyCores,
    otherWorkCores: Math.max(0, busyCores - oursCores),
    haproxyLogLines: spent.haproxyLogLines,
  };
}

/** The one consumer of the set-ups' PASSporT pool: one set-up runs at a time. */
const CONSUMER = 'callguard';

/** The calls of a setup: cache misses, and with BENCH_PASSPORT_SHARE that share of them with a PASSporT each. */
class Traffic {
  private readonly pool = new Pool();
  private sent = 0;
  private signed = 0;
  /** Times the PASSporT pool ran out and was reused, over every set-up (those calls are replays: a cheaper path). */
  private reusedBefore = 0;

  constructor(private readonly lab: PassportLab | undefined) {}

  get reused(): number {
    return this.reusedBefore + (this.pool.wraps.get(CONSUMER) ?? 0);
  }

  /** Fresh PASSporTs for a load of `seconds`, numbered after every earlier batch; none for the yardstick, which keeps no state. */
  prepare(seconds: number, withPassports: boolean): void {
    this.reusedBefore = this.reused;
    const count = this.lab && withPassports ? Math.ceil(PASSPORT_RATE_BOUND * seconds * PASSPORT_SHARE) : 0;
    this.pool.fill(count > 0 ? this.lab!.sign(count, Math.floor(Date.now() / 1000), this.signed) : []);
    this.signed += count;
  }

  passport(): PassportCall {
    return this.pool.next(CONSUMER);
  }

  body(): string {
    this.sent++;
    // Spread evenly: a PASSporT whenever the running share falls behind.
    if (this.pool.size > 0 && Math.floor(this.sent * PASSPORT_SHARE) > Math.floor((this.sent - 1) * PASSPORT_SHARE)) {
      const c = this.passport();
      return uniqueCall({ identity: c.identity }, c.from, c.to);
    }
    return uniqueCall();
  }
}

/** One setup once: HAProxy started for it (when it has one), checked, warmed, then loaded and read. */
async function runSetup(s: Setup, p: Procs, tmp: string, traffic: Traffic, tally: Tally, spent: Spent): Promise<void> {
  let haproxy: Service | undefined;
  try {
    if (s.haproxy) {
      const [port, statsPort] = [await freePort(), await freePort()];
      const configFile = join(tmp, `haproxy-${s.instances}.cfg`);
      const config = localHaproxyConfig(readFileSync(COMMITTED_CFG, 'utf8'), {
        binds: { callguard: `127.0.0.1:${port}`, stats: `127.0.0.1:${statsPort}` },
        backend: BACKEND,
        servers: p.instances.slice(0, s.instances).map((svc, i) => ({ name: `callguard-${i + 1}`, address: new URL(svc.url).host })),
      });
      writeFileSync(configFile, config);
      haproxy = await startHaproxy({ configFile, url: `http://127.0.0.1:${port}`, statsUrl: `http://127.0.0.1:${statsPort}`, backend: BACKEND, maxconn: MAXCONN });
    }
    const url = (haproxy ?? (s.bare ? p.bare : p.instances[0]!)).url + SCORE;
    const headers = { 'content-type': 'application/json' };
    const spec = (seconds: number): LoadSpec => ({ url, headers, body: () => traffic.body(), seconds, connections: CONNECTIONS });
    traffic.prepare(WARMUP_SECONDS + SECONDS + 1, !s.bare);
    const probe = await send({ url, headers, body: () => uniqueCall() });
    if (probe.status !== 200 || (!s.bare && (JSON.parse(probe.text) as { cached?: boolean }).cached !== false)) throw new Error(`${s.name}: expected a cache miss, got ${probe.status} ${probe.text.slice(0, 200)}`);
    if (PASSPORT_SHARE > 0 && !s.bare) {
      const c = traffic.passport();
      const signed = await send({ url, headers, body: () => uniqueCall({ identity: c.identity }, c.from, c.to) });
      const verstat = (JSON.parse(signed.text) as { shaken?: { verstat?: string } }).shaken?.verstat;
      if (signed.status !== 200 || verstat !== 'TN-Validation-Passed') throw new Error(`${s.name}: a signed call was not verified: ${signed.status} ${signed.text.slice(0, 200)}`);
    }
    await load(spec(WARMUP_SECONDS));
    const before = await read(p, s, haproxy);
    const r = await load(spec(SECONDS), tally.latencies);
    const after = await read(p, s, haproxy);
    tally.add(r);
    spent.add(before, after, r.seconds, s.instances);
  } finally {
    await haproxy?.stop();
  }
}

const ms = (x: number) => (x < 10 ? x.toFixed(1) : x.toFixed(0));

function markdownTable(rows: Row[]): string {
  const lines = [
    '| setup | calls/s | p50 ms | p99 ms | errors / non-2xx | server CPU µs/call (each instance) | Redis CPU µs/call (a script call) | HAProxy CPU µs/call | load generator CPU µs/call | Redis script calls (commands) a call | Redis failed commands (degraded s) | machine busy, cores (other work) |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    const each = r.instances > 1 ? ` (${r.cpuUs.instances.map(int).join(' + ')})` : '';
    const redis = r.key === 'bare' ? ['—', '—', '—'] : [`${int(r.cpuUs.redis)} (${r.cpuUs.redisPerScriptCall === null ? '—' : int(r.cpuUs.redisPerScriptCall)})`, `${r.redisPerCall.scriptCalls.toFixed(2)} (${r.redisPerCall.commands.toFixed(1)})`, `${int(r.redisErrors)} (${r.redisDegradedS.toFixed(1)})`];
    lines.push(
      `| ${r.name} | ${int(r.rps)} | ${ms(r.p50)} | ${ms(r.p99)} | ${r.errors} / ${r.non2xx} | ${int(r.cpuUs.instancesTotal)}${each} | ${redis[0]} | ${r.cpuUs.haproxy === null ? '—' : int(r.cpuUs.haproxy)} | ${int(r.cpuUs.loadGenerator)} | ${redis[1]} | ${redis[2]} | ${r.machineBusyCores.toFixed(2)} (${r.otherWorkCores.toFixed(2)}) |`,
    );
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const loadBefore = loadavg();
  const tmp = mkdtempSync(join(tmpdir(), 'callguard-scale-'));
  let redis: Service | undefined;
  let redisClient: Redis | undefined;
  let bare: Service | undefined;
  let lab: PassportLab | undefined;
  const instances: Service[] = [];
  try {
    console.log(`callguard scale-out bench: ${CONNECTIONS} connections, ${SECONDS} s a setup, ${ROUNDS} round(s), node ${process.version}, load average ${loadBefore.map((x) => x.toFixed(2)).join(' ')}`);
    redis = await startRedis();
    redisClient = new Redis(redis.url, { lazyConnect: true });
    await redisClient.connect();
    // As the compose file runs them, bar what is the host's: ports, data folders, keys and registry files.
    const base = { REDIS_URL: redis.url, LOG_LEVEL: 'info', DEFAULT_COUNTRY: 'GB' };
    if (PASSPORT_SHARE > 0) lab = await startPassportLab();
    const env = lab ? { ...base, SHAKEN_TRUST_ANCHORS: lab.rootPemFile, SHAKEN_X5U_ALLOW_INSECURE: 'true', SHAKEN_MAX_AGE_S: String(FRESHNESS_S) } : { ...base, SHAKEN_VERIFY: 'false' };
    const traffic = new Traffic(lab);
    for (let i = 1; i <= MAX_INSTANCES; i++) instances.push(await startCallguard(`callguard-${i}`, { env: { ...env, REGISTRY_DATA_DIR: join(tmp, `data-${i}`) } }));
    bare = await startBareFastify();
    const procs: Procs = { redis, redisClient, instances, bare };

    const tallies = new Map(SETUPS.map((s) => [s.key, new Tally()]));
    const spent = new Map(SETUPS.map((s) => [s.key, new Spent()]));
    for (let round = 1; round <= ROUNDS; round++) {
      for (const s of SETUPS) {
        console.log(`  round ${round}: ${s.name} ...`);
        await runSetup(s, procs, tmp, traffic, tallies.get(s.key)!, spent.get(s.key)!);
      }
    }
    const rows = SETUPS.map((s) => row(s, tallies.get(s.key)!, spent.get(s.key)!));
    const loadAfter = loadavg();
    const seconds = (performance.now() - t0) / 1000;

    const out = [
      '',
      `### callguard scale-out, ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC`,
      '',
      `${cpus().length} × ${cpus()[0]?.model.trim()}, node ${process.version}, ${CONNECTIONS} connections, ${SECONDS} s a setup × ${ROUNDS} round(s), cache-miss calls with Redis${lab ? `, ${PASSPORT_SHARE * 100} % of them with a PASSporT` : ''}; load average (1/5/15 min) before ${loadBefore.map((x) => x.toFixed(2)).join(' ')}, after ${loadAfter.map((x) => x.toFixed(2)).join(' ')}`,
      '',
      markdownTable(rows),
      '',
      ...(traffic.reused ? [`- The PASSporT pool ran out ${traffic.reused} time(s) and was reused: those calls were replays, cheaper than a verification; raise PASSPORT_RATE_BOUND.`] : []),
      ...(MAXCONN ? [`- HAProxy ran with maxconn ${int(MAXCONN)} (-n) instead of the file's 20,000: this machine's open-files limit is below the 65,536 the compose file gives it.`] : []),
      ...rows
        .filter((r) => r.redisErrors > 0 || r.redisDegradedS > 0)
        .map((r) => `- ${r.name}: ${int(r.redisErrors)} Redis command(s) failed (over REDIS_COMMAND_TIMEOUT_MS or refused), ${r.redisDegradedS.toFixed(1)} s degraded (instance-seconds scoring without Redis): its Redis figures are not the Redis path's alone.`),
      ...rows.filter((r) => r.haproxyLogLines > 0).map((r) => `- ${r.name}: HAProxy logged ${r.haproxyLogLines} failed or slow request(s)`),
      `Run took ${(seconds / 60).toFixed(1)} min. Results: ${relative(ROOT, join(RESULTS, 'scale-out.json'))}.`,
    ];
    console.log(out.join('\n'));
    const json = {
      generatedAt: new Date().toISOString(),
      machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model.trim(), memoryGb: Math.round(totalmem() / 2 ** 30), node: process.version },
      settings: { seconds: SECONDS, connections: CONNECTIONS, rounds: ROUNDS, warmupSeconds: WARMUP_SECONDS, traffic: 'cache miss, Redis', passportShare: PASSPORT_SHARE, passportPoolReused: traffic.reused, haproxyMaxconn: MAXCONN ?? null },
      loadAverage: { before: loadBefore, after: loadAfter },
      setups: rows,
      durationS: seconds,
    };
    writeFileSync(join(RESULTS, 'scale-out.json'), JSON.stringify(json, null, 2) + '\n');
  } finally {
    redisClient?.disconnect();
    for (const svc of instances) await svc.stop();
    await bare?.stop();
    await redis?.stop();
    await lab?.close();
    rmSync(tmp, { recursive: true, force: true });
  }
}

if (require.main === module) runScript(main);

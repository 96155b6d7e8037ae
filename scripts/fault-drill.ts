/**
 * Fault drill: sustained load from switch-like clients and a registry writer while Redis is
 * killed and restarted and one instance is stopped with SIGTERM (then started again). README,
 * "Fault drill", says what it does and how to read it; `--help` lists the options.
 *
 *   npm run fault:drill                       # self-contained: its own redis-server and 3 instances
 *   npm run fault:drill -- --targets http://10.0.0.1:8080,http://10.0.0.2:8080 \
 *       --switch-key "$SWITCH_KEY" --admin-key "$ADMIN_KEY" \
 *       --at '5=docker compose -f docker/docker-compose.yml kill redis' \
 *       --at '10=docker compose -f docker/docker-compose.yml start redis'
 *
 * Checks (exit code 1 when any fails): every call got a verdict (failing over like a switch's
 * dispatcher); no failed request on an instance that was not being stopped; no request in
 * flight on the stopped instance reset; the stopped instance exited 0; every acknowledged
 * registry write is visible on every instance afterwards; refused writes were clean JSON 503s,
 * never a 500, a 4xx or a hang; every instance holds the same banks. CI runs it as
 * `test/e2e/faults.test.ts`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { KEYS, KEYS_FILE } from '../test/helpers/keys';
import { freePort, killChildren, redisAnswers, sleep, startChild, until, type Child } from './lib/process';

const ROOT = resolve(__dirname, '..');

// ---------------------------------------------------------------------------------------------
// Options and report

export interface DrillOptions {
  /** Seconds of load (the faults are placed inside it; the run stretches if a fault recovers slowly). */
  durationS: number;
  /** Scoring calls a second, all switches together. */
  rate: number;
  /** Switch clients, each with its own keep-alive connections to every instance. */
  switches: number;
  /** Calls one switch may have outstanding at once. */
  channels: number;
  /** Registry writes a second (PUT/DELETE of numbers, admin key), spread over `writers`. */
  writeRate: number;
  writers: number;
  /**
   * Where the writer sends each write: round robin over the instances (as through a load
   * balancer), or to the first one, moving on only when it refuses the connection.
   */
  writeVia: 'round-robin' | 'first';
  /** Calls sent to the instance being stopped just before SIGTERM, so some are surely in flight. */
  burstAtSigterm: number;
  /** A request unanswered after this long is a hang (a failure). */
  requestTimeoutMs: number;
  /** Reported, not a failure: what a switch with this budget would have delivered unchecked. */
  switchBudgetMs: number;
  /** How long after the load the acknowledged writes may take to show on every instance. */
  verifyTimeoutMs: number;
  /** Checked bound on the survivors' p99 (generous: a loaded CI machine). */
  p99LimitMs: number;
  /** Progress lines (the CLI prints them; the test collects them). */
  log: (line: string) => void;

  // Self-contained mode (no `targets`): processes of its own.
  instances: number;
  /** Seconds after the load starts when Redis is killed, and how long it stays down. */
  redisKillAtS: number;
  redisDownS: number;
  /** Seconds after the load starts when one instance gets SIGTERM (not before Redis is back). */
  sigtermAtS: number;
  /** Start the stopped instance again this long after it exited (negative: leave it stopped). */
  restartAfterS: number;
  /** Run `node dist/server.js` (after `npm run build`) instead of the sources through tsx. */
  dist: boolean;
  /** Keep the working folder (logs, Redis AOF) afterwards. */
  keep: boolean;
  /** More environment for the instances (e.g. LOAD_SHED_EVENT_LOOP_DELAY_MS). */
  env: Record<string, string>;

  // Target mode: instances already running; faults are the operator's (`at`).
  targets?: string[];
  switchKey: string;
  adminKey: string;
  /** Shell commands run at given seconds into the load, e.g. killing Redis. */
  at: { atS: number; command: string }[];
  /** Bank the writer writes under (created, and in target mode deleted afterwards with its numbers). */
  bankId: string;
  /**
   * An inbound-only (do-not-originate) number of the registry: one call in twenty presents it,
   * and every instance must block it. Self-contained: the sample registry's; target mode: unset
   * unless given (--dno-number).
   */
  dnoNumber?: string;
}

export const DEFAULT_OPTIONS: DrillOptions = {
  durationS: 20,
  rate: 250,
  switches: 4,
  channels: 8,
  writeRate: 20,
  writers: 2,
  writeVia: 'round-robin',
  burstAtSigterm: 32,
  requestTimeoutMs: 3000,
  switchBudgetMs: 200,
  verifyTimeoutMs: 15_000,
  p99LimitMs: 1000,
  log: () => undefined,
  instances: 3,
  redisKillAtS: 3,
  redisDownS: 3,
  sigtermAtS: 9,
  restartAfterS: 1,
  dist: false,
  keep: false,
  env: {},
  switchKey: KEYS.switch,
  adminKey: KEYS.admin,
  at: [],
  bankId: 'faultdrill',
};

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
  /** `warn`: reported, but does not fail the drill. */
  severity: 'fail' | 'warn';
}

export interface LatencySummary {
  count: number;
  p50: number;
  p99: number;
  max: number;
  overBudget: number;
}

export interface DrillReport {
  mode: 'self-contained' | 'targets';
  targets: string[];
  workDir: string | null;
  loadMs: number;
  calls: { total: number; answered: number; failed: number; failedOver: number; ratePerS: number };
  attempts: Record<string, number>;
  failovers: Record<string, number>;
  failures: string[];
  perInstance: { url: string; role: 'survivor' | 'stopped'; attempts: number; ok: number; failovers: number; failures: number; latency: LatencySummary }[];
  survivorLatency: LatencySummary;
  callLatency: LatencySummary;
  stopped: null | {
    instance: number;
    exitCode: number | null;
    inFlightAtSigterm: number;
    inFlightCompleted: number;
    inFlightRefused: number;
    inFlightReset: number;
    resetAfterSigterm: number;
    /** When those were handed to the OS, in ms after SIGTERM was sent: [first, last]. */
    resetSentMsAfterSigterm: [number, number] | null;
    probes: { name: string; status: number | string; ok: boolean }[];
  };
  writes: {
    attempted: number;
    acknowledged: number;
    verified: number;
    lost: string[];
    /** Writes answered 503 ("nothing was changed") that were made all the same. */
    phantoms: string[];
    refused: Record<string, number>;
    refusedWhileRedisUp: number;
    badRefusals: string[];
    unacknowledged: string[];
    verifiedOn: string[];
  };
  /** The banks each instance listed afterwards. */
  banksOn: { url: string; banks: string[] }[];
  timeline: { atMs: number; event: string }[];
  perSecond: { s: number; calls: number; failovers: number; failures: number; p99: number; writesAcked: number; writesRefused: number }[];
  checks: Check[];
  ok: boolean;
}

// ---------------------------------------------------------------------------------------------
// HTTP, with outcomes as a switch sees them

type HttpResult =
  | { kind: 'response'; status: number; body: string; started: number; sentAt: number | null; ended: number; reused?: boolean }
  | { kind: 'error'; code: string; responded: boolean; started: number; sentAt: number | null; ended: number; reused?: boolean };

interface Target {
  url: string;
  host: string;
  port: number;
}

function target(url: string): Target {
  const u = new URL(url);
  if (u.protocol !== 'http:') throw new Error(`${url}: only http:// targets (put the drill next to the instances, or behind the TLS terminator)`);
  return { url: url.replace(/\/$/, ''), host: u.hostname, port: Number(u.port || 80) };
}

function send(t: Target, agent: http.Agent | false, method: string, path: string, body: string | null, headers: Record<string, string>, timeoutMs: number): Promise<HttpResult> {
  return new Promise((resolveResult) => {
    const started = performance.now();
    let sentAt: number | null = null;
    let responded = false;
    let settled = false;
    const finish = (r: { kind: 'response'; status: number; body: string } | { kind: 'error'; code: string; responded: boolean }) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolveResult({ ...r, started, sentAt, ended: performance.now(), reused: req.reusedSocket });
    };
    const req = http.request(
      {
        host: t.host,
        port: t.port,
        method,
        path,
        agent,
        headers: { ...headers, ...(body !== null ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) } : {}) },
      },
      (res) => {
        responded = true;
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => finish({ kind: 'response', status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
        res.on('error', (err: NodeJS.ErrnoException) => finish({ kind: 'error', code: `response ${err.code ?? err.message}`, responded: true }));
        res.on('aborted', () => finish({ kind: 'error', code: 'response aborted', responded: true }));
      },
    );
    req.on('finish', () => (sentAt = performance.now()));
    req.on('error', (err: NodeJS.ErrnoException) => finish({ kind: 'error', code: err.code ?? err.message, responded }));
    const timer = setTimeout(() => {
      finish({ kind: 'error', code: 'TIMEOUT', responded });
      req.destroy();
    }, timeoutMs);
    req.end(body ?? undefined);
  });
}

/** What a switch's dispatcher makes of one attempt. */
type Outcome = 'ok' | 'refused' | 'reset' | 'closing' | 'shed' | 'error';
const FAILOVER: ReadonlySet<Outcome> = new Set(['refused', 'reset', 'closing', 'shed']);

function jsonOf(body: string): Record<string, unknown> | null {
  try {
    const v = JSON.parse(body) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

function classify(r: HttpResult, isOk: (status: number, json: Record<string, unknown> | null) => boolean): { outcome: Outcome; detail: string } {
  if (r.kind === 'error') {
    if (r.code === 'ECONNREFUSED') return { outcome: 'refused', detail: r.code };
    if (!r.responded && (r.code === 'ECONNRESET' || r.code === 'EPIPE')) return { outcome: 'reset', detail: r.code };
    return { outcome: 'error', detail: r.code };
  }
  const json = jsonOf(r.body);
  if (isOk(r.status, json)) return { outcome: 'ok', detail: String(r.status) };
  // Fastify's answer on a connection that carries a request while the instance closes.
  if (r.status === 503 && json?.error === 'Service Unavailable') return { outcome: 'closing', detail: '503 closing' };
  if (r.status === 503 && json?.error === 'overloaded') return { outcome: 'shed', detail: '503 overloaded' };
  return { outcome: 'error', detail: `HTTP ${r.status} ${r.body.slice(0, 120)}` };
}

// ---------------------------------------------------------------------------------------------
// Processes (self-contained mode)

/** A process the drill starts, and may start again, with its output appended to a log file. */
export class Proc {
  child: Child | null = null;

  constructor(
    readonly name: string,
    private readonly logFile: string,
  ) {}

  start(cmd: string, args: string[], env: NodeJS.ProcessEnv): void {
    const fd = openSync(this.logFile, 'a');
    this.child = startChild(cmd, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], keepOutput: 4000, onOutput: (d) => writeSync(fd, d) });
    // 'close' comes after the last output, where 'exit' may come before it.
    this.child.proc.once('close', () => closeSync(fd));
  }

  get proc(): ChildProcess | null {
    return this.child?.proc ?? null;
  }

  /** Resolves once the current run has exited: its exit code, null when a signal ended it. */
  get exited(): Promise<number | null> {
    return this.child?.exited ?? Promise.resolve(null);
  }

  get running(): boolean {
    return this.child?.running ?? false;
  }

  output(): string {
    return this.child?.output() ?? '';
  }

  async stop(signal: NodeJS.Signals, graceMs = 12_000): Promise<void> {
    await this.child?.stop(signal, graceMs);
  }
}

export class RedisProcess extends Proc {
  constructor(
    readonly port: number,
    private readonly dir: string,
  ) {
    super('redis', join(dir, 'redis-stdout.log'));
  }

  async up(): Promise<void> {
    // Persistence as production runs it (docker-compose: AOF), synced on every write so a write
    // Redis acknowledged survives SIGKILL.
    this.start(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--dir', this.dir, '--logfile', join(this.dir, 'redis.log')],
      process.env,
    );
    await this.child!.whenReady(`redis-server on port ${this.port}`, () => redisAnswers(this.port), 20_000, 25);
  }
}

export class Instance extends Proc {
  readonly url: string;

  constructor(
    readonly index: number,
    readonly port: number,
    private readonly env: NodeJS.ProcessEnv,
    private readonly dist: boolean,
    dir: string,
  ) {
    super(`instance ${index}`, join(dir, `instance-${index}.log`));
    this.url = `http://127.0.0.1:${port}`;
  }

  up(): void {
    // Node itself, not the tsx wrapper process: SIGTERM reaches the server as it does in production.
    const args = this.dist ? ['dist/server.js'] : ['--import', 'tsx', 'src/server.ts'];
    this.start(process.execPath, args, this.env);
  }

  async ready(timeoutMs = 45_000): Promise<void> {
    await this.child!.whenReady(this.name, async () => (await readiness(this.url)) !== null, timeoutMs, 100);
  }
}

/** An instance's environment: the test keys, its own port and data folder, the shared Redis. */
export function instanceEnv(port: number, redisUrl: string, workDir: string, index: number): NodeJS.ProcessEnv {
  return {
    ...process.env,
    NODE_ENV: 'production',
    PORT: String(port),
    HOST: '127.0.0.1',
    REDIS_URL: redisUrl,
    API_KEYS_FILE: KEYS_FILE,
    // Production settings say both explicitly: the drill seeds the sample registry on purpose,
    // and its calls carry no PASSporTs.
    REGISTRY_FILE: resolve(__dirname, '../src/registry/sample-registry.json'),
    SHAKEN_VERIFY: 'false',
    REGISTRY_DATA_DIR: mkdtempSync(join(workDir, `data-${index}-`)),
    LOG_LEVEL: 'info',
  };
}

/** `ready`, `degraded`, or null when it does not answer. */
async function readiness(url: string): Promise<string | null> {
  try {
    const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(2000) });
    if (!res.ok) return null;
    return ((await res.json()) as { status?: string }).status ?? null;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// Load

/** Ofcom drama ranges (valid numbers) that the sample registry does not use: 1,000 numbers each. */
const WRITE_RANGES = ['+44114496', '+44116496', '+44117496', '+44118496', '+44131496', '+44141496', '+44151496', '+44191498'];
const writeNumber = (i: number) => `${WRITE_RANGES[i % WRITE_RANGES.length]}0${String(Math.floor(i / WRITE_RANGES.length)).padStart(3, '0')}`;
/** New numbers the writers may create; past them they only update and delete their own. */
const WRITE_NUMBERS = WRITE_RANGES.length * 1000 - 1;
/** The registry write half-sent to the instance being stopped. */
const PROBE_NUMBER = writeNumber(WRITE_NUMBERS);

/**
 * A switch's traffic: mostly ordinary mobiles, some from international trunks, some withheld, and
 * one call in twenty from a bank's inbound-only number, which every instance must block (it would
 * not if its registry had fallen out of step).
 */
function scoreBody(i: number, dno: string | undefined): { body: string; mustBlock: boolean } {
  const r = i % 20;
  const to = `+4477009${String(i % 100_000).padStart(5, '0')}`;
  if (r === 0 && dno) return { body: JSON.stringify({ from: dno, to, callId: `drill-${i}` }), mustBlock: true };
  if (r === 1) return { body: JSON.stringify({ from: '+442079460000', to, callId: `drill-${i}`, origin: { international: true, trunk: 'intl-1' } }), mustBlock: false };
  if (r === 2) return { body: JSON.stringify({ from: 'anonymous', to, callId: `drill-${i}` }), mustBlock: false };
  const from = `+4474001${String((i * 7919) % 100_000).padStart(5, '0')}`;
  return { body: JSON.stringify({ from, to, callId: `drill-${i}`, origin: { trunk: `trunk-${i % 4}` } }), mustBlock: false };
}

const VERDICTS = new Set(['allow', 'flag', 'block']);

interface AttemptRecord {
  instance: number;
  /** Sent on a kept-alive connection rather than a new one. */
  reused: boolean;
  started: number;
  sentAt: number | null;
  ended: number;
  outcome: Outcome;
  detail: string;
}

interface CallRecord {
  started: number;
  ended: number;
  answered: boolean;
  attempts: AttemptRecord[];
}

interface WriteState {
  /** Last acknowledged state of each number this run wrote: a tag (its SPC), or null (absent). */
  expected: Map<string, string | null>;
  /** States written since that the service refused with 503 ("nothing was changed"). */
  refused: Map<string, Set<string | null>>;
  /** States written since whose outcome is unknown (connection dropped, then refused): either is fine. */
  uncertain: Map<string, Set<string | null>>;
  attempted: number;
  acknowledged: number;
  ackTimes: number[];
  refusals: { at: number; outcome: string }[];
  badRefusals: string[];
  unacknowledged: string[];
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function latency(values: number[], budgetMs: number): LatencySummary {
  const sorted = [...values].sort((a, b) => a - b);
  const r = (v: number) => Math.round(v * 10) / 10;
  return { count: sorted.length, p50: r(percentile(sorted, 50)), p99: r(percentile(sorted, 99)), max: r(sorted[sorted.length - 1] ?? 0), overBudget: sorted.filter((v) => v > budgetMs).length };
}

// ---------------------------------------------------------------------------------------------
// The drill

export async function runDrill(partial: Partial<DrillOptions> = {}): Promise<DrillReport> {
  const o: DrillOptions = { ...DEFAULT_OPTIONS, ...partial };
  const selfContained = !o.targets;
  if (selfContained && o.instances < 2) throw new Error('the drill needs at least 2 instances: one is stopped');
  const workDir = selfContained ? mkdtempSync(join(tmpdir(), 'callguard-drill-')) : null;
  const timeline: { atMs: number; event: string }[] = [];
  let t0 = performance.now();
  const at = () => performance.now() - t0;
  const mark = (event: string) => {
    timeline.push({ atMs: Math.round(at()), event });
    o.log(`+${(at() / 1000).toFixed(1)}s ${event}`);
  };

  let redis: RedisProcess | null = null;
  const instances: Instance[] = [];
  const cleanups: (() => Promise<void>)[] = [];
  let ok = false;
  try {
    // --- Set up ----------------------------------------------------------------------------------
    let targets: Target[];
    if (selfContained) {
      redis = new RedisProcess(await freePort(), workDir!);
      await redis.up();
      const redisUrl = `redis://127.0.0.1:${redis.port}`;
      for (let i = 0; i < o.instances; i++) {
        const port = await freePort();
        instances.push(new Instance(i, port, { ...instanceEnv(port, redisUrl, workDir!, i), ...o.env }, o.dist, workDir!));
      }
      // One at a time: the first seeds the registry in Redis, and two cores compile less at once.
      for (const inst of instances) {
        inst.up();
        await inst.ready();
      }
      targets = instances.map((i) => target(i.url));
      o.log(`redis-server on ${redis.port} (AOF, fsync always), ${instances.length} instances on ${instances.map((i) => i.port).join(', ')}; logs in ${workDir}`);
    } else {
      targets = o.targets!.map(target);
      for (const t of targets) if ((await readiness(t.url)) === null) throw new Error(`${t.url}/readyz does not answer`);
    }
    // Example Bank's inbound-only number in the sample registry the self-contained instances load.
    const dnoNumber = o.dnoNumber ?? (selfContained ? '+443450000000' : undefined);
    const switchAuth = { authorization: `Bearer ${o.switchKey}` };
    const adminAuth = { authorization: `Bearer ${o.adminKey}` };
    const banksOf = async (t: Target): Promise<string[] | null> => {
      const r = await send(t, false, 'GET', '/v1/registry/banks', null, adminAuth, o.requestTimeoutMs);
      const list = r.kind === 'response' && r.status === 200 ? (jsonOf(r.body)?.banks as { id: string }[] | undefined) : undefined;
      return list ? list.map((b) => b.id).sort() : null;
    };
    const before = await Promise.all(targets.map(banksOf));

    // The writer's bank. An instance follows the registry's change log from its first poll, a
    // quarter of a second after it starts: a change made before then is missed (see the README's
    // Fault drill section), so the drill lets the last instance started get there first.
    if (selfContained) await sleep(1000);
    const bank = await send(targets[0]!, false, 'PUT', `/v1/registry/banks/${o.bankId}`, JSON.stringify({ name: 'Fault drill', callbackNumbers: [] }), adminAuth, 5000);
    if (bank.kind !== 'response' || (bank.status !== 200 && bank.status !== 201)) {
      throw new Error(`could not create the drill's bank through ${targets[0]!.url}: ${bank.kind === 'response' ? `HTTP ${bank.status} ${bank.body}` : bank.code}`);
    }
    await until(async () => {
      for (const t of targets) {
        const r = await send(t, false, 'GET', '/v1/registry/banks', null, adminAuth, 2000);
        if (r.kind !== 'response' || !r.body.includes(`"${o.bankId}"`)) return false;
      }
      return true;
    }, 10_000, 'every instance to see the drill bank', 100);
    // Nothing else may have changed: every instance still holds the registry it held before.
    const after = await Promise.all(targets.map(banksOf));
    targets.forEach((t, i) => {
      const want = [...new Set([...(before[i] ?? []), o.bankId])].sort();
      if (JSON.stringify(after[i]) !== JSON.stringify(want)) {
        throw new Error(`${t.url} lists banks ${after[i]?.join(' ')} after the drill bank was added to ${before[i]?.join(' ')}: its registry fell out of step before any fault`);
      }
    });

    // --- Instance state: who is being stopped, when --------------------------------------------------
    const victim = selfContained ? instances.length - 1 : -1;
    let sigtermAt = Infinity; // performance.now() when SIGTERM was sent
    let backAt = Infinity; // when the restarted victim answered /readyz again
    let redisDownFrom = Infinity;
    let redisUpAt = Infinity;

    // --- Switches ------------------------------------------------------------------------------
    const calls: CallRecord[] = [];
    let stopLoad = false;
    let callSeq = 0;
    const agentsBySwitch = Array.from({ length: o.switches }, () => targets.map(() => new http.Agent({ keepAlive: true, maxSockets: o.channels, keepAliveMsecs: 1000 })));
    cleanups.push(async () => agentsBySwitch.flat().forEach((a) => a.destroy()));
    const scoreOk = (status: number, json: Record<string, unknown> | null) => status === 200 && json !== null && VERDICTS.has(String(json.verdict));
    const blocked = (status: number, json: Record<string, unknown> | null) => scoreOk(status, json) && json!.verdict === 'block';

    const intervalMs = (1000 * o.switches * o.channels) / o.rate; // per channel
    /** One call as a switch's dispatcher makes it: from `first`, on to the next instance on a refusal, reset or 503. */
    const makeCall = async (sw: number, first: number) => {
      const i = callSeq++;
      const { body, mustBlock } = scoreBody(i, dnoNumber);
      const call: CallRecord = { started: performance.now(), ended: 0, answered: false, attempts: [] };
      for (let k = 0; k < targets.length && !call.answered; k++) {
        const inst = (first + k) % targets.length;
        const r = await send(targets[inst]!, agentsBySwitch[sw]![inst]!, 'POST', '/v1/calls/score', body, switchAuth, o.requestTimeoutMs);
        const classified = classify(r, mustBlock ? blocked : scoreOk);
        const { outcome } = classified;
        let { detail } = classified;
        if (outcome === 'error' && r.kind === 'response' && scoreOk(r.status, jsonOf(r.body))) {
          detail = `verdict ${String(jsonOf(r.body)!.verdict)} for a bank's inbound-only number (${dnoNumber}): this instance's registry is out of step`;
        }
        call.attempts.push({ instance: inst, reused: r.reused === true, started: r.started, sentAt: r.sentAt, ended: r.ended, outcome, detail });
        if (outcome === 'ok') call.answered = true;
      }
      call.ended = performance.now();
      calls.push(call);
    };
    const extraCalls: Promise<void>[] = [];
    const channel = async (sw: number, ch: number) => {
      let next = performance.now() + (ch * intervalMs) / o.channels + Math.random() * intervalMs;
      while (!stopLoad) {
        const wait = next - performance.now();
        if (wait > 0) await sleep(wait);
        if (stopLoad) break;
        next = Math.max(next + intervalMs, performance.now() - intervalMs);
        // Round robin over the destinations.
        await makeCall(sw, callSeq % targets.length);
      }
    };

    // --- Registry writers ------------------------------------------------------------------------
    const writes: WriteState = { expected: new Map(), refused: new Map(), uncertain: new Map(), attempted: 0, acknowledged: 0, ackTimes: [], refusals: [], badRefusals: [], unacknowledged: [] };
    const addState = (m: Map<string, Set<string | null>>, number: string, state: string | null) => {
      if (!m.has(number)) m.set(number, new Set());
      m.get(number)!.add(state);
    };
    let stopWrites = false;
    let writeSeq = 0;
    const writer = async (w: number) => {
      const mine: string[] = [];
      let rr = w;
      const every = (1000 * o.writers) / o.writeRate;
      let next = performance.now() + every * Math.random();
      while (!stopWrites) {
        const wait = next - performance.now();
        if (wait > 0) await sleep(wait);
        if (stopWrites) break;
        next = Math.max(next + every, performance.now());
        // Mostly new numbers; some updates and deletes of this writer's own, to check order too.
        const roll = Math.random();
        const seq = writeSeq++;
        const tag = `w${w}s${seq}`;
        let number: string;
        let method: 'PUT' | 'DELETE' = 'PUT';
        const live = mine.filter((n) => typeof writes.expected.get(n) === 'string');
        if (seq >= WRITE_NUMBERS && mine.length > 0) number = mine[Math.floor(Math.random() * mine.length)]!;
        else if (live.length > 5 && roll < 0.15) number = live[Math.floor(Math.random() * live.length)]!;
        else if (live.length > 5 && roll < 0.25) {
          number = live[Math.floor(Math.random() * live.length)]!;
          method = 'DELETE';
        } else {
          number = writeNumber(seq);
          mine.push(number);
          writes.expected.set(number, null); // nothing there until a write of it is acknowledged
        }
        const state = method === 'PUT' ? tag : null;
        const body = method === 'PUT' ? JSON.stringify({ bankId: o.bankId, inboundOnly: false, authorisedSpcs: [tag] }) : null;
        writes.attempted++;
        // A dropped connection leaves the outcome unknown: the dispatcher tries the next instance
        // (the write is absolute, so repeating it is harmless). A 503 from the registry says that
        // nothing was changed: the writer takes it at its word and moves on, and the check
        // afterwards makes sure it was true.
        const deadline = performance.now() + 20_000;
        let acked = false;
        let unknown = false;
        let lastProblem = '';
        for (let attempt = 0; performance.now() < deadline; attempt++) {
          const inst = o.writeVia === 'first' ? attempt % targets.length : rr++ % targets.length;
          const r = await send(targets[inst]!, false, method, `/v1/registry/numbers/${encodeURIComponent(number)}`, body, adminAuth, o.requestTimeoutMs);
          if ((r.kind === 'response' && r.status >= 200 && r.status < 300) || (r.kind === 'response' && method === 'DELETE' && r.status === 404 && unknown)) {
            acked = true;
            break;
          }
          const { outcome, detail } = classify(r, () => false);
          const json = r.kind === 'response' ? jsonOf(r.body) : null;
          const at = r.started;
          if (r.kind === 'response' && r.status === 503 && json?.error === 'registry_unavailable' && typeof json.message === 'string') {
            writes.refusals.push({ at, outcome: '503 registry_unavailable' });
            lastProblem = '503 registry_unavailable';
            addState(unknown ? writes.uncertain : writes.refused, number, state);
            break;
          }
          if (!FAILOVER.has(outcome)) {
            // A refusal must be a clean JSON 503/4xx: never a 500 or a hang. Nothing the drill sends
            // is invalid, so a 4xx is as wrong as a 500 here, and repeating the write will not help.
            const why = method === 'DELETE' && r.kind === 'response' && r.status === 404 ? `${detail} (a number whose creation was acknowledged: this instance had lost it)` : detail;
            writes.badRefusals.push(`${method} ${number} via ${targets[inst]!.url} at +${((at - t0) / 1000).toFixed(2)}s: ${why}`);
            writes.refusals.push({ at, outcome: detail.slice(0, 40) });
            lastProblem = detail;
            addState(writes.uncertain, number, state);
            break;
          }
          if (outcome === 'reset' || outcome === 'error') unknown = true;
          writes.refusals.push({ at, outcome });
          lastProblem = outcome;
          await sleep(Math.min(50 * (attempt + 1), 500));
        }
        if (acked) {
          writes.acknowledged++;
          writes.ackTimes.push(performance.now());
          writes.expected.set(number, state);
          writes.refused.delete(number);
          writes.uncertain.delete(number);
        } else if (lastProblem !== '503 registry_unavailable') {
          writes.unacknowledged.push(`${method} ${number}: not acknowledged (last answer: ${lastProblem})`);
          addState(writes.uncertain, number, state);
        }
      }
    };

    // --- Readiness monitor (timeline only) ------------------------------------------------------------
    let stopMonitor = false;
    const seen = targets.map(() => 'ready' as string | null);
    const monitor = async () => {
      while (!stopMonitor) {
        await Promise.all(
          targets.map(async (t, i) => {
            const s = (await readiness(t.url)) ?? 'down';
            if (s !== seen[i]) {
              seen[i] = s;
              mark(`${t.url} /readyz: ${s}`);
            }
          }),
        );
        await sleep(200);
      }
    };

    // --- Faults ------------------------------------------------------------------------------------
    const probes: { name: string; status: number | string; ok: boolean }[] = [];
    let victimExit: number | null = null;
    const faults = async () => {
      if (!selfContained) {
        const runs = o.at
          .sort((a, b) => a.atS - b.atS)
          .map(async ({ atS, command }) => {
            await sleep(Math.max(0, atS * 1000 - at()));
            mark(`run: ${command}`);
            const code = await new Promise<number | null>((r) => spawn('sh', ['-c', command], { stdio: 'ignore' }).on('exit', (c) => r(c)));
            mark(`exit ${code}: ${command}`);
          });
        await Promise.all(runs);
        await sleep(Math.max(0, o.durationS * 1000 - at()));
        return;
      }
      // Redis: SIGKILL, down a few seconds, back on the same port from its AOF.
      await sleep(Math.max(0, o.redisKillAtS * 1000 - at()));
      redisDownFrom = performance.now();
      await redis!.stop('SIGKILL');
      mark(`redis killed (SIGKILL)`);
      await until(async () => (await readiness(targets[0]!.url)) === 'degraded', 10_000, 'an instance to report degraded', 50).catch(() => mark('no instance reported degraded'));
      await sleep(Math.max(0, (o.redisKillAtS + o.redisDownS) * 1000 - at()));
      await redis!.up();
      redisUpAt = performance.now();
      mark(`redis restarted (AOF replayed, answering PING)`);
      await until(async () => (await Promise.all(targets.map((t) => readiness(t.url)))).every((s) => s === 'ready'), 20_000, 'every instance to be ready (not degraded) again', 100).then(
        () => mark('every instance ready again'),
        () => mark('not every instance ready (not degraded) again after 20 s'),
      );

      // One instance: SIGTERM under load, with a call and a registry write half-sent when it arrives.
      await sleep(Math.max(0, o.sigtermAtS * 1000 - at()));
      const inst = instances[victim]!;
      const half = [
        halfSent(targets[victim]!, 'POST', '/v1/calls/score', JSON.stringify({ from: '+443450000000', to: '+447700900123', callId: 'in-flight-probe' }), switchAuth),
        halfSent(
          targets[victim]!,
          'PUT',
          `/v1/registry/numbers/${encodeURIComponent(PROBE_NUMBER)}`,
          JSON.stringify({ bankId: o.bankId, inboundOnly: true, authorisedSpcs: ['inflight'] }),
          adminAuth,
        ),
      ];
      await Promise.all(half.map((h) => h.headersSent));
      await sleep(150); // let the server read the headers and the first half of the body
      // A burst of calls on the switches' kept-alive connections, on the wire when the signal comes.
      for (let k = 0; k < o.burstAtSigterm; k++) extraCalls.push(makeCall(k % o.switches, victim));
      await sleep(2);
      sigtermAt = performance.now();
      inst.proc!.kill('SIGTERM');
      mark(`SIGTERM to ${inst.url}`);
      await sleep(300);
      half.forEach((h) => h.rest());
      const [callProbe, writeProbe] = await Promise.all(half.map((h) => h.result));
      // The call must be answered; the write answered, or refused cleanly (503: Redis too slow for it).
      const callOk = callProbe!.kind === 'response' && callProbe!.status === 200;
      const writeAcked = writeProbe!.kind === 'response' && writeProbe!.status >= 200 && writeProbe!.status < 300;
      const writeRefused = writeProbe!.kind === 'response' && writeProbe!.status === 503 && jsonOf(writeProbe!.body)?.error === 'registry_unavailable';
      probes.push({ name: 'score request half-sent at SIGTERM', status: callProbe!.kind === 'response' ? callProbe!.status : callProbe!.code, ok: callOk });
      probes.push({ name: 'registry PUT half-sent at SIGTERM', status: writeProbe!.kind === 'response' ? writeProbe!.status : writeProbe!.code, ok: writeAcked || writeRefused });
      writes.attempted++;
      writes.expected.set(PROBE_NUMBER, writeAcked ? 'inflight' : null);
      if (writeAcked) writes.acknowledged++;
      else (writeRefused ? writes.refused : writes.uncertain).set(PROBE_NUMBER, new Set(['inflight']));
      const exitTimer = setTimeout(() => inst.proc?.kill('SIGKILL'), 15_000);
      victimExit = await inst.exited;
      clearTimeout(exitTimer);
      mark(`${inst.url} exited with code ${victimExit}`);
      if (o.restartAfterS >= 0) {
        await sleep(o.restartAfterS * 1000);
        inst.up();
        mark(`${inst.url} starting again`);
        await inst.ready();
        backAt = performance.now();
        mark(`${inst.url} answering again`);
      }
      await sleep(Math.max(2000, o.durationS * 1000 - at()));
    };

    // --- Run ------------------------------------------------------------------------------------
    t0 = performance.now();
    mark(`load: ${o.rate} calls/s from ${o.switches} switches x ${o.channels} channels over ${targets.length} instances; ${o.writeRate} registry writes/s`);
    const monitorDone = monitor();
    const channels = agentsBySwitch.flatMap((_, sw) => Array.from({ length: o.channels }, (_x, ch) => channel(sw, ch)));
    const writersDone = Promise.all(Array.from({ length: o.writers }, (_, w) => writer(w)));
    try {
      await faults();
    } finally {
      stopLoad = true;
      stopWrites = true;
      await Promise.all(channels);
      await Promise.all(extraCalls);
      await writersDone;
    }
    const loadMs = at();
    mark(`load stopped after ${(loadMs / 1000).toFixed(1)} s`);

    // --- Every acknowledged write, on every instance ---------------------------------------------------
    // Each round reads every instance's registry whole (GET /v1/registry/export: one request, so
    // the admin key's rate limit is no concern), until all agree with the acknowledged writes;
    // then a sample is looked up one by one (GET /v1/registry/numbers/...), the route operators use.
    const live = targets.filter((_, i) => !selfContained || i !== victim || instances[victim]!.running);
    const verifyStarted = performance.now();
    const verifyAgent = new http.Agent({ keepAlive: true, maxSockets: 8 });
    cleanups.push(async () => verifyAgent.destroy());
    const stateOf = (entry: Record<string, unknown> | undefined): string | null =>
      entry === undefined ? null : entry.bankId !== o.bankId ? `bank ${String(entry.bankId)}` : String((entry.authorisedSpcs as string[] | undefined)?.[0]);
    const exportOf = async (t: Target): Promise<{ numbers: Map<string, Record<string, unknown>>; banks: string[] } | string> => {
      const r = await send(t, verifyAgent, 'GET', '/v1/registry/export', null, adminAuth, 15_000);
      const doc = r.kind === 'response' && r.status === 200 ? jsonOf(r.body) : null;
      if (!doc || !Array.isArray(doc.numbers) || !Array.isArray(doc.banks)) return r.kind === 'response' ? `HTTP ${r.status}` : r.code;
      const numbers = new Map<string, Record<string, unknown>>();
      for (const e of doc.numbers as Record<string, unknown>[]) if (typeof e.number === 'string') numbers.set(e.number, e);
      return { numbers, banks: (doc.banks as { id: string }[]).map((b) => b.id).sort() };
    };
    const show = (state: string | null | undefined) => (state === null ? 'absent' : state === undefined ? 'unreadable' : state.startsWith('bank ') || state.startsWith('HTTP') ? state : `tag ${state}`);
    const lost: string[] = [];
    const phantoms: string[] = [];
    let banksOn: { url: string; banks: string[] }[] = [];
    for (;;) {
      const exports = await Promise.all(live.map(exportOf));
      banksOn = live.map((t, i) => ({ url: t.url, banks: typeof exports[i] === 'string' ? [`(unreadable: ${exports[i]})`] : (exports[i] as { banks: string[] }).banks }));
      const left: { url: string; number: string; want: string | null; seen: string | null | undefined }[] = [];
      live.forEach((t, i) => {
        const ex = exports[i]!;
        for (const [number, want] of writes.expected) {
          const seen = typeof ex === 'string' ? undefined : stateOf(ex.numbers.get(number));
          if (seen !== want && !(seen !== undefined && writes.uncertain.get(number)?.has(seen))) left.push({ url: t.url, number, want, seen });
        }
      });
      const elapsed = performance.now() - verifyStarted;
      // Changes reach every instance within a second or so: a mismatch that a refused write
      // explains, still there after a few seconds, is that write having been made after all.
      const explained = left.every((m) => m.seen !== undefined && writes.refused.get(m.number)?.has(m.seen));
      if (left.length === 0 || (explained && elapsed > 4000) || elapsed > o.verifyTimeoutMs) {
        for (const m of left) {
          const line = `${m.number}: ${show(m.want)} expected, ${show(m.seen)} on ${m.url}`;
          if (m.seen !== undefined && writes.refused.get(m.number)?.has(m.seen)) phantoms.push(`${line} (a write answered 503 "nothing was changed")`);
          else lost.push(line);
        }
        break;
      }
      await sleep(500);
    }
    const settled = new Set([...lost, ...phantoms].map((l) => l.split(':')[0]!));
    const sample = [...writes.expected].filter(([n]) => !settled.has(n)).sort(() => Math.random() - 0.5).slice(0, 100);
    for (const t of live) {
      for (let k = 0; k < sample.length; k += 8) {
        await Promise.all(
          sample.slice(k, k + 8).map(async ([number]) => {
            const r = await send(t, verifyAgent, 'GET', `/v1/registry/numbers/${encodeURIComponent(number)}`, null, adminAuth, o.requestTimeoutMs);
            const json = r.kind === 'response' ? jsonOf(r.body) : null;
            const seen = r.kind !== 'response' ? r.code : r.status === 404 ? null : r.status === 200 && json ? stateOf(json) : `HTTP ${r.status}`;
            const want = writes.expected.get(number)!;
            if (seen !== want && !writes.uncertain.get(number)?.has(seen)) lost.push(`${number}: ${show(want)} expected, ${show(seen)} looked up on ${t.url} (the export agreed)`);
          }),
        );
      }
    }
    mark(`writes checked on ${live.map((t) => t.url).join(', ')}`);

    if (!selfContained && o.bankId) {
      const r = await send(targets[0]!, false, 'DELETE', `/v1/registry/banks/${o.bankId}?cascade=true`, null, adminAuth, 10_000);
      mark(`drill bank deleted: ${r.kind === 'response' ? r.status : r.code}`);
    }
    stopMonitor = true;
    await monitorDone;

    // --- Report ----------------------------------------------------------------------------------
    const isSurvivorAttempt = (a: AttemptRecord) => a.instance !== victim;
    // The stopped instance is expected to refuse only from SIGTERM until it answers again.
    const inStopWindow = (a: AttemptRecord) => a.instance === victim && a.started >= sigtermAt - 0 && a.started < backAt;
    const inFlightAtSigterm = (a: AttemptRecord) => a.instance === victim && a.started < sigtermAt && a.ended >= sigtermAt;
    const failures: string[] = [];
    const attempts: Record<string, number> = {};
    const failovers: Record<string, number> = {};
    const describe = (a: AttemptRecord, why: string) => `${targets[a.instance]!.url} at +${((a.started - t0) / 1000).toFixed(2)}s: ${why}`;
    let inFlight = 0;
    let inFlightCompleted = 0;
    let inFlightRefused = 0;
    let inFlightReset = 0;
    let resetAfterSigterm = 0;
    const resetDelays: number[] = [];
    const resetLate = (a: AttemptRecord) => {
      resetAfterSigterm++;
      resetDelays.push((a.sentAt ?? a.started) - sigtermAt);
    };
    for (const c of calls) {
      for (const a of c.attempts) {
        attempts[a.outcome] = (attempts[a.outcome] ?? 0) + 1;
        if (FAILOVER.has(a.outcome)) failovers[a.outcome] = (failovers[a.outcome] ?? 0) + 1;
        if (inFlightAtSigterm(a)) {
          inFlight++;
          if (a.outcome === 'ok') inFlightCompleted++;
          else if (a.outcome === 'closing' || a.outcome === 'refused') inFlightRefused++;
          // Handed to the OS before the signal was even sent: the instance had it, and dropped it.
          else if (a.outcome === 'reset' && a.sentAt !== null && a.sentAt < sigtermAt) {
            inFlightReset++;
            failures.push(
              describe(a, `a request in flight when SIGTERM was sent was reset (${a.reused ? 'kept-alive' : 'new'} connection, sent ${(sigtermAt - a.sentAt).toFixed(1)} ms before the signal, reset ${(a.ended - sigtermAt).toFixed(1)} ms after)`),
            );
          } else if (a.outcome === 'reset') resetLate(a);
          else failures.push(describe(a, `in flight at SIGTERM: ${a.detail}`));
          continue;
        }
        if (a.outcome === 'ok') continue;
        if (selfContained && !isSurvivorAttempt(a) && inStopWindow(a) && FAILOVER.has(a.outcome)) {
          if (a.outcome === 'reset') resetLate(a);
          continue;
        }
        if (!selfContained && FAILOVER.has(a.outcome)) continue; // the operator's faults: failovers, counted above
        failures.push(describe(a, a.detail));
      }
      if (!c.answered) failures.push(`call at +${((c.started - t0) / 1000).toFixed(2)}s got no verdict from any instance: ${c.attempts.map((a) => a.detail).join(', ')}`);
    }

    const perInstance = targets.map((t, i) => {
      const mine = calls.flatMap((c) => c.attempts.filter((a) => a.instance === i));
      const okOnes = mine.filter((a) => a.outcome === 'ok');
      return {
        url: t.url,
        role: (i === victim ? 'stopped' : 'survivor') as 'survivor' | 'stopped',
        attempts: mine.length,
        ok: okOnes.length,
        failovers: mine.filter((a) => FAILOVER.has(a.outcome)).length,
        failures: mine.filter((a) => a.outcome === 'error').length,
        latency: latency(okOnes.map((a) => a.ended - a.started), o.switchBudgetMs),
      };
    });
    const survivorLatency = latency(
      calls.flatMap((c) => c.attempts.filter((a) => isSurvivorAttempt(a) && a.outcome === 'ok').map((a) => a.ended - a.started)),
      o.switchBudgetMs,
    );
    const callLatency = latency(
      calls.filter((c) => c.answered).map((c) => c.ended - c.started),
      o.switchBudgetMs,
    );

    const redisDown = (t: number) => t >= redisDownFrom && t < redisUpAt + 2000;
    const refused: Record<string, number> = {};
    for (const r of writes.refusals) refused[r.outcome] = (refused[r.outcome] ?? 0) + 1;
    const refusedWhileRedisUp = writes.refusals.filter((r) => r.outcome === '503 registry_unavailable' && !redisDown(r.at)).length;

    const perSecond: DrillReport['perSecond'] = [];
    for (let s = 0; s * 1000 < loadMs; s++) {
      const from = t0 + s * 1000;
      const to = from + 1000;
      const inSecond = calls.filter((c) => c.started >= from && c.started < to);
      const lat = inSecond.filter((c) => c.answered).map((c) => c.ended - c.started);
      perSecond.push({
        s,
        calls: inSecond.length,
        failovers: inSecond.reduce((n, c) => n + c.attempts.filter((a) => FAILOVER.has(a.outcome)).length, 0),
        failures: inSecond.filter((c) => !c.answered || c.attempts.some((a) => a.outcome === 'error')).length,
        p99: Math.round(percentile(lat.sort((a, b) => a - b), 99)),
        writesAcked: writes.ackTimes.filter((t) => t >= from && t < to).length,
        writesRefused: writes.refusals.filter((r) => r.at >= from && r.at < to).length,
      });
    }

    const answered = calls.filter((c) => c.answered).length;
    const report: DrillReport = {
      mode: selfContained ? 'self-contained' : 'targets',
      targets: targets.map((t) => t.url),
      workDir,
      loadMs: Math.round(loadMs),
      calls: {
        total: calls.length,
        answered,
        failed: calls.length - answered,
        failedOver: calls.filter((c) => c.attempts.length > 1).length,
        ratePerS: Math.round(calls.length / (loadMs / 1000)),
      },
      attempts,
      failovers,
      failures,
      perInstance,
      survivorLatency,
      callLatency,
      stopped: selfContained
        ? {
            instance: victim,
            exitCode: victimExit,
            inFlightAtSigterm: inFlight,
            inFlightCompleted,
            inFlightRefused,
            inFlightReset,
            resetAfterSigterm,
            resetSentMsAfterSigterm: resetDelays.length ? [Math.round(Math.min(...resetDelays)), Math.round(Math.max(...resetDelays))] : null,
            probes,
          }
        : null,
      writes: {
        attempted: writes.attempted,
        acknowledged: writes.acknowledged,
        verified: writes.expected.size * live.length - lost.length - phantoms.length,
        lost,
        phantoms,
        refused,
        refusedWhileRedisUp,
        badRefusals: writes.badRefusals,
        unacknowledged: writes.unacknowledged,
        verifiedOn: live.map((t) => t.url),
      },
      banksOn,
      timeline,
      perSecond,
      checks: [],
      ok: false,
    };
    report.checks = checksOf(report, o, selfContained);
    report.ok = report.checks.every((c) => c.ok || c.severity === 'warn');
    ok = report.ok;
    return report;
  } finally {
    for (const c of cleanups) await c();
    await Promise.all(instances.map((i) => i.stop('SIGTERM')));
    await redis?.stop('SIGKILL');
    // Kept when the drill failed: the instances' logs and Redis's AOF are the evidence.
    if (workDir && !o.keep && ok) rmSync(workDir, { recursive: true, force: true });
  }
}

function checksOf(r: DrillReport, o: DrillOptions, selfContained: boolean): Check[] {
  const fail = (name: string, ok: boolean, detail: string): Check => ({ name, ok, detail, severity: 'fail' });
  const w = r.writes;
  const checks: Check[] = [
    fail('every call got a verdict', r.calls.failed === 0, `${r.calls.answered}/${r.calls.total} answered, ${r.calls.failedOver} after failing over`),
    fail(
      selfContained ? 'no failed request on the surviving instances (nor on the stopped one before SIGTERM or once back)' : 'no failed request (failovers excepted)',
      r.failures.length === 0,
      r.failures.length === 0 ? 'none' : `${r.failures.length}: ${r.failures.slice(0, 5).join('; ')}`,
    ),
    fail(`survivors' p99 under ${o.p99LimitMs} ms`, r.survivorLatency.p99 < o.p99LimitMs, `p50 ${r.survivorLatency.p50} ms, p99 ${r.survivorLatency.p99} ms, max ${r.survivorLatency.max} ms`),
    fail(
      'every acknowledged registry write visible on every instance',
      w.lost.length === 0 && w.acknowledged > 0,
      w.lost.length === 0 ? `${w.acknowledged} acknowledged writes, checked on ${w.verifiedOn.length} instances` : `${w.lost.length} lost: ${w.lost.slice(0, 5).join('; ')}`,
    ),
    fail(
      'refused writes were clean JSON 503s (no 500, no 4xx, no hang)',
      w.badRefusals.length === 0 && w.unacknowledged.length === 0,
      [...w.badRefusals, ...w.unacknowledged].slice(0, 5).join('; ') || JSON.stringify(w.refused),
    ),
    fail(
      'every instance holds the same registry (the same banks)',
      r.banksOn.every((b) => JSON.stringify(b.banks) === JSON.stringify(r.banksOn[0]!.banks)) && r.banksOn[0]!.banks.includes(o.bankId),
      r.banksOn.map((b) => `${b.url}: ${b.banks.join(' ')}`).join('; '),
    ),
  ];
  if (selfContained && r.stopped) {
    const s = r.stopped;
    checks.push(
      fail('the stopped instance exited 0', s.exitCode === 0, `exit code ${s.exitCode}`),
      fail(
        'requests in flight at SIGTERM completed or were cleanly refused',
        s.inFlightReset === 0 && s.probes.length === 2 && s.probes.every((p) => p.ok),
        `${s.inFlightAtSigterm} calls in flight: ${s.inFlightCompleted} answered, ${s.inFlightRefused} refused, ${s.inFlightReset} reset; half-sent probes: ${s.probes.map((p) => `${p.status}`).join(', ')}`,
      ),
      fail(
        'the faults happened (writes refused while Redis was down, calls failed over)',
        (w.refused['503 registry_unavailable'] ?? 0) - w.refusedWhileRedisUp > 0 && r.calls.failedOver > 0,
        `${(w.refused['503 registry_unavailable'] ?? 0) - w.refusedWhileRedisUp} writes refused while Redis was down, ${r.calls.failedOver} calls failed over`,
      ),
    );
  }
  checks.push(
    {
      name: 'no write answered 503 "nothing was changed" was made all the same',
      ok: w.phantoms.length === 0,
      detail: w.phantoms.length === 0 ? 'none' : `${w.phantoms.length}: ${w.phantoms.slice(0, 5).join('; ')}`,
      severity: 'warn',
    },
    {
      name: 'no write refused while Redis was up',
      ok: w.refusedWhileRedisUp === 0,
      detail: w.refusedWhileRedisUp === 0 ? 'none' : `${w.refusedWhileRedisUp} answered 503 registry_unavailable (a commit slower than REDIS_COMMAND_TIMEOUT_MS?)`,
      severity: 'warn',
    },
  );
  return checks;
}

/** A request whose headers and first half of body go now, and the rest on `rest()`. */
function halfSent(t: Target, method: string, path: string, body: string, headers: Record<string, string>) {
  let rest: () => void = () => undefined;
  let headersSent: () => void = () => undefined;
  const sent = new Promise<void>((r) => (headersSent = r));
  const result = new Promise<HttpResult>((resolveResult) => {
    const started = performance.now();
    const req = http.request(
      { host: t.host, port: t.port, method, path, agent: false, headers: { ...headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) } },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolveResult({ kind: 'response', status: res.statusCode ?? 0, body: text, started, sentAt: null, ended: performance.now() }));
      },
    );
    req.on('error', (err: NodeJS.ErrnoException) => resolveResult({ kind: 'error', code: err.code ?? err.message, responded: false, started, sentAt: null, ended: performance.now() }));
    req.on('socket', (s) => s.once('connect', () => headersSent()));
    req.write(body.slice(0, Math.floor(body.length / 2)));
    rest = () => req.end(body.slice(Math.floor(body.length / 2)));
    setTimeout(() => req.destroy(new Error('TIMEOUT')), 20_000).unref();
  });
  return { headersSent: sent, result, rest: () => rest() };
}

// ---------------------------------------------------------------------------------------------
// Summary

export function formatReport(r: DrillReport): string {
  const lines: string[] = [];
  const ms = (v: number) => `${v} ms`;
  lines.push(`callguard fault drill (${r.mode}): ${r.targets.join(', ')}`);
  lines.push('');
  lines.push('timeline');
  for (const e of r.timeline) lines.push(`  +${(e.atMs / 1000).toFixed(1).padStart(5)} s  ${e.event}`);
  lines.push('');
  lines.push(`calls        ${r.calls.total} in ${(r.loadMs / 1000).toFixed(1)} s (${r.calls.ratePerS}/s): ${r.calls.answered} answered, ${r.calls.failed} without a verdict`);
  lines.push(`failovers    ${r.calls.failedOver} calls answered by another instance; attempts ${JSON.stringify(r.failovers)}`);
  lines.push(`failures     ${r.failures.length}${r.failures.length ? `\n${r.failures.slice(0, 20).map((f) => `    ${f}`).join('\n')}` : ''}`);
  lines.push(`latency      survivors p50 ${ms(r.survivorLatency.p50)}, p99 ${ms(r.survivorLatency.p99)}, max ${ms(r.survivorLatency.max)}; whole calls (failovers included) p50 ${ms(r.callLatency.p50)}, p99 ${ms(r.callLatency.p99)}, max ${ms(r.callLatency.max)}`);
  lines.push(`             ${r.callLatency.overBudget} calls over a switch's ${DEFAULT_OPTIONS.switchBudgetMs} ms budget`);
  for (const p of r.perInstance) {
    lines.push(`  ${p.url.padEnd(24)} ${p.role.padEnd(9)} ${String(p.attempts).padStart(6)} attempts, ${p.ok} ok, ${p.failovers} failed over, ${p.failures} failed; p50 ${ms(p.latency.p50)}, p99 ${ms(p.latency.p99)}`);
  }
  if (r.stopped) {
    const s = r.stopped;
    lines.push(
      `stopped      ${r.targets[s.instance]}: exit ${s.exitCode}; ${s.inFlightAtSigterm} calls in flight at SIGTERM: ${s.inFlightCompleted} answered, ${s.inFlightRefused} refused (503), ${s.inFlightReset} reset`,
    );
    if (s.resetAfterSigterm > 0) {
      lines.push(`             ${s.resetAfterSigterm} sent after SIGTERM (${s.resetSentMsAfterSigterm![0]} to ${s.resetSentMsAfterSigterm![1]} ms after) were reset, and failed over`);
    }
    for (const p of s.probes) lines.push(`             ${p.name}: ${p.status}`);
  }
  const w = r.writes;
  lines.push(`writes       ${w.acknowledged} acknowledged of ${w.attempted}; ${w.lost.length} lost, ${w.phantoms.length} refused but made; checked on ${w.verifiedOn.length} instances`);
  lines.push(`             refusals: ${JSON.stringify(w.refused)}; 503s while Redis was up: ${w.refusedWhileRedisUp}`);
  for (const b of [...w.badRefusals, ...w.unacknowledged, ...w.lost, ...w.phantoms].slice(0, 20)) lines.push(`    ${b}`);
  lines.push('');
  lines.push('per second   s  calls  failovers  failures  p99 ms  writes ok/refused');
  for (const p of r.perSecond) {
    lines.push(`           ${String(p.s).padStart(3)} ${String(p.calls).padStart(6)} ${String(p.failovers).padStart(10)} ${String(p.failures).padStart(9)} ${String(p.p99).padStart(7)}  ${p.writesAcked}/${p.writesRefused}`);
  }
  lines.push('');
  for (const c of r.checks) lines.push(`${c.ok ? 'PASS' : c.severity === 'warn' ? 'WARN' : 'FAIL'}  ${c.name}: ${c.detail}`);
  lines.push(r.ok ? 'drill passed' : 'drill FAILED');
  if (r.workDir) lines.push(`\nlogs: ${r.workDir}`);
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------
// Command line

function parseArgs(argv: string[]): Partial<DrillOptions> {
  const out: Partial<DrillOptions> = {};
  const at: { atS: number; command: string }[] = [];
  const num = (name: string, v: string | undefined): number => {
    const n = Number(v);
    if (v === undefined || !Number.isFinite(n)) throw new Error(`--${name} needs a number`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = () => argv[++i];
    switch (arg) {
      case '--duration': out.durationS = num('duration', value()); break;
      case '--rate': out.rate = num('rate', value()); break;
      case '--switches': out.switches = num('switches', value()); break;
      case '--channels': out.channels = num('channels', value()); break;
      case '--write-rate': out.writeRate = num('write-rate', value()); break;
      case '--write-via': {
        const v = value();
        if (v !== 'first' && v !== 'round-robin') throw new Error('--write-via takes first or round-robin');
        out.writeVia = v;
        break;
      }
      case '--instances': out.instances = num('instances', value()); break;
      case '--redis-kill-at': out.redisKillAtS = num('redis-kill-at', value()); break;
      case '--redis-down': out.redisDownS = num('redis-down', value()); break;
      case '--sigterm-at': out.sigtermAtS = num('sigterm-at', value()); break;
      case '--restart-after': out.restartAfterS = num('restart-after', value()); break;
      case '--no-restart': out.restartAfterS = -1; break;
      case '--p99-limit': out.p99LimitMs = num('p99-limit', value()); break;
      case '--dist': out.dist = true; break;
      case '--keep': out.keep = true; break;
      case '--env': {
        const v = value() ?? '';
        const eq = v.indexOf('=');
        if (eq < 1) throw new Error(`--env takes NAME=VALUE, got "${v}"`);
        out.env = { ...out.env, [v.slice(0, eq)]: v.slice(eq + 1) };
        break;
      }
      case '--targets': out.targets = (value() ?? '').split(',').map((s) => s.trim()).filter(Boolean); break;
      case '--switch-key': out.switchKey = value() ?? ''; break;
      case '--admin-key': out.adminKey = value() ?? ''; break;
      case '--bank': out.bankId = value() ?? ''; break;
      case '--dno-number': out.dnoNumber = value() ?? ''; break;
      case '--at': {
        const v = value() ?? '';
        const eq = v.indexOf('=');
        if (eq < 1) throw new Error(`--at takes SECONDS=COMMAND, got "${v}"`);
        at.push({ atS: num('at', v.slice(0, eq)), command: v.slice(eq + 1) });
        break;
      }
      case '--help':
      case '-h':
        process.stdout.write(HELP);
        process.exit(0);
        break;
      default:
        throw new Error(`unknown option ${arg} (--help lists them)`);
    }
  }
  if (at.length) out.at = at;
  if (out.targets) {
    out.switchKey = out.switchKey ?? process.env.DRILL_SWITCH_KEY;
    out.adminKey = out.adminKey ?? process.env.DRILL_ADMIN_KEY;
    if (!out.switchKey || !out.adminKey) throw new Error('--targets needs --switch-key and --admin-key (or DRILL_SWITCH_KEY and DRILL_ADMIN_KEY)');
  }
  return out;
}

const HELP = `npm run fault:drill -- [options]

Self-contained (default): a private redis-server (AOF, fsync always) and N instances of this
checkout; Redis is SIGKILLed and restarted, then one instance gets SIGTERM and is started again.
  --instances N        instances (default 3, at least 2)
  --duration S         seconds of load (default 20)
  --redis-kill-at S    when Redis is killed (default 3); --redis-down S: for how long (default 3)
  --sigterm-at S       when one instance gets SIGTERM (default 9, not before Redis is back)
  --restart-after S    start it again S seconds after it exited (default 1); --no-restart
  --dist               run node dist/server.js (npm run build first) instead of the sources
  --env NAME=VALUE     more environment for the instances (repeatable)
  --keep               keep the working folder (instance logs, Redis AOF; kept anyway on failure)

Against running instances (the faults are yours, e.g. with --at):
  --targets URL,URL    instances, each addressed directly (not the load balancer)
  --switch-key K       a switch key (or DRILL_SWITCH_KEY); --admin-key K (or DRILL_ADMIN_KEY)
  --at 'S=COMMAND'     run a shell command S seconds into the load (repeatable)
  --bank ID            bank the writer uses (default faultdrill; deleted with its numbers at the end)
  --dno-number N       an inbound-only number of your registry: every instance must block calls from it

Load:
  --rate N             scoring calls a second (default 250); --switches N (4); --channels N (8)
  --write-rate N       registry writes a second (default 20)
  --write-via MODE     round-robin (default: each write to the next instance) or first
  --p99-limit MS       fail when the survivors' p99 is above it (default 1000)
`;

if (require.main === module) {
  let options: Partial<DrillOptions>;
  try {
    options = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`fault-drill: ${(err as Error).message}\n`);
    process.exit(2);
  }
  const interrupt = () => {
    killChildren();
    process.exit(130);
  };
  process.on('SIGINT', interrupt);
  process.on('SIGTERM', interrupt);
  runDrill({ ...options, log: (line) => process.stdout.write(`${line}\n`) }).then(
    (report) => {
      process.stdout.write(`\n${formatReport(report)}\n`);
      process.exit(report.ok ? 0 : 1);
    },
    (err: unknown) => {
      process.stderr.write(`fault-drill: ${(err as Error)?.stack ?? String(err)}\n`);
      process.exit(2);
    },
  );
}

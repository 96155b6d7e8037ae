/**
 * `npx tsx bench/import-while-scoring.ts`: does a large registry import stall call scoring?
 *
 * Starts the real app in a child process (embedded default: journal and audit on disk), scores
 * calls at a steady rate, and meanwhile POSTs a registry import of about 20 MB (JSON; `IMPORT_MB`,
 * `IMPORT_FORMAT=csv`). With `--redis` (or `BENCH_REDIS=1`) the registry lives in a private
 * redis-server started for the run (AOF on, `appendfsync always`, as a durable deployment runs
 * it), and the run also prints the commands Redis took over 5 ms meanwhile (its SLOWLOG: the
 * commit script, the staging pieces). `BENCH_VERBOSE=1` lists each score over 100 ms and when it
 * was due, counted from the import's start; `BENCH_CPU_PROF=<dir>` writes the server's CPU profile there. Prints the import's time and answer, the latency of
 * the scores sent while it ran (p50, p99, max, measured from when each score was due to be sent, so a stalled event
 * loop counts in full) and the server's largest event-loop delay meanwhile. Goal: p99 under
 * 20 ms, no score over 100 ms.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { buildApp } from '../src/app';
import { loadConfig } from '../src/config';
import { parseNumber } from '../src/numbers';
import Redis from 'ioredis';
import { freePort, sleep, startRedisServer, type Child } from '../scripts/lib/process';

const IMPORT_MB = Number(process.env.IMPORT_MB ?? 20);
const FORMAT = process.env.IMPORT_FORMAT === 'csv' ? 'csv' : 'json';
/** Scores a second, sent at even intervals whatever the answers do. */
const SCORE_RATE = Number(process.env.SCORE_RATE ?? 200);
const ON_REDIS = process.argv.includes('--redis') || process.env.BENCH_REDIS === '1';

type ServerMessage = { port: number } | { loopMaxMs: number; loopP99Ms: number };

/** The child: the app on a free port, reporting its event-loop delay when asked. */
async function serve(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'callguard-bench-import-'));
  const env: Record<string, string> = { LOG_LEVEL: 'silent', REGISTRY_DATA_DIR: dir };
  if (process.env.BENCH_REDIS_URL) env.REDIS_URL = process.env.BENCH_REDIS_URL;
  const app = await buildApp({ config: loadConfig(env), logger: false });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  if (process.env.BENCH_CPU_PROF) {
    // The event loop's gaps over 20 ms, on the profile's clock (µs), to find in the profile.
    const gaps: [number, number][] = [];
    let last = process.hrtime.bigint();
    setInterval(() => {
      const now = process.hrtime.bigint();
      if (now - last > 20_000_000n) gaps.push([Number(last / 1000n), Number(now / 1000n)]);
      last = now;
    }, 1).unref();
    process.on('exit', () => writeFileSync(join(process.env.BENCH_CPU_PROF!, `gaps-${process.pid}.json`), JSON.stringify(gaps)));
  }
  const send = (m: ServerMessage) => process.send!(m);
  process.on('message', (m: string) => {
    if (m === 'reset') {
      loop.reset();
      send({ loopMaxMs: 0, loopP99Ms: 0 });
    } else if (m === 'stats') send({ loopMaxMs: loop.max / 1e6, loopP99Ms: loop.percentile(99) / 1e6 });
    else if (m === 'exit') void app.close().then(() => {
      rmSync(dir, { recursive: true, force: true });
      process.exit(0);
    });
  });
  send({ port: (app.server.address() as { port: number }).port });
}

/** Valid UK geographic numbers, spread over several area codes, in order. */
function* ukNumbers(): Generator<string> {
  for (const area of ['113', '114', '116', '117', '118', '121', '131', '141', '151', '161', '191', '1223', '1224', '1225']) {
    for (let n = 2_000_000; n < 9_000_000; n += 7) {
      const e164 = `+44${area}${String(n).slice(0, area.length === 4 ? 6 : 7)}`;
      if (parseNumber(e164, 'GB').valid) yield e164;
    }
  }
}

function importBody(): { body: Buffer; entries: number } {
  const target = IMPORT_MB * 1e6;
  const parts: string[] = [];
  let size = 0;
  let entries = 0;
  const seen = new Set<string>();
  for (const number of ukNumbers()) {
    if (size >= target) break;
    if (seen.has(number)) continue;
    seen.add(number);
    const spcs = entries % 2 ? ['1234', '5678'] : undefined;
    const line =
      FORMAT === 'json'
        ? JSON.stringify({ number, bankId: 'examplebank', inboundOnly: entries % 3 === 0, ...(spcs ? { authorisedSpcs: spcs } : {}) })
        : `${number},examplebank,${entries % 3 === 0},${spcs ? spcs.join(';') : ''}`;
    parts.push(line);
    size += line.length + 1;
    entries++;
  }
  const text = FORMAT === 'json' ? `{"numbers":[\n${parts.join(',\n')}\n]}` : `number,bankId,inboundOnly,authorisedSpcs\n${parts.join('\n')}\n`;
  return { body: Buffer.from(text), entries };
}

const agent = new Agent({ keepAlive: true, maxSockets: 64 });

function post(port: number, path: string, body: Buffer, contentType: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'POST', agent, headers: { 'content-type': contentType, 'content-length': body.length } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(120_000, () => req.destroy(new Error(`${path}: no answer in 120 s`)));
    req.end(body);
  });
}

function ask(child: ChildProcess, message: string): Promise<ServerMessage> {
  return new Promise((resolve) => {
    child.once('message', (m: ServerMessage) => resolve(m));
    child.send(message);
  });
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;

async function main(): Promise<void> {
  const { body, entries } = importBody();
  console.log(`import: ${entries} entries as ${FORMAT} (${(body.length / 1e6).toFixed(1)} MB); scoring at ${SCORE_RATE}/s meanwhile; registry on ${ON_REDIS ? 'a private Redis' : 'the embedded file backend'}`);
  let redisServer: Child | null = null;
  let admin: Redis | null = null;
  let redisDir: string | null = null;
  const childEnv = { ...process.env };
  if (ON_REDIS) {
    const port = await freePort();
    redisDir = mkdtempSync(join(tmpdir(), 'callguard-bench-redis-'));
    redisServer = await startRedisServer(port, { args: ['--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--dir', redisDir, '--slowlog-log-slower-than', '5000', '--slowlog-max-len', '1000'] });
    admin = new Redis({ port, host: '127.0.0.1' });
    childEnv.BENCH_REDIS_URL = `redis://127.0.0.1:${port}`;
  }
  // BENCH_CPU_PROF=<dir>: the server's CPU profile, to find what holds its event loop.
  const prof = process.env.BENCH_CPU_PROF ? ['--cpu-prof', '--cpu-prof-interval', '250', '--cpu-prof-dir', process.env.BENCH_CPU_PROF] : [];
  const child = fork(__filename, ['--serve'], { execArgv: ['--import', 'tsx', ...prof], stdio: 'inherit', env: childEnv });
  const { port } = (await new Promise<ServerMessage>((resolve) => child.once('message', resolve))) as { port: number };

  let i = 0;
  const score = () =>
    post(port, '/v1/calls/score', Buffer.from(JSON.stringify({ from: `+4474001${String(i++ % 100_000).padStart(5, '0')}`, to: '+442079460999' })), 'application/json');
  // Warm up: the first calls compile the scoring path.
  for (let w = 0; w < 500; w++) await score();
  console.log('warmed up; importing');

  const latencies: number[] = [];
  let started = performance.now();
  let failed = 0;
  let importing = true;
  const interval = 1000 / SCORE_RATE;
  const firing = (async () => {
    const start = performance.now();
    const pending: Promise<void>[] = [];
    for (let n = 0; importing; n++) {
      const due = start + n * interval;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      pending.push(
        score().then(
          (res) => {
            if (res.status !== 200) failed++;
            latencies.push(performance.now() - due);
            if (process.env.BENCH_VERBOSE && performance.now() - due > 100) console.log(`  slow score due at +${(due - started).toFixed(0)} ms: ${(performance.now() - due).toFixed(0)} ms`);
          },
          () => void failed++,
        ),
      );
    }
    await Promise.all(pending);
  })();

  await ask(child, 'reset');
  await admin?.slowlog('RESET');
  await sleep(200);
  started = performance.now();
  const res = await post(port, '/v1/registry/import?mode=merge', body, FORMAT === 'json' ? 'application/json' : 'text/csv');
  const importMs = performance.now() - started;
  if (process.env.BENCH_VERBOSE) console.log(`  import answered at +${importMs.toFixed(0)} ms`);
  await sleep(200);
  importing = false;
  await firing;
  const loop = (await ask(child, 'stats')) as { loopMaxMs: number; loopP99Ms: number };
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.send('exit');
  await exited;

  const answer = res.text.length > 300 ? `${res.text.slice(0, 300)}...` : res.text;
  console.log(`import: HTTP ${res.status} in ${(importMs / 1000).toFixed(2)} s, answer ${answer.length} bytes shown: ${answer}`);
  const sorted = latencies.sort((a, b) => a - b);
  console.log(
    `scores during the import: ${sorted.length} (${failed} not 200); p50 ${percentile(sorted, 50).toFixed(1)} ms, p99 ${percentile(sorted, 99).toFixed(1)} ms, max ${sorted[sorted.length - 1]!.toFixed(1)} ms; over 100 ms: ${sorted.filter((l) => l > 100).length}`,
  );
  console.log(`server event loop: max delay ${loop.loopMaxMs.toFixed(1)} ms, p99 ${loop.loopP99Ms.toFixed(1)} ms`);
  if (admin) {
    // [id, time, microseconds, [command, args...], ...]
    const slow = (await admin.slowlog('GET', 1000)) as [number, number, number, string[]][];
    const byCommand = new Map<string, { count: number; maxMs: number }>();
    for (const [, , us, argv] of slow) {
      const name = String(argv[0]).toUpperCase();
      const seen = byCommand.get(name) ?? { count: 0, maxMs: 0 };
      byCommand.set(name, { count: seen.count + 1, maxMs: Math.max(seen.maxMs, us / 1000) });
    }
    const lines = [...byCommand].map(([name, s]) => `${name} x${s.count} (longest ${s.maxMs.toFixed(1)} ms)`);
    console.log(`redis commands over 5 ms meanwhile: ${lines.join(', ') || 'none'}`);
    admin.disconnect();
    await redisServer!.kill();
    rmSync(redisDir!, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--serve') void serve();
else void main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});

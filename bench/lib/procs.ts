/**
 * The processes a bench run starts (callguard servers, its own redis-server, secsipidx) and
 * what it reads about them from /proc. Every child is tracked, so that an error or Ctrl-C
 * never leaves one behind, and stopped by its own pid only.
 */
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { resolve } from 'node:path';

export const ROOT = resolve(__dirname, '../..');
const SERVER_JS = resolve(ROOT, 'dist/server.js');

const children = new Set<ChildProcess>();

export function spawnTracked(command: string, args: string[], opts: SpawnOptions): ChildProcess {
  const proc = spawn(command, args, opts);
  children.add(proc);
  proc.once('exit', () => children.delete(proc));
  return proc;
}

/** Last resort on a failed run: every child still alive, by its pid. */
export function killChildren(): void {
  for (const proc of children) proc.kill('SIGKILL');
}

function alive(proc: ChildProcess): boolean {
  return proc.exitCode === null && proc.signalCode === null;
}

/** SIGTERM, then SIGKILL if it lingers. A callguard server writes its --cpu-prof file on this exit. */
export async function stop(proc: ChildProcess, graceMs = 15_000): Promise<void> {
  if (!alive(proc)) return;
  const exited = once(proc, 'exit');
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

export async function freePort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address() as AddressInfo;
  srv.close();
  await once(srv, 'close');
  return port;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` every `everyMs` until it holds; fails when the process dies or the deadline passes. */
async function until(what: string, proc: ChildProcess, check: () => Promise<boolean>, timeoutMs: number, everyMs = 20): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    if (!alive(proc)) throw new Error(`${what} exited (code ${proc.exitCode}, signal ${proc.signalCode}) before it was ready`);
    if (await check().catch(() => false)) return performance.now() - t0;
    if (performance.now() - t0 > timeoutMs) throw new Error(`${what} not ready after ${Math.round(timeoutMs / 1000)} s`);
    await sleep(everyMs);
  }
}

const tcpOpen = (port: number) =>
  new Promise<boolean>((res) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), res(true)));
    s.once('error', () => res(false));
  });

export interface ProcMemory {
  /** VmRSS now, MB. */
  rssMb: number;
  /** VmHWM: the highest RSS the process has had, MB. */
  peakRssMb: number;
}

export function memory(pid: number): ProcMemory {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN);
  return { rssMb: kb('VmRSS') / 1024, peakRssMb: kb('VmHWM') / 1024 };
}

/** User + system CPU time of the whole process (all its threads), ms. /proc counts in USER_HZ, 100 on Linux. */
export function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

export interface Service {
  name: string;
  proc: ChildProcess;
  pid: number;
  url: string;
  /** Spawn to ready, ms. */
  readyMs: number;
  stop(): Promise<void>;
}

export interface CallguardOptions {
  /** The service's configuration (src/config): PORT and HOST are set here. */
  env: Record<string, string>;
  /** Flags for node itself, e.g. --cpu-prof. */
  nodeArgs?: string[];
  readyTimeoutMs?: number;
}

/**
 * Starts the built server (dist/server.js) and resolves once /readyz answers 200. The child
 * gets only PATH and HOME from this environment, so a REDIS_URL or REGISTRY_FILE of the
 * shell running the bench never leaks into a measurement.
 */
export async function startCallguard(name: string, opts: CallguardOptions): Promise<Service> {
  const port = await freePort();
  const env = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '',
    PORT: String(port),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'error',
    BENCH_BASELINE_ROUTE: 'true',
    ...opts.env,
  };
  const proc = spawnTracked(process.execPath, [...(opts.nodeArgs ?? []), SERVER_JS], { env, stdio: ['ignore', 'inherit', 'inherit'] });
  const url = `http://127.0.0.1:${port}`;
  try {
    const readyMs = await until(name, proc, async () => (await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(2000) })).status === 200, opts.readyTimeoutMs ?? 30_000);
    return { name, proc, pid: proc.pid!, url, readyMs, stop: () => stop(proc) };
  } catch (err) {
    await stop(proc);
    throw err;
  }
}

/** A redis-server of the bench's own on a free port, nothing persisted: the shared one on 6379 is never touched. */
export async function startRedis(): Promise<Service> {
  const port = await freePort();
  const proc = spawnTracked('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const ping = () =>
    new Promise<boolean>((res) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => s.write('PING\r\n'));
      s.once('data', (d) => (s.destroy(), res(d.toString().startsWith('+PONG'))));
      s.once('error', () => res(false));
    });
  const readyMs = await until('redis-server', proc, ping, 10_000);
  return { name: 'redis-server', proc, pid: proc.pid!, url: `redis://127.0.0.1:${port}`, readyMs, stop: () => stop(proc) };
}

export function secsipidxVersion(): string | null {
  const r = spawnSync('secsipidx', ['-version'], { encoding: 'utf8' });
  return r.error ? null : (r.stdout + r.stderr).trim();
}

export interface SecsipidxOptions {
  caFile: string;
  /** secsipidx's -expire: how old a PASSporT's iat may be, s (its default, 0, fails every token older than a second). */
  expireS: number;
  /** Where it caches fetched certificates; without one it fetches the x5u on every check. */
  cacheDir: string;
}

/**
 * secsipidx (Debian package) as an HTTP verification service: POST /v1/check with an Identity
 * header value, 200 "OK" or 500 "FAILED". -cert-verify 5 = 1 (validity dates) + 4 (chain to the
 * roots in -ca-file); intermediates come from the x5u answer.
 */
export async function startSecsipidx(opts: SecsipidxOptions): Promise<Service> {
  const port = await freePort();
  const args = ['-http-srv', `127.0.0.1:${port}`, '-ca-file', opts.caFile, '-cert-verify', '5', '-expire', String(opts.expireS), '-cache-dir', opts.cacheDir, '-cache-expire', '3600', '-timeout', '3'];
  // Quiet: it logs a line per request on stdout and its start on stderr. A failed start shows as an early exit.
  const proc = spawnTracked('secsipidx', args, { stdio: 'ignore' });
  const readyMs = await until('secsipidx', proc, () => tcpOpen(port), 10_000);
  return { name: 'secsipidx', proc, pid: proc.pid!, url: `http://127.0.0.1:${port}`, readyMs, stop: () => stop(proc) };
}

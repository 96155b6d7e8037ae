/**
 * The processes a bench run starts (callguard servers, its own redis-server, secsipidx) and
 * what it reads about them from /proc. Every child is tracked, so that an error or Ctrl-C
 * never leaves one behind, and stopped by its own pid only.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { freePort, httpStatus, portOpen, procCpuMs, startChild, startRedisServer, type Child } from '../../scripts/lib/process';
import { serverStates } from './haproxy';

export { runScript } from '../../scripts/lib/process';

export const ROOT = resolve(__dirname, '../..');
const SERVER_JS = resolve(ROOT, 'dist/server.js');
const BARE_SERVER_JS = resolve(__dirname, 'bare-server.cjs');

/** A callguard server writes its --cpu-prof file on a SIGTERM exit: given 15 s before SIGKILL. */
const STOP_GRACE_MS = 15_000;

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

/** User + system CPU time of the whole process (all its threads), ms. */
export function cpuMs(pid: number): number {
  return procCpuMs(`/proc/${pid}/stat`);
}

/** User + system CPU time of a Node process's main thread (its event loop), ms. */
export function loopCpuMs(pid: number): number {
  return procCpuMs(`/proc/${pid}/task/${pid}/stat`);
}

export interface Service {
  name: string;
  child: Child;
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
    ...opts.env,
  };
  // Logging as deployed (LOG_LEVEL info, the default access lines): its cost is part of every call
  // measured. The lines themselves go nowhere; a failed start still shows on stderr.
  const child = startChild(process.execPath, [...(opts.nodeArgs ?? []), SERVER_JS], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  const url = `http://127.0.0.1:${port}`;
  try {
    const readyMs = await child.whenReady(name, async () => (await httpStatus(`${url}/readyz`)) === 200, opts.readyTimeoutMs ?? 30_000, 20);
    return { name, child, pid: child.pid!, url, readyMs, stop: () => child.stop('SIGTERM', STOP_GRACE_MS) };
  } catch (err) {
    await child.stop('SIGTERM', STOP_GRACE_MS);
    throw err;
  }
}

/** The yardstick (bare-server.cjs): a bare Fastify process, ready when its port is open. */
export async function startBareFastify(): Promise<Service> {
  const port = await freePort();
  const child = startChild(process.execPath, [BARE_SERVER_JS], { env: { PATH: process.env.PATH ?? '', PORT: String(port) }, stdio: ['ignore', 'inherit', 'inherit'] });
  const readyMs = await child.whenReady('bare fastify', () => portOpen(port), 10_000, 20);
  return { name: 'bare fastify', child, pid: child.pid!, url: `http://127.0.0.1:${port}`, readyMs, stop: () => child.stop('SIGTERM', STOP_GRACE_MS) };
}

/** A redis-server of the bench's own on a free port, nothing persisted: the shared one on 6379 is never touched. */
export async function startRedis(): Promise<Service> {
  const port = await freePort();
  const started = performance.now();
  const child = await startRedisServer(port, { stdio: ['ignore', 'ignore', 'inherit'], timeoutMs: 10_000 });
  const readyMs = performance.now() - started;
  return { name: 'redis-server', child, pid: child.pid!, url: `redis://127.0.0.1:${port}`, readyMs, stop: () => child.stop('SIGTERM', STOP_GRACE_MS) };
}

export interface HaproxyOptions {
  /** The configuration file to run (lib/haproxy.ts makes it from the compose file's). */
  configFile: string;
  /** Where its frontends listen: the traffic's, and the stats page's (`stats uri /stats`). */
  url: string;
  statsUrl: string;
  /** The backend whose servers must all be up, checked by HAProxy itself, before it is ready. */
  backend: string;
  /** HAProxy's -n: a maxconn over the configuration's, for a machine whose open-files limit is below what that needs. */
  maxconn?: number;
}

/**
 * HAProxy (Debian package `haproxy`) in the foreground. Ready once every server of the backend
 * is UP after a health check of its own (L7OK), so no measured request meets a server HAProxy
 * has not yet seen answer. Its log lines (failed or slow requests only) are kept: `output()`.
 */
export async function startHaproxy(opts: HaproxyOptions): Promise<Service> {
  const args = [...(opts.maxconn ? ['-n', String(opts.maxconn)] : []), '-f', opts.configFile];
  const check = spawnSync('haproxy', ['-c', '-q', ...args], { encoding: 'utf8' });
  if (check.error) throw new Error(`cannot run haproxy (${check.error.message}): apt-get install -y haproxy`);
  if (check.status !== 0) throw new Error(`haproxy rejects ${opts.configFile}: ${(check.stdout + check.stderr).trim()}`);
  const child = startChild('haproxy', ['-db', ...args], { stdio: ['ignore', 'pipe', 'pipe'], keepOutput: 100_000 });
  const allUp = async () => {
    try {
      const res = await fetch(`${opts.statsUrl}/stats;csv`, { signal: AbortSignal.timeout(1000) });
      const states = serverStates(await res.text(), opts.backend);
      return states.length > 0 && states.every((s) => s.status === 'UP' && s.check === 'L7OK');
    } catch {
      return false;
    }
  };
  try {
    const readyMs = await child.whenReady('haproxy', allUp, 15_000, 50);
    return { name: 'haproxy', child, pid: child.pid!, url: opts.url, readyMs, stop: () => child.stop('SIGTERM', STOP_GRACE_MS) };
  } catch (err) {
    await child.stop('SIGTERM', STOP_GRACE_MS);
    throw err;
  }
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
  const child = startChild('secsipidx', args, { stdio: 'ignore' });
  const readyMs = await child.whenReady('secsipidx', () => portOpen(port), 10_000, 20);
  return { name: 'secsipidx', child, pid: child.pid!, url: `http://127.0.0.1:${port}`, readyMs, stop: () => child.stop('SIGTERM', STOP_GRACE_MS) };
}

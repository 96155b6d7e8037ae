/**
 * Process helpers shared by the tests, the bench and the scripts: free ports, polling until a
 * condition holds, probing a port, a URL or a Redis, and child processes that are tracked (so an
 * interrupted run kills what it started, by pid), keep their output and stop with a grace period.
 *
 * Nothing here imports from src/: a script or a bench run loads it without loading the service.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { connect, createServer, Socket, type AddressInfo } from 'node:net';

/**
 * User + system CPU time, ms, from a /proc stat file: `/proc/<pid>/stat` for a whole process (all
 * its threads), `/proc/<pid>/task/<tid>/stat` for one thread. /proc counts in USER_HZ, 100 on Linux.
 */
export function procCpuMs(statPath: string): number {
  const stat = readFileSync(statPath, 'utf8');
  // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A TCP port free on 127.0.0.1 when asked (nothing holds it for the caller: bind it soon). */
export async function freePort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address() as AddressInfo;
  srv.close();
  await once(srv, 'close');
  return port;
}

/**
 * Polls `cond` every `everyMs` until it holds, and resolves with the milliseconds that took.
 * Rejects with `timed out after <timeoutMs> ms waiting for <what>` once the deadline passes,
 * or with whatever `cond` throws: a condition throws to give up early (a process that died).
 */
export async function until(cond: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'a condition', everyMs = 10): Promise<number> {
  const started = performance.now();
  while (!(await cond())) {
    if (performance.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
  return performance.now() - started;
}

/** Whether something accepts TCP connections on the port. */
export function portOpen(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, host);
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

/** The status of a GET, or null when nothing answered within `timeoutMs`. */
export async function httpStatus(url: string, timeoutMs = 2000): Promise<number | null> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    await res.body?.cancel();
    return res.status;
  } catch {
    return null;
  }
}

/** Whether a Redis on the port answers PING. One replaying its AOF answers -LOADING: not up yet. */
export function redisAnswers(port: number, timeoutMs = 300): Promise<boolean> {
  return new Promise((resolve) => {
    const s = new Socket();
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('error', () => done(false));
    s.connect(port, '127.0.0.1', () => s.write('PING\r\n'));
    s.once('data', (d) => done(d.toString().startsWith('+PONG')));
  });
}

// ---------------------------------------------------------------------------------------------
// Child processes

/** Every child started here that has not exited: what killChildren() kills. */
const children = new Set<ChildProcess>();

/** Last resort on an interrupted or failed run: SIGKILL to every child still alive, each by its own pid. */
export function killChildren(): void {
  for (const proc of children) proc.kill('SIGKILL');
}

/**
 * A script's entry: runs `main`, and on Ctrl-C, SIGTERM or a failure leaves no child behind
 * (exit 130 when interrupted, 1 when `main` fails).
 */
export function runScript(main: () => Promise<void>): void {
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      killChildren();
      process.exit(130);
    });
  }
  main().catch((err: unknown) => {
    console.error(err);
    killChildren();
    process.exit(1);
  });
}

export interface ChildOptions extends SpawnOptions {
  /** Each chunk of stdout and stderr as it arrives (when stdio pipes them). */
  onOutput?: (chunk: Buffer) => void;
  /** How much of the output output() keeps, in characters: the tail (default all of it). */
  keepOutput?: number;
}

/** A started process: its output so far, its exit, and a stop that cannot leave it behind. */
export class Child {
  readonly proc: ChildProcess;
  /** Resolves when it has exited (or could not be started): its exit code, null when a signal ended it. */
  readonly exited: Promise<number | null>;
  /** Why it could not be started (e.g. ENOENT: not installed), when it could not. */
  spawnError: Error | undefined;
  private out = '';

  constructor(
    readonly command: string,
    args: readonly string[],
    opts: ChildOptions = {},
  ) {
    const { onOutput, keepOutput = Infinity, ...spawnOptions } = opts;
    const proc = spawn(command, args, spawnOptions);
    this.proc = proc;
    children.add(proc);
    const collect = (d: Buffer) => {
      onOutput?.(d);
      this.out = (this.out + d.toString()).slice(-keepOutput);
    };
    proc.stdout?.on('data', collect);
    proc.stderr?.on('data', collect);
    this.exited = new Promise((resolve) => {
      proc.once('exit', (code) => {
        children.delete(proc);
        resolve(code);
      });
      // A process that never started emits no 'exit' for certain. Listened to for good: an
      // 'error' without a listener (a failed kill) would throw.
      proc.on('error', (err) => {
        if (proc.pid !== undefined) return;
        this.spawnError = err;
        children.delete(proc);
        resolve(null);
      });
    });
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  get running(): boolean {
    return this.spawnError === undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  output(): string {
    return this.out;
  }

  /** Sends `signal` and waits for the exit; SIGKILL if it has not exited after `graceMs`. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 15_000): Promise<void> {
    if (!this.running) return;
    this.proc.kill(signal);
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  /** SIGKILL, and waits for the exit: no shutdown, nothing saved. */
  kill(): Promise<void> {
    return this.stop('SIGKILL');
  }

  /**
   * Polls `ready` as until() does, but gives up at once, saying so, when this process exits or
   * cannot be started first: a server that failed at start is not waited for until the deadline.
   */
  async whenReady(what: string, ready: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 25): Promise<number> {
    return until(
      async () => {
        if (this.spawnError) throw new Error(`cannot run ${this.command} (${this.spawnError.message})`);
        if (!this.running) {
          const tail = this.out.trim().slice(-2000);
          throw new Error(`${what} exited (code ${this.proc.exitCode}, signal ${this.proc.signalCode}) before it was ready${tail ? `: ${tail}` : ''}`);
        }
        return ready();
      },
      timeoutMs,
      what,
      everyMs,
    );
  }
}

export function startChild(command: string, args: readonly string[], opts: ChildOptions = {}): Child {
  return new Child(command, args, opts);
}

/** redis-server's arguments for a Redis that persists nothing (no RDB, no AOF). */
export const REDIS_NOTHING_PERSISTED = ['--save', '', '--appendonly', 'no'];

export interface RedisServerOptions extends ChildOptions {
  /** Arguments after --port and --bind (default REDIS_NOTHING_PERSISTED). */
  args?: readonly string[];
  /** How long it may take to answer PING (default 5 s; longer for one replaying an AOF). */
  timeoutMs?: number;
}

/**
 * A redis-server of the caller's own on 127.0.0.1:`port`, resolved once it answers PING. Its
 * output is discarded unless `stdio` says otherwise. Stop it with kill() (SIGKILL, as a crash) or stop().
 */
export async function startRedisServer(port: number, opts: RedisServerOptions = {}): Promise<Child> {
  const { args = REDIS_NOTHING_PERSISTED, timeoutMs = 5000, ...childOptions } = opts;
  const child = startChild('redis-server', ['--port', String(port), '--bind', '127.0.0.1', ...args], { stdio: 'ignore', ...childOptions });
  try {
    await child.whenReady(`redis-server on port ${port}`, () => redisAnswers(port), timeoutMs);
  } catch (err) {
    await child.kill();
    if (child.spawnError) throw new Error(`cannot run redis-server (${child.spawnError.message}): install it (Debian: apt-get install redis-server)`, { cause: err });
    throw err;
  }
  return child;
}

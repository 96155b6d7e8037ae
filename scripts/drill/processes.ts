/**
 * The processes of a self-contained drill: its own redis-server (AOF, fsync always, as production
 * runs it) and callguard instances of this checkout, each with a log file in the working folder;
 * and what an instance says of its readiness.
 */
import type { ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { KEYS_FILE } from '../../test/helpers/keys';
import { redisAnswers, sleep, startChild, type Child } from '../lib/process';

const ROOT = resolve(__dirname, '../..');

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
    REGISTRY_FILE: resolve(ROOT, 'src/registry/sample-registry.json'),
    SHAKEN_VERIFY: 'false',
    REGISTRY_DATA_DIR: mkdtempSync(join(workDir, `data-${index}-`)),
    LOG_LEVEL: 'info',
  };
}

/** `ready`, `degraded`, or null when it does not answer. */
export async function readiness(url: string): Promise<string | null> {
  try {
    const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(2000) });
    if (!res.ok) return null;
    return ((await res.json()) as { status?: string }).status ?? null;
  } catch {
    return null;
  }
}

/**
 * Polls every instance's /readyz five times a second and marks each change (ready, degraded,
 * down) on the timeline: the report's account of how the faults looked from outside.
 */
export function watchReadiness(urls: string[], mark: (event: string) => void): { stop(): Promise<void> } {
  let stopped = false;
  const seen = urls.map(() => 'ready' as string | null);
  const done = (async () => {
    while (!stopped) {
      await Promise.all(
        urls.map(async (url, i) => {
          const s = (await readiness(url)) ?? 'down';
          if (s !== seen[i]) {
            seen[i] = s;
            mark(`${url} /readyz: ${s}`);
          }
        }),
      );
      await sleep(200);
    }
  })();
  return {
    stop() {
      stopped = true;
      return done;
    },
  };
}

import Redis, { Cluster } from 'ioredis';
import type { Logger } from 'pino';

/** A single Redis or a Redis Cluster: every command the service sends works on both. */
export type RedisClient = Redis;

/**
 * The Redis connection, set to fail fast. A switch waits a few milliseconds for a verdict, so
 * a Redis that is slow or gone must cost a call almost nothing: commands time out quickly,
 * nothing queues while disconnected, and the client reconnects by itself in the background.
 */
export function createRedisClient(url: string, opts: { commandTimeoutMs: number; cluster?: boolean }): RedisClient {
  const nodeOptions = {
    commandTimeout: opts.commandTimeoutMs,
    // One retry would double the worst case for a call; the caller falls back instead.
    maxRetriesPerRequest: 0,
    connectTimeout: 2000,
    // Reconnect forever, backing off to one attempt a second.
    retryStrategy: (times: number) => Math.min(times * 100, 1000),
  };
  if (opts.cluster) {
    // REDIS_URL lists seed nodes, comma-separated; the client discovers the rest.
    const seeds = url.split(',').map((u) => {
      const parsed = new URL(u.trim());
      return { host: parsed.hostname, port: Number(parsed.port || 6379) };
    });
    const first = new URL(url.split(',')[0]!.trim());
    // Commands sent while disconnected fail at once rather than waiting for a reconnect.
    const cluster = new Cluster(seeds, {
      enableOfflineQueue: false,
      clusterRetryStrategy: (times: number) => Math.min(times * 100, 1000),
      redisOptions: {
        ...nodeOptions,
        ...(first.password ? { password: decodeURIComponent(first.password) } : {}),
        ...(first.username ? { username: decodeURIComponent(first.username) } : {}),
        ...(first.protocol === 'rediss:' ? { tls: {} } : {}),
      },
    });
    // The service's stores take the single-node type; a Cluster answers the same commands.
    return cluster as unknown as RedisClient;
  }
  return new Redis(url, { ...nodeOptions, enableOfflineQueue: false, lazyConnect: false });
}

/**
 * Resolves true once the client is connected and ready; false at its first connection error,
 * or after `timeoutMs`. Commands sent before then fail at once (there is no offline queue), so
 * start-up work that must reach Redis (the registry's first load) waits here rather than taking
 * "still connecting" for an outage, and a Redis that is really down costs the start nothing.
 */
export async function whenReady(client: Redis, timeoutMs: number): Promise<boolean> {
  if (client.status === 'ready') return true;
  return new Promise((resolve) => {
    const done = (ready: boolean) => {
      clearTimeout(timer);
      client.off('ready', onReady);
      client.off('error', onError);
      resolve(ready);
    };
    const onReady = () => done(true);
    const onError = () => done(false);
    const timer = setTimeout(() => done(client.status === 'ready'), timeoutMs);
    client.on('ready', onReady);
    client.on('error', onError);
  });
}

/**
 * A circuit breaker around Redis. After `threshold` consecutive failures the circuit opens
 * and Redis is skipped for `openMs`, so a dead Redis costs no timeouts at all; then one call
 * probes it. The service reports the state in /readyz and logs every change.
 */
export interface GuardOptions {
  /** Consecutive failures that open the circuit. */
  threshold: number;
  /** How long an open circuit skips Redis before one call probes it again. */
  openMs: number;
  now: () => number;
  /** Told of every failed command (metrics). */
  onError: () => void;
}

export class RedisGuard {
  private failures = 0;
  private openUntil = 0;
  private degradedSince: number | null = null;
  /** Milliseconds spent degraded before the current episode (for metrics). */
  degradedMsTotal = 0;

  constructor(
    readonly client: Redis,
    private readonly log: Pick<Logger, 'warn' | 'info'>,
    opts: Partial<GuardOptions> = {},
  ) {
    this.opts = { threshold: 3, openMs: 1000, now: Date.now, onError: () => undefined, ...opts };
  }

  private readonly opts: GuardOptions;

  get degraded(): boolean {
    return this.degradedSince !== null;
  }

  status(): { connected: boolean; degraded: boolean; degradedSince: string | null } {
    return {
      connected: this.client.status === 'ready',
      degraded: this.degraded,
      degradedSince: this.degradedSince === null ? null : new Date(this.degradedSince).toISOString(),
    };
  }

  private bypasses = 0;
  private bypassUntil = 0;

  /**
   * Skips Redis, as an open circuit does, until the returned function is called (or `maxMs`
   * passes): for work this instance knows holds Redis busy for a while (a registry import's
   * script), so its calls take in-process state at once instead of each waiting out a command
   * timeout first. Not a failure: nothing is counted, logged or reported as degraded.
   */
  bypass(maxMs: number): () => void {
    this.bypasses++;
    this.bypassUntil = Math.max(this.bypassUntil, this.opts.now() + maxMs);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (--this.bypasses === 0) this.bypassUntil = 0;
    };
  }

  /** Runs `op` against Redis, or returns `fallback` when the circuit is open or `op` fails. */
  async run<T>(op: (client: Redis) => Promise<T>, fallback: T): Promise<T> {
    const now = this.opts.now();
    if (now < this.bypassUntil) return fallback;
    if (now < this.openUntil || this.client.status !== 'ready') {
      this.markFailure(now, this.client.status !== 'ready' ? `redis ${this.client.status}` : undefined);
      return fallback;
    }
    try {
      const result = await op(this.client);
      this.markSuccess();
      return result;
    } catch (err) {
      this.opts.onError();
      this.markFailure(this.opts.now(), (err as Error).message);
      return fallback;
    }
  }

  private markFailure(now: number, why: string | undefined): void {
    if (why === undefined) return; // circuit open: already counted
    this.failures++;
    if (this.failures >= this.opts.threshold) {
      this.openUntil = now + this.opts.openMs;
      if (this.degradedSince === null) {
        this.degradedSince = now;
        this.log.warn({ reason: why }, 'redis unavailable: running degraded on in-process state');
      }
    }
  }

  private markSuccess(): void {
    this.failures = 0;
    if (this.degradedSince !== null) {
      const spent = this.opts.now() - this.degradedSince;
      this.degradedMsTotal += spent;
      this.degradedSince = null;
      this.log.info({ degradedMs: spent }, 'redis is back: shared state restored');
    }
  }
}

/**
 * What the certificate and CRL caches share: a deadline that never holds a call (or the process)
 * past its time, and the Redis copy one instance leaves for the others, stored as text behind an
 * `# expires-at: <ms>` line so that a reader knows its life without a second command.
 */

/** The subset of an ioredis client the caches use; any failure of it only costs a fetch. */
export interface RedisLike {
  get(key: string): Promise<string | null>;
  set(key: string, value: string, mode: 'PX', ms: number): Promise<unknown>;
}

export interface ShakenLogger {
  warn(obj: object, msg: string): void;
}

const EXPIRES_RE = /^# expires-at: (\d+)\n/;

/** `promise`'s value, or `fallback` once `ms` have passed without it; the timer is cleared and never keeps the process up. */
export async function withDeadline<T, F>(promise: Promise<T>, ms: number, fallback: F): Promise<T | F> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<F>((resolve) => {
    timer = setTimeout(() => resolve(fallback), Math.max(0, ms));
    timer.unref();
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export interface SharedCopiesOptions {
  redis?: RedisLike | null | undefined;
  /** How long a read may take before the cache fetches instead. */
  timeoutMs: number;
  now: () => number;
  logger?: ShakenLogger | undefined;
  /** What is kept (`x5u`, `CRL`), for the log. */
  what: string;
}

/** The copies in Redis; any failure or slowness of it only costs a fetch. */
export class SharedCopies {
  constructor(private readonly o: SharedCopiesOptions) {}

  get enabled(): boolean {
    return Boolean(this.o.redis);
  }

  /** The text kept under `key` and when it expires, while it has not; null when there is none, or Redis is slow or failing. */
  async read(key: string): Promise<{ text: string; expiresAt: number } | null> {
    const redis = this.o.redis;
    if (!redis) return null;
    try {
      const value = await withDeadline(redis.get(key), this.o.timeoutMs, null);
      if (typeof value !== 'string') return null;
      const m = EXPIRES_RE.exec(value);
      const expiresAt = m ? Number(m[1]) : NaN;
      if (!(expiresAt > this.o.now())) return null;
      return { text: value.slice(m![0].length), expiresAt };
    } catch (err) {
      this.o.logger?.warn({ err: errorMessage(err) }, `redis read of ${this.o.what} cache failed; fetching instead`);
      return null;
    }
  }

  /** Not awaited: a write that fails is logged and forgotten. */
  write(key: string, text: string, expiresAt: number, ttlMs: number): void {
    const redis = this.o.redis;
    if (!redis) return;
    // A served body that itself begins with the header line must not pass for one.
    const value = `# expires-at: ${expiresAt}\n${text.replace(EXPIRES_RE, '')}`;
    try {
      redis.set(key, value, 'PX', Math.max(1, Math.floor(ttlMs))).catch((err: unknown) => {
        this.o.logger?.warn({ err: errorMessage(err) }, `redis write of ${this.o.what} cache failed`);
      });
    } catch (err) {
      this.o.logger?.warn({ err: errorMessage(err) }, `redis write of ${this.o.what} cache failed`);
    }
  }
}

import { hash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { RedisGuard } from './redis/client';
import { VERDICT_PREFIX } from './redis/keyspace';

/**
 * The verdict cache: what a call's inputs resolved to, under a key that covers every input
 * that can change it. Values are JSON-serialisable. Failures never surface: a cache that
 * cannot answer is a miss.
 */
export interface VerdictCache<V> {
  /** The in-process level only: costs no I/O. */
  peek(key: string): V | undefined;
  /** The shared level (Redis), when there is one; fills the in-process level on a hit. */
  fetch(key: string): Promise<V | undefined>;
  set(key: string, value: V, ttlMs: number): Promise<void>;
  /**
   * The shared level, for a store whose own Redis command for the call can carry this cache's
   * read and write, so that a round trip stays one command (see `observeAndFetch` in
   * call-state.ts). Absent when there is no shared level.
   */
  readonly shared?: SharedVerdicts<V>;
}

/** The shared level's Redis side, split so that another store's command can carry the GET and SET. */
export interface SharedVerdicts<V> {
  /** The Redis it lives in: only a store on the same guard (the same client) may carry it. */
  readonly guard: RedisGuard;
  redisKey(key: string): string;
  /** What a GET of `redisKey(key)` returned (null: nothing) as a value; fills the in-process level. */
  accept(key: string, text: string | null): V | undefined;
  /** Fills the in-process level and returns the text to SET with PX `ttlMs`; null when nothing is to be stored. */
  prepare(key: string, value: V, ttlMs: number): string | null;
}

export class MemoryVerdictCache<V extends object> implements VerdictCache<V> {
  private readonly lru: LRUCache<string, V>;

  /** `now` is the clock entries expire by (milliseconds since the epoch). */
  constructor(
    maxEntries: number,
    readonly now: () => number = Date.now,
  ) {
    // ttlResolution 0: the clock is asked at every look, never a value kept from an earlier one
    // (a clock moved by a test would otherwise be seen a millisecond of real time late).
    this.lru = new LRUCache<string, V>({ max: Math.max(1, maxEntries), ttlAutopurge: false, perf: { now }, ttlResolution: 0 });
  }

  peek(key: string): V | undefined {
    return this.lru.get(key);
  }

  async fetch(): Promise<V | undefined> {
    return undefined;
  }

  async set(key: string, value: V, ttlMs: number): Promise<void> {
    this.setLocal(key, value, ttlMs);
  }

  setLocal(key: string, value: V, ttlMs: number): void {
    if (ttlMs > 0) this.lru.set(key, value, { ttl: ttlMs });
  }
}

/**
 * Redis first, with the in-process cache in front of it: a local hit costs no round trip, and
 * while Redis is down the local cache keeps serving this instance.
 */
export class RedisVerdictCache<V extends object> implements VerdictCache<V>, SharedVerdicts<V> {
  constructor(
    readonly guard: RedisGuard,
    private readonly local: MemoryVerdictCache<V>,
    private readonly prefix = VERDICT_PREFIX,
  ) {}

  get shared(): SharedVerdicts<V> {
    return this;
  }

  peek(key: string): V | undefined {
    return this.local.peek(key);
  }

  /** Cache keys are the call's inputs joined: Redis gets a fixed-size digest of them. */
  redisKey(key: string): string {
    return this.prefix + hash('sha256', key, 'base64url');
  }

  async fetch(key: string): Promise<V | undefined> {
    const text = await this.guard.run((r) => r.get(this.redisKey(key)), null);
    return this.accept(key, text);
  }

  accept(key: string, text: string | null): V | undefined {
    if (text === null) return undefined;
    try {
      // The expiry travels with the value so that filling the local cache costs no PTTL round trip.
      const { e: expiresAt, v: value } = JSON.parse(text) as { e: number; v: V };
      this.local.setLocal(key, value, expiresAt - this.local.now());
      return value;
    } catch {
      return undefined;
    }
  }

  async set(key: string, value: V, ttlMs: number): Promise<void> {
    const wrapped = this.prepare(key, value, ttlMs);
    if (wrapped === null) return;
    await this.guard.run((r) => r.set(this.redisKey(key), wrapped, 'PX', Math.ceil(ttlMs)), null);
  }

  prepare(key: string, value: V, ttlMs: number): string | null {
    if (ttlMs <= 0) return null;
    this.local.setLocal(key, value, ttlMs);
    return JSON.stringify({ e: this.local.now() + ttlMs, v: value });
  }
}

import { hash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { RedisGuard } from './redis';

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
}

export class MemoryVerdictCache<V extends object> implements VerdictCache<V> {
  private readonly lru: LRUCache<string, V>;

  constructor(maxEntries: number) {
    this.lru = new LRUCache<string, V>({ max: Math.max(1, maxEntries), ttlAutopurge: false });
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
export class RedisVerdictCache<V extends object> implements VerdictCache<V> {
  constructor(
    private readonly guard: RedisGuard,
    private readonly local: MemoryVerdictCache<V>,
    private readonly prefix = 'callguard:verdict:',
  ) {}

  peek(key: string): V | undefined {
    return this.local.peek(key);
  }

  /** Cache keys are the call's inputs joined: Redis gets a fixed-size digest of them. */
  private redisKey(key: string): string {
    return this.prefix + hash('sha256', key, 'base64url');
  }

  async fetch(key: string): Promise<V | undefined> {
    const text = await this.guard.run((r) => r.get(this.redisKey(key)), null);
    if (text === null) return undefined;
    try {
      // The expiry travels with the value so that filling the local cache costs no PTTL round trip.
      const { e: expiresAt, v: value } = JSON.parse(text) as { e: number; v: V };
      this.local.setLocal(key, value, expiresAt - Date.now());
      return value;
    } catch {
      return undefined;
    }
  }

  async set(key: string, value: V, ttlMs: number): Promise<void> {
    if (ttlMs <= 0) return;
    this.local.setLocal(key, value, ttlMs);
    const wrapped = JSON.stringify({ e: Date.now() + ttlMs, v: value });
    await this.guard.run((r) => r.set(this.redisKey(key), wrapped, 'PX', ttlMs), null);
  }
}

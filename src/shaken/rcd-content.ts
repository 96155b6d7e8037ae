import type { CertificateFetcher } from './types';

export interface RcdContentCacheOptions {
  /** The guarded fetcher (policy, pinned address, size cap): createX5uFetcher with a small maxBytes. */
  fetcher: CertificateFetcher;
  /** Deadline of one fetch, ms. */
  timeoutMs: number;
  /** Entries kept (default 1,000). */
  maxEntries?: number;
  /** Longest a fetched jCard is kept, ms (default 5 min; shorter when its Cache-Control says so). */
  ttlMs?: number;
  /** How long a failed fetch is remembered, ms (default 30 s). */
  negativeTtlMs?: number;
  /**
   * Fetches running at once (default 32): a signer naming a new URL on every call gets no more
   * sockets than this; past it the content counts as not had (it is not remembered as failed).
   */
  maxInflight?: number;
  now?: () => number;
}

interface Entry {
  body: Buffer | null;
  expiresAt: number;
}

/**
 * Content referenced by rich call data (`jcl` jCards): fetched once, under a deadline, through
 * the x5u fetcher's guards, and kept a while, failures too, so a PASSporT naming a slow or dead
 * URL costs its calls one deadline per negative lifetime, not one each. Bounded: the oldest entry
 * goes first. Concurrent calls for one URL share one fetch.
 */
export class RcdContentCache {
  private readonly entries = new Map<string, Entry>();
  private readonly inflight = new Map<string, Promise<Buffer | null>>();
  private readonly maxEntries: number;
  private readonly ttlMs: number;
  private readonly negativeTtlMs: number;
  private readonly now: () => number;
  private readonly controller = new AbortController();

  constructor(private readonly opts: RcdContentCacheOptions) {
    this.maxEntries = opts.maxEntries ?? 1000;
    this.ttlMs = opts.ttlMs ?? 5 * 60_000;
    this.negativeTtlMs = opts.negativeTtlMs ?? 30_000;
    this.now = opts.now ?? Date.now;
  }

  /** The content at `url`, or null when it could not be had within the deadline. Never throws. */
  get(url: string): Promise<Buffer | null> {
    const hit = this.entries.get(url);
    if (hit && hit.expiresAt > this.now()) return Promise.resolve(hit.body);
    if (hit) this.entries.delete(url);
    let pending = this.inflight.get(url);
    if (!pending) {
      if (this.inflight.size >= (this.opts.maxInflight ?? 32)) return Promise.resolve(null);
      pending = this.load(url).finally(() => this.inflight.delete(url));
      this.inflight.set(url, pending);
    }
    return pending;
  }

  close(): void {
    this.controller.abort();
  }

  private async load(url: string): Promise<Buffer | null> {
    const signal = AbortSignal.any([this.controller.signal, AbortSignal.timeout(this.opts.timeoutMs)]);
    let body: Buffer | null;
    let ttl = this.negativeTtlMs;
    try {
      // The deadline holds whatever the fetcher does with the signal: the call does not wait past it.
      const answer = await Promise.race([
        this.opts.fetcher.fetch(url, signal),
        new Promise<never>((_, reject) => {
          if (signal.aborted) reject(new Error('aborted'));
          else signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true });
        }),
      ]);
      body = Buffer.isBuffer(answer.body) ? answer.body : Buffer.from(answer.body, 'utf8');
      ttl = Math.min(this.ttlMs, answer.maxAgeS !== undefined ? answer.maxAgeS * 1000 : this.ttlMs);
    } catch {
      body = null;
    }
    if (ttl > 0) {
      if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
      this.entries.set(url, { body, expiresAt: this.now() + ttl });
    }
    return body;
  }
}

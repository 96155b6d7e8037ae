import { createHash, type X509Certificate } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { CertFetchOutcome } from './types';
import { ChainJudge, type CertChainInfo } from './chain';
import { FetchSlots, siteOf } from './fetch-slots';
import { errorMessage, SharedCopies, withDeadline, type RedisLike, type ShakenLogger } from './shared-cache';
import type { CertificateFetcher } from './types';
import { checkX5uUrl, X5uPolicyError } from './url-policy';
import { DEFAULT_MAX_X5U_BYTES } from './x5u-fetcher';
import { keyspace } from '../state/redis/keyspace';

export type { RedisLike, ShakenLogger } from './shared-cache';

export type CertLookup = { ok: true; info: CertChainInfo } | { ok: false; error: 'X5U_FETCH_FAILED' | 'X5U_POLICY' };

export interface CertCacheOptions {
  fetcher: CertificateFetcher;
  trustAnchors: readonly X509Certificate[];
  /** Lab mode: http: and local hosts pass the URL policy. */
  allowInsecure?: boolean;
  /** How long a call waits for a cold certificate (default 1500 ms). */
  fetchTimeoutMs?: number;
  /** How long a fetch may run at all, in the background once its first caller gave up (default max(10 s, 4 x fetchTimeoutMs)). */
  backgroundTimeoutMs?: number;
  /** How long a failure is remembered, so that a failing URL is not fetched on every call (default 30 s). */
  negativeTtlMs?: number;
  /** Lifetime when the answer has no Cache-Control max-age (default 24 h, as Asterisk keeps certificates). */
  defaultTtlMs?: number;
  /** Upper bound on any lifetime, whatever max-age says (default 24 h). */
  maxTtlMs?: number;
  /** Trusted chains kept in memory (default 10,000). */
  maxEntries?: number;
  /**
   * Everything else kept in memory, apart from them: failures, and chains to no trust anchor
   * (default a fifth of maxEntries). Such entries cost an attacker one cheap call each, so they
   * live where they can only evict one another.
   */
  maxOtherEntries?: number;
  /** Fetches running at once, all hosts together (default 64). */
  maxInflight?: number;
  /** Fetches running at once for one site (a registrable domain, see siteOf; default 4). */
  maxInflightPerSite?: number;
  /** Fetches that may wait for a slot, per site (default 8); past it a cold URL of that site fails at once. */
  maxQueuedPerSite?: number;
  /** Largest answer accepted from any fetcher (default 16 KiB); a bigger one is X5U_FETCH_FAILED. */
  maxBytes?: number;
  redis?: RedisLike | null;
  /** Where chains are kept in Redis (default the keyspace's certificates under `callguard:`). */
  redisPrefix?: string;
  /** How long a Redis read may take before the cache fetches instead (default 200 ms). */
  redisTimeoutMs?: number;
  /** Clock for cache lifetimes (not for judging calls, which use their receivedAt). */
  now?: () => number;
  logger?: ShakenLogger;
  /**
   * Told how each fetch ended (metrics). A certificate from memory or Redis is no fetch, nor is
   * a URL the x5u policy refuses; a fetch cut short by close() is not told.
   */
  onFetch?: (outcome: CertFetchOutcome) => void;
}

interface Entry {
  result: CertLookup;
  expiresAt: number;
}

const FETCH_FAILED: CertLookup = { ok: false, error: 'X5U_FETCH_FAILED' };
const POLICY: CertLookup = { ok: false, error: 'X5U_POLICY' };
// RFC 7468 lets PEM text carry explanatory lines outside the blocks: the absolute expiry rides
// along with the certificates, so an instance that reads them from Redis keeps the original
// lifetime instead of restarting it.

export function redisKeyFor(url: string, prefix = keyspace().certificates): string {
  return prefix + createHash('sha256').update(url).digest('hex');
}

/**
 * Per-URL cache of judged certificate chains: memory LRU first, then Redis (shared between
 * instances), then the fetcher. Concurrent callers of one URL share one fetch; failures are
 * remembered briefly. Every method resolves; nothing here rejects or throws to the verifier.
 *
 * Chains to a trust anchor have an LRU of their own (entries), which nothing else can evict:
 * failures and untrusted chains, which any sender can make by the thousand, go to a smaller
 * one (others). A URL the policy refuses by its text alone is not stored at all: refusing it
 * again costs less than a cache entry.
 */
export class CertCache {
  private readonly entries: LRUCache<string, Entry>;
  private readonly others: LRUCache<string, Entry>;
  private readonly inflight = new Map<string, { promise: Promise<CertLookup>; abort: AbortController }>();
  /** Loads begun under anchors since replaced: no longer shared, still aborted by close(). */
  private readonly detached = new Set<AbortController>();
  private readonly o: Required<Omit<CertCacheOptions, 'redis' | 'logger' | 'onFetch' | 'redisPrefix'>> & Pick<CertCacheOptions, 'redis' | 'logger' | 'onFetch'>;
  /** Replaced whole by setTrustAnchors: a chain is judged by one set of anchors or the other, never a mix. */
  private judgeChain: ChainJudge;
  /** Bumped by setTrustAnchors; a load judged under an earlier set is not stored. */
  private anchorGeneration = 0;
  private readonly slots: FetchSlots;
  private readonly redisPrefix: string;
  private readonly shared: SharedCopies;

  constructor(opts: CertCacheOptions) {
    this.redisPrefix = opts.redisPrefix ?? keyspace().certificates;
    const fetchTimeoutMs = opts.fetchTimeoutMs ?? 1500;
    this.o = {
      ...opts,
      allowInsecure: opts.allowInsecure ?? false,
      fetchTimeoutMs,
      backgroundTimeoutMs: opts.backgroundTimeoutMs ?? Math.max(10_000, 4 * fetchTimeoutMs),
      negativeTtlMs: opts.negativeTtlMs ?? 30_000,
      defaultTtlMs: opts.defaultTtlMs ?? 86_400_000,
      maxTtlMs: opts.maxTtlMs ?? 86_400_000,
      maxEntries: opts.maxEntries ?? 10_000,
      maxOtherEntries: opts.maxOtherEntries ?? Math.max(1, Math.floor((opts.maxEntries ?? 10_000) / 5)),
      maxInflight: opts.maxInflight ?? 64,
      maxInflightPerSite: opts.maxInflightPerSite ?? 4,
      maxQueuedPerSite: opts.maxQueuedPerSite ?? 8,
      maxBytes: opts.maxBytes ?? DEFAULT_MAX_X5U_BYTES,
      redisTimeoutMs: opts.redisTimeoutMs ?? 200,
      now: opts.now ?? Date.now,
    };
    this.shared = new SharedCopies({ redis: opts.redis, timeoutMs: this.o.redisTimeoutMs, now: this.o.now, logger: opts.logger, what: 'x5u' });
    this.entries = new LRUCache<string, Entry>({ max: this.o.maxEntries });
    this.others = new LRUCache<string, Entry>({ max: this.o.maxOtherEntries });
    this.judgeChain = new ChainJudge(this.o.trustAnchors);
    this.slots = new FetchSlots({
      total: this.o.maxInflight,
      perSite: this.o.maxInflightPerSite,
      queuePerSite: this.o.maxQueuedPerSite,
      queueTotal: 4 * this.o.maxInflight,
      // A fetch that starts after its caller gave up only warms the cache; one that never
      // starts is no loss.
      maxWaitMs: this.o.fetchTimeoutMs,
    });
  }

  /**
   * The cached answer for a URL when it is still fresh, or X5U_POLICY when the URL's text
   * breaks the policy: the hot path, synchronous.
   */
  peek(url: string): CertLookup | undefined {
    const hit = fresh(this.entries, url, this.o.now) ?? fresh(this.others, url, this.o.now);
    if (hit) return hit;
    return this.refusedByText(url) ? POLICY : undefined;
  }

  /** The answer for a URL within the call's budget; a cold fetch past it is X5U_FETCH_FAILED but keeps running and fills the cache. */
  async get(url: string): Promise<CertLookup> {
    const cached = this.peek(url);
    if (cached) return cached;
    return withDeadline(this.load(url), this.o.fetchTimeoutMs, FETCH_FAILED);
  }

  /** Loads a URL (shared between concurrent callers), with no per-call budget. */
  load(url: string): Promise<CertLookup> {
    const running = this.inflight.get(url);
    if (running) return running.promise;
    const generation = this.anchorGeneration;
    // Loads that are reading Redis or waiting for a fetch slot are bounded too.
    if (this.inflight.size >= 8 * this.o.maxInflight) return Promise.resolve(FETCH_FAILED);
    const abort = new AbortController();
    const promise = this.loadUncached(url, abort.signal, this.judgeChain)
      .catch((err: unknown): Entry => {
        this.o.logger?.warn({ url, err: errorMessage(err) }, 'x5u certificate load failed unexpectedly');
        return { result: FETCH_FAILED, expiresAt: this.o.now() + this.o.negativeTtlMs };
      })
      .then((entry) => {
        if (entry.expiresAt > this.o.now() && generation === this.anchorGeneration) {
          const trusted = isTrusted(entry.result);
          (trusted ? this.entries : this.others).set(url, entry);
          (trusted ? this.others : this.entries).delete(url);
        }
        return entry.result;
      })
      .finally(() => {
        if (this.inflight.get(url)?.promise === promise) this.inflight.delete(url);
        this.detached.delete(abort);
      });
    this.inflight.set(url, { promise, abort });
    return promise;
  }

  /**
   * Puts a new set of trust anchors in force for every later lookup, in one step: the new judge
   * is built first, then swapped in, and every chain judged under the old anchors is forgotten
   * (a chain to a root that is gone must not stay trusted). Loads already running finish for
   * their callers under the anchors they began with, but are not stored; a later caller of the
   * same URL starts a load of its own. Redis holds certificates, not judgements, so what it
   * holds is judged afresh under the new anchors.
   */
  setTrustAnchors(anchors: readonly X509Certificate[]): void {
    const judge = new ChainJudge(anchors);
    this.judgeChain = judge;
    this.anchorGeneration++;
    for (const { abort } of this.inflight.values()) this.detached.add(abort);
    this.inflight.clear();
    this.clear();
  }

  /**
   * Trusted chains in memory that are still cached at `nowMs`: how many, the soonest end of a
   * chain's validity, and how many end within `withinMs`. Read at scrape time (walks the cache).
   */
  expiryStats(nowMs: number, withinMs: number): { trusted: number; soonestExpiryMs: number | null; expiringSoon: number } {
    let trusted = 0;
    let soonest: number | null = null;
    let expiringSoon = 0;
    for (const entry of this.entries.values()) {
      if (!(entry.expiresAt > nowMs) || !entry.result.ok) continue;
      trusted++;
      const to = entry.result.info.validToMs;
      if (soonest === null || to < soonest) soonest = to;
      if (to - nowMs <= withinMs) expiringSoon++;
    }
    return { trusted, soonestExpiryMs: soonest, expiringSoon };
  }

  /** Forgets every entry (in-flight fetches still complete). */
  clear(): void {
    this.entries.clear();
    this.others.clear();
  }

  /** Aborts in-flight fetches, for shutdown and tests. */
  close(): void {
    this.slots.clear();
    for (const { abort } of this.inflight.values()) abort.abort();
    for (const abort of this.detached) abort.abort();
    this.clear();
  }

  get size(): number {
    return this.entries.size + this.others.size;
  }

  private refusedByText(url: string): boolean {
    try {
      checkX5uUrl(url, this.o.allowInsecure);
      return false;
    } catch (err) {
      if (err instanceof X5uPolicyError) return true;
      throw err;
    }
  }

  private negative(result: CertLookup): Entry {
    return { result, expiresAt: this.o.now() + this.o.negativeTtlMs };
  }

  private async loadUncached(url: string, signal: AbortSignal, judge: ChainJudge): Promise<Entry> {
    let site: string;
    try {
      site = siteOf(checkX5uUrl(url, this.o.allowInsecure).hostname);
    } catch (err) {
      // Not remembered (expiresAt 0): peek refuses it again for the price of parsing the URL.
      if (err instanceof X5uPolicyError) return { result: POLICY, expiresAt: 0 };
      throw err;
    }

    const shared = await this.shared.read(redisKeyFor(url, this.redisPrefix));
    if (shared) {
      const entry = this.judge(judge, shared.text, shared.expiresAt - this.o.now());
      if (entry) {
        if (isTrusted(entry.result)) this.slots.trust(site);
        return entry;
      }
    }

    // close() may have run while the Redis read was awaited.
    if (signal.aborted) return this.negative(FETCH_FAILED);
    const release = await this.slots.acquire(site);
    // No slot: that is about everyone else's fetches, not this URL, so nothing is remembered.
    if (!release) return { result: FETCH_FAILED, expiresAt: 0 };
    if (signal.aborted) {
      release();
      return this.negative(FETCH_FAILED);
    }
    const abortController = new AbortController();
    const timer = setTimeout(() => abortController.abort(), this.o.backgroundTimeoutMs);
    timer.unref();
    const onOuterAbort = () => abortController.abort();
    signal.addEventListener('abort', onOuterAbort, { once: true });
    let body: Buffer | string;
    let maxAgeS: number | undefined;
    const fetchStarted = performance.now();
    let answeredAfterMs = 0;
    // Calls wait for an answer SHAKEN_FETCH_TIMEOUT_MS at most: a fetch slower than that was a
    // timeout for them, whatever it brought back later.
    const fetched = (outcome: CertFetchOutcome) => this.o.onFetch?.(answeredAfterMs > this.o.fetchTimeoutMs ? 'timeout' : outcome);
    try {
      ({ body, maxAgeS } = await this.o.fetcher.fetch(url, abortController.signal));
    } catch (err) {
      if (err instanceof X5uPolicyError) return this.negative(POLICY);
      answeredAfterMs = performance.now() - fetchStarted;
      if (!signal.aborted) fetched('error');
      this.o.logger?.warn({ url, err: errorMessage(err) }, 'x5u certificate fetch failed');
      return this.negative(FETCH_FAILED);
    } finally {
      release();
      clearTimeout(timer);
      signal.removeEventListener('abort', onOuterAbort);
    }
    answeredAfterMs = performance.now() - fetchStarted;
    if ((typeof body !== 'string' && !Buffer.isBuffer(body)) || body.length > this.o.maxBytes) {
      fetched('invalid');
      return this.negative(FETCH_FAILED);
    }
    const text = typeof body === 'string' ? body : body.toString('utf8');

    const ttlMs = Math.min(maxAgeS !== undefined && Number.isFinite(maxAgeS) && maxAgeS >= 0 ? maxAgeS * 1000 : this.o.defaultTtlMs, this.o.maxTtlMs);
    const entry = this.judge(judge, text, ttlMs);
    if (!entry) {
      fetched('invalid');
      this.o.logger?.warn({ url }, 'x5u answer holds no readable certificate');
      return this.negative(FETCH_FAILED);
    }
    fetched('ok');
    if (isTrusted(entry.result)) this.slots.trust(site);
    const remaining = entry.expiresAt - this.o.now();
    if (entry.result.ok && remaining > 0) this.shared.write(redisKeyFor(url, this.redisPrefix), text, entry.expiresAt, remaining);
    return entry;
  }

  /** Judges PEM text; null when it holds no readable certificate. */
  private judge(judge: ChainJudge, text: string, ttlMs: number): Entry | null {
    let info: CertChainInfo;
    try {
      info = judge.judge(text);
    } catch {
      return null;
    }
    const now = this.o.now();
    let expiresAt = Math.min(now + ttlMs, info.validToMs);
    // An already expired chain is kept only as long as a failure would be: every call gets
    // CERT_EXPIRED from it, and refetching it on every call would only hammer its server.
    if (info.validToMs <= now) expiresAt = now + Math.min(ttlMs, this.o.negativeTtlMs);
    return { result: { ok: true, info }, expiresAt };
  }


}

/** A chain to a trust anchor: what the cache is for, and what a site earns its reserved fetch slots with. */
function isTrusted(result: CertLookup): boolean {
  return result.ok && !result.info.errors.includes('CERT_UNTRUSTED');
}

function fresh(lru: LRUCache<string, Entry>, url: string, now: () => number): CertLookup | undefined {
  const entry = lru.get(url);
  if (!entry) return undefined;
  if (entry.expiresAt > now()) return entry.result;
  lru.delete(url);
  return undefined;
}


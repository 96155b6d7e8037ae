import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { DerError, parseCrl, type ParsedCrl } from './der';
import { FetchSlots, siteOf } from './fetch-slots';
import { errorMessage, SharedCopies, withDeadline, type RedisLike, type ShakenLogger } from './shared-cache';
import type { CertificateFetcher, CrlFetchOutcome } from './types';
import { checkX5uUrl, X5uPolicyError } from './url-policy';
import { keyspace } from '../state/redis/keyspace';

/**
 * A CRL of a SHAKEN CA lists the few certificates it revoked before they expired: a few KiB.
 * The STI-PA's indirect CRL covers every service provider, and 256 KiB still holds about ten
 * thousand entries (an entry is 20-40 bytes). The cap is what bounds parsing (one linear pass)
 * and memory (one Set entry per serial): a CRL over it is unavailable, never read.
 */
export const DEFAULT_MAX_CRL_BYTES = 256 * 1024;
/** How far thisUpdate may lie ahead of our clock (a CA's clock a little fast) before the CRL is refused. */
const THIS_UPDATE_SKEW_MS = 5 * 60_000;

/** A CRL as the cache keeps it: parsed once, its signature checks remembered per key. */
export interface CachedCrl extends ParsedCrl {
  /** SHA-256 of the DER. */
  id: string;
  /** Signature checks already made: issuer certificate digest (or `indirect`) -> verified. */
  readonly checked: Map<string, boolean>;
}

/** A fresh CRL, or `unavailable` (a recent failure, remembered), or undefined when nothing is known yet. */
export type CrlPeek = CachedCrl | 'unavailable' | undefined;

export interface CrlCacheOptions {
  /** The guarded fetcher (x5u-fetcher.ts), made with a maxBytes of at least this cache's. */
  fetcher: CertificateFetcher;
  allowInsecure?: boolean;
  /** How long a call waits for a cold CRL (default 1500 ms). */
  fetchTimeoutMs?: number;
  /** How long a fetch may run at all, in the background (default max(10 s, 4 x fetchTimeoutMs)). */
  backgroundTimeoutMs?: number;
  /** How long a failure is remembered (default 30 s). */
  negativeTtlMs?: number;
  /** Upper bound on keeping a CRL, whatever its nextUpdate (default 24 h). */
  maxTtlMs?: number;
  /** CRLs kept in memory (default 1,000: one per CA and the STI-PA's). */
  maxEntries?: number;
  /** Bytes of CRLs kept in memory, all together (default 16 MiB, 64 CRLs at the size cap): 1,000 CRLs at the cap would be 256 MiB. */
  maxMemoryBytes?: number;
  /** Largest CRL accepted (default DEFAULT_MAX_CRL_BYTES). */
  maxBytes?: number;
  redis?: RedisLike | null;
  /** Where CRLs are kept in Redis (default the keyspace's crls under `callguard:`). */
  redisPrefix?: string;
  redisTimeoutMs?: number;
  now?: () => number;
  logger?: ShakenLogger;
  /** Told how each CRL fetch ended (metrics). */
  onFetch?: (outcome: CrlFetchOutcome) => void;
}

interface Entry {
  crl: CachedCrl | null;
  /** Past it the entry is gone: at most the CRL's nextUpdate. */
  expiresAt: number;
  /** Past it a use starts a fetch in the background while the entry still answers. */
  refreshAt: number;
}


export function crlRedisKeyFor(url: string, prefix = keyspace().crls): string {
  return prefix + createHash('sha256').update(url).digest('hex');
}

/** A CRL body in DER, or PEM (`X509 CRL` block), as CAs serve both. */
export function crlDer(body: Buffer): Buffer {
  if (body[0] === 0x30) return body;
  const m = /-----BEGIN X509 CRL-----([\s\S]*?)-----END X509 CRL-----/.exec(body.toString('latin1'));
  if (!m) throw new DerError('neither DER nor a PEM X509 CRL');
  return Buffer.from(m[1]!, 'base64');
}

/**
 * Per-URL cache of CRLs, the twin of CertCache for revocation: memory first, then Redis
 * (shared between instances), then the guarded fetcher; one fetch per URL at a time; failures
 * remembered for negativeTtlMs. A CRL is kept until its nextUpdate (at most maxTtlMs), and a
 * use past four fifths of that life refreshes it in the background, so a busy CRL is renewed
 * before it lapses and no call waits for it. A failed refresh keeps the CRL in hand until it
 * lapses. Signatures are not checked here: the key depends on the certificate (revocation.ts).
 */
export class CrlCache {
  private readonly entries: LRUCache<string, Entry>;
  private readonly inflight = new Map<string, { promise: Promise<CachedCrl | null>; abort: AbortController }>();
  private readonly o: Required<Omit<CrlCacheOptions, 'redis' | 'logger' | 'onFetch' | 'redisPrefix'>> & Pick<CrlCacheOptions, 'redis' | 'logger' | 'onFetch'>;
  private readonly slots: FetchSlots;
  private readonly redisPrefix: string;
  private readonly shared: SharedCopies;

  constructor(opts: CrlCacheOptions) {
    this.redisPrefix = opts.redisPrefix ?? keyspace().crls;
    const fetchTimeoutMs = opts.fetchTimeoutMs ?? 1500;
    this.o = {
      ...opts,
      allowInsecure: opts.allowInsecure ?? false,
      fetchTimeoutMs,
      backgroundTimeoutMs: opts.backgroundTimeoutMs ?? Math.max(10_000, 4 * fetchTimeoutMs),
      negativeTtlMs: opts.negativeTtlMs ?? 30_000,
      maxTtlMs: opts.maxTtlMs ?? 86_400_000,
      maxEntries: opts.maxEntries ?? 1000,
      maxMemoryBytes: opts.maxMemoryBytes ?? 16 * 1024 * 1024,
      maxBytes: opts.maxBytes ?? DEFAULT_MAX_CRL_BYTES,
      redisTimeoutMs: opts.redisTimeoutMs ?? 200,
      now: opts.now ?? Date.now,
    };
    this.shared = new SharedCopies({ redis: opts.redis, timeoutMs: this.o.redisTimeoutMs, now: this.o.now, logger: opts.logger, what: 'CRL' });
    this.entries = new LRUCache<string, Entry>({
      max: this.o.maxEntries,
      maxSize: this.o.maxMemoryBytes,
      // The DER it was read from, and about 64 bytes a serial in the Set.
      sizeCalculation: (e) => (e.crl ? e.crl.tbs.length + e.crl.signature.length + 64 * e.crl.revoked.size : 0) + 64,
    });
    // CRL URLs come only from certificates that chain to a trust anchor: few sites, few fetches.
    this.slots = new FetchSlots({ total: 16, perSite: 2, queuePerSite: 8, queueTotal: 64, reservedForTrusted: 0, maxWaitMs: fetchTimeoutMs });
  }

  /** The hot path, synchronous: what is known of a URL now, starting a background refresh when it is due. */
  peek(url: string): CrlPeek {
    const entry = this.entries.get(url);
    if (!entry) return undefined;
    const now = this.o.now();
    if (entry.expiresAt <= now) {
      this.entries.delete(url);
      return undefined;
    }
    if (entry.refreshAt <= now && !this.inflight.has(url)) void this.load(url);
    return entry.crl ?? 'unavailable';
  }

  /** The CRL within the call's budget (fetchTimeoutMs, or what is left of it); null when it cannot be had (a fetch past the budget keeps running and fills the cache). */
  async get(url: string, budgetMs = this.o.fetchTimeoutMs): Promise<CachedCrl | null> {
    const known = this.peek(url);
    if (known !== undefined) return known === 'unavailable' ? null : known;
    return withDeadline(this.load(url), budgetMs, null);
  }

  /** Loads a URL (shared between concurrent callers), with no per-call budget. */
  load(url: string): Promise<CachedCrl | null> {
    const running = this.inflight.get(url);
    if (running) return running.promise;
    if (this.inflight.size >= 64) return Promise.resolve(null);
    const abort = new AbortController();
    const promise = this.loadUncached(url, abort.signal)
      .catch((err: unknown): Entry => {
        this.o.logger?.warn({ url, err: errorMessage(err) }, 'CRL load failed unexpectedly');
        return this.negative();
      })
      .then((entry) => {
        const now = this.o.now();
        const held = this.entries.get(url);
        if (!entry.crl && held?.crl && held.expiresAt > now) {
          // A failed refresh: the CRL in hand is still within its nextUpdate, so it keeps answering; tried again later.
          held.refreshAt = now + this.o.negativeTtlMs;
          return held.crl;
        }
        if (entry.expiresAt > now) this.entries.set(url, entry);
        return entry.crl;
      })
      .finally(() => this.inflight.delete(url));
    this.inflight.set(url, { promise, abort });
    return promise;
  }

  clear(): void {
    this.entries.clear();
  }

  close(): void {
    this.slots.clear();
    for (const { abort } of this.inflight.values()) abort.abort();
    this.clear();
  }

  get size(): number {
    return this.entries.size;
  }

  private negative(): Entry {
    const expiresAt = this.o.now() + this.o.negativeTtlMs;
    return { crl: null, expiresAt, refreshAt: expiresAt };
  }

  /** A CRL ready to keep, or why not. */
  private accept(der: Buffer, now: number): { entry: Entry } | { outcome: 'invalid' | 'stale'; why: string } {
    let parsed: ParsedCrl;
    try {
      parsed = parseCrl(der);
    } catch (err) {
      if (err instanceof DerError) return { outcome: 'invalid', why: err.message };
      throw err;
    }
    if (parsed.nextUpdateMs <= now) return { outcome: 'stale', why: 'past its nextUpdate' };
    if (parsed.thisUpdateMs > now + THIS_UPDATE_SKEW_MS) return { outcome: 'invalid', why: 'thisUpdate in the future' };
    const crl: CachedCrl = { ...parsed, id: createHash('sha256').update(der).digest('base64url'), checked: new Map() };
    const expiresAt = Math.min(parsed.nextUpdateMs, now + this.o.maxTtlMs);
    return { entry: { crl, expiresAt, refreshAt: now + Math.floor(((expiresAt - now) * 4) / 5) } };
  }

  private async loadUncached(url: string, signal: AbortSignal): Promise<Entry> {
    let site: string;
    try {
      site = siteOf(checkX5uUrl(url, this.o.allowInsecure).hostname);
    } catch (err) {
      if (err instanceof X5uPolicyError) {
        this.o.logger?.warn({ url, err: err.message }, 'CRL URL refused by the fetch policy');
        return this.negative();
      }
      throw err;
    }

    const copy = await this.shared.read(crlRedisKeyFor(url, this.redisPrefix));
    const shared = copy ? Buffer.from(copy.text, 'base64') : null;
    if (shared) {
      const accepted = this.accept(shared, this.o.now());
      // A refresh takes the shared copy only when another instance already has a newer CRL
      // than the one in hand; otherwise it fetches (and shares what it got).
      const held = this.entries.get(url)?.crl;
      if ('entry' in accepted && (!held || accepted.entry.crl!.thisUpdateMs > held.thisUpdateMs)) return accepted.entry;
    }

    if (signal.aborted) return this.negative();
    const release = await this.slots.acquire(site);
    if (!release) return { crl: null, expiresAt: 0, refreshAt: 0 };
    if (signal.aborted) {
      release();
      return this.negative();
    }
    const abortController = new AbortController();
    const timer = setTimeout(() => abortController.abort(), this.o.backgroundTimeoutMs);
    timer.unref();
    const onOuterAbort = () => abortController.abort();
    signal.addEventListener('abort', onOuterAbort, { once: true });
    const started = performance.now();
    const fetched = (outcome: CrlFetchOutcome) => this.o.onFetch?.(performance.now() - started > this.o.fetchTimeoutMs && outcome !== 'stale' ? 'timeout' : outcome);
    let body: Buffer | string;
    try {
      ({ body } = await this.o.fetcher.fetch(url, abortController.signal));
    } catch (err) {
      if (!signal.aborted) fetched(err instanceof X5uPolicyError ? 'invalid' : 'error');
      this.o.logger?.warn({ url, err: errorMessage(err) }, 'CRL fetch failed');
      return this.negative();
    } finally {
      release();
      clearTimeout(timer);
      signal.removeEventListener('abort', onOuterAbort);
    }
    if ((typeof body !== 'string' && !Buffer.isBuffer(body)) || body.length > this.o.maxBytes) {
      fetched('invalid');
      this.o.logger?.warn({ url, bytes: body.length, max: this.o.maxBytes }, 'CRL refused: over the size cap');
      return this.negative();
    }
    let der: Buffer;
    try {
      der = crlDer(typeof body === 'string' ? Buffer.from(body, 'latin1') : body);
    } catch (err) {
      fetched('invalid');
      this.o.logger?.warn({ url, err: errorMessage(err) }, 'CRL refused');
      return this.negative();
    }
    const now = this.o.now();
    const accepted = this.accept(der, now);
    if (!('entry' in accepted)) {
      fetched(accepted.outcome);
      this.o.logger?.warn({ url, err: accepted.why }, 'CRL refused');
      return this.negative();
    }
    fetched('ok');
    const ttlMs = accepted.entry.expiresAt - now;
    if (ttlMs > 0) this.shared.write(crlRedisKeyFor(url, this.redisPrefix), der.toString('base64'), accepted.entry.expiresAt, ttlMs);
    return accepted.entry;
  }


}


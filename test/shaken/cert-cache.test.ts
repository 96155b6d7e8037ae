import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CertCache, redisKeyFor, X5uPolicyError, type CertCacheOptions, type CertificateFetcher, type RedisLike } from '../../src/shaken';
import { sleep } from '../../scripts/lib/process';
import { VECTORS_DIR, vectorsRoot } from './helpers';

const PEM = readFileSync(join(VECTORS_DIR, 'certs', 'sp1234.pem'), 'utf8');
const URL1 = 'https://certs.vectors.example/sp1234.pem';
const T0 = Date.parse('2026-12-01T12:00:00Z');

interface Clock {
  t: number;
  now: () => number;
}
const clock = (t = T0): Clock => {
  const c: Clock = { t, now: () => c.t };
  return c;
};

function countingFetcher(answer: (url: string, signal: AbortSignal) => Promise<{ body: string; maxAgeS?: number }>): CertificateFetcher & { calls: string[] } {
  const calls: string[] = [];
  return { calls, fetch: (url, signal) => (calls.push(url), answer(url, signal)) };
}
const serve = (maxAgeS?: number) => countingFetcher(async () => ({ body: PEM, ...(maxAgeS !== undefined ? { maxAgeS } : {}) }));
const cacheWith = (fetcher: CertificateFetcher, c: Clock, extra: Partial<CertCacheOptions> = {}) =>
  new CertCache({ fetcher, trustAnchors: [vectorsRoot()], now: c.now, ...extra });

function fakeRedis(): RedisLike & { store: Map<string, { value: string; px: number }>; gets: number } {
  const store = new Map<string, { value: string; px: number }>();
  return {
    store,
    gets: 0,
    async get(key) {
      this.gets++;
      return store.get(key)?.value ?? null;
    },
    async set(key, value, _mode, px) {
      store.set(key, { value, px });
      return 'OK';
    },
  };
}

describe('certificate cache: lifetimes', () => {
  it('honours Cache-Control max-age on the injected clock', async () => {
    const c = clock();
    const f = serve(60);
    const cache = cacheWith(f, c);
    expect((await cache.get(URL1)).ok).toBe(true);
    c.t += 59_000;
    expect(cache.peek(URL1)?.ok).toBe(true);
    await cache.get(URL1);
    expect(f.calls).toHaveLength(1);
    c.t += 2_000;
    expect(cache.peek(URL1)).toBeUndefined();
    await cache.get(URL1);
    expect(f.calls).toHaveLength(2);
  });

  it('uses the default lifetime without max-age, and caps any max-age', async () => {
    const c = clock();
    const f = serve();
    const cache = cacheWith(f, c, { defaultTtlMs: 10_000 });
    await cache.get(URL1);
    c.t += 10_001;
    await cache.get(URL1);
    expect(f.calls).toHaveLength(2);

    const f2 = serve(10 ** 9);
    const capped = cacheWith(f2, c, { maxTtlMs: 5_000 });
    await capped.get(URL1);
    c.t += 5_001;
    await capped.get(URL1);
    expect(f2.calls).toHaveLength(2);
  });

  it('keeps a chain 24 hours when the answer has no Cache-Control, as Asterisk does', async () => {
    const c = clock();
    const f = serve();
    const cache = cacheWith(f, c);
    await cache.get(URL1);
    c.t += 23 * 3_600_000;
    expect(cache.peek(URL1)?.ok).toBe(true);
    c.t += 2 * 3_600_000;
    expect(cache.peek(URL1)).toBeUndefined();
  });

  it('max-age=0 (or no-store) is not cached', async () => {
    const f = serve(0);
    const cache = cacheWith(f, clock());
    await cache.get(URL1);
    await cache.get(URL1);
    expect(f.calls).toHaveLength(2);
  });

  it("never keeps a chain past the earliest notAfter on its path, whatever max-age says", async () => {
    const notAfter = Date.parse('2036-10-29T00:00:00Z');
    const c = clock(notAfter - 60_000);
    const f = serve(3600);
    const cache = cacheWith(f, c);
    await cache.get(URL1);
    c.t = notAfter - 1;
    expect(cache.peek(URL1)?.ok).toBe(true);
    c.t = notAfter + 1;
    expect(cache.peek(URL1)).toBeUndefined();
  });

  it('an already expired chain is kept only as long as a failure', async () => {
    const expired = readFileSync(join(VECTORS_DIR, 'certs', 'expired.pem'), 'utf8');
    const c = clock();
    const f = countingFetcher(async () => ({ body: expired, maxAgeS: 3600 }));
    const cache = cacheWith(f, c, { negativeTtlMs: 30_000 });
    expect((await cache.get(URL1)).ok).toBe(true);
    c.t += 29_000;
    expect(cache.peek(URL1)).toBeDefined();
    c.t += 2_000;
    expect(cache.peek(URL1)).toBeUndefined();
  });

  it('is a bounded LRU', async () => {
    const cache = cacheWith(serve(), clock(), { maxEntries: 2 });
    for (const n of ['a', 'b', 'c']) await cache.get(`https://cr.example.net/${n}.pem`);
    expect(cache.size).toBe(2);
    expect(cache.peek('https://cr.example.net/a.pem')).toBeUndefined();
  });
});

describe('certificate cache: sharing and failures', () => {
  it('concurrent lookups of one URL share one fetch', async () => {
    const f = countingFetcher(() => new Promise((resolve) => setTimeout(() => resolve({ body: PEM }), 30)));
    const cache = cacheWith(f, clock());
    const results = await Promise.all(Array.from({ length: 50 }, () => cache.get(URL1)));
    expect(results.every((r) => r.ok)).toBe(true);
    expect(f.calls).toEqual([URL1]);
  });

  it('remembers a failing URL for the negative lifetime, then tries again', async () => {
    const c = clock();
    const f = countingFetcher(async () => {
      throw new Error('connection refused');
    });
    const warn = jest.fn();
    const cache = cacheWith(f, c, { negativeTtlMs: 30_000, logger: { warn } });
    for (let i = 0; i < 5; i++) expect(await cache.get(URL1)).toEqual({ ok: false, error: 'X5U_FETCH_FAILED' });
    expect(f.calls).toHaveLength(1);
    expect(warn).toHaveBeenCalledTimes(1);
    c.t += 30_001;
    await cache.get(URL1);
    expect(f.calls).toHaveLength(2);
  });

  it('policy refusals: X5U_POLICY, never handed to the fetcher, remembered', async () => {
    const f = serve();
    const cache = cacheWith(f, clock());
    for (const url of ['ftp://cr.example.net/a.pem', 'http://cr.example.net/a.pem', 'https://127.0.0.1/a.pem', 'https://[::1]/a.pem', 'https://10.1.1.1/a.pem']) {
      expect(await cache.get(url)).toEqual({ ok: false, error: 'X5U_POLICY' });
      expect(cache.peek(url)).toEqual({ ok: false, error: 'X5U_POLICY' });
    }
    expect(f.calls).toEqual([]);
  });

  it('a fetcher that throws X5uPolicyError (after DNS) gives X5U_POLICY', async () => {
    const f = countingFetcher(async () => {
      throw new X5uPolicyError('resolves to 127.0.0.1');
    });
    expect(await cacheWith(f, clock()).get(URL1)).toEqual({ ok: false, error: 'X5U_POLICY' });
  });

  it('answers that are not certificates, or too big, are fetch failures', async () => {
    expect(await cacheWith(countingFetcher(async () => ({ body: '<html>hello</html>' })), clock()).get(URL1)).toEqual({ ok: false, error: 'X5U_FETCH_FAILED' });
    expect(await cacheWith(countingFetcher(async () => ({ body: PEM + ' '.repeat(70_000) })), clock()).get(URL1)).toEqual({ ok: false, error: 'X5U_FETCH_FAILED' });
    const weird = { fetch: async () => ({ body: 42 }) } as unknown as CertificateFetcher;
    expect(await cacheWith(weird, clock()).get(URL1)).toEqual({ ok: false, error: 'X5U_FETCH_FAILED' });
  });

  it('a cold fetch past the budget fails that call quickly and fills the cache when it lands', async () => {
    // The fetch answers only when the test lets it: after the call has answered, or, should the
    // call wait for it, after 5 s (so that a call that waits fails here, by answering ok, rather
    // than hanging). Only the 50 ms budget can end the call's wait before then.
    let answer!: () => void;
    const released = new Promise<void>((r) => (answer = r));
    const fallback = setTimeout(answer, 5000);
    let landed!: () => void;
    const stored = new Promise<void>((r) => (landed = r));
    let answered = false;
    const f = countingFetcher(async () => {
      await released;
      answered = true;
      setImmediate(landed);
      return { body: PEM };
    });
    const cache = cacheWith(f, clock(), { fetchTimeoutMs: 50 });
    try {
      expect(await cache.get(URL1)).toEqual({ ok: false, error: 'X5U_FETCH_FAILED' });
      expect(answered).toBe(false);
      answer();
      await stored;
      expect(cache.peek(URL1)?.ok).toBe(true);
      expect(f.calls).toHaveLength(1);
    } finally {
      clearTimeout(fallback);
      cache.close();
    }
  }, 15_000);

  it('a fetch that never ends is aborted after the background limit', async () => {
    const f = countingFetcher(
      (_url, signal) => new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(new Error('aborted')))),
    );
    const cache = cacheWith(f, clock(), { fetchTimeoutMs: 20, backgroundTimeoutMs: 60 });
    expect(await cache.get(URL1)).toEqual({ ok: false, error: 'X5U_FETCH_FAILED' });
    expect(await cache.load(URL1)).toEqual({ ok: false, error: 'X5U_FETCH_FAILED' });
    expect(cache.peek(URL1)).toEqual({ ok: false, error: 'X5U_FETCH_FAILED' });
  });

  it('close() aborts in-flight fetches', async () => {
    let entered!: (signal: AbortSignal) => void;
    const started = new Promise<AbortSignal>((r) => (entered = r));
    const f = countingFetcher(
      (_url, signal) =>
        new Promise((_resolve, reject) => {
          signal.addEventListener('abort', () => reject(new Error('aborted')));
          entered(signal);
        }),
    );
    // The fetch ends only when aborted, and the call's budget is far past the test's timeout:
    // only close() can end either.
    const cache = cacheWith(f, clock(), { fetchTimeoutMs: 60_000, backgroundTimeoutMs: 60_000 });
    const pending = cache.get(URL1);
    const signal = await started;
    expect(signal.aborted).toBe(false);
    cache.close();
    expect(signal.aborted).toBe(true);
    expect(await pending).toEqual({ ok: false, error: 'X5U_FETCH_FAILED' });
  });

  it('caps the number of fetches running at once: the next one waits for a slot', async () => {
    let running = 0;
    let most = 0;
    const f = countingFetcher(async () => {
      most = Math.max(most, ++running);
      await sleep(50);
      running--;
      return { body: PEM };
    });
    const cache = cacheWith(f, clock(), { maxInflight: 2 });
    const r = await Promise.all(['a', 'b', 'c'].map((n) => cache.get(`https://cr.example.net/${n}.pem`)));
    expect(r.map((x) => x.ok)).toEqual([true, true, true]);
    expect(most).toBe(2);
    expect(f.calls).toHaveLength(3);
  });

  it('a fetch that cannot get a slot within the budget fails, and is not remembered as failing', async () => {
    // a's fetch holds the only slot until it is aborted (at the 60 s background limit, or by
    // close()): b's answer, while a still holds it, can only be its 50 ms budget's.
    let holder: AbortSignal | undefined;
    const f = countingFetcher((url, signal) => (url.endsWith('/a.pem') ? ((holder = signal), new Promise(() => {})) : Promise.resolve({ body: PEM })));
    const cache = cacheWith(f, clock(), { maxInflight: 1, fetchTimeoutMs: 50, backgroundTimeoutMs: 60_000 });
    void cache.get('https://cr.example.net/a.pem');
    expect(await cache.get('https://cr.example.net/b.pem')).toEqual({ ok: false, error: 'X5U_FETCH_FAILED' });
    expect(holder?.aborted).toBe(false);
    expect(cache.peek('https://cr.example.net/b.pem')).toBeUndefined();
    expect(f.calls).toEqual(['https://cr.example.net/a.pem']);
    cache.close();
  });
});

describe('certificate cache: Redis second level', () => {
  it('stores the PEM under callguard:x5u:<sha256(url)> with the same lifetime, and another instance reads it', async () => {
    const c = clock();
    const redis = fakeRedis();
    const f1 = serve(120);
    await cacheWith(f1, c, { redis }).get(URL1);
    await new Promise((r) => setImmediate(r));
    const key = `callguard:x5u:${createHash('sha256').update(URL1).digest('hex')}`;
    expect(redisKeyFor(URL1)).toBe(key);
    const stored = redis.store.get(key)!;
    expect(stored.px).toBe(120_000);
    expect(stored.value).toContain(PEM.trim());

    const f2 = serve(120);
    c.t += 60_000;
    const other = cacheWith(f2, c, { redis });
    expect((await other.get(URL1)).ok).toBe(true);
    expect(f2.calls).toEqual([]);
    // The second instance keeps the original expiry, not a fresh 120 s.
    c.t += 61_000;
    expect(other.peek(URL1)).toBeUndefined();
  });

  it('ignores a Redis entry past its expiry and fetches', async () => {
    const c = clock();
    const redis = fakeRedis();
    redis.store.set(redisKeyFor(URL1), { value: `# expires-at: ${T0 - 1}\n${PEM}`, px: 1 });
    const f = serve();
    await cacheWith(f, c, { redis }).get(URL1);
    expect(f.calls).toHaveLength(1);
  });

  it.each([
    ['rejects', { get: () => Promise.reject(new Error('READONLY')), set: () => Promise.reject(new Error('READONLY')) }],
    [
      'throws synchronously',
      {
        get: () => {
          throw new Error('closed');
        },
        set: () => {
          throw new Error('closed');
        },
      },
    ],
    ['hangs', { get: () => new Promise<string | null>(() => {}), set: () => new Promise(() => {}) }],
    ['returns junk', { get: async () => 'not a pem', set: async () => 'OK' }],
  ])('a Redis that %s never fails verification: the cache fetches instead', async (_name, redis) => {
    const f = serve();
    const warn = jest.fn();
    const cache = cacheWith(f, clock(), { redis: redis as RedisLike, redisTimeoutMs: 30, logger: { warn } });
    expect((await cache.get(URL1)).ok).toBe(true);
    expect(f.calls).toHaveLength(1);
  });

  it('failures are not written to Redis', async () => {
    const redis = fakeRedis();
    const f = countingFetcher(async () => {
      throw new Error('nope');
    });
    await cacheWith(f, clock(), { redis }).get(URL1);
    expect(redis.store.size).toBe(0);
  });

  it('a memory hit does not touch Redis', async () => {
    const redis = fakeRedis();
    const cache = cacheWith(serve(), clock(), { redis });
    await cache.get(URL1);
    const gets = redis.gets;
    for (let i = 0; i < 10; i++) await cache.get(URL1);
    expect(redis.gets).toBe(gets);
  });
});


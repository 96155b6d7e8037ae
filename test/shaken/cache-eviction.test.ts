import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CertCache, createShakenVerifier, type CertCacheOptions, type CertificateFetcher } from '../../src/shaken';
import { identity, makePki, VECTORS_DIR, vectorsRoot } from './helpers';

/**
 * The certificate cache holds what saves a fetch on an honest call. Entries any sender can
 * make by the thousand (refusals, failures, chains to no anchor) must not push those out.
 */

const PEM = readFileSync(join(VECTORS_DIR, 'certs', 'sp1234.pem'), 'utf8');
const GOOD = 'https://certs.vectors.example/sp1234.pem';
const T0 = Date.parse('2026-12-01T12:00:00Z');

function fetcherOf(answer: (url: string) => Promise<{ body: string }>): CertificateFetcher & { calls: string[] } {
  const calls: string[] = [];
  return { calls, fetch: (url) => (calls.push(url), answer(url)) };
}
const cacheWith = (fetcher: CertificateFetcher, extra: Partial<CertCacheOptions> = {}) =>
  new CertCache({ fetcher, trustAnchors: [vectorsRoot()], now: () => T0, ...extra });

// URLs the policy refuses by their text alone, as many as wanted.
const refused = (i: number) =>
  [`http://cr${i}.example.net/a.pem`, `https://10.${(i >> 8) & 255}.${i & 255}.1/a.pem`, `https://[::1]/${i}.pem`, `ftp://cr${i}.example.net/a.pem`, `https://cr${i}/a.pem`][i % 5]!;

describe('certificate cache eviction', () => {
  it('many policy-refused URLs do not evict a cached good certificate', async () => {
    const f = fetcherOf(async () => ({ body: PEM }));
    const cache = cacheWith(f, { maxEntries: 10 });
    expect(await cache.get(GOOD)).toMatchObject({ ok: true, info: { errors: [] } });
    for (let i = 0; i < 5000; i++) {
      expect(await cache.get(refused(i))).toEqual({ ok: false, error: 'X5U_POLICY' });
      expect(cache.peek(refused(i))).toEqual({ ok: false, error: 'X5U_POLICY' });
    }
    expect(cache.peek(GOOD)).toMatchObject({ ok: true });
    expect(f.calls).toEqual([GOOD]);
    // A refusal by the URL's text is not worth an entry.
    expect(cache.size).toBe(1);
  });

  it('failed fetches and chains to no anchor do not evict it either, and are still remembered for a while', async () => {
    const other = makePki();
    try {
      const f = fetcherOf(async (url) => {
        if (url === GOOD) return { body: PEM };
        if (url.includes('/untrusted/')) return { body: other.chainPem };
        throw new Error('connection refused');
      });
      const cache = cacheWith(f, { maxEntries: 10, maxOtherEntries: 5 });
      await cache.get(GOOD);
      for (let i = 0; i < 100; i++) {
        expect(await cache.get(`https://cr${i}.evil.example/a.pem`)).toEqual({ ok: false, error: 'X5U_FETCH_FAILED' });
        expect(await cache.get(`https://cr${i}.evil.example/untrusted/a.pem`)).toMatchObject({ ok: true, info: { errors: ['CERT_UNTRUSTED'] } });
      }
      expect(cache.peek(GOOD)).toMatchObject({ ok: true });
      expect(f.calls.filter((u) => u === GOOD)).toHaveLength(1);
      // The last few of them are still held: a failing URL is not fetched on every call.
      expect(cache.peek('https://cr99.evil.example/untrusted/a.pem')).toMatchObject({ ok: true });
      expect(cache.peek('https://cr99.evil.example/a.pem')).toEqual({ ok: false, error: 'X5U_FETCH_FAILED' });
      expect(cache.size).toBe(1 + 5);
    } finally {
      other.cleanup();
    }
  });

  it('a URL that now serves a trusted chain is not shadowed by its old failure', async () => {
    let up = false;
    const f = fetcherOf(async () => {
      if (!up) throw new Error('connection refused');
      return { body: PEM };
    });
    let t = T0;
    const cache = new CertCache({ fetcher: f, trustAnchors: [vectorsRoot()], now: () => t, negativeTtlMs: 1000 });
    expect(await cache.get(GOOD)).toEqual({ ok: false, error: 'X5U_FETCH_FAILED' });
    up = true;
    t += 1001;
    expect(await cache.get(GOOD)).toMatchObject({ ok: true });
    expect(cache.size).toBe(1);
  });

  it("a policy-refused x5u does not use up a call's allowance of cold loads", async () => {
    const pki = makePki();
    const v = createShakenVerifier({ trustAnchors: [pki.root.cert], fetcher: fetcherOf(async () => ({ body: pki.chainPem })), maxColdLoadsPerCall: 2 });
    try {
      const iat = Math.floor(Date.now() / 1000);
      const r = await v.verify({
        identity: [refused(0), refused(1), 'https://cr.carrier.example/sp.pem'].map((x5u) => identity({ x5u, key: pki.leaf.key, iat })),
        origCandidates: ['+442079460123'],
        dest: '+447400123456',
        receivedAt: new Date(iat * 1000),
      });
      expect(r.verstat).toBe('TN-Validation-Passed');
    } finally {
      await v.close();
      pki.cleanup();
    }
  });
});

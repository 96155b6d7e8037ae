import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { join } from 'node:path';
import {
  createShakenVerifier,
  createX5uFetcher,
  CrlCache,
  crlRedisKeyFor,
  DEFAULT_MAX_CRL_BYTES,
  parseCrl,
  readCrlDistributionPoint,
  type CertificateFetcher,
  type CrlFetchOutcome,
  type DefaultShakenVerifier,
  type RedisLike,
  type ShakenVerifierOptions,
  type VerifyInput,
} from '../../src/shaken';
import { buildCrl, manySerials } from './crl-builder';
import { identity, makePki, type Issued, type Pki } from './helpers';
import { startServer, type TestServer } from './server';

// A minute from now: after the test PKI's certificates are issued (openssl dates them from their making, and a loaded machine takes seconds).
const NOW = Date.now() + 60_000;
const IAT = Math.floor(NOW / 1000);
const HOUR = 3_600_000;
const X5U = 'https://certs.test/sp.pem';
const X5U_PA = 'https://certs.test/pa.pem';
const ROOT_CRL = 'https://crl.test/root.crl';
const INT_CRL = 'https://crl.test/int.crl';
const PA_CRL = 'https://crl.test/sti-pa.crl';

let pki: Pki;
/** Leaf whose CRL is the intermediate's own (direct). */
let leaf: Issued;
/** Leaf whose distribution point names the STI-PA as cRLIssuer (indirect). */
let paLeaf: Issued;
let stiPa: { cert: X509Certificate; key: KeyObject };
let rogue: { cert: X509Certificate; key: KeyObject };

function selfSigned(dir: string, name: string, subj: string): { cert: X509Certificate; key: KeyObject } {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  writeFileSync(join(dir, `${name}.key`), privateKey.export({ type: 'pkcs8', format: 'pem' }));
  execFileSync('openssl', ['req', '-x509', '-new', '-key', `${name}.key`, '-subj', subj, '-days', '365', '-sha256', '-out', `${name}.crt`], { cwd: dir, stdio: 'pipe' });
  return { cert: new X509Certificate(readFileSync(join(dir, `${name}.crt`))), key: privateKey };
}

beforeAll(() => {
  pki = makePki({ intermediateExt: [`crlDistributionPoints=URI:${ROOT_CRL}`] });
  leaf = pki.issueLeaf('crl-leaf', { extraExt: [`crlDistributionPoints=URI:${INT_CRL}`] });
  paLeaf = pki.issueLeaf('pa-leaf', {
    extraExt: ['crlDistributionPoints=dp_sect', '[dp_sect]', `fullname=URI:${PA_CRL}`, 'CRLissuer=dirName:pa_name', '[pa_name]', 'CN=Test STI-PA CRL'],
  });
  stiPa = selfSigned(pki.dir, 'sti-pa', '/CN=Test STI-PA CRL');
  // Same name as the STI-PA, another key: only the operator's configured signer counts.
  rogue = selfSigned(pki.dir, 'rogue', '/CN=Test STI-PA CRL');
});
afterAll(() => pki.cleanup());

const verifiers: DefaultShakenVerifier[] = [];
afterEach(async () => {
  await Promise.all(verifiers.splice(0).map((v) => v.close()));
});

type Answer = () => Promise<{ body: Buffer | string; maxAgeS?: number }>;
const ok = (body: Buffer | string, maxAgeS?: number): Answer => async () => ({ body, ...(maxAgeS !== undefined ? { maxAgeS } : {}) });

/** A world of URLs served from memory, counting fetches per URL; the clock is `t`. */
function world(over: Record<string, Answer> = {}, opts: Partial<ShakenVerifierOptions> = {}) {
  const w = {
    t: NOW,
    calls: [] as string[],
    crlOutcomes: [] as CrlFetchOutcome[],
    unavailable: 0,
    routes: {
      [X5U]: ok(leaf.certPem + pki.intermediate.certPem),
      [X5U_PA]: ok(paLeaf.certPem + pki.intermediate.certPem),
      [ROOT_CRL]: ok(directCrl(pki.root, [])),
      [INT_CRL]: ok(directCrl(pki.intermediate, [])),
      [PA_CRL]: ok(buildCrl({ issuer: stiPa.cert, key: stiPa.key, revoked: [], thisUpdateMs: NOW - HOUR, nextUpdateMs: NOW + 12 * HOUR })),
      ...over,
    } as Record<string, Answer>,
  };
  const fetcher: CertificateFetcher = {
    async fetch(url) {
      w.calls.push(url);
      const r = w.routes[url];
      if (!r) throw new Error(`404 ${url}`);
      return r();
    },
  };
  const v = createShakenVerifier({
    trustAnchors: [pki.root.cert],
    fetcher,
    crlFetcher: fetcher,
    crlSigners: [stiPa.cert],
    fetchTimeoutMs: 200,
    now: () => w.t,
    onCrlFetch: (o) => w.crlOutcomes.push(o),
    onCrlUnavailable: () => w.unavailable++,
    ...opts,
  });
  verifiers.push(v);
  return Object.assign(w, { v, fetches: (url: string) => w.calls.filter((u) => u === url).length });
}

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  for (const end = Date.now() + ms; !cond(); ) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

function directCrl(ca: Issued, revoked: string[], times: { thisUpdateMs?: number; nextUpdateMs?: number } = {}): Buffer {
  return buildCrl({ issuer: ca.cert, key: ca.key, revoked, thisUpdateMs: times.thisUpdateMs ?? NOW - HOUR, nextUpdateMs: times.nextUpdateMs ?? NOW + 12 * HOUR });
}

const call = (key: KeyObject, x5u = X5U): VerifyInput => ({
  identity: identity({ x5u, key, iat: IAT }),
  origCandidates: ['+442079460123'],
  dest: '+447400123456',
  receivedAt: new Date(NOW + 1000),
});

describe('distribution points and CRLs are read', () => {
  it('reads the URL of a direct and an indirect distribution point', () => {
    expect(readCrlDistributionPoint(leaf.cert.raw)).toEqual({ url: INT_CRL, indirect: false });
    expect(readCrlDistributionPoint(paLeaf.cert.raw)).toEqual({ url: PA_CRL, indirect: true });
    expect(readCrlDistributionPoint(pki.leaf.cert.raw)).toBeNull();
  });

  it('a CRL built here verifies with openssl, and one made by `openssl ca -gencrl` parses with the revoked serial', () => {
    const der = directCrl(pki.intermediate, [leaf.cert.serialNumber]);
    writeFileSync(join(pki.dir, 'built.crl'), der);
    const out = execFileSync('openssl', ['crl', '-inform', 'DER', '-in', 'built.crl', '-CAfile', 'intermediate.crt', '-noout'], { cwd: pki.dir, stdio: 'pipe' });
    expect(out.toString()).toBe('');

    const dir = pki.dir;
    writeFileSync(join(dir, 'crl-index.txt'), '');
    writeFileSync(join(dir, 'crl.cnf'), `[ca]\ndefault_ca=d\n[d]\ndatabase=crl-index.txt\ndefault_md=sha256\ndefault_crl_days=7\ncrlnumber=crlnumber.txt\n`);
    writeFileSync(join(dir, 'crlnumber.txt'), '01\n');
    execFileSync('openssl', ['ca', '-config', 'crl.cnf', '-revoke', 'crl-leaf.crt', '-keyfile', 'intermediate.key', '-cert', 'intermediate.crt'], { cwd: dir, stdio: 'pipe' });
    execFileSync('openssl', ['ca', '-config', 'crl.cnf', '-gencrl', '-keyfile', 'intermediate.key', '-cert', 'intermediate.crt', '-out', 'gen.crl'], { cwd: dir, stdio: 'pipe' });
    const pem = readFileSync(join(dir, 'gen.crl'), 'utf8');
    const b64 = /-----BEGIN X509 CRL-----([\s\S]*?)-----END X509 CRL-----/.exec(pem)![1]!;
    const parsed = parseCrl(Buffer.from(b64, 'base64'));
    expect(parsed.revoked.has(leaf.cert.serialNumber.replace(/^0+/, ''))).toBe(true);
    expect(parsed.nextUpdateMs - parsed.thisUpdateMs).toBe(7 * 24 * HOUR);
  });

  it('an openssl CRL served as PEM revokes the leaf through the verifier', async () => {
    const w = world({ [INT_CRL]: ok(readFileSync(join(pki.dir, 'gen.crl'))) });
    const r = await w.v.verify(call(leaf.key));
    expect(r.errors).toContain('CERT_REVOKED');
  });
});

describe('revocation through the verifier', () => {
  it('a certificate on no CRL passes, with both CRLs of its chain fetched once', async () => {
    const w = world();
    expect(await w.v.verify(call(leaf.key))).toMatchObject({ verstat: 'TN-Validation-Passed', errors: [] });
    expect(w.fetches(INT_CRL)).toBe(1);
    expect(w.fetches(ROOT_CRL)).toBe(1);
    expect(w.crlOutcomes).toEqual(['ok', 'ok']);
    expect(w.unavailable).toBe(0);
  });

  it('a revoked leaf fails with CERT_REVOKED', async () => {
    const w = world({ [INT_CRL]: ok(directCrl(pki.intermediate, ['01', leaf.cert.serialNumber])) });
    expect(await w.v.verify(call(leaf.key))).toMatchObject({ verstat: 'TN-Validation-Failed', errors: ['CERT_REVOKED'] });
  });

  it('a revoked intermediate fails every leaf under it', async () => {
    const w = world({ [ROOT_CRL]: ok(directCrl(pki.root, [pki.intermediate.cert.serialNumber])) });
    expect((await w.v.verify(call(leaf.key))).errors).toEqual(['CERT_REVOKED']);
    expect((await w.v.verify(call(paLeaf.key, X5U_PA))).errors).toEqual(['CERT_REVOKED']);
  });

  it('a direct CRL signed by another key than the issuing CA is unavailable, not evidence', async () => {
    const forged = buildCrl({ issuer: pki.intermediate.cert, key: pki.root.key, revoked: [leaf.cert.serialNumber], thisUpdateMs: NOW - HOUR, nextUpdateMs: NOW + HOUR });
    const w = world({ [INT_CRL]: ok(forged) });
    expect(await w.v.verify(call(leaf.key))).toMatchObject({ verstat: 'TN-Validation-Passed' });
    expect(w.unavailable).toBe(1);
    const strict = world({ [INT_CRL]: ok(forged) }, { crlRequired: true });
    expect((await strict.v.verify(call(leaf.key))).errors).toEqual(['CERT_REVOKED']);
  });

  it('a CRL with a broken signature is unavailable: passes when not required, CERT_REVOKED when required', async () => {
    const broken = buildCrl({ issuer: pki.intermediate.cert, key: pki.intermediate.key, revoked: [], thisUpdateMs: NOW - HOUR, nextUpdateMs: NOW + HOUR, corruptSignature: true });
    const lax = world({ [INT_CRL]: ok(broken) });
    expect((await lax.v.verify(call(leaf.key))).errors).toEqual([]);
    expect(lax.unavailable).toBe(1);
    const strict = world({ [INT_CRL]: ok(broken) }, { crlRequired: true });
    expect((await strict.v.verify(call(leaf.key))).errors).toEqual(['CERT_REVOKED']);
    expect(strict.unavailable).toBe(1);
  });

  it('garbage where a CRL should be is invalid', async () => {
    const w = world({ [INT_CRL]: ok('not a crl') }, { crlRequired: true });
    expect((await w.v.verify(call(leaf.key))).errors).toEqual(['CERT_REVOKED']);
    expect(w.crlOutcomes).toContain('invalid');
  });

  it('a stale CRL (past its nextUpdate) counts as unavailable', async () => {
    const stale = directCrl(pki.intermediate, [], { thisUpdateMs: NOW - 48 * HOUR, nextUpdateMs: NOW - HOUR });
    const lax = world({ [INT_CRL]: ok(stale) });
    expect((await lax.v.verify(call(leaf.key))).errors).toEqual([]);
    expect(lax.crlOutcomes).toContain('stale');
    expect(lax.unavailable).toBe(1);
    const strict = world({ [INT_CRL]: ok(stale) }, { crlRequired: true });
    expect((await strict.v.verify(call(leaf.key))).errors).toEqual(['CERT_REVOKED']);
  });

  it('a CRL without nextUpdate is refused (no CRL is trusted forever)', async () => {
    const w = world({ [INT_CRL]: ok(buildCrl({ issuer: pki.intermediate.cert, key: pki.intermediate.key, thisUpdateMs: NOW - HOUR, nextUpdateMs: null })) }, { crlRequired: true });
    expect((await w.v.verify(call(leaf.key))).errors).toEqual(['CERT_REVOKED']);
    expect(w.crlOutcomes).toContain('invalid');
  });

  it('a CRL over the size cap is refused before it is parsed', async () => {
    const huge = directCrl(pki.intermediate, manySerials(20_000));
    expect(huge.length).toBeGreaterThan(DEFAULT_MAX_CRL_BYTES);
    const w = world({ [INT_CRL]: ok(huge) });
    expect((await w.v.verify(call(leaf.key))).errors).toEqual([]);
    expect(w.crlOutcomes).toContain('invalid');
    expect(w.unavailable).toBe(1);
  });

  it('a slow CRL server costs the call the budget at most; the CRL lands in the background and counts from then on', async () => {
    let release!: () => void;
    const later = new Promise<void>((r) => (release = r));
    const slow: Answer = async () => {
      await later;
      return { body: directCrl(pki.intermediate, [leaf.cert.serialNumber]) };
    };
    const w = world({ [INT_CRL]: slow });
    const started = Date.now();
    expect((await w.v.verify(call(leaf.key))).errors).toEqual([]);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(w.unavailable).toBe(1);
    release();
    // Landed: its outcome is told once the CRL is read and checked, and the entry is kept on the
    // same turn.
    await until(() => w.crlOutcomes.length > 0);
    expect((await w.v.verify(call(leaf.key))).errors).toEqual(['CERT_REVOKED']);
    expect(w.fetches(INT_CRL)).toBe(1);

    const strict = world({ [INT_CRL]: () => new Promise(() => {}) }, { crlRequired: true });
    expect((await strict.v.verify(call(leaf.key))).errors).toEqual(['CERT_REVOKED']);
  });

  it('a cold chain and a cold CRL share one budget: the call never waits for both in turn', async () => {
    // The chain takes 800 ms of a 1200 ms budget; the CRL never answers. The CRL may be waited
    // for what the chain left (some 400 ms), not a whole budget more: the wait is timed from the
    // CRL fetch's start to the answer, so a late timer on a loaded machine (the chain's, or the
    // start of the call) does not count against it, and a whole budget can never be under 800.
    let crlAskedAt = 0;
    const slowChain: Answer = async () => {
      await new Promise((r) => setTimeout(r, 800));
      return { body: leaf.certPem + pki.intermediate.certPem };
    };
    const silentCrl: Answer = () => {
      crlAskedAt = performance.now();
      return new Promise(() => {});
    };
    const w = world({ [X5U]: slowChain, [INT_CRL]: silentCrl }, { fetchTimeoutMs: 1200 });
    expect((await w.v.verify(call(leaf.key))).errors).toEqual([]);
    const crlWait = performance.now() - crlAskedAt;
    expect(crlAskedAt).toBeGreaterThan(0);
    expect(crlWait).toBeLessThan(800);
    expect(w.unavailable).toBe(1);
  });

  it('an unreachable CRL is remembered as a failure for the negative lifetime', async () => {
    const w = world({ [INT_CRL]: () => Promise.reject(new Error('ECONNREFUSED')) }, { negativeTtlMs: 30_000 });
    expect((await w.v.verify(call(leaf.key))).errors).toEqual([]);
    expect((await w.v.verify(call(leaf.key))).errors).toEqual([]);
    expect(w.fetches(INT_CRL)).toBe(1);
    expect(w.crlOutcomes).toContain('error');
    expect(w.unavailable).toBe(2);
    w.t += 31_000;
    await w.v.verify(call(leaf.key));
    expect(w.fetches(INT_CRL)).toBe(2);
  });
});

describe('indirect CRLs (ATIS-1000080: the STI-PA signs, named as cRLIssuer)', () => {
  it('a CRL of the configured signer revokes', async () => {
    const w = world({ [PA_CRL]: ok(buildCrl({ issuer: stiPa.cert, key: stiPa.key, revoked: [paLeaf.cert.serialNumber], thisUpdateMs: NOW - HOUR, nextUpdateMs: NOW + HOUR })) });
    expect((await w.v.verify(call(paLeaf.key, X5U_PA))).errors).toEqual(['CERT_REVOKED']);
  });

  it('a clean CRL of the configured signer passes', async () => {
    const w = world();
    expect(await w.v.verify(call(paLeaf.key, X5U_PA))).toMatchObject({ verstat: 'TN-Validation-Passed', errors: [] });
    expect(w.fetches(PA_CRL)).toBe(1);
  });

  it('a CRL of a signer the operator does not trust is unavailable, whatever it lists', async () => {
    const rogueCrl = buildCrl({ issuer: rogue.cert, key: rogue.key, revoked: [paLeaf.cert.serialNumber], thisUpdateMs: NOW - HOUR, nextUpdateMs: NOW + HOUR });
    const lax = world({ [PA_CRL]: ok(rogueCrl) });
    expect((await lax.v.verify(call(paLeaf.key, X5U_PA))).errors).toEqual([]);
    expect(lax.unavailable).toBe(1);
    const strict = world({ [PA_CRL]: ok(rogueCrl) }, { crlRequired: true });
    expect((await strict.v.verify(call(paLeaf.key, X5U_PA))).errors).toEqual(['CERT_REVOKED']);
  });

  it('without configured signers an indirect CRL cannot be verified', async () => {
    const w = world({}, { crlSigners: [], crlRequired: true });
    expect((await w.v.verify(call(paLeaf.key, X5U_PA))).errors).toEqual(['CERT_REVOKED']);
  });

  it('an indirect CRL is not accepted as the issuing CA signing it directly, nor the reverse', async () => {
    // The intermediate signs a CRL at the STI-PA's URL: the distribution point says the STI-PA signs.
    const w = world({ [PA_CRL]: ok(directCrl(pki.intermediate, [])) }, { crlRequired: true });
    expect((await w.v.verify(call(paLeaf.key, X5U_PA))).errors).toEqual(['CERT_REVOKED']);
  });
});

describe('caching: the warm path waits for nothing, and a newer CRL reaches cached chains', () => {
  it('a second call fetches nothing: chain and CRLs come from memory', async () => {
    const w = world();
    await w.v.verify(call(leaf.key));
    const before = w.calls.length;
    for (let i = 0; i < 5; i++) expect((await w.v.verify(call(leaf.key))).errors).toEqual([]);
    expect(w.calls.length).toBe(before);
  });

  it('a CRL is kept until its nextUpdate, refreshed in the background before it, and the fresh CRL applies to the cached chain', async () => {
    const w = world({ [INT_CRL]: ok(directCrl(pki.intermediate, [], { nextUpdateMs: NOW + 10 * HOUR })) });
    await w.v.verify(call(leaf.key));
    w.t = NOW + 7 * HOUR; // before four fifths of its life: no refresh
    await w.v.verify(call(leaf.key));
    expect(w.fetches(INT_CRL)).toBe(1);
    // The CA revokes the leaf; the chain itself stays cached (24 h) all along.
    w.routes[INT_CRL] = ok(directCrl(pki.intermediate, [leaf.cert.serialNumber], { thisUpdateMs: NOW + 8 * HOUR, nextUpdateMs: NOW + 20 * HOUR }));
    w.t = NOW + 9 * HOUR;
    // This call answers from the CRL in hand and starts the refresh without waiting for it.
    expect((await w.v.verify(call(leaf.key))).errors).toEqual([]);
    expect(w.fetches(INT_CRL)).toBe(2);
    await new Promise((r) => setImmediate(r));
    expect((await w.v.verify(call(leaf.key))).errors).toEqual(['CERT_REVOKED']);
    expect(w.fetches(X5U)).toBe(1);
  });

  it('a CRL is not kept past its nextUpdate even when a refresh failed', async () => {
    const w = world({ [INT_CRL]: ok(directCrl(pki.intermediate, [], { nextUpdateMs: NOW + HOUR })) }, { crlRequired: true });
    await w.v.verify(call(leaf.key));
    w.routes[INT_CRL] = () => Promise.reject(new Error('down'));
    w.t = NOW + 55 * 60_000; // refresh due, fails: the CRL in hand still answers
    expect((await w.v.verify(call(leaf.key))).errors).toEqual([]);
    await new Promise((r) => setImmediate(r));
    expect((await w.v.verify(call(leaf.key))).errors).toEqual([]);
    w.t = NOW + HOUR + 1; // past nextUpdate: gone, and the fetch fails
    expect((await w.v.verify(call(leaf.key))).errors).toEqual(['CERT_REVOKED']);
  });

  it('a CRL is kept 24 hours at most, whatever its nextUpdate', async () => {
    const w = world({ [INT_CRL]: ok(directCrl(pki.intermediate, [], { nextUpdateMs: NOW + 30 * 24 * HOUR })) });
    await w.v.verify(call(leaf.key));
    w.t = NOW + 18 * HOUR;
    await w.v.verify(call(leaf.key));
    expect(w.fetches(INT_CRL)).toBe(1);
    w.t = NOW + 25 * HOUR;
    await w.v.verify(call(leaf.key));
    expect(w.fetches(INT_CRL)).toBe(2);
  });
});

describe('CRL cache on its own', () => {
  function fakeRedis(): RedisLike & { store: Map<string, string> } {
    const store = new Map<string, string>();
    return {
      store,
      async get(key) {
        return store.get(key) ?? null;
      },
      async set(key, value) {
        store.set(key, value);
        return 'OK';
      },
    };
  }

  it('is shared through Redis: a second instance reads it instead of fetching', async () => {
    const redis = fakeRedis();
    let fetches = 0;
    const fetcher: CertificateFetcher = { fetch: async () => (fetches++, { body: directCrl(pki.intermediate, [leaf.cert.serialNumber]) }) };
    const a = new CrlCache({ fetcher, redis, now: () => NOW });
    const b = new CrlCache({ fetcher, redis, now: () => NOW });
    expect((await a.get(INT_CRL))?.revoked.size).toBe(1);
    await new Promise((r) => setImmediate(r));
    expect(redis.store.has(crlRedisKeyFor(INT_CRL))).toBe(true);
    expect((await b.get(INT_CRL))?.revoked.size).toBe(1);
    expect(fetches).toBe(1);
  });

  it('is bounded in bytes as well as entries', async () => {
    const body = directCrl(pki.intermediate, manySerials(100));
    const fetcher: CertificateFetcher = { fetch: async () => ({ body }) };
    const cache = new CrlCache({ fetcher, maxMemoryBytes: 2 * (body.length + 64 * 100) + 500 });
    for (const u of ['https://a.test/1.crl', 'https://a.test/2.crl', 'https://a.test/3.crl']) expect(await cache.get(u)).not.toBeNull();
    expect(cache.size).toBe(2);
    expect(cache.peek('https://a.test/1.crl')).toBeUndefined();
    cache.close();
  });

  it('a background refresh fetches rather than take back the same CRL from Redis', async () => {
    const redis = fakeRedis();
    let t = NOW;
    const bodies = [directCrl(pki.intermediate, [], { nextUpdateMs: NOW + 10 * HOUR }), directCrl(pki.intermediate, [leaf.cert.serialNumber], { thisUpdateMs: NOW + 8 * HOUR, nextUpdateMs: NOW + 20 * HOUR })];
    let fetches = 0;
    const fetcher: CertificateFetcher = { fetch: async () => ({ body: bodies[fetches++]! }) };
    const cache = new CrlCache({ fetcher, redis, now: () => t });
    await cache.get(INT_CRL);
    await new Promise((r) => setImmediate(r));
    t = NOW + 9 * HOUR;
    await cache.load(INT_CRL);
    expect(fetches).toBe(2);
    expect((cache.peek(INT_CRL) as { revoked: ReadonlySet<string> }).revoked.size).toBe(1);
    // Another instance now takes the newer CRL from Redis without a fetch.
    const other = new CrlCache({ fetcher, redis, now: () => t });
    await new Promise((r) => setImmediate(r));
    expect((await other.get(INT_CRL))?.revoked.size).toBe(1);
    expect(fetches).toBe(2);
  });

  it('concurrent callers of one URL share one fetch', async () => {
    let fetches = 0;
    const fetcher: CertificateFetcher = {
      fetch: async () => {
        fetches++;
        await new Promise((r) => setTimeout(r, 20));
        return { body: directCrl(pki.intermediate, []) };
      },
    };
    const cache = new CrlCache({ fetcher });
    const got = await Promise.all(Array.from({ length: 10 }, () => cache.get(INT_CRL)));
    expect(got.every((c) => c !== null)).toBe(true);
    expect(fetches).toBe(1);
  });

  describe('through the guarded fetcher, over a local TLS server', () => {
    let server: TestServer;
    const timers: NodeJS.Timeout[] = [];
    beforeAll(async () => {
      const send = (body: () => Buffer, delayMs = 0) => (_req: unknown, res: ServerResponse) => {
        if (delayMs === 0) res.end(body());
        else timers.push(setTimeout(() => res.end(body()), delayMs));
      };
      server = await startServer(
        {
          '/int.crl': send(() => directCrl(pki.intermediate, [leaf.cert.serialNumber])),
          '/huge.crl': send(() => directCrl(pki.intermediate, manySerials(20_000))),
          '/slow.crl': send(() => directCrl(pki.intermediate, []), 10_000),
        },
        pki.tls,
      );
    });
    afterAll(async () => {
      for (const t of timers) clearTimeout(t);
      await server.close();
    });
    const lab = (outcomes: CrlFetchOutcome[], extra: { fetchTimeoutMs?: number; backgroundTimeoutMs?: number } = {}) =>
      new CrlCache({
        fetcher: createX5uFetcher({ allowInsecure: true, ca: pki.tls.certPem, maxBytes: DEFAULT_MAX_CRL_BYTES }),
        allowInsecure: true,
        onFetch: (o) => outcomes.push(o),
        ...extra,
      });

    it('fetches and reads a CRL', async () => {
      const outcomes: CrlFetchOutcome[] = [];
      const cache = lab(outcomes);
      expect((await cache.get(`${server.url}/int.crl`))?.revoked.size).toBe(1);
      expect(outcomes).toEqual(['ok']);
      cache.close();
    });

    it('stops reading a CRL over the cap', async () => {
      const outcomes: CrlFetchOutcome[] = [];
      const cache = lab(outcomes);
      expect(await cache.get(`${server.url}/huge.crl`)).toBeNull();
      expect(outcomes).toEqual(['error']);
      cache.close();
    });

    it('gives up on a slow server at the deadline', async () => {
      const outcomes: CrlFetchOutcome[] = [];
      // The server answers after 10 s, long after the deadline and the background limit: the
      // call answers at its deadline, and the fetch is cut at the background limit (told as a
      // timeout), never answered.
      const cache = lab(outcomes, { fetchTimeoutMs: 100, backgroundTimeoutMs: 300 });
      const started = Date.now();
      expect(await cache.get(`${server.url}/slow.crl`)).toBeNull();
      expect(Date.now() - started).toBeLessThan(1000);
      await until(() => outcomes.length > 0);
      expect(outcomes).toEqual(['timeout']);
      cache.close();
    });

    it('an unreachable server is a failure', async () => {
      const outcomes: CrlFetchOutcome[] = [];
      const cache = lab(outcomes);
      expect(await cache.get('https://127.0.0.1:1/int.crl')).toBeNull();
      expect(outcomes).toEqual(['error']);
      cache.close();
    });

    it('in production, an http: or internal CRL URL is refused without a fetch', async () => {
      const outcomes: CrlFetchOutcome[] = [];
      const cache = new CrlCache({ fetcher: createX5uFetcher(), onFetch: (o) => outcomes.push(o) });
      expect(await cache.get('http://crl.example.com/a.crl')).toBeNull();
      expect(await cache.get(`${server.url}/int.crl`)).toBeNull();
      expect(outcomes).toEqual([]);
      cache.close();
    });
  });
});

import { createHmac, generateKeyPairSync, sign } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { createShakenVerifier, createX5uFetcher, type CertificateFetcher, type DefaultShakenVerifier, type VerifyInput } from '../../src/shaken';
import { identity, makePki, mapFetcher, signToken, type Pki } from './helpers';
import { startServer, type TestServer } from './server';

const FROM = '+442079460123';
const TO = '+447400123456';
const FORWARDED_TO = '+447400654321';
const IAT = Math.floor(Date.now() / 1000);
const AT = new Date(IAT * 1000 + 2000);

let pki: Pki;
let server: TestServer;
let X5U: string;
const timers = new Set<NodeJS.Timeout>();
const verifiers: DefaultShakenVerifier[] = [];

const route = (body: () => string, headers: Record<string, string> = {}, delayMs = 0) => (_req: unknown, res: ServerResponse) => {
  for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
  if (delayMs === 0) res.end(body());
  else timers.add(setTimeout(() => res.end(body()), delayMs));
};

beforeAll(async () => {
  pki = makePki();
  server = await startServer(
    {
      '/sp.pem': route(() => pki.chainPem, { 'cache-control': 'max-age=300' }),
      '/maxage.pem': route(() => pki.chainPem, { 'cache-control': 'max-age=60' }),
      '/concurrent.pem': route(() => pki.chainPem, {}, 50),
      '/slow.pem': route(() => pki.chainPem, {}, 4000),
      '/leaf-only.pem': route(() => pki.leaf.certPem),
      '/big.pem': route(() => pki.chainPem + '#'.repeat(70 * 1024)),
      '/redirect.pem': (_req: unknown, res: ServerResponse) => {
        res.statusCode = 301;
        res.setHeader('location', '/sp.pem');
        res.end();
      },
      '/error.pem': (_req: unknown, res: ServerResponse) => {
        res.statusCode = 503;
        res.end();
      },
    },
    pki.tls,
  );
  X5U = `${server.url}/sp.pem`;
});

afterAll(async () => {
  await Promise.all(verifiers.map((v) => v.close()));
  for (const t of timers) clearTimeout(t);
  await server.close();
  pki.cleanup();
});

type Opts = Partial<Parameters<typeof createShakenVerifier>[0]>;
/** Lab-mode verifier reaching the local TLS server for real. */
function labVerifier(opts: Opts = {}): DefaultShakenVerifier {
  const v = createShakenVerifier({
    trustAnchors: [pki.root.cert],
    fetcher: createX5uFetcher({ allowInsecure: true, ca: pki.tls.certPem }),
    allowInsecure: true,
    ...opts,
  });
  verifiers.push(v);
  return v;
}
/** Verifier with certificates served from memory under https://cr.example.net/. */
function fixtureVerifier(extra: Record<string, string> = {}, opts: Opts = {}): DefaultShakenVerifier & { fetcher: ReturnType<typeof mapFetcher> } {
  const fetcher = mapFetcher({ 'https://cr.example.net/sp.pem': pki.chainPem, ...extra });
  const v = createShakenVerifier({ trustAnchors: [pki.root.cert], fetcher, ...opts });
  verifiers.push(v);
  return Object.assign(v, { fetcher });
}
const FX = 'https://cr.example.net/sp.pem';

const call = (id: string | string[], over: Partial<VerifyInput> = {}): VerifyInput => ({
  identity: id,
  origCandidates: [FROM],
  dest: TO,
  receivedAt: AT,
  ...over,
});
const shaken = (over: Partial<Parameters<typeof identity>[0]> = {}) => identity({ x5u: FX, key: pki.leaf.key, iat: IAT, ...over });
const div = (over: Partial<Parameters<typeof identity>[0]> = {}) =>
  identity({ x5u: FX, key: pki.leaf.key, iat: IAT, ppt: 'div', div: '447400123456', dest: ['447400654321'], ...over });

describe('verifier end to end over a local TLS server (own PKI, openssl-made)', () => {
  it('verifies a fresh PASSporT: leaf + intermediate fetched over https, chained to the root, SPC from TNAuthList', async () => {
    const v = labVerifier();
    const before = server.hits.length;
    const r = await v.verify(call(identity({ x5u: X5U, key: pki.leaf.key, iat: IAT, attest: 'B', origid: 'oid-1' })));
    expect(r).toEqual({
      verstat: 'TN-Validation-Passed',
      attestation: 'B',
      origid: 'oid-1',
      x5u: X5U,
      spc: '5678',
      authority: 'spc',
      orig: '442079460123',
      errors: [],
      iat: IAT,
      fingerprints: [expect.stringMatching(/^[A-Za-z0-9_-]{43}$/)],
    });
    expect(server.hits.slice(before)).toEqual(['/sp.pem']);
    // Warm: no further request.
    await v.verify(call(identity({ x5u: X5U, key: pki.leaf.key, iat: IAT })));
    expect(server.hits.length).toBe(before + 1);
  });

  it('concurrent verifications for one URL make exactly one fetch', async () => {
    const v = labVerifier();
    const url = `${server.url}/concurrent.pem`;
    const before = server.hits.filter((h) => h === '/concurrent.pem').length;
    const results = await Promise.all(Array.from({ length: 25 }, () => v.verify(call(identity({ x5u: url, key: pki.leaf.key, iat: IAT })))));
    expect(results.every((r) => r.verstat === 'TN-Validation-Passed')).toBe(true);
    expect(server.hits.filter((h) => h === '/concurrent.pem').length - before).toBe(1);
  });

  it('Cache-Control max-age is honoured on the injected clock', async () => {
    let now = Date.now();
    const v = labVerifier({ now: () => now });
    const url = `${server.url}/maxage.pem`;
    const count = () => server.hits.filter((h) => h === '/maxage.pem').length;
    const before = count();
    const tok = identity({ x5u: url, key: pki.leaf.key, iat: IAT });
    await v.verify(call(tok));
    now += 59_000;
    await v.verify(call(tok));
    expect(count() - before).toBe(1);
    now += 2_000;
    expect((await v.verify(call(tok))).verstat).toBe('TN-Validation-Passed');
    expect(count() - before).toBe(2);
  });

  it('a slow server overruns the budget: X5U_FETCH_FAILED quickly, No-TN-Validation', async () => {
    const v = labVerifier({ fetchTimeoutMs: 200 });
    const t0 = Date.now();
    const r = await v.verify(call(identity({ x5u: `${server.url}/slow.pem`, key: pki.leaf.key, iat: IAT })));
    // The budget (200 ms) with ten times that to spare for a slow machine, and still half the
    // 4 s a call that waited for the server would take.
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(r).toMatchObject({ verstat: 'No-TN-Validation', attestation: null, errors: ['X5U_FETCH_FAILED'] });
  });

  it.each([
    ['a redirect', '/redirect.pem'],
    ['an oversize answer', '/big.pem'],
    ['a 503', '/error.pem'],
  ])('%s is X5U_FETCH_FAILED', async (_name, path) => {
    const r = await labVerifier().verify(call(identity({ x5u: `${server.url}${path}`, key: pki.leaf.key, iat: IAT })));
    expect(r).toMatchObject({ verstat: 'No-TN-Validation', errors: ['X5U_FETCH_FAILED'] });
  });

  it('a failing URL is negatively cached: repeated calls do not hammer it', async () => {
    const v = labVerifier();
    const count = () => server.hits.filter((h) => h === '/error.pem').length;
    const before = count();
    for (let i = 0; i < 5; i++) await v.verify(call(identity({ x5u: `${server.url}/error.pem`, key: pki.leaf.key, iat: IAT })));
    expect(count() - before).toBe(1);
  });

  it('an answer without the intermediate does not chain: CERT_UNTRUSTED', async () => {
    const r = await labVerifier().verify(call(identity({ x5u: `${server.url}/leaf-only.pem`, key: pki.leaf.key, iat: IAT })));
    expect(r).toMatchObject({ verstat: 'TN-Validation-Failed', errors: ['CERT_UNTRUSTED'], attestation: null });
    // An SPC that no trusted CA vouched for is not reported.
    expect(r.spc).toBeUndefined();
  });
});

describe('x5u policy in the verifier (not insecure)', () => {
  const strictVerifier = (resolve?: (h: string) => Promise<{ address: string; family: number }[]>) => {
    const v = createShakenVerifier({
      trustAnchors: [pki.root.cert],
      fetcher: createX5uFetcher({ ca: pki.tls.certPem, ...(resolve ? { resolve } : {}) }),
    });
    verifiers.push(v);
    return v;
  };

  it.each([
    ['https to loopback', () => `${server.url}/sp.pem`],
    ['http', () => `http://cr.example.net/sp.pem`],
    ['ftp', () => `ftp://cr.example.net/sp.pem`],
    ['a 10/8 address', () => `https://10.20.30.40/sp.pem`],
    ['IPv6 loopback', () => `https://[::1]:${server.port}/sp.pem`],
    ['IPv4-mapped loopback', () => `https://[::ffff:7f00:1]:${server.port}/sp.pem`],
  ])('%s is X5U_POLICY and never requested', async (_name, url) => {
    const before = server.hits.length;
    const r = await strictVerifier().verify(call(identity({ x5u: url(), key: pki.leaf.key, iat: IAT })));
    expect(r).toMatchObject({ verstat: 'No-TN-Validation', attestation: null, errors: ['X5U_POLICY'] });
    expect(server.hits.length).toBe(before);
  });

  it('a hostname that resolves to loopback is X5U_POLICY', async () => {
    const before = server.hits.length;
    const v = strictVerifier(async () => [{ address: '127.0.0.1', family: 4 }]);
    const r = await v.verify(call(identity({ x5u: `https://certs.test:${server.port}/sp.pem`, key: pki.leaf.key, iat: IAT })));
    expect(r.errors).toEqual(['X5U_POLICY']);
    expect(server.hits.length).toBe(before);
  });

  it('the scheme rule holds for injected fetchers too: they are never handed an ftp: or http: URL', async () => {
    const v = fixtureVerifier({ 'ftp://cr.example.net/sp.pem': pki.chainPem, 'http://cr.example.net/sp.pem': pki.chainPem });
    for (const x5u of ['ftp://cr.example.net/sp.pem', 'http://cr.example.net/sp.pem']) {
      const r = await v.verify(call(shaken({ x5u })));
      expect(r).toMatchObject({ verstat: 'No-TN-Validation', errors: ['X5U_POLICY'] });
    }
    expect(v.fetcher.calls).toEqual([]);
  });

  it('policy plus a definite failure is Failed, not No-TN-Validation', async () => {
    const r = await fixtureVerifier().verify(call(shaken({ x5u: 'ftp://cr.example.net/sp.pem' }), { origCandidates: ['+441632960000'] }));
    expect(r).toMatchObject({ verstat: 'TN-Validation-Failed', errors: ['ORIG_MISMATCH', 'X5U_POLICY'] });
  });
});

describe('diverted calls (RFC 8946 div PASSporTs)', () => {
  it('a div from the signed dest to the called number makes dest match, and is itself verified', async () => {
    const v = fixtureVerifier();
    const r = await v.verify(call([shaken(), div()], { dest: FORWARDED_TO }));
    expect(r).toMatchObject({ verstat: 'TN-Validation-Passed', attestation: 'A', spc: '5678', errors: [] });
    expect(r.fingerprints).toHaveLength(2);
  });

  it('follows several hops', async () => {
    const hop1 = div({ div: '447400123456', dest: ['447400111111'] });
    const hop2 = div({ div: '447400111111', dest: ['447400654321'] });
    const r = await fixtureVerifier().verify(call([shaken(), hop2, hop1], { dest: FORWARDED_TO }));
    expect(r.verstat).toBe('TN-Validation-Passed');
  });

  it('without a div, or with one that does not link, DEST_MISMATCH', async () => {
    const v = fixtureVerifier();
    expect((await v.verify(call(shaken(), { dest: FORWARDED_TO }))).errors).toEqual(['DEST_MISMATCH']);
    expect((await v.verify(call([shaken(), div({ orig: '442079469999' })], { dest: FORWARDED_TO }))).errors).toEqual(['DEST_MISMATCH']);
    expect((await v.verify(call([shaken(), div({ div: '447400999999' })], { dest: FORWARDED_TO }))).errors).toEqual(['DEST_MISMATCH']);
    expect((await v.verify(call([shaken(), div({ dest: ['447400777777'] })], { dest: FORWARDED_TO }))).errors).toEqual(['DEST_MISMATCH']);
  });

  it('a div that fails verification does not divert, and says why', async () => {
    const v = fixtureVerifier();
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    expect((await v.verify(call([shaken(), div({ key: other })], { dest: FORWARDED_TO }))).errors).toEqual(['BAD_SIGNATURE', 'DEST_MISMATCH']);
    expect((await v.verify(call([shaken(), div({ iat: IAT - 600 })], { dest: FORWARDED_TO }))).errors).toEqual(['STALE', 'DEST_MISMATCH']);
  });

  it('a div whose certificate could not be fetched leaves the call unverified, not misdirected', async () => {
    const v = fixtureVerifier();
    const r = await v.verify(call([shaken(), div({ x5u: 'https://cr.example.net/missing.pem' })], { dest: FORWARDED_TO }));
    expect(r).toMatchObject({ verstat: 'No-TN-Validation', attestation: null, errors: ['X5U_FETCH_FAILED'] });
    // Not when the div would not have reached the called number anyway.
    const astray = await v.verify(call([shaken(), div({ x5u: 'https://cr.example.net/missing.pem', dest: ['447400777777'] })], { dest: FORWARDED_TO }));
    expect(astray).toMatchObject({ verstat: 'TN-Validation-Failed', errors: ['DEST_MISMATCH', 'X5U_FETCH_FAILED'] });
    // Nor when another, checked div reaches it.
    const both = await v.verify(call([shaken(), div({ x5u: 'https://cr.example.net/missing.pem' }), div()], { dest: FORWARDED_TO }));
    expect(both.verstat).toBe('TN-Validation-Passed');
  });

  it('div PASSporTs are not even fetched when the call was not diverted', async () => {
    const v = fixtureVerifier();
    const r = await v.verify(call([shaken(), div({ x5u: 'https://cr.example.net/unused.pem' })]));
    expect(r.verstat).toBe('TN-Validation-Passed');
    expect(v.fetcher.calls).toEqual([FX]);
  });

  it('a div alone is not a verification', async () => {
    expect(await fixtureVerifier().verify(call(div(), { dest: FORWARDED_TO }))).toEqual({
      verstat: 'No-TN-Validation',
      attestation: null,
      errors: [],
      fingerprints: [],
    });
  });
});

describe('several identities', () => {
  it('multiple headers and comma-joined headers give the same answer', async () => {
    const v = fixtureVerifier();
    const a = await v.verify(call([shaken(), div()], { dest: FORWARDED_TO }));
    const b = await v.verify(call(`${shaken()}, ${div()}`, { dest: FORWARDED_TO }));
    const c = await v.verify(call([`${shaken()},${div()}`], { dest: FORWARDED_TO }));
    expect(a.verstat).toBe('TN-Validation-Passed');
    expect({ ...b, fingerprints: [] }).toEqual({ ...a, fingerprints: [] });
    expect(c.verstat).toBe(a.verstat);
  });

  it('unknown ppt values are ignored without failing', async () => {
    const v = fixtureVerifier();
    const rph = identity({ x5u: FX, key: pki.leaf.key, iat: IAT, params: `;info=<${FX}>;alg=ES256;ppt=rph` });
    expect(await v.verify(call(rph))).toMatchObject({ verstat: 'No-TN-Validation', errors: [] });
    expect(await v.verify(call([rph, shaken()]))).toMatchObject({ verstat: 'TN-Validation-Passed', errors: [] });
    expect(await v.verify(call(`${shaken()};ppt=shaken;foo=bar;info=<${FX}>`))).toMatchObject({ verstat: 'TN-Validation-Passed' });
  });

  it('the call passes when one shaken PASSporT passes; fails with every error when none does', async () => {
    const v = fixtureVerifier();
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    expect(await v.verify(call([shaken({ key: other }), shaken({ attest: 'C' })]))).toMatchObject({ verstat: 'TN-Validation-Passed', attestation: 'C' });
    expect(await v.verify(call(['garbage;ppt=shaken;info=<x>', shaken()]))).toMatchObject({ verstat: 'TN-Validation-Passed' });
    const r = await v.verify(call([shaken({ key: other }), shaken({ iat: IAT - 3600 }), 'garbage']));
    expect(r).toMatchObject({ verstat: 'TN-Validation-Failed', attestation: null, errors: ['MALFORMED', 'BAD_SIGNATURE', 'STALE'] });
  });

  it('names the x5u of the PASSporT it judged: the one that passed, else the first that names one', async () => {
    const OTHER = 'https://cr.example.net/other.pem';
    const v = fixtureVerifier({ [OTHER]: pki.chainPem });
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    // The first fails (wrong key), the second passes: the passing one's certificate is named.
    expect(await v.verify(call([shaken({ key: other }), shaken({ x5u: OTHER })]))).toMatchObject({ verstat: 'TN-Validation-Passed', x5u: OTHER });
    // None passes: the first one's, whatever the second says.
    expect(await v.verify(call([shaken({ key: other, x5u: OTHER }), shaken({ iat: IAT - 3600 })]))).toMatchObject({ verstat: 'TN-Validation-Failed', x5u: OTHER });
    // A certificate that could not be had is named too: it is the URL an operator traces.
    const missing = 'https://cr.example.net/missing.pem';
    expect(await v.verify(call(shaken({ x5u: missing })))).toMatchObject({ verstat: 'No-TN-Validation', x5u: missing });
    expect(await v.verify(call('garbage'))).not.toHaveProperty('x5u');
  });

  it('no identity at all is No-TN-Validation', async () => {
    for (const id of ['', [], ['', ' , ']]) {
      expect(await fixtureVerifier().verify(call(id))).toEqual({ verstat: 'No-TN-Validation', attestation: null, errors: [], fingerprints: [] });
    }
  });
});

describe('checks and their errors', () => {
  it('collects every error that applies, in one answer', async () => {
    // Dated from the past: minted now, on a busy machine, it could postdate the call's receivedAt (CERT_EXPIRED).
    const v = fixtureVerifier({ 'https://cr.example.net/nochain.pem': pki.issueLeaf('nochain', { tnAuthListDer: null, startDate: '20200101000000Z' }).certPem });
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const tok = signToken(
      { alg: 'ES256', ppt: 'shaken', typ: 'passport', x5u: 'https://cr.example.net/nochain.pem' },
      { attest: 'A', dest: { tn: ['447400999999'] }, iat: IAT - 3600, orig: { tn: '442079469999' } },
      other,
    );
    const r = await v.verify(call(`${tok};info=<https://cr.example.net/elsewhere.pem>;alg=ES256;ppt=shaken`));
    expect(r.verstat).toBe('TN-Validation-Failed');
    expect(r.errors).toEqual([
      'BAD_SIGNATURE',
      'STALE',
      'ORIG_MISMATCH',
      'DEST_MISMATCH',
      'CERT_UNTRUSTED',
      'CERT_NO_TNAUTHLIST',
      'INFO_X5U_MISMATCH',
      'MISSING_CLAIM',
    ]);
    expect(r).toMatchObject({ attestation: null, iat: IAT - 3600 });
  });

  it('FUTURE_IAT past the configured skew', async () => {
    const v = fixtureVerifier({}, { clockSkewS: 30 });
    expect((await v.verify(call(shaken({ iat: IAT + 20 })))).verstat).toBe('TN-Validation-Passed');
    expect((await v.verify(call(shaken({ iat: IAT + 40 })))).errors).toEqual(['FUTURE_IAT']);
  });

  it('maxAgeS is configurable', async () => {
    const v = fixtureVerifier({}, { maxAgeS: 10 });
    // Received 2 s after IAT: ages of 9 s and 11 s.
    expect(await v.verify(call(shaken({ iat: IAT - 7 })))).toMatchObject({ verstat: 'TN-Validation-Passed' });
    expect(await v.verify(call(shaken({ iat: IAT - 9 })))).toMatchObject({ errors: ['STALE'] });
  });

  it('the signature covers the exact transmitted bytes, not a re-encoding', async () => {
    const header = `{"x5u":"${FX}", "typ":"passport","ppt":"shaken",  "alg":"ES256"}`;
    const payload = `{ "orig":{"tn":"442079460123"},"origid":"x","iat":${IAT},"dest":{"tn":["447400123456"]},"attest":"A" }`;
    const tok = signToken(header, payload, pki.leaf.key);
    expect(await fixtureVerifier().verify(call(`${tok};info=<${FX}>;alg=ES256;ppt=shaken`))).toMatchObject({ verstat: 'TN-Validation-Passed' });
  });

  it('a DER-encoded (wrong length) or foreign signature is BAD_SIGNATURE', async () => {
    const [h, p] = shaken().split(';')[0]!.split('.');
    const der = sign('sha256', Buffer.from(`${h}.${p}`), pki.leaf.key).toString('base64url');
    expect((await fixtureVerifier().verify(call(`${h}.${p}.${der};info=<${FX}>;ppt=shaken`))).errors).toEqual(['BAD_SIGNATURE']);
    expect((await fixtureVerifier().verify(call(`${h}.${p}.AAAA;info=<${FX}>;ppt=shaken`))).errors).toEqual(['BAD_SIGNATURE']);
  });

  it('alg none / HS256 are never verified, and their certificate is not even fetched', async () => {
    const v = fixtureVerifier();
    const [, p] = shaken().split(';')[0]!.split('.');
    const hdr = (alg: string) => Buffer.from(JSON.stringify({ alg, ppt: 'shaken', typ: 'passport', x5u: FX })).toString('base64url');
    expect((await v.verify(call(`${hdr('none')}.${p}.;info=<${FX}>;ppt=shaken`))).errors).toEqual(['UNSUPPORTED_ALG']);
    // Algorithm confusion: an HMAC keyed with the certificate's public key, which anyone can compute.
    const hs = `${hdr('HS256')}.${p}`;
    const mac = createHmac('sha256', pki.leaf.cert.publicKey.export({ type: 'spki', format: 'pem' })).update(hs).digest('base64url');
    expect(await v.verify(call(`${hs}.${mac};info=<${FX}>;alg=HS256;ppt=shaken`))).toMatchObject({ verstat: 'TN-Validation-Failed', errors: ['UNSUPPORTED_ALG'] });
    expect(v.fetcher.calls).toEqual([]);
  });

  it('the PAI is an accepted orig; a missing dest never matches', async () => {
    const v = fixtureVerifier();
    expect((await v.verify(call(shaken({ orig: '442079460999' }), { origCandidates: [FROM, '+442079460999'] }))).verstat).toBe('TN-Validation-Passed');
    expect((await v.verify(call(shaken(), { dest: null }))).errors).toEqual(['DEST_MISMATCH']);
    expect((await v.verify(call(shaken(), { origCandidates: [] }))).errors).toEqual(['ORIG_MISMATCH']);
  });

  it('with no trust anchors nothing is trusted', async () => {
    const v = createShakenVerifier({ trustAnchors: [], fetcher: mapFetcher({ [FX]: pki.chainPem }) });
    expect(await v.verify(call(shaken()))).toMatchObject({ verstat: 'TN-Validation-Failed', errors: ['CERT_UNTRUSTED'] });
  });

  it('an expired leaf (own PKI) is CERT_EXPIRED, judged at receivedAt', async () => {
    const old = pki.issueLeaf('old', { startDate: '20200101000000Z', endDate: '20210101000000Z' });
    const x5u = 'https://cr.example.net/old.pem';
    const v = fixtureVerifier({ [x5u]: old.certPem + pki.intermediate.certPem });
    const tok = (iat: number) => identity({ x5u, key: old.key, iat });
    expect(await v.verify(call(tok(IAT)))).toMatchObject({ verstat: 'TN-Validation-Failed', errors: ['CERT_EXPIRED'], spc: '5678' });
    // Received while the leaf was valid, but before our intermediate (made today) existed:
    // every certificate on the path is judged at receivedAt.
    const r = await v.verify(call(tok(Date.parse('2020-06-01T00:00:00Z') / 1000), { receivedAt: new Date('2020-06-01T00:00:01Z') }));
    expect(r.errors).toEqual(['CERT_EXPIRED']);
  });

  it('fingerprints are stable across calls and survive ECDSA re-signing tricks (s -> n - s)', async () => {
    const v = fixtureVerifier();
    const tok = shaken();
    const [h, p, s] = tok.split(';')[0]!.split('.') as [string, string, string];
    const sig = Buffer.from(s, 'base64url');
    const N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
    const flipped = Buffer.concat([sig.subarray(0, 32), Buffer.from((N - BigInt('0x' + sig.toString('hex', 32))).toString(16).padStart(64, '0'), 'hex')]);
    const a = await v.verify(call(tok));
    const b = await v.verify(call(tok));
    const c = await v.verify(call(`${h}.${p}.${flipped.toString('base64url')};info=<${FX}>;ppt=shaken`));
    expect(c.verstat).toBe('TN-Validation-Passed');
    expect(b.fingerprints).toEqual(a.fingerprints);
    expect(c.fingerprints).toEqual(a.fingerprints);
    expect((await v.verify(call(shaken()))).fingerprints).not.toEqual(a.fingerprints);
  });
});

describe('robustness', () => {
  it('never throws, whatever the fetcher or the input does', async () => {
    const nasty: CertificateFetcher[] = [
      {
        fetch: () => {
          throw 'a string';
        },
      },
      { fetch: async () => null as unknown as { body: string } },
      { fetch: async () => ({ body: undefined as unknown as string }) },
      { fetch: async () => ({ body: pki.chainPem, maxAgeS: NaN }) },
      { fetch: async () => ({ body: pki.chainPem, maxAgeS: -5 }) },
      { fetch: () => new Promise(() => {}) },
    ];
    for (const fetcher of nasty) {
      const v = createShakenVerifier({ trustAnchors: [pki.root.cert], fetcher, fetchTimeoutMs: 50 });
      verifiers.push(v);
      const r = await v.verify(call(shaken()));
      expect(['TN-Validation-Passed', 'No-TN-Validation']).toContain(r.verstat);
    }
    const v = fixtureVerifier();
    const junk = [
      { identity: null },
      { identity: 42 },
      { identity: [null, 7, shaken()] },
      { receivedAt: new Date('nope') },
      { receivedAt: 'yesterday' },
      { origCandidates: null },
      { origCandidates: [null, 5] },
      { dest: 7 },
    ] as unknown as Partial<VerifyInput>[];
    for (const over of junk) {
      await expect(v.verify(call(shaken(), over))).resolves.toHaveProperty('verstat');
    }
    await expect(v.verify(null as unknown as VerifyInput)).resolves.toMatchObject({ verstat: 'TN-Validation-Failed', errors: ['MALFORMED'] });
  });

  it('caps the identities verified per call', async () => {
    const v = fixtureVerifier({}, { maxIdentities: 3 });
    const many = Array.from({ length: 20 }, (_, i) => shaken({ x5u: `https://cr.example.net/${i}.pem` }));
    const r = await v.verify(call(many));
    expect(v.fetcher.calls.length).toBeLessThanOrEqual(3);
    expect(r.errors).toContain('MALFORMED');
  });
});

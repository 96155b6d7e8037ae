import { generateKeyPairSync, X509Certificate, type KeyObject } from 'node:crypto';
import {
  CertCache,
  ChainJudge,
  createShakenVerifier,
  evaluateChain,
  FetchSlots,
  IP_LITERAL_SITE,
  MAX_SIGNATURE_CHECKS,
  siteOf,
  type CertificateFetcher,
  type DefaultShakenVerifier,
} from '../../src/shaken';
import { forgeCert, rsaHugeExponentKeyPair, rsaPublicKey, tnAuthList, type SigAlg } from './forge';
import { identity, makePki, mapFetcher, type Pki } from './helpers';

/** Inputs built to be expensive: what each may cost, and that honest work still gets through. */

const SPC = tnAuthList([{ spc: '1234' }]);
const IAT = Math.floor(Date.now() / 1000);
const AT = new Date(IAT * 1000 + 2000);
const FROM = '+442079460123';
const TO = '+447400123456';

interface Pair {
  privateKey: KeyObject;
  publicKey: KeyObject;
}
const p256 = (): Pair => generateKeyPairSync('ec', { namedCurve: 'P-256' });

/** A P-256 leaf and `cas` CA certificates sharing one key and one name: each "issues" every other. */
function mesh(caKey: Pair, cas: number, alg: SigAlg, leafKey = p256()): string {
  const name = `Mesh ${Math.random()}`;
  let pem = forgeCert({ subject: 'Leaf', issuer: name, publicKey: leafKey.publicKey, ca: false, tnAuthList: SPC, signWith: { key: caKey.privateKey, alg } }).pem;
  for (let i = 0; i < cas; i++) pem += forgeCert({ subject: name, issuer: name, publicKey: caKey.publicKey, ca: true, signWith: { key: caKey.privateKey, alg } }).pem;
  return pem;
}

let pki: Pki;
let verifySpy: jest.SpyInstance;
const verifiers: DefaultShakenVerifier[] = [];
beforeAll(() => {
  pki = makePki();
});
beforeEach(() => {
  verifySpy = jest.spyOn(X509Certificate.prototype, 'verify');
});
afterEach(() => verifySpy.mockRestore());
afterAll(async () => {
  await Promise.all(verifiers.map((v) => v.close()));
  pki.cleanup();
});

describe('judging a hostile x5u answer costs a bounded number of signature checks', () => {
  it('more than four certificates: refused before any signature is checked', () => {
    expect(() => evaluateChain(mesh(p256(), 4, 'ecdsa-sha256'), [pki.root.cert])).toThrow(/more than 4/);
    expect(verifySpy).not.toHaveBeenCalled();
  });

  it('CA certificates that all issue one another: no search over orderings, at most three checks', () => {
    const info = evaluateChain(mesh(p256(), 3, 'ecdsa-sha256'), [pki.root.cert]);
    expect(info.errors).toEqual(['CERT_UNTRUSTED']);
    expect(verifySpy.mock.calls.length).toBeLessThanOrEqual(MAX_SIGNATURE_CHECKS);
  });

  it('CA certificates with a key SHAKEN does not use (RSA with a 3072-bit exponent, RSA-16384) cost no check at all', () => {
    const hugeE = rsaHugeExponentKeyPair(3072);
    expect(evaluateChain(mesh(hugeE, 3, 'rsa-sha256'), [pki.root.cert]).errors).toEqual(['CERT_UNTRUSTED']);
    const big = forgeCert({ subject: 'Big', issuer: 'Big', publicKey: rsaPublicKey(16384), ca: true, signWith: { alg: 'rsa-sha256', bytes: 2048 } }).pem;
    const leaf = forgeCert({ subject: 'Leaf', issuer: 'Big', publicKey: p256().publicKey, ca: false, tnAuthList: SPC, signWith: { alg: 'rsa-sha256', bytes: 2048 } }).pem;
    expect(evaluateChain(leaf + big + big + big, [pki.root.cert]).errors).toEqual(['CERT_UNTRUSTED']);
    expect(verifySpy).not.toHaveBeenCalled();
  });

  it('an honest chain next to such a certificate still verifies; leaf -> two intermediates -> root too', () => {
    const big = forgeCert({ subject: 'Test STI-CA Intermediate', issuer: 'X', publicKey: rsaPublicKey(8192), ca: true, signWith: { alg: 'rsa-sha256', bytes: 1024 } }).pem;
    expect(evaluateChain(pki.leaf.certPem + big + pki.intermediate.certPem, [pki.root.cert]).errors).toEqual([]);

    const root = p256();
    const rootCert = new X509Certificate(forgeCert({ subject: 'R', issuer: 'R', publicKey: root.publicKey, ca: true, signWith: { key: root.privateKey, alg: 'ecdsa-sha256' } }).pem);
    const [i1, i2] = [p256(), p256()];
    const chain =
      forgeCert({ subject: 'L', issuer: 'I2', publicKey: p256().publicKey, ca: false, tnAuthList: SPC, signWith: { key: i2.privateKey, alg: 'ecdsa-sha256' } }).pem +
      forgeCert({ subject: 'I1', issuer: 'R', publicKey: i1.publicKey, ca: true, signWith: { key: root.privateKey, alg: 'ecdsa-sha256' } }).pem +
      forgeCert({ subject: 'I2', issuer: 'I1', publicKey: i2.publicKey, ca: true, signWith: { key: i1.privateKey, alg: 'ecdsa-sha256' } }).pem;
    expect(evaluateChain(chain, [rootCert])).toMatchObject({ errors: [], spc: '1234' });
  });

  it('the same certificates are judged once, whatever URL or explanatory text they come with', async () => {
    const body = mesh(p256(), 3, 'ecdsa-sha256');
    const judge = new ChainJudge([pki.root.cert]);
    judge.judge(body);
    const checks = verifySpy.mock.calls.length;
    judge.judge(`padding to make the body differ\n${body}more padding\n`);
    expect(verifySpy.mock.calls.length).toBe(checks);

    const cache = new CertCache({ fetcher: mapFetcher({ 'https://a.evil.example/1.pem': body, 'https://b.evil.example/2.pem': `x\n${body}` }), trustAnchors: [pki.root.cert] });
    await cache.get('https://a.evil.example/1.pem');
    const afterFirst = verifySpy.mock.calls.length;
    await cache.get('https://b.evil.example/2.pem');
    expect(verifySpy.mock.calls.length).toBe(afterFirst);
  });
});

describe('what one call may cost', () => {
  const FX = (n: number) => `https://cr${n}.example.net/sp.pem`;
  function verifier(extra: Partial<Parameters<typeof createShakenVerifier>[0]> = {}, fetcher?: CertificateFetcher) {
    const f = fetcher ?? mapFetcher(Object.fromEntries([1, 2, 3, 4, 5].map((n) => [FX(n), pki.chainPem])));
    const v = createShakenVerifier({ trustAnchors: [pki.root.cert], fetcher: f, ...extra });
    verifiers.push(v);
    return Object.assign(v, { fetcher: f as ReturnType<typeof mapFetcher> });
  }
  const signed = (x5u: string) => identity({ x5u, key: pki.leaf.key, iat: IAT });

  it('loads at most two certificates it does not already hold; the rest are unverified, not failed', async () => {
    const v = verifier();
    const r = await v.verify({ identity: [1, 2, 3, 4].map((n) => signed(FX(n))), origCandidates: [FROM], dest: TO, receivedAt: AT });
    expect(v.fetcher.calls).toHaveLength(2);
    expect(r.verstat).toBe('TN-Validation-Passed');
    // Once those are held, the next call may load two more.
    await v.verify({ identity: [3, 4].map((n) => signed(FX(n))), origCandidates: [FROM], dest: TO, receivedAt: AT });
    expect(v.fetcher.calls).toHaveLength(4);
  });

  it('a PASSporT left without its certificate by the allowance is No-TN-Validation, not a forgery', async () => {
    const v = verifier({ maxColdLoadsPerCall: 0 });
    expect(await v.verify({ identity: signed(FX(5)), origCandidates: [FROM], dest: TO, receivedAt: AT })).toMatchObject({
      verstat: 'No-TN-Validation',
      errors: ['X5U_FETCH_FAILED'],
    });
  });

  it('reads at most five Identity values; the rest make the call carry MALFORMED', () => {
    const v = verifier();
    const entries = v.read(Array.from({ length: 10 }, () => signed(FX(1)))).entries!;
    expect(entries).toHaveLength(6);
    expect(entries[5]!.errors).toEqual(['MALFORMED']);
  });
});

describe('fair fetching', () => {
  it('a flood of URLs on a host that never answers does not keep an honest certificate from another host', async () => {
    const started: string[] = [];
    const fetcher: CertificateFetcher = {
      fetch: (url, signal) => {
        started.push(url);
        if (new URL(url).hostname.endsWith('evil.example')) {
          return new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(new Error('aborted'))));
        }
        return Promise.resolve({ body: pki.chainPem });
      },
    };
    const v = createShakenVerifier({ trustAnchors: [pki.root.cert], fetcher, fetchTimeoutMs: 1000 });
    verifiers.push(v);
    const flood = Array.from({ length: 300 }, (_, i) =>
      v.verify({ identity: identity({ x5u: `https://cr${i}.evil.example/${i}.pem`, key: pki.leaf.key, iat: IAT }), origCandidates: [FROM], dest: TO, receivedAt: AT }),
    );
    // The flood's fetches never answer, so their slots are never freed within a budget: the
    // honest certificate, had it waited for one, would be X5U_FETCH_FAILED at its 1000 ms budget.
    // Passing is being verified within it, however long this machine takes to get there.
    const honest = await v.verify({ identity: identity({ x5u: 'https://cr.carrier.example/sp.pem', key: pki.leaf.key, iat: IAT }), origCandidates: [FROM], dest: TO, receivedAt: AT });
    expect(honest.verstat).toBe('TN-Validation-Passed');
    // The hostile site got its own few slots, not the service's.
    expect(started.filter((u) => u.includes('evil.example')).length).toBeLessThanOrEqual(4);
    const flooded = await Promise.all(flood);
    expect(flooded.every((r) => r.verstat === 'No-TN-Validation')).toBe(true);
    await v.close();
  });

  it('a freed slot goes to the site holding the fewest, not to the longest queue', async () => {
    const slots = new FetchSlots({ total: 2, perSite: 2, maxWaitMs: 5000 });
    const a1 = (await slots.acquire('a'))!;
    await slots.acquire('a');
    const queuedA = slots.acquire('a');
    const queuedB = slots.acquire('b');
    const order: string[] = [];
    void queuedA.then((r) => r && order.push('a'));
    void queuedB.then((r) => r && order.push('b'));
    a1();
    await new Promise((r) => setImmediate(r));
    expect(order).toEqual(['b']);
    slots.clear();
    expect(await queuedA).toBeNull();
  });

  it("a site's queue is bounded: past it a fetch is refused at once", async () => {
    const slots = new FetchSlots({ total: 10, perSite: 1, queuePerSite: 2, maxWaitMs: 5000 });
    await slots.acquire('a');
    const waiting = [slots.acquire('a'), slots.acquire('a')];
    expect(await slots.acquire('a')).toBeNull();
    expect(await slots.acquire('b')).not.toBeNull();
    slots.clear();
    expect(await Promise.all(waiting)).toEqual([null, null]);
  });

  it.each([
    ['cr1.evil.example', 'evil.example'],
    ['a.b.cr2.evil.example.', 'evil.example'],
    ['Certs.Carrier.NET', 'carrier.net'],
    ['cr.carrier.co.uk', 'carrier.co.uk'],
    ['carrier.co.uk', 'carrier.co.uk'],
    ['localhost', 'localhost'],
    ['203.0.113.7', IP_LITERAL_SITE],
    ['[2001:db8::1]', IP_LITERAL_SITE],
  ])('the site of %s is %s', (host, site) => {
    expect(siteOf(host)).toBe(site);
  });
});

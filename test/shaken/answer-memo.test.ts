import { createHash } from 'node:crypto';
import { ChainJudge, createShakenVerifier, type CertificateFetcher, type DefaultShakenVerifier } from '../../src/shaken';
import { identity, makePki, type Pki } from './helpers';

/**
 * The chain judge remembers answers by their certificates. Anyone can download a carrier's
 * public chain, so no answer an attacker can serve may reach the memo entry of that chain:
 * here, one "certificate" whose bytes are the base64url SHA-256 digests of the genuine leaf
 * and intermediate, one after the other.
 */

const IAT = Math.floor(Date.now() / 1000);
const AT = new Date(IAT * 1000 + 2000);
const FROM = '+442079460123';
const TO = '+447400123456';
const GENUINE = 'https://cert.genuine-carrier.co.uk/sp.pem';

const b64digest = (der: Buffer) => createHash('sha256').update(der).digest('base64url');
const pemOf = (der: Buffer) => `-----BEGIN CERTIFICATE-----\n${der.toString('base64')}\n-----END CERTIFICATE-----\n`;

let pki: Pki;
let poison: string;
const verifiers: DefaultShakenVerifier[] = [];
beforeAll(() => {
  pki = makePki();
  poison = pemOf(Buffer.from(b64digest(Buffer.from(pki.leaf.cert.raw)) + b64digest(Buffer.from(pki.intermediate.cert.raw))));
});
afterAll(async () => {
  await Promise.all(verifiers.map((v) => v.close()));
  pki.cleanup();
});

describe('chain judge answer memo', () => {
  it("an unparseable answer built from a genuine chain's digests does not change how that chain is judged", () => {
    const judge = new ChainJudge([pki.root.cert]);
    expect(() => judge.judge(poison)).toThrow();
    expect(judge.judge(pki.chainPem).errors).toEqual([]);
  });

  it('nor after the genuine answer was pushed out of the memo by other answers', () => {
    const judge = new ChainJudge([pki.root.cert], { memoSize: 2 });
    expect(judge.judge(pki.chainPem).errors).toEqual([]);
    judge.judge(pki.issueLeaf('other').certPem + pki.intermediate.certPem);
    judge.judge(pki.leaf.certPem);
    expect(() => judge.judge(poison)).toThrow();
    expect(judge.judge(pki.chainPem).errors).toEqual([]);
  });

  it('a single certificate and a list are keyed apart: the leaf alone is untrusted, leaf and intermediate are trusted, in any order of judging', () => {
    const judge = new ChainJudge([pki.root.cert]);
    expect(judge.judge(pki.leaf.certPem).errors).toEqual(['CERT_UNTRUSTED']);
    expect(judge.judge(pki.chainPem).errors).toEqual([]);
    expect(judge.judge(pki.leaf.certPem).errors).toEqual(['CERT_UNTRUSTED']);
  });

  it('a certificate that does not parse is refused every time', () => {
    const judge = new ChainJudge([pki.root.cert]);
    const junk = pemOf(Buffer.from('not a certificate'));
    expect(() => judge.judge(junk)).toThrow();
    expect(() => judge.judge(junk)).toThrow();
    expect(() => judge.judge(pki.chainPem + junk)).toThrow();
  });
});

describe('through the verifier: the reproduction', () => {
  it("a poison answer at the attacker's own x5u leaves the carrier's calls verified once its chain is fetched again", async () => {
    let t = Date.now();
    let junk = 0;
    const fetcher: CertificateFetcher = {
      async fetch(url) {
        if (url === GENUINE) return { body: pki.chainPem, maxAgeS: 1 };
        if (url.includes('/poison')) return { body: poison };
        // Distinct unparseable answers, to push the genuine answer out of the judge's memo.
        return { body: pemOf(Buffer.from(`junk-${junk++}`)) };
      },
    };
    const v = createShakenVerifier({ trustAnchors: [pki.root.cert], fetcher, now: () => t });
    verifiers.push(v);
    const genuine = () => v.verify({ identity: identity({ x5u: GENUINE, key: pki.leaf.key, iat: IAT }), origCandidates: [FROM], dest: TO, receivedAt: AT });

    expect((await genuine()).verstat).toBe('TN-Validation-Passed');
    for (let i = 0; i < 2100; i++) await v.certCache.get(`https://junk${i}.evil-attacker.net/a.pem`);
    const attacker = await v.verify({ identity: identity({ x5u: 'https://cr.evil-attacker.net/poison.pem', key: pki.leaf.key, iat: IAT }), origCandidates: [FROM], dest: TO, receivedAt: AT });
    expect(attacker).toMatchObject({ verstat: 'No-TN-Validation', errors: ['X5U_FETCH_FAILED'] });
    // The genuine URL's cache entry expires (max-age 1 s) and its chain is fetched and judged again.
    t += 1500;
    expect(v.certCache.peek(GENUINE)).toBeUndefined();
    expect(await genuine()).toMatchObject({ verstat: 'TN-Validation-Passed', errors: [] });
    expect(await genuine()).toMatchObject({ verstat: 'TN-Validation-Passed', errors: [] });
  });
});

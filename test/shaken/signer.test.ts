import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  canonicalJson,
  createShakenVerifier,
  decodePassport,
  loadPassportSigner,
  parseIdentity,
  PassportSigner,
  shakenIdentity,
  SigningKeyError,
  verifyEs256,
  type DefaultShakenVerifier,
} from '../../src/shaken';
import { StartupError } from '../../src/errors';
import { makePki, mapFetcher, type Pki } from './helpers';

const X5U = 'https://certs.test/sp.pem';
/** A whole second shortly after the test PKI's certificates begin. */
const NOW_MS = (Math.floor(Date.now() / 1000) + 60) * 1000;
const IAT = NOW_MS / 1000;

let pki: Pki;
let verifier: DefaultShakenVerifier;
beforeAll(() => {
  pki = makePki();
  verifier = createShakenVerifier({ trustAnchors: [pki.root.cert], fetcher: mapFetcher({ [X5U]: pki.chainPem }), allowInsecure: false, maxAgeS: 60, now: () => NOW_MS });
});
afterAll(async () => {
  await verifier.close();
  pki.cleanup();
});

const partsOf = (identity: string) => {
  const [jws, ...params] = identity.split(';');
  const [h, p, s] = jws!.split('.');
  return { header: Buffer.from(h!, 'base64url').toString(), payload: Buffer.from(p!, 'base64url').toString(), signature: Buffer.from(s!, 'base64url'), params };
};

describe('canonicalJson (RFC 8225 section 9)', () => {
  it('sorts keys at every depth, drops undefined and adds no whitespace', () => {
    expect(canonicalJson({ z: 1, a: { y: [{ b: 2, a: 'x' }], c: undefined }, m: null })).toBe('{"a":{"y":[{"a":"x","b":2}]},"m":null,"z":1}');
  });
});

describe('shakenIdentity', () => {
  const claims = { attest: 'A' as const, orig: '442079460123', dest: ['447400123456', '447400654321'], iat: IAT, origid: '123e4567-e89b-12d3-a456-426614174000' };

  it('writes the canonical header and claims, a raw r||s signature and the full-form parameters', () => {
    const identity = shakenIdentity(claims, pki.leaf.key, X5U);
    const { header, payload, signature, params } = partsOf(identity);
    expect(header).toBe(`{"alg":"ES256","ppt":"shaken","typ":"passport","x5u":"${X5U}"}`);
    expect(payload).toBe(`{"attest":"A","dest":{"tn":["447400123456","447400654321"]},"iat":${IAT},"orig":{"tn":"442079460123"},"origid":"123e4567-e89b-12d3-a456-426614174000"}`);
    expect(signature).toHaveLength(64);
    expect(params).toEqual([`info=<${X5U}>`, 'alg=ES256', 'ppt=shaken']);
  });

  it('decodes with the service reader, with no error, and its signature verifies with the leaf key', async () => {
    const decoded = decodePassport(parseIdentity(shakenIdentity(claims, pki.leaf.key, X5U)));
    expect(decoded).toMatchObject({ kind: 'shaken', x5u: X5U, es256: true, errors: [], claims: { attest: 'A', orig: claims.orig, dest: claims.dest, iat: IAT, origid: claims.origid } });
    await expect(verifyEs256(decoded.signingInput!, decoded.signature!, pki.leaf.cert.publicKey)).resolves.toBe(true);
    await expect(verifyEs256(decoded.signingInput!, decoded.signature!, pki.intermediate.cert.publicKey)).resolves.toBe(false);
  });

  it('passes the service verifier against a PKI whose leaf holds a TNAuthList', async () => {
    const v = await verifier.verify({ identity: shakenIdentity(claims, pki.leaf.key, X5U), origCandidates: ['+442079460123'], dest: '+447400123456', receivedAt: new Date(NOW_MS + 1000) });
    expect(v).toMatchObject({ verstat: 'TN-Validation-Passed', attestation: 'A', origid: claims.origid, spc: '5678', errors: [] });
  });

  it('signed by a key the certificate does not hold, it fails verification (the test can fail)', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const v = await verifier.verify({ identity: shakenIdentity(claims, privateKey, X5U), origCandidates: ['+442079460123'], dest: '+447400123456', receivedAt: new Date(NOW_MS + 1000) });
    expect(v.verstat).toBe('TN-Validation-Failed');
    expect(v.errors).toContain('BAD_SIGNATURE');
  });
});

describe('PassportSigner', () => {
  it('fills iat from its clock and origid with a fresh UUID when not given', () => {
    const signer = new PassportSigner(pki.leaf.key, X5U, () => NOW_MS + 999);
    const a = signer.sign({ attest: 'B', orig: '442079460123', dest: ['447400123456'] });
    const b = signer.sign({ attest: 'B', orig: '442079460123', dest: ['447400123456'] });
    expect(a.claims.iat).toBe(IAT);
    expect(a.claims.origid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(b.claims.origid).not.toBe(a.claims.origid);
    expect(JSON.parse(partsOf(a.identity).payload)).toMatchObject({ iat: IAT, origid: a.claims.origid });
  });

  it('keeps the iat and origid it is given', () => {
    const signer = new PassportSigner(pki.leaf.key, X5U, () => NOW_MS);
    expect(signer.sign({ attest: 'C', orig: '442079460123', dest: ['447400123456'], iat: 1700000000, origid: 'gw-1' }).claims).toMatchObject({ iat: 1700000000, origid: 'gw-1' });
  });
});

describe('loadPassportSigner (start-up checks)', () => {
  const file = (name: string, text: string) => {
    const path = join(pki.dir, name);
    writeFileSync(path, text);
    return path;
  };
  const pem = (type: 'rsa' | 'ec', curve?: string) =>
    (type === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ec', { namedCurve: curve! })).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const load = (over: Partial<Parameters<typeof loadPassportSigner>[0]> = {}) =>
    loadPassportSigner({ keyFile: join(pki.dir, 'leaf.key'), x5u: X5U, allowInsecureX5u: false, now: () => NOW_MS, ...over });
  const refusal = (over: Partial<Parameters<typeof loadPassportSigner>[0]>): Error => {
    try {
      load(over);
    } catch (err) {
      expect(err).toBeInstanceOf(SigningKeyError);
      expect(err).toBeInstanceOf(StartupError);
      return err as Error;
    }
    throw new Error('expected a refusal');
  };

  it('accepts the P-256 leaf key with its certificate, without warnings', () => {
    const { signer, warnings } = load({ certFile: join(pki.dir, 'leaf.crt') });
    expect(warnings).toEqual([]);
    expect(signer.x5u).toBe(X5U);
  });

  it('refuses an RSA key, naming SHAKEN_SIGNING_KEY', () => {
    expect(refusal({ keyFile: file('rsa.key', pem('rsa')) }).message).toMatch(/^SHAKEN_SIGNING_KEY: .*rsa\.key holds an RSA key; .*EC P-256/);
  });

  it('refuses an EC P-384 key', () => {
    expect(refusal({ keyFile: file('p384.key', pem('ec', 'P-384')) }).message).toMatch(/^SHAKEN_SIGNING_KEY: .*P-384.*EC P-256/);
  });

  it('refuses an unreadable file and a file that is not a private key', () => {
    expect(refusal({ keyFile: join(pki.dir, 'missing.key') }).message).toMatch(/^SHAKEN_SIGNING_KEY: cannot read/);
    expect(refusal({ keyFile: join(pki.dir, 'leaf.crt') }).message).toMatch(/^SHAKEN_SIGNING_KEY: .* is not a PEM private key/);
  });

  it('refuses a key that does not match SHAKEN_SIGNING_CERT', () => {
    expect(refusal({ keyFile: file('other.key', pem('ec', 'P-256')), certFile: join(pki.dir, 'leaf.crt') }).message).toMatch(/^SHAKEN_SIGNING_KEY does not match the certificate in SHAKEN_SIGNING_CERT/);
  });

  it('requires SHAKEN_SIGNING_X5U, https unless SHAKEN_X5U_ALLOW_INSECURE', () => {
    expect(refusal({ x5u: undefined }).message).toMatch(/^SHAKEN_SIGNING_X5U is required/);
    expect(refusal({ x5u: 'http://certs.test/sp.pem' }).message).toMatch(/^SHAKEN_SIGNING_X5U: .*scheme http/);
    expect(refusal({ x5u: 'https://localhost/sp.pem' }).message).toMatch(/^SHAKEN_SIGNING_X5U: /);
    expect(load({ x5u: 'http://127.0.0.1:8080/sp.pem', allowInsecureX5u: true }).signer.x5u).toBe('http://127.0.0.1:8080/sp.pem');
  });

  it('warns about a certificate without TNAuthList or out of its validity', () => {
    const bare = pki.issueLeaf('bare', { tnAuthListDer: null });
    expect(load({ keyFile: join(pki.dir, 'bare.key'), certFile: join(pki.dir, 'bare.crt') }).warnings).toEqual([expect.stringMatching(/no TNAuthList/)]);
    expect(bare.cert.checkPrivateKey(bare.key)).toBe(true);
    expect(load({ certFile: join(pki.dir, 'leaf.crt'), now: () => Date.parse('2100-01-01T00:00:00Z') }).warnings).toEqual([expect.stringMatching(/not valid now/)]);
  });
});

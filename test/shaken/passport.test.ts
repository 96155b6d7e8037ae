import { generateKeyPairSync, sign } from 'node:crypto';
import { decodePassport, freshnessError, parseIdentity, signatureFingerprint, tnDigits, verifyEs256 } from '../../src/shaken';
import { signToken } from './helpers';

const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const X5U = 'https://cr.example/sp.pem';
const header = { alg: 'ES256', ppt: 'shaken', typ: 'passport', x5u: X5U };
const payload = { attest: 'A', dest: { tn: ['447400123456'] }, iat: 1796126400, orig: { tn: '442079460123' }, origid: 'o-1' };
const decode = (h: object | string, p: object | string, params = `;info=<${X5U}>;alg=ES256;ppt=shaken`) =>
  decodePassport(parseIdentity(signToken(h, p, privateKey) + params));

describe('decodePassport', () => {
  it('reads a well-formed shaken PASSporT with no errors', () => {
    const d = decode(header, payload);
    expect(d).toMatchObject({ kind: 'shaken', x5u: X5U, es256: true, errors: [] });
    expect(d.claims).toEqual({ attest: 'A', dest: ['447400123456'], iat: 1796126400, orig: '442079460123', origid: 'o-1' });
    expect(d.signature).toHaveLength(64);
  });

  it.each(['none', 'HS256', 'RS256', 'ES384', 'es256', undefined])('alg %s is UNSUPPORTED_ALG and never verifiable', (alg) => {
    const d = decode({ ...header, alg }, payload);
    expect(d.errors).toContain('UNSUPPORTED_ALG');
    expect(d.es256).toBe(false);
  });

  it('the Identity alg parameter must be ES256 too', () => {
    const d = decode(header, payload, `;info=<${X5U}>;alg=HS256;ppt=shaken`);
    expect(d.errors).toEqual(['UNSUPPORTED_ALG']);
    expect(d.es256).toBe(false);
  });

  it('typ and ppt must be passport / the identity kind', () => {
    expect(decode({ ...header, typ: 'JWT' }, payload).errors).toEqual(['MALFORMED']);
    expect(decode({ ...header, ppt: undefined }, payload).errors).toEqual(['MALFORMED']);
  });

  it('INFO_X5U_MISMATCH when x5u is missing or differs from info', () => {
    expect(decode({ ...header, x5u: undefined }, payload).errors).toEqual(['INFO_X5U_MISMATCH']);
    expect(decode(header, payload, ';info=<https://cr.example/other.pem>;ppt=shaken').errors).toEqual(['INFO_X5U_MISMATCH']);
  });

  it.each(['attest', 'dest', 'iat', 'orig', 'origid'])('missing %s is MISSING_CLAIM', (claim) => {
    const p: Record<string, unknown> = { ...payload };
    delete p[claim];
    expect(decode(header, p).errors).toEqual(['MISSING_CLAIM']);
  });

  it('claims of the wrong shape are MALFORMED', () => {
    expect(decode(header, { ...payload, attest: 'D' }).errors).toEqual(['MALFORMED']);
    expect(decode(header, { ...payload, iat: 1.5 }).errors).toEqual(['MALFORMED']);
    expect(decode(header, { ...payload, iat: '1796126400' }).errors).toEqual(['MALFORMED']);
    expect(decode(header, { ...payload, dest: { tn: '447400123456' } }).errors).toEqual(['MALFORMED']);
    expect(decode(header, { ...payload, dest: { tn: [] } }).errors).toEqual(['MALFORMED']);
    expect(decode(header, { ...payload, orig: { tn: 442079460123 } }).errors).toEqual(['MALFORMED']);
    expect(decode(header, '[1,2]').errors).toEqual(['MALFORMED']);
    expect(decode(header, 'not json').errors).toEqual(['MALFORMED']);
  });

  it('collects every error at once, deduplicated', () => {
    const d = decode({ alg: 'none', typ: 'x', ppt: 'shaken' }, { attest: 'Z', dest: {} }, ';info=<https://x.example/y.pem>;alg=none;ppt=shaken');
    expect(new Set(d.errors)).toEqual(new Set(['UNSUPPORTED_ALG', 'MALFORMED', 'INFO_X5U_MISMATCH', 'MISSING_CLAIM']));
    expect(d.errors.length).toBe(new Set(d.errors).size);
  });

  it('a div PASSporT needs div.tn instead of attest/origid', () => {
    const divHeader = { ...header, ppt: 'div' };
    const params = `;info=<${X5U}>;ppt=div`;
    const ok = decode(divHeader, { dest: { tn: ['447400654321'] }, div: { tn: '+44 7400 123456' }, iat: 1, orig: { tn: '442079460123' } }, params);
    expect(ok).toMatchObject({ kind: 'div', errors: [] });
    expect(ok.claims.div).toBe('447400123456');
    expect(decode(divHeader, { dest: { tn: ['447400654321'] }, iat: 1, orig: { tn: '442079460123' } }, params).errors).toEqual(['MISSING_CLAIM']);
  });

  it('TNs are reduced to digits', () => {
    expect(decode(header, { ...payload, orig: { tn: '+44 (20) 7946-0123' } }).claims.orig).toBe('442079460123');
    expect(tnDigits('+44-7400 123456')).toBe('447400123456');
  });
});

describe('freshnessError', () => {
  const iat = 1796126400;
  it('judges iat against receivedAt with maxAge and skew', () => {
    expect(freshnessError(iat, iat * 1000 + 60_000, 60, 5)).toBeNull();
    expect(freshnessError(iat, iat * 1000 + 60_001, 60, 5)).toBe('STALE');
    expect(freshnessError(iat, iat * 1000 - 5_000, 60, 5)).toBeNull();
    expect(freshnessError(iat, iat * 1000 - 5_001, 60, 5)).toBe('FUTURE_IAT');
    expect(freshnessError(iat, iat * 1000 - 5_001, 60, 10)).toBeNull();
  });
});

describe('verifyEs256', () => {
  const input = 'aGVhZGVy.cGF5bG9hZA';
  const sig = sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' });

  it('verifies raw r||s over the exact bytes', async () => {
    expect(await verifyEs256(input, sig, publicKey)).toBe(true);
    expect(await verifyEs256(input + 'x', sig, publicKey)).toBe(false);
  });

  it('a signature of the wrong length (e.g. DER) is simply bad', async () => {
    const der = sign('sha256', Buffer.from(input), privateKey);
    expect(await verifyEs256(input, der, publicKey)).toBe(false);
    expect(await verifyEs256(input, Buffer.alloc(0), publicKey)).toBe(false);
    expect(await verifyEs256(input, Buffer.concat([sig, Buffer.from([0])]), publicKey)).toBe(false);
  });

  it('a key of another type gives false, not an exception', async () => {
    const ed = generateKeyPairSync('ed25519').publicKey;
    expect(await verifyEs256(input, sig, ed)).toBe(false);
  });
});

describe('signatureFingerprint', () => {
  const N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
  const input = Buffer.from('a.b');
  const sig = sign('sha256', input, { key: privateKey, dsaEncoding: 'ieee-p1363' });
  const s = BigInt('0x' + sig.toString('hex', 32));
  const negated = Buffer.concat([sig.subarray(0, 32), Buffer.from((N - s).toString(16).padStart(64, '0'), 'hex')]);

  it('is the same for (r, s) and (r, n - s), both of which verify', async () => {
    expect(await verifyEs256('a.b', negated, publicKey)).toBe(true);
    expect(signatureFingerprint(negated)).toBe(signatureFingerprint(sig));
  });

  it('is the same for two base64url spellings of one signature', () => {
    const short = Buffer.from([1, 2, 3, 4]).toString('base64url'); // "AQIDBA": last char has unused bits
    const other = short.slice(0, -1) + 'B';
    expect(Buffer.from(other, 'base64url')).toEqual(Buffer.from(short, 'base64url'));
    expect(signatureFingerprint(Buffer.from(other, 'base64url'))).toBe(signatureFingerprint(Buffer.from(short, 'base64url')));
  });

  it('differs between signatures and is base64url SHA-256', () => {
    const other = sign('sha256', input, { key: privateKey, dsaEncoding: 'ieee-p1363' });
    expect(signatureFingerprint(other)).not.toBe(signatureFingerprint(sig));
    expect(signatureFingerprint(sig)).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });
});

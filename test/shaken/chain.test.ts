import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  buildPath,
  DerError,
  evaluateChain,
  findExtension,
  parsePemCertificates,
  parseTnAuthList,
  readTnAuthList,
  TN_AUTH_LIST_OID,
  validityError,
} from '../../src/shaken';
import { makePki, tnAuthListDer, VECTORS_DIR, type Pki } from './helpers';

const vector = (name: string) => readFileSync(join(VECTORS_DIR, 'certs', `${name}.pem`), 'utf8');
const hex = (h: string) => Buffer.from(h, 'hex');

let pki: Pki;
beforeAll(() => {
  pki = makePki();
});
afterAll(() => pki.cleanup());

describe('TNAuthList (RFC 8226) from DER', () => {
  it('reads the SPC of the vectors and of our own openssl-made leaf', () => {
    expect(readTnAuthList(parsePemCertificates(vector('sp1234'))[0]!.raw)).toEqual({ spcs: ['1234'], tns: [], ranges: [] });
    expect(readTnAuthList(pki.leaf.cert.raw)).toEqual({ spcs: ['5678'], tns: [], ranges: [] });
  });

  it('is null when the extension is absent', () => {
    expect(readTnAuthList(parsePemCertificates(vector('notnauth'))[0]!.raw)).toBeNull();
    expect(readTnAuthList(pki.intermediate.cert.raw)).toBeNull();
  });

  it('parses explicit and implicit spc, range and one entries', () => {
    expect(parseTnAuthList(hex(tnAuthListDer('5678')))).toEqual({ spcs: ['5678'], tns: [], ranges: [] });
    expect(parseTnAuthList(hex('3006800431323334'))).toEqual({ spcs: ['1234'], tns: [], ranges: [] });
    // SEQUENCE { [2] one IA5String "12", [0] spc "9" }
    expect(parseTnAuthList(hex('300BA20416023132A003160139'))).toEqual({ spcs: ['9'], tns: ['12'], ranges: [] });
  });

  it.each([
    ['empty', ''],
    ['not a sequence', '0400'],
    ['empty sequence', '3000'],
    ['truncated', '3008A00616043132'],
    ['length past the end', '3084FFFFFFFF'],
    ['indefinite length', '3080A0061604313233340000'],
    ['unknown entry', '3003830131'],
    ['spc not IA5', '3006A0040C023132'],
    ['trailing bytes', '3008A00616043132333400'],
    ['non-ASCII spc', '3005A0031601FF'],
  ])('rejects %s with DerError', (_name, h) => {
    expect(() => parseTnAuthList(hex(h))).toThrow(DerError);
  });

  it('findExtension rejects a non-certificate with DerError', () => {
    expect(() => findExtension(hex('020101'), TN_AUTH_LIST_OID)).toThrow(DerError);
    expect(() => findExtension(Buffer.alloc(0), TN_AUTH_LIST_OID)).toThrow(DerError);
  });
});

describe('chain evaluation', () => {
  const root = () => new X509Certificate(vector('root'));

  it('leaf -> served intermediate -> anchor: trusted, with SPC and the path validity window', () => {
    const info = evaluateChain(vector('sp1234'), [root()]);
    expect(info).toMatchObject({ spc: '1234', errors: [], keyIsP256: true });
    expect(new Date(info.validFromMs).toISOString()).toBe('2026-11-01T00:00:00.000Z');
    expect(new Date(info.validToMs).toISOString()).toBe('2036-10-29T00:00:00.000Z');
    expect(validityError(info, Date.parse('2026-12-01T00:00:00Z'))).toBeNull();
    expect(validityError(info, Date.parse('2026-10-01T00:00:00Z'))).toBe('CERT_EXPIRED');
    expect(validityError(info, Date.parse('2037-01-01T00:00:00Z'))).toBe('CERT_EXPIRED');
  });

  it('our own PKI chains the same way', () => {
    expect(evaluateChain(pki.chainPem, [pki.root.cert])).toMatchObject({ spc: '5678', errors: [], keyIsP256: true });
  });

  it('no trust anchors: nothing is trusted', () => {
    expect(evaluateChain(vector('sp1234'), []).errors).toEqual(['CERT_UNTRUSTED']);
  });

  it('a chain to another CA is untrusted; the leaf alone (no intermediate served) too', () => {
    expect(evaluateChain(vector('rogue'), [root()]).errors).toEqual(['CERT_UNTRUSTED']);
    expect(evaluateChain(pki.leaf.certPem, [pki.root.cert]).errors).toEqual(['CERT_UNTRUSTED']);
    expect(evaluateChain(pki.chainPem, [root()]).errors).toEqual(['CERT_UNTRUSTED']);
  });

  it('an expired leaf narrows the window; no TNAuthList is reported', () => {
    const expired = evaluateChain(vector('expired'), [root()]);
    expect(expired.errors).toEqual([]);
    expect(validityError(expired, Date.parse('2026-12-01T12:00:02Z'))).toBe('CERT_EXPIRED');
    expect(evaluateChain(vector('notnauth'), [root()]).errors).toEqual(['CERT_NO_TNAUTHLIST']);
  });

  it('a certificate without CA:TRUE cannot act as an intermediate', () => {
    // notca is a trusted end-entity certificate without keyUsage (so OpenSSL's own issuer check
    // lets it through); child is signed with its key and names it as issuer.
    const notca = pki.issueLeaf('notca', { keyUsage: null });
    const child = pki.issueLeaf('child', { issuer: 'notca' });
    expect(child.cert.checkIssued(notca.cert)).toBe(true);
    expect(child.cert.verify(notca.cert.publicKey)).toBe(true);
    expect(buildPath(child.cert, [notca.cert, pki.intermediate.cert], [pki.root.cert])).toBeNull();
    expect(evaluateChain(child.certPem + notca.certPem + pki.intermediate.certPem, [pki.root.cert]).errors).toContain('CERT_UNTRUSTED');
  });

  it('an unneeded extra certificate in the answer does not hide the good path', () => {
    const extra = pki.issueLeaf('extra').certPem;
    expect(evaluateChain(pki.leaf.certPem + extra + pki.intermediate.certPem, [pki.root.cert]).errors).toEqual([]);
  });

  it('unparseable answers throw (the cache turns that into X5U_FETCH_FAILED)', () => {
    expect(() => evaluateChain('hello', [])).toThrow();
    expect(() => evaluateChain('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----', [])).toThrow();
    expect(() => parsePemCertificates(pki.leaf.certPem.repeat(5))).toThrow(/more than 4/);
  });
});

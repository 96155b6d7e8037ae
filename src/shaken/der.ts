/**
 * Just enough DER to reach one X.509 extension and read RFC 8226's TNAuthList. Node's
 * X509Certificate does not expose arbitrary extensions, and a full ASN.1 library would be a
 * dependency for the dozen lines below. Every read is bounds-checked: the bytes come from a
 * certificate fetched from a URL that an unauthenticated caller chose.
 */

export class DerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DerError';
  }
}

export interface Tlv {
  tag: number;
  /** Offset of the first content byte. */
  start: number;
  /** Offset just past the last content byte. */
  end: number;
}

export function readTlv(buf: Uint8Array, offset: number, limit = buf.length): Tlv {
  if (offset + 2 > limit) throw new DerError('truncated');
  const tag = buf[offset]!;
  // High-tag-number form never occurs on the path we walk; refusing it keeps the reader simple.
  if ((tag & 0x1f) === 0x1f) throw new DerError('multi-byte tag');
  let len = buf[offset + 1]!;
  let pos = offset + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    // Indefinite length is BER, not DER; more than 4 length bytes cannot fit a certificate.
    if (n === 0 || n > 4) throw new DerError('bad length');
    if (pos + n > limit) throw new DerError('truncated');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[pos + i]!;
    pos += n;
  }
  if (pos + len > limit) throw new DerError('truncated');
  return { tag, start: pos, end: pos + len };
}

/** The TLVs directly inside a constructed value. */
export function children(buf: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  let pos = parent.start;
  while (pos < parent.end) {
    const tlv = readTlv(buf, pos, parent.end);
    out.push(tlv);
    pos = tlv.end;
  }
  return out;
}

const SEQUENCE = 0x30;
const OID = 0x06;
const BOOLEAN = 0x01;
const OCTET_STRING = 0x04;
const IA5_STRING = 0x16;
const CTX_3_CONSTRUCTED = 0xa3;

/** 1.3.6.1.5.5.7.1.26, id-pe-TNAuthList (RFC 8226), as DER content bytes. */
export const TN_AUTH_LIST_OID = Buffer.from([0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x1a]);

function expect(tlv: Tlv | undefined, tag: number, what: string): Tlv {
  if (!tlv || tlv.tag !== tag) throw new DerError(`expected ${what}`);
  return tlv;
}

function equalBytes(buf: Uint8Array, tlv: Tlv, want: Uint8Array): boolean {
  if (tlv.end - tlv.start !== want.length) return false;
  for (let i = 0; i < want.length; i++) if (buf[tlv.start + i] !== want[i]) return false;
  return true;
}

/**
 * The extnValue (the bytes inside the OCTET STRING) of the extension with this OID in a DER
 * certificate, or null when the certificate has no such extension. Throws DerError when the
 * certificate's structure cannot be walked.
 */
export function findExtension(certDer: Uint8Array, oid: Uint8Array): Uint8Array | null {
  const cert = expect(readTlv(certDer, 0), SEQUENCE, 'Certificate');
  const tbs = expect(children(certDer, cert)[0], SEQUENCE, 'TBSCertificate');
  // extensions is the only [3] in TBSCertificate, so there is no need to count the optional fields before it.
  const extsWrapper = children(certDer, tbs).find((t) => t.tag === CTX_3_CONSTRUCTED);
  if (!extsWrapper) return null;
  const exts = expect(children(certDer, extsWrapper)[0], SEQUENCE, 'Extensions');
  for (const ext of children(certDer, exts)) {
    expect(ext, SEQUENCE, 'Extension');
    const [id, second, third] = children(certDer, ext);
    if (!equalBytes(certDer, expect(id, OID, 'extnID'), oid)) continue;
    const value = second?.tag === BOOLEAN ? third : second;
    const octets = expect(value, OCTET_STRING, 'extnValue');
    return certDer.subarray(octets.start, octets.end);
  }
  return null;
}

/** 1.2.840.10045.2.1 id-ecPublicKey and 1.2.840.10045.3.1.7 prime256v1, as DER content bytes. */
const EC_PUBLIC_KEY_OID = Buffer.from([0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]);
const P256_OID = Buffer.from([0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]);

/**
 * Whether a DER certificate's subject key is EC P-256, read from its SubjectPublicKeyInfo
 * without decoding the key: lets a served certificate with any other key be set aside before
 * OpenSSL spends time on it. Throws DerError when the structure cannot be walked.
 */
export function subjectKeyIsP256(certDer: Uint8Array): boolean {
  const cert = expect(readTlv(certDer, 0), SEQUENCE, 'Certificate');
  const tbs = children(certDer, expect(children(certDer, cert)[0], SEQUENCE, 'TBSCertificate'));
  // version [0] is optional; then serial, signature, issuer, validity, subject, subjectPublicKeyInfo.
  const spki = expect(tbs[tbs[0]?.tag === 0xa0 ? 6 : 5], SEQUENCE, 'SubjectPublicKeyInfo');
  const alg = children(certDer, expect(children(certDer, spki)[0], SEQUENCE, 'AlgorithmIdentifier'));
  const [algorithm, parameters] = alg;
  return (
    alg.length === 2 &&
    equalBytes(certDer, expect(algorithm, OID, 'algorithm'), EC_PUBLIC_KEY_OID) &&
    parameters!.tag === OID &&
    equalBytes(certDer, parameters!, P256_OID)
  );
}

/** TelephoneNumberRange: the `count` numbers from `start` up, all of `start`'s length. */
export interface TnRange {
  start: string;
  count: number;
}

export interface TnAuthList {
  /** Service provider codes ([0] entries), in order. */
  spcs: string[];
  /** Single telephone numbers ([2] entries), digits. */
  tns: string[];
  /** Telephone number ranges ([1] entries). */
  ranges: TnRange[];
}

/**
 * The certificate is at most a few KiB (the x5u answer is capped), but a list this long is
 * already far past any delegate certificate, and every entry costs a comparison on each call.
 */
export const MAX_TN_AUTH_ENTRIES = 512;
const MAX_SPC_LENGTH = 64;
/** RFC 8226: TelephoneNumber ::= IA5String (SIZE (1..15)). */
const MAX_TN_LENGTH = 15;
const INTEGER = 0x02;

/**
 * Parses TNAuthList ::= SEQUENCE SIZE (1..MAX) OF TNEntry, TNEntry ::= CHOICE { spc [0],
 * range [1], one [2] }. RFC 8226's module uses EXPLICIT tags, so `spc` is A0 { IA5String };
 * some CAs have issued the IMPLICIT form (80 + the string bytes), which is accepted as well
 * because it carries the same information and the certificate is still signed by a trusted CA.
 * The same goes for `range` (A1 { SEQUENCE { start, count } } or A1 { start, count }) and `one`
 * (A2 { IA5String } or 82 + the digits).
 *
 * Strict about everything a number is compared with: a TelephoneNumber is 1 to 15 decimal
 * digits (RFC 8226 also allows '#' and '*', which no PASSporT orig, compared by its digits,
 * could ever equal, so a list holding them is refused rather than half-read), a range's count
 * is a minimal DER INTEGER of at least 2 whose last number keeps the start's length. Anything
 * else is a DerError, which the verifier reports as CERT_NO_TNAUTHLIST.
 */
export function parseTnAuthList(value: Uint8Array): TnAuthList {
  const seq = expect(readTlv(value, 0), SEQUENCE, 'TNAuthList');
  if (seq.end !== value.length) throw new DerError('trailing bytes');
  const out: TnAuthList = { spcs: [], tns: [], ranges: [] };
  const entries = children(value, seq);
  if (entries.length === 0) throw new DerError('empty TNAuthList');
  if (entries.length > MAX_TN_AUTH_ENTRIES) throw new DerError('too many TNAuthList entries');
  for (const entry of entries) {
    switch (entry.tag) {
      case 0xa0:
        out.spcs.push(spc(value, only(value, entry, IA5_STRING, 'ServiceProviderCode')));
        break;
      case 0x80:
        out.spcs.push(spc(value, entry));
        break;
      case 0xa1: {
        const inner = children(value, entry);
        // EXPLICIT: the SEQUENCE is inside the tag; IMPLICIT: the tag replaced it.
        const fields = inner.length === 1 && inner[0]!.tag === SEQUENCE ? children(value, inner[0]!) : inner;
        if (fields.length !== 2) throw new DerError('TelephoneNumberRange is { start, count }');
        const start = telephoneNumber(value, expect(fields[0], IA5_STRING, 'range start'));
        const count = rangeCount(value, expect(fields[1], INTEGER, 'range count'));
        // The last number of the range must have the start's length: "999" + 2 is not "1000".
        if (Number(start) + count - 1 >= 10 ** start.length) throw new DerError('range runs past its digits');
        out.ranges.push({ start, count });
        break;
      }
      case 0xa2:
        out.tns.push(telephoneNumber(value, only(value, entry, IA5_STRING, 'TelephoneNumber')));
        break;
      case 0x82:
        out.tns.push(telephoneNumber(value, entry));
        break;
      default:
        throw new DerError('unknown TNEntry');
    }
  }
  return out;
}

/** The one TLV inside an EXPLICIT tag, of the given type. */
function only(buf: Uint8Array, tagged: Tlv, tag: number, what: string): Tlv {
  const inner = children(buf, tagged);
  if (inner.length !== 1) throw new DerError(`expected one ${what}`);
  return expect(inner[0], tag, what);
}

function spc(buf: Uint8Array, tlv: Tlv): string {
  const n = tlv.end - tlv.start;
  if (n === 0 || n > MAX_SPC_LENGTH) throw new DerError('bad ServiceProviderCode length');
  // Printable ASCII only: the code is logged, shown to operators and compared with registry entries.
  for (let i = tlv.start; i < tlv.end; i++) if (buf[i]! < 0x20 || buf[i]! > 0x7e) throw new DerError('not printable IA5');
  return Buffer.from(buf.subarray(tlv.start, tlv.end)).toString('latin1');
}

function telephoneNumber(buf: Uint8Array, tlv: Tlv): string {
  const n = tlv.end - tlv.start;
  if (n === 0 || n > MAX_TN_LENGTH) throw new DerError('bad TelephoneNumber length');
  for (let i = tlv.start; i < tlv.end; i++) if (buf[i]! < 0x30 || buf[i]! > 0x39) throw new DerError('TelephoneNumber is not digits');
  return Buffer.from(buf.subarray(tlv.start, tlv.end)).toString('latin1');
}

/** A positive minimal DER INTEGER of at least 2 and below 10^15 (no range of 15-digit numbers is longer). */
function rangeCount(buf: Uint8Array, tlv: Tlv): number {
  const n = tlv.end - tlv.start;
  if (n === 0 || n > 7) throw new DerError('bad range count length');
  const first = buf[tlv.start]!;
  if (first & 0x80) throw new DerError('negative range count');
  if (n > 1 && first === 0 && !(buf[tlv.start + 1]! & 0x80)) throw new DerError('range count not minimal');
  let count = 0;
  for (let i = tlv.start; i < tlv.end; i++) count = count * 256 + buf[i]!;
  if (count < 2 || count >= 10 ** MAX_TN_LENGTH) throw new DerError('range count out of bounds');
  return count;
}

/** The TNAuthList of a DER certificate: null when absent, DerError when present but unreadable. */
export function readTnAuthList(certDer: Uint8Array): TnAuthList | null {
  const value = findExtension(certDer, TN_AUTH_LIST_OID);
  return value ? parseTnAuthList(value) : null;
}

// ---------------------------------------------------------------------------------------------
// Revocation (RFC 5280 §4.2.1.13 and §5): the CRL Distribution Points of a certificate and the
// few fields of a CRL that a revocation check needs. Same reader, same strictness: the bytes
// come from a CA's server, fetched because a certificate said so, and are capped before this
// reads them (see crl-cache.ts).

/** 2.5.29.31 id-ce-cRLDistributionPoints, as DER content bytes. */
export const CRL_DISTRIBUTION_POINTS_OID = Buffer.from([0x55, 0x1d, 0x1f]);
/** Distribution points read from one certificate; ATIS-1000080 certificates carry one. */
const MAX_DISTRIBUTION_POINTS = 4;
const MAX_URI_LENGTH = 2048;

/** Where a certificate's CRL is, and whether someone other than its issuer signs it (cRLIssuer: an indirect CRL). */
export interface CrlDistributionPoint {
  url: string;
  indirect: boolean;
}

/**
 * The first http(s) distribution point of a DER certificate, or null when it names none.
 * DistributionPoint ::= SEQUENCE { distributionPoint [0] { fullName [0] GeneralNames },
 * reasons [1], cRLIssuer [2] GeneralNames }; a URI is GeneralName [6] IA5String. Throws
 * DerError when the extension is present but cannot be read.
 */
export function readCrlDistributionPoint(certDer: Uint8Array): CrlDistributionPoint | null {
  const value = findExtension(certDer, CRL_DISTRIBUTION_POINTS_OID);
  if (!value) return null;
  const seq = expect(readTlv(value, 0), SEQUENCE, 'CRLDistributionPoints');
  if (seq.end !== value.length) throw new DerError('trailing bytes');
  const points = children(value, seq);
  if (points.length > MAX_DISTRIBUTION_POINTS) throw new DerError('too many distribution points');
  for (const point of points) {
    expect(point, SEQUENCE, 'DistributionPoint');
    const fields = children(value, point);
    const indirect = fields.some((f) => f.tag === 0xa2);
    const name = fields.find((f) => f.tag === 0xa0);
    if (!name) continue;
    const fullName = children(value, name).find((f) => f.tag === 0xa0);
    if (!fullName) continue;
    for (const general of children(value, fullName)) {
      if (general.tag !== 0x86) continue;
      const n = general.end - general.start;
      if (n === 0 || n > MAX_URI_LENGTH) throw new DerError('bad URI length');
      for (let i = general.start; i < general.end; i++) if (value[i]! < 0x21 || value[i]! > 0x7e) throw new DerError('URI is not printable IA5');
      const url = Buffer.from(value.subarray(general.start, general.end)).toString('latin1');
      if (/^https?:\/\//i.test(url)) return { url, indirect };
    }
  }
  return null;
}

/** What a revocation check needs of a CRL; the serials are ready for a Set lookup. */
export interface ParsedCrl {
  /** The DER of tbsCertList: what the signature covers. */
  tbs: Uint8Array;
  /** Node's digest name for the signature algorithm. */
  digest: 'sha256' | 'sha384' | 'sha512';
  signature: Uint8Array;
  thisUpdateMs: number;
  nextUpdateMs: number;
  /** Revoked serial numbers, upper-case hex without leading zeros (as serialKey makes them). */
  revoked: ReadonlySet<string>;
}

const UTC_TIME = 0x17;
const GENERALIZED_TIME = 0x18;
const BIT_STRING = 0x03;

/** Signature algorithms accepted on a CRL, by OID content bytes (hex): ECDSA as SHAKEN's CAs use, and RSA PKCS#1 v1.5 for an STI-PA. */
const CRL_SIGNATURE_ALGORITHMS = new Map<string, ParsedCrl['digest']>([
  ['2a8648ce3d040302', 'sha256'], // ecdsa-with-SHA256
  ['2a8648ce3d040303', 'sha384'], // ecdsa-with-SHA384
  ['2a8648ce3d040304', 'sha512'], // ecdsa-with-SHA512
  ['2a864886f70d01010b', 'sha256'], // sha256WithRSAEncryption
  ['2a864886f70d01010c', 'sha384'], // sha384WithRSAEncryption
  ['2a864886f70d01010d', 'sha512'], // sha512WithRSAEncryption
]);

/** A serial number as a lookup key: upper-case hex, leading zeros dropped (X509Certificate.serialNumber pads to whole bytes). */
export function serialKey(hex: string): string {
  return hex.toUpperCase().replace(/^0+(?=.)/, '');
}

function time(buf: Uint8Array, tlv: Tlv | undefined, what: string): number {
  if (!tlv || (tlv.tag !== UTC_TIME && tlv.tag !== GENERALIZED_TIME)) throw new DerError(`expected ${what}`);
  const s = Buffer.from(buf.subarray(tlv.start, tlv.end)).toString('latin1');
  const m = (tlv.tag === UTC_TIME ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/ : /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/).exec(s);
  if (!m) throw new DerError(`bad ${what}`);
  let year = Number(m[1]);
  // RFC 5280 §4.1.2.5.1: two-digit years 50-99 are 19xx, 00-49 are 20xx.
  if (tlv.tag === UTC_TIME) year += year >= 50 ? 1900 : 2000;
  const ms = Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
  if (!Number.isFinite(ms)) throw new DerError(`bad ${what}`);
  return ms;
}

/**
 * Reads a DER CertificateList (RFC 5280 §5.1). Only what a check needs is kept: the signed
 * bytes, the algorithm, the signature, the two dates and the revoked serials (entry extensions,
 * CRL extensions and revocation dates are not read: a listed serial is revoked, whatever the
 * reason or date). nextUpdate is required (RFC 5280 says a CRL issuer MUST include it), so
 * that no CRL is trusted forever. Throws DerError on anything else; one pass, no recursion, so
 * the cost is linear in the bytes, which the caller has capped.
 */
export function parseCrl(der: Uint8Array): ParsedCrl {
  const list = expect(readTlv(der, 0), SEQUENCE, 'CertificateList');
  if (list.end !== der.length) throw new DerError('trailing bytes');
  const tbs = expect(readTlv(der, list.start, list.end), SEQUENCE, 'TBSCertList');
  const outerAlg = expect(readTlv(der, tbs.end, list.end), SEQUENCE, 'signatureAlgorithm');
  const sig = expect(readTlv(der, outerAlg.end, list.end), BIT_STRING, 'signatureValue');
  if (sig.end !== list.end) throw new DerError('trailing fields');
  if (sig.end - sig.start < 2 || der[sig.start] !== 0) throw new DerError('bad signature BIT STRING');

  let pos = tbs.start;
  const next = () => {
    if (pos >= tbs.end) return undefined;
    const t = readTlv(der, pos, tbs.end);
    pos = t.end;
    return t;
  };
  let field = next();
  if (field?.tag === INTEGER) {
    // v2 is the only version with a version field.
    if (field.end - field.start !== 1 || der[field.start] !== 1) throw new DerError('unsupported CRL version');
    field = next();
  }
  const innerAlg = expect(field, SEQUENCE, 'signature');
  // The signed algorithm must be the one the signature claims (RFC 5280 §5.1.1.2).
  if (!bytesEqual(der.subarray(innerAlg.start, innerAlg.end), der.subarray(outerAlg.start, outerAlg.end))) throw new DerError('signature algorithms differ');
  const algOid = expect(children(der, outerAlg)[0], OID, 'algorithm');
  const digest = CRL_SIGNATURE_ALGORITHMS.get(Buffer.from(der.subarray(algOid.start, algOid.end)).toString('hex'));
  if (!digest) throw new DerError('unsupported CRL signature algorithm');
  expect(next(), SEQUENCE, 'issuer');
  const thisUpdateMs = time(der, next(), 'thisUpdate');
  field = next();
  if (!field || (field.tag !== UTC_TIME && field.tag !== GENERALIZED_TIME)) throw new DerError('CRL without nextUpdate');
  const nextUpdateMs = time(der, field, 'nextUpdate');
  if (nextUpdateMs < thisUpdateMs) throw new DerError('nextUpdate before thisUpdate');

  const revoked = new Set<string>();
  field = next();
  if (field?.tag === SEQUENCE) {
    for (let p = field.start; p < field.end; ) {
      const entry = expect(readTlv(der, p, field.end), SEQUENCE, 'revokedCertificate');
      p = entry.end;
      const serial = expect(readTlv(der, entry.start, entry.end), INTEGER, 'userCertificate');
      const n = serial.end - serial.start;
      // RFC 5280 §4.1.2.2: serials are at most 20 octets (21 with a sign byte).
      if (n === 0 || n > 21) throw new DerError('bad serial length');
      revoked.add(serialKey(Buffer.from(der.subarray(serial.start, serial.end)).toString('hex')));
    }
    field = next();
  }
  if (field && field.tag !== 0xa0) throw new DerError('unexpected field in TBSCertList');
  if (next()) throw new DerError('trailing fields in TBSCertList');

  return {
    // The TBSCertList's own TLV starts where the CertificateList's content does.
    tbs: der.subarray(list.start, tbs.end),
    digest,
    signature: der.subarray(sig.start + 1, sig.end),
    thisUpdateMs,
    nextUpdateMs,
    revoked,
  };
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

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

import { sign, type KeyObject, type X509Certificate } from 'node:crypto';
import { children, readTlv } from '../../src/shaken/der';

/**
 * CRLs made in the tests (RFC 5280 §5.1), DER-encoded here and signed with Node crypto, so
 * that every odd case (stale, unsigned, huge, signed by the wrong key) is one option away.
 * test/shaken/revocation.test.ts also checks one against `openssl crl -verify`, and reads one
 * that `openssl ca -gencrl` made.
 */

function len(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v % 256);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), len(body.length), body]);
}

function integer(hex: string): Buffer {
  let b = Buffer.from(hex.length % 2 ? `0${hex}` : hex, 'hex');
  if (b[0]! & 0x80) b = Buffer.concat([Buffer.from([0]), b]);
  return tlv(0x02, b);
}

function utcTime(ms: number): Buffer {
  const iso = new Date(ms).toISOString(); // 2026-12-01T12:00:02.000Z
  const s = iso.slice(2, 4) + iso.slice(5, 7) + iso.slice(8, 10) + iso.slice(11, 13) + iso.slice(14, 16) + iso.slice(17, 19) + 'Z';
  return tlv(0x17, Buffer.from(s, 'latin1'));
}

/** The DER of a certificate's subject Name: the issuer field of a CRL it signs. */
export function subjectDer(cert: X509Certificate): Buffer {
  const raw = cert.raw;
  const tbs = children(raw, readTlv(raw, 0))[0]!;
  const fields = children(raw, tbs);
  const k = fields[0]!.tag === 0xa0 ? 5 : 4;
  // Fields are contiguous: the subject's header starts where the field before it ends.
  return raw.subarray(fields[k - 1]!.end, fields[k]!.end);
}

const ECDSA_SHA256 = tlv(0x30, tlv(0x06, Buffer.from('2a8648ce3d040302', 'hex')));

export interface CrlSpec {
  /** Whose name the CRL carries (the CA, or the STI-PA for an indirect CRL). */
  issuer: X509Certificate;
  /** The key it is signed with (normally the issuer's). */
  key: KeyObject;
  /** Serial numbers, hex as X509Certificate.serialNumber gives them. */
  revoked?: string[];
  thisUpdateMs: number;
  /** null: no nextUpdate at all. */
  nextUpdateMs: number | null;
  /** Flip a bit of the signature. */
  corruptSignature?: boolean;
}

export function buildCrl(spec: CrlSpec): Buffer {
  const entries = (spec.revoked ?? []).map((serial) => tlv(0x30, integer(serial), utcTime(spec.thisUpdateMs)));
  const tbs = tlv(
    0x30,
    integer('01'),
    ECDSA_SHA256,
    subjectDer(spec.issuer),
    utcTime(spec.thisUpdateMs),
    ...(spec.nextUpdateMs !== null ? [utcTime(spec.nextUpdateMs)] : []),
    ...(entries.length > 0 ? [tlv(0x30, ...entries)] : []),
  );
  const signature = sign('sha256', tbs, spec.key);
  if (spec.corruptSignature) signature[signature.length - 1]! ^= 0x01;
  return tlv(0x30, tbs, ECDSA_SHA256, tlv(0x03, Buffer.from([0]), signature));
}

/** Serial numbers 1..n as hex, for a huge CRL. */
export function manySerials(n: number): string[] {
  return Array.from({ length: n }, (_, i) => (i + 0x100000).toString(16));
}

import { hash, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import type { IdentityEntry } from './identity-header';
import type { RawRichClaims } from './rcd';
import type { Attestation, ShakenErrorCode } from './types';

/**
 * PASSporT decoding and the checks that need no certificate (RFC 8225, RFC 8588 `shaken`,
 * RFC 8946 `div`). The signature check is separate because it needs the signer's key.
 */

export interface PassportClaims {
  attest?: Attestation;
  origid?: string;
  iat?: number;
  /** `orig.tn`, digits only. */
  orig?: string;
  /** `dest.tn[]`, digits only. */
  dest: string[];
  /** `div.tn` of a div PASSporT, digits only. */
  div?: string;
  /**
   * Rich call data claims (RFC 9795: `rcd`, `crn`, `rcdi`) of a shaken PASSporT, as carried:
   * judged (rcd.ts) only once the PASSporT verified, and never part of its verification.
   */
  rich?: RawRichClaims;
}

export interface DecodedPassport {
  kind: 'shaken' | 'div';
  /** x5u from the signed header; absent when missing or not a string. */
  x5u?: string;
  claims: PassportClaims;
  /** True when the header and Identity parameters both allow ES256 (the only algorithm ever verified). */
  es256: boolean;
  signingInput?: string;
  signature?: Buffer;
  /** Header, claim and Identity-parameter problems; independent of time and certificates. */
  errors: ShakenErrorCode[];
}

/** Keeps only the digits: PASSporT TNs and E.164 inputs are compared this way (RFC 8224 section 8.3). */
export function tnDigits(tn: string): string {
  return tn.replace(/\D/g, '');
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * Decodes an identity's PASSporT and runs every check that needs neither time nor certificate.
 * `errors` starts from the identity's own errors. Never throws.
 */
export function decodePassport(entry: IdentityEntry): DecodedPassport {
  const kind = entry.kind === 'div' ? 'div' : 'shaken';
  const errors = new Set<ShakenErrorCode>(entry.errors);
  const out: DecodedPassport = { kind, claims: { dest: [] }, es256: false, errors: [] };
  const header = entry.header;
  if (!header || entry.payloadPart === undefined || entry.signingInput === undefined) {
    errors.add('MALFORMED');
    out.errors = [...errors];
    return out;
  }

  // Only ES256 is ever verified: `none`, HMAC (which would take the public key as a secret) and
  // every other algorithm are refused whatever the signature says.
  out.es256 = header.alg === 'ES256' && (entry.alg === undefined || entry.alg === 'ES256');
  if (!out.es256) errors.add('UNSUPPORTED_ALG');
  if (header.typ !== 'passport') errors.add('MALFORMED');
  if (typeof header.ppt !== 'string' || header.ppt.toLowerCase() !== kind) errors.add('MALFORMED');
  if (typeof header.x5u === 'string' && header.x5u !== '') out.x5u = header.x5u;
  // A missing x5u cannot equal info; reported once, as the mismatch it is.
  if (out.x5u === undefined || (entry.info !== undefined && entry.info !== '' && entry.info !== out.x5u)) {
    errors.add('INFO_X5U_MISMATCH');
  }

  let payload: Record<string, unknown> | undefined;
  if (entry.payloadPart.length % 4 !== 1) {
    try {
      const v: unknown = JSON.parse(Buffer.from(entry.payloadPart, 'base64url').toString('utf8'));
      if (isObject(v)) payload = v;
    } catch {
      payload = undefined;
    }
  }
  if (!payload) {
    errors.add('MALFORMED');
  } else {
    readClaims(payload, kind, out.claims, errors);
  }

  out.signingInput = entry.signingInput;
  out.signature = Buffer.from(entry.signaturePart ?? '', 'base64url');
  out.errors = [...errors];
  return out;
}

/** Absent claims are MISSING_CLAIM; present claims of the wrong shape are MALFORMED. */
function readClaims(p: Record<string, unknown>, kind: 'shaken' | 'div', claims: PassportClaims, errors: Set<ShakenErrorCode>): void {
  const iat = p.iat;
  if (iat === undefined) errors.add('MISSING_CLAIM');
  else if (typeof iat === 'number' && Number.isSafeInteger(iat)) claims.iat = iat;
  else errors.add('MALFORMED');

  const orig = p.orig;
  if (!isObject(orig) || orig.tn === undefined) errors.add('MISSING_CLAIM');
  else if (typeof orig.tn === 'string') claims.orig = tnDigits(orig.tn);
  else errors.add('MALFORMED');

  const dest = p.dest;
  if (!isObject(dest) || dest.tn === undefined) errors.add('MISSING_CLAIM');
  else if (Array.isArray(dest.tn) && dest.tn.length > 0 && dest.tn.every((t) => typeof t === 'string')) {
    claims.dest = (dest.tn as string[]).map(tnDigits);
  } else errors.add('MALFORMED');

  if (kind === 'shaken') {
    if (p.attest === undefined) errors.add('MISSING_CLAIM');
    else if (p.attest === 'A' || p.attest === 'B' || p.attest === 'C') claims.attest = p.attest;
    else errors.add('MALFORMED');

    if (p.origid === undefined) errors.add('MISSING_CLAIM');
    else if (typeof p.origid === 'string' && p.origid !== '') claims.origid = p.origid;
    else errors.add('MALFORMED');

    if (p.rcd !== undefined || p.crn !== undefined || p.rcdi !== undefined) {
      claims.rich = {
        ...(p.rcd !== undefined ? { rcd: p.rcd } : {}),
        ...(p.crn !== undefined ? { crn: p.crn } : {}),
        ...(p.rcdi !== undefined ? { rcdi: p.rcdi } : {}),
      };
    }
  } else {
    const div = p.div;
    if (!isObject(div) || div.tn === undefined) errors.add('MISSING_CLAIM');
    else if (typeof div.tn === 'string') claims.div = tnDigits(div.tn);
    else errors.add('MALFORMED');
  }
}

/** STALE / FUTURE_IAT for an `iat` (seconds) judged at `receivedAtMs`. */
export function freshnessError(iat: number, receivedAtMs: number, maxAgeS: number, clockSkewS: number): ShakenErrorCode | null {
  const ageS = receivedAtMs / 1000 - iat;
  if (ageS > maxAgeS) return 'STALE';
  if (-ageS > clockSkewS) return 'FUTURE_IAT';
  return null;
}

/**
 * ES256 over the exact transmitted `header.payload`. JOSE signatures are raw r||s (64 bytes),
 * not DER; anything else is a bad signature, not an exception.
 *
 * Runs on libuv's thread pool (crypto.verify with a callback): the ECDSA arithmetic, the
 * largest cost of a PASSporT, leaves the event loop free to parse and answer other calls, and
 * uses the machine's other cores (UV_THREADPOOL_SIZE threads: one per core, see ops/thread-pool.ts).
 */
export function verifyEs256(signingInput: string, signature: Buffer, key: KeyObject): Promise<boolean> {
  if (signature.length !== 64) return Promise.resolve(false);
  return new Promise((resolve) => {
    try {
      cryptoVerify('sha256', Buffer.from(signingInput, 'latin1'), { key, dsaEncoding: 'ieee-p1363' }, signature, (err, ok) => resolve(!err && ok));
    } catch {
      resolve(false);
    }
  });
}

// Order of the P-256 group. (r, s) and (r, n - s) are both valid signatures of the same
// message, so anyone can derive a second valid signature from a captured PASSporT.
const P256_N = Buffer.from('ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551', 'hex');
const P256_HALF_N = Buffer.from('7fffffff800000007fffffffffffffffde737d56d38bcf4279dce5617e3192a8', 'hex');

/**
 * base64url SHA-256 of a PASSporT's signature, for replay detection. Hashes the decoded bytes
 * (base64url's unused trailing bits would otherwise give one signature several spellings) and
 * folds ECDSA's s into its low half, so a replay cannot dodge detection by re-spelling or
 * negating the signature.
 */
export function signatureFingerprint(signature: Buffer): string {
  if (signature.length === 64 && signature.compare(P256_HALF_N, 0, 32, 32, 64) > 0) {
    // s > n/2: hash r || (n - s), a 32-byte big-endian subtraction.
    const folded = Buffer.allocUnsafe(64);
    signature.copy(folded, 0, 0, 32);
    let borrow = 0;
    for (let i = 31; i >= 0; i--) {
      let d = P256_N[i]! - signature[32 + i]! - borrow;
      borrow = d < 0 ? 1 : 0;
      if (d < 0) d += 256;
      folded[32 + i] = d;
    }
    return hash('sha256', folded, 'base64url');
  }
  return hash('sha256', signature, 'base64url');
}

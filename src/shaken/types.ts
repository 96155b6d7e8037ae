/**
 * The outside of the STIR/SHAKEN verifier: what the orchestrator hands in and gets back.
 * The verifier knows nothing about HTTP, scoring or number parsing: numbers arrive already
 * normalised to E.164 ("+442079460123"), and PASSporT TNs are compared by their digits.
 */

import type { RichCallData } from './rcd';

/** Error codes of the service contract (`shaken.errors`). */
export const SHAKEN_ERROR_CODES = [
  'MALFORMED',
  'UNSUPPORTED_ALG',
  'BAD_SIGNATURE',
  'STALE',
  'FUTURE_IAT',
  'ORIG_MISMATCH',
  'DEST_MISMATCH',
  'X5U_POLICY',
  'X5U_FETCH_FAILED',
  'CERT_UNTRUSTED',
  'CERT_EXPIRED',
  'CERT_NO_TNAUTHLIST',
  'INFO_X5U_MISMATCH',
  'MISSING_CLAIM',
  'TN_NOT_AUTHORISED',
  'CERT_REVOKED',
  'RCD_INVALID',
] as const;
export type ShakenErrorCode = (typeof SHAKEN_ERROR_CODES)[number];

export type Verstat = 'TN-Validation-Passed' | 'TN-Validation-Failed' | 'No-TN-Validation';
export type Attestation = 'A' | 'B' | 'C';

export interface VerifyInput {
  /** SIP Identity header value(s), exactly as received. */
  identity: string | string[];
  /** E.164 numbers the PASSporT's `orig.tn` may match: the From number and, when given, the PAI. */
  origCandidates: string[];
  /** E.164 of the called number (To / Request-URI); null when it could not be parsed. */
  dest: string | null;
  /** When the switch received the call: freshness and certificate validity are judged against it. */
  receivedAt: Date;
  /** `identity` as `read` gave it, when the caller already read it: it is not parsed again. */
  reading?: IdentityReading;
}

/** Identity header values read once: their entries, and the fingerprints of their PASSporTs. */
export interface IdentityReading {
  /** Null when the values could not be read at all (verification then says MALFORMED). */
  entries: readonly IdentityEntry[] | null;
  /**
   * Stable fingerprints (base64url SHA-256 of the signature, s folded) of every shaken and div
   * PASSporT, for replay detection across calls.
   */
  fingerprints: string[];
}

export interface ShakenVerification {
  verstat: Verstat;
  /** Attestation of the verified `shaken` PASSporT; null when none verified. */
  attestation: Attestation | null;
  origid?: string;
  /** Service provider code from the signing certificate's TNAuthList. */
  spc?: string;
  /**
   * What the verified PASSporT's certificate authorised: a service provider code (`spc`), or
   * telephone numbers and ranges (`tn`: a delegate certificate, ATIS-1000092, which names no
   * SPC and so can never satisfy a registry entry's authorisedSpcs). Set only when verstat is
   * TN-Validation-Passed.
   */
  authority?: 'spc' | 'tn';
  /**
   * The E.164 digits (no '+') of the verified PASSporT's `orig`: the one number the signature
   * vouches for. Set only when verstat is TN-Validation-Passed.
   */
  orig?: string;
  /**
   * Set when the passing PASSporT reached the called number only through div PASSporTs
   * (RFC 8946): `tn` when a hop was signed under a delegate certificate, whose holder may sign any
   * diversion from its own numbers (so a captured PASSporT can be "diverted" to anyone), else `spc`.
   */
  diversion?: 'spc' | 'tn';
  /**
   * The `x5u` (certificate URL) of the PASSporT judged: the one that passed, else the first that
   * names one. Who signed the call, for traceback; absent when no shaken PASSporT named one.
   */
  x5u?: string;
  /**
   * Rich call data (RFC 9795) of the PASSporT that passed, its integrity checked, cleaned and
   * bounded. Absent when it carried none, or when it failed its check (then `errors` is
   * ['RCD_INVALID'] and verstat stays TN-Validation-Passed: the signature still vouches for the
   * call, only the rich data may not be shown).
   */
  rcd?: RichCallData;
  /** Every check that failed (not only the first), deduplicated. */
  errors: ShakenErrorCode[];
  /** `iat` of the shaken PASSporT, when it could be read: lets callers bound cache lifetimes. */
  iat?: number;
  /** The fingerprints of the Identity's PASSporTs (see IdentityReading). */
  fingerprints: string[];
}

/** Fetches an x5u URL. Injected so tests serve fixtures and never touch the network. */
export interface CertificateFetcher {
  fetch(url: string, signal: AbortSignal): Promise<{ body: Buffer | string; maxAgeS?: number }>;
}

export interface ShakenVerifier {
  verify(input: VerifyInput): Promise<ShakenVerification>;
  /**
   * Reads Identity values without verifying anything: cheap enough to do before the verdict
   * cache is consulted, so replay detection (by the fingerprints) can share that Redis round
   * trip; hand the reading to `verify` so the values are not parsed twice.
   */
  read(identity: string | readonly string[]): IdentityReading;
}

/**
 * What happened to one x5u certificate fetch, counted once when it ends (a certificate served
 * from memory or Redis is no fetch, nor is a URL the x5u policy refuses).
 */
export type CertFetchOutcome =
  /** fetched in time, and the body parsed as a certificate chain */
  | 'ok'
  /** no answer within SHAKEN_FETCH_TIMEOUT_MS: the calls waiting for it went on without it, whatever it brought later */
  | 'timeout'
  /** connection failure or a non-2xx answer */
  | 'error'
  /** an answer that is not a usable certificate chain */
  | 'invalid';
export const CERT_FETCH_OUTCOMES: readonly CertFetchOutcome[] = ['ok', 'timeout', 'error', 'invalid'];

/**
 * What happened to one CRL fetch (a CRL from memory or Redis is no fetch): the outcomes of an
 * x5u fetch, and `stale`, a CRL whose nextUpdate has passed, which counts as unavailable.
 */
export type CrlFetchOutcome = CertFetchOutcome | 'stale';
export const CRL_FETCH_OUTCOMES: readonly CrlFetchOutcome[] = ['ok', 'timeout', 'error', 'invalid', 'stale'];

/**
 * `shaken` and `div` are verified; `other` (another ppt, or a plain RFC 8225 PASSporT with no
 * ppt) is ignored. An identity whose kind cannot be told at all because the token is unreadable
 * counts as `shaken`: a garbled Identity header must surface as MALFORMED, not vanish.
 */
export type IdentityKind = 'shaken' | 'div' | 'other';

export interface IdentityEntry {
  kind: IdentityKind;
  /** The compact JWS as received. */
  token: string;
  /** `header.payload` exactly as transmitted: the bytes the signature covers. Set when the token has three parts. */
  signingInput?: string;
  /** The signature part, still base64url. */
  signaturePart?: string;
  /** The JWS header, when its part decoded to a JSON object. */
  header?: Record<string, unknown>;
  /** The payload part, still base64url (decoded later, and only for identities that are verified). */
  payloadPart?: string;
  /** `info` parameter without its angle brackets. */
  info?: string;
  alg?: string;
  /** `ppt` parameter, lower-cased. */
  ppt?: string;
  /** Problems found in the header value itself. */
  errors: ShakenErrorCode[];
}

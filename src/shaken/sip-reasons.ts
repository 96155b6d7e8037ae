import type { ShakenErrorCode } from './types';

/**
 * RFC 8224's SIP answers for a failed verification (section 6.2.2), most specific first: what
 * the STI-VS reports per failure, and the `Reason` header a switch attaches downstream.
 */
const SIP_REASONS: readonly [readonly ShakenErrorCode[], number, string][] = [
  [['STALE', 'FUTURE_IAT'], 403, 'Stale Date'],
  [['X5U_POLICY', 'X5U_FETCH_FAILED'], 436, 'Bad Identity Info'],
  [['CERT_UNTRUSTED', 'CERT_EXPIRED', 'CERT_REVOKED', 'CERT_NO_TNAUTHLIST'], 437, 'Unsupported Credential'],
  // TN_NOT_AUTHORISED: the signer's certificate does not cover orig, like ORIG_MISMATCH a claim the signature cannot back.
  [['MALFORMED', 'UNSUPPORTED_ALG', 'BAD_SIGNATURE', 'MISSING_CLAIM', 'INFO_X5U_MISMATCH', 'ORIG_MISMATCH', 'DEST_MISMATCH', 'TN_NOT_AUTHORISED', 'RCD_INVALID'], 438, 'Invalid Identity Header'],
];

export interface SipReason {
  cause: number;
  text: string;
  /** The failures this cause answers for. */
  errors: ShakenErrorCode[];
}

/** Every cause that applies to these failures, most specific first. */
export function sipReasonsFor(errors: readonly ShakenErrorCode[]): SipReason[] {
  const out: SipReason[] = [];
  for (const [codes, cause, text] of SIP_REASONS) {
    const matched = errors.filter((e) => codes.includes(e));
    if (matched.length > 0) out.push({ cause, text, errors: matched });
  }
  return out;
}

/** The RFC 8224 `Reason` header value for these failures (the most specific cause), or null for none. */
export function sipReasonHeader(errors: readonly ShakenErrorCode[]): string | null {
  const [first] = sipReasonsFor(errors);
  return first ? `STIR;cause=${first.cause};text="${first.text}"` : null;
}

import type { Attestation, ShakenErrorCode, Verstat } from '../shaken/types';
import type { Reason, Verdict } from '../scoring/reasons';

/** One call as a switch describes it (`POST /v1/calls/score`), after schema validation. */
export interface CallInput {
  from: string;
  to: string;
  pai?: string;
  identity?: string | string[];
  attestation?: Attestation;
  verstat?: Verstat;
  origin?: { trunk?: string; carrier?: string; international?: boolean; country?: string };
  callId?: string;
  /** RFC 3339; default now. */
  receivedAt?: string;
}

/** The answer to a switch: the contract's response body. */
export interface CallAssessment {
  callId?: string;
  score: number;
  verdict: Verdict;
  reasons: Reason[];
  caller: {
    e164: string | null;
    valid: boolean;
    withheld: boolean;
    type?: string;
    country?: string;
    shortCode?: string;
  };
  registry: { bankId: string; bankName: string; inboundOnly: boolean; match: 'number' | 'prefix' } | null;
  shaken: {
    verstat: Verstat;
    attestation: Attestation | null;
    origid?: string;
    spc?: string;
    authority?: 'spc' | 'tn';
    errors: ShakenErrorCode[];
  };
  cached: boolean;
}

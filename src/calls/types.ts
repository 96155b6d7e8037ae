import type { Decision } from '../scoring/decide';
import type { Attestation, Verstat } from '../shaken/types';
import type { Evidence } from './evidence';

/** One call as a switch describes it (`POST /v1/calls/score`), after schema validation. */
export interface CallInput {
  from: string;
  to: string;
  pai?: string;
  identity?: string | string[];
  attestation?: Attestation;
  verstat?: Verstat;
  origin?: { trunk?: string; carrier?: string; international?: boolean; country?: string; roamingVerified?: boolean };
  callId?: string;
  /** RFC 3339; default now. */
  receivedAt?: string;
}

/** What the orchestrator answers for one call: the decision and the evidence it was made on. */
export interface CallOutcome {
  callId?: string;
  decision: Decision;
  evidence: Evidence;
  /** The evidence came from the verdict cache (in-process or shared). */
  cached: boolean;
}

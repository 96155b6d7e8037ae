import type { PhoneNumber } from '../numbers';
import type { CallFacts, Decision, ObservedCall } from '../scoring';
import type { DecisionOrigin, DecisionRecord, DecisionShaken } from '../state/decisions';

/** What a decision record keeps beyond the call and its decision: the evidence it was made on, and under which versions. */
export interface DecisionContext {
  facts: Pick<CallFacts, 'shaken' | 'origin'>;
  /** The evidence came from the verdict cache. */
  cached: boolean;
  /** When the decision was made, on the service's clock (ms). */
  decidedAt: number;
  policyVersion: string;
  registryVersion: string;
}

/** A number as a record names it: E.164, else the short code dialled or presented, else null (withheld or unreadable). */
export function numberText(n: PhoneNumber): string | null {
  return n.e164 ?? n.shortCode?.code ?? null;
}

/**
 * What is kept of a call that named itself (a callId): the decision, every reason with its
 * weight and message, and of the evidence what traces the call back (who signed it, where it
 * came in). Not the Identity header itself: it may be 80 KB, and its certificate URL, SPC and
 * origid say who signed.
 */
export function decisionRecord(call: ObservedCall, callId: string, decision: Decision, ctx: DecisionContext): DecisionRecord {
  const { shaken, origin } = ctx.facts;
  // The evidence's own objects, not copies: the in-process store holds the record as it is, and
  // the store keeps only the fields of DecisionShaken and DecisionOrigin of them.
  const shakenView: DecisionShaken = shaken;
  const record: DecisionRecord = {
    callId,
    at: call.at,
    decidedAt: ctx.decidedAt,
    from: numberText(call.caller),
    to: numberText(call.callee),
    verdict: decision.verdict,
    score: decision.score,
    presentation: decision.presentation,
    reasons: decision.reasons,
    cached: ctx.cached,
    shaken: shakenView,
    policyVersion: ctx.policyVersion,
    registryVersion: ctx.registryVersion,
  };
  if (call.registry) record.bankId = call.registry.bankId;
  // The switch said nothing of where the call came from: nothing to keep.
  if (hasOrigin(origin)) record.origin = origin;
  return record;
}

function hasOrigin(o: DecisionOrigin): boolean {
  return o.trunk !== undefined || o.carrier !== undefined || o.country !== undefined || o.international !== undefined || o.roamingVerified !== undefined;
}

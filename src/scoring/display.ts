import { cleanDisplayText, MAX_DISPLAY_NAME } from '../shaken/rcd';
import { attestsCaller, type CallFacts, type Decision } from './decide';

/** What the switch may show the called party as the caller's name (contract field `display`). */
export interface Display {
  name: string;
  /** `registry`: the organisation's registry name; `rcd`: the verified rich call data name (RFC 9795). */
  source: 'registry' | 'rcd';
}

/**
 * The caller's name to show, only for a caller the call's own evidence verified, and never on a
 * blocked call. The organisation's registry name for a call that earned BANK_VERIFIED or
 * BANK_CALL_EXPECTED (its own evidence, which the decision already withholds from a replayed
 * PASSporT or a contrary sign); else the rich call data name of a PASSporT that passed, vouches
 * for the caller ID shown (its orig, not a diversion under a delegate certificate) and was not
 * replayed. Pure: the decision and the call's facts in, the name out. Both names are cleaned
 * for a SIP display name (no quotes, backslashes, angle brackets or control characters, bounded).
 */
export function displayOf(facts: Pick<CallFacts, 'shaken' | 'caller' | 'registry'>, decision: Pick<Decision, 'verdict' | 'reasons'>): Display | undefined {
  if (decision.verdict === 'block') return undefined;
  const earned = (code: string) => decision.reasons.some((r) => r.code === code);
  const { registry, shaken } = facts;
  if (registry && !registry.inboundOnly && (earned('BANK_VERIFIED') || earned('BANK_CALL_EXPECTED'))) {
    const name = cleanDisplayText(registry.bankName, MAX_DISPLAY_NAME);
    if (name !== undefined) return { name, source: 'registry' };
  }
  const rcdName = shaken.rcd?.name;
  if (
    rcdName !== undefined &&
    shaken.source === 'passport' &&
    shaken.verstat === 'TN-Validation-Passed' &&
    attestsCaller(facts) &&
    !earned('PASSPORT_REPLAY')
  ) {
    // Cleaned when read; cleaned again here because the decision is the last word before SIP.
    const name = cleanDisplayText(rcdName, MAX_DISPLAY_NAME);
    if (name !== undefined) return { name, source: 'rcd' };
  }
  return undefined;
}

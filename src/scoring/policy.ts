import { createHash } from 'node:crypto';
import type { ReasonCode, Verdict } from './reasons';

/**
 * The scoring policy: every weight and threshold in one place. The score is
 * `baseScore + sum(weights)`, clamped to 0-100; the verdict comes from the thresholds, raised
 * to a reason's floor where it has one, and forced to `allow` for emergency calls.
 *
 * Weights are chosen so that the verdicts the service promises hold on their own:
 * - an ordinary valid UK number without attestation (most UK calls today) stays `allow`:
 *   10 + SHAKEN_ABSENT 5 = 15;
 * - a UK landline or non-geographic number arriving from abroad blocks:
 *   10 + 75 + 5 = 90 (Ofcom expects these to be blocked; few legitimate calls do this);
 * - a UK mobile number from abroad is flagged, not blocked, because its owner may be roaming:
 *   10 + 35 + 5 = 50;
 * - a bank's number signed with attestation A by a carrier the bank authorises goes to 0.
 * Risk weights are positive, so adding a risk signal never lowers a score; floors only raise.
 */
export interface Policy {
  baseScore: number;
  thresholds: { flag: number; block: number };
  weights: Record<ReasonCode, number>;
  /** The least severe verdict a call carrying this reason may get. */
  verdictFloors: Partial<Record<ReasonCode, Verdict>>;
  velocity: {
    /** Distinct destinations one caller ID may reach within `seconds` before VELOCITY_HIGH. */
    windows: { seconds: number; maxDistinct: number }[];
  };
  reports: {
    /** A report's weight halves every `halfLifeS`; older than `maxAgeS` it no longer counts. */
    halfLifeS: number;
    maxAgeS: number;
  };
  campaign: {
    /** Window over which a bank's failing calls are counted. */
    windowS: number;
    /** Failing calls presenting one bank's numbers in the window that start a campaign. */
    minFailedCalls: number;
  };
  presentation: {
    /**
     * A UK mobile caller ID on a call from abroad that its home network has not confirmed as
     * roaming: shown, or withheld (Ofcom's 2025 proposal). A policy follows the final decision.
     */
    ukMobileFromAbroad: Presentation;
  };
}

/** Whether the switch shows the caller ID to the called party (withheld: RFC 3323 `Privacy: id`). */
export type Presentation = 'allowed' | 'withheld';

export const DEFAULT_POLICY: Policy = {
  baseScore: 10,
  thresholds: { flag: 40, block: 70 },
  weights: {
    CLI_WITHHELD: 15,
    CLI_INVALID: 70,
    CLI_NOT_ALLOWED_TYPE: 80,
    CLI_DNO: 90,
    CLI_DOMESTIC_FROM_ABROAD: 75,
    CLI_MOBILE_FROM_ABROAD: 35,
    // The number's own organisation names the trunk or carrier it calls from abroad (an offshore
    // call centre): Ofcom's legitimate exception, and evidence of the organisation's own call.
    CLI_OVERSEAS_AUTHORISED: -10,
    BANK_UNAUTHORISED_ORIGIN: 65,
    BANK_VERIFIED: -50,
    // The organisation told the network of this very call: a spoofer who knows its number cannot.
    BANK_CALL_EXPECTED: -50,
    // The organisation announces every call it makes, and not this one.
    BANK_CALL_UNEXPECTED: 35,
    SHAKEN_ABSENT: 5,
    // A PASSporT that could not be checked proves nothing either way: exactly as risky as none.
    SHAKEN_UNVERIFIED: 5,
    SHAKEN_ATTEST_A: -20,
    SHAKEN_ATTEST_B: -5,
    SHAKEN_ATTEST_C: 5,
    SHAKEN_INVALID: 40,
    VELOCITY_HIGH: 40,
    PASSPORT_REPLAY: 50,
    CAMPAIGN_ACTIVE: 30,
    REPORTED_FRAUD: 40,
    EMERGENCY_CALL: 0,
  },
  verdictFloors: {
    // Ofcom's General Condition C6 expects calls with invalid or non-diallable CLI to be blocked.
    CLI_INVALID: 'block',
    CLI_NOT_ALLOWED_TYPE: 'block',
    // A number a bank only receives calls on is never a genuine caller ID.
    CLI_DNO: 'block',
    // A replayed PASSporT is someone else's signature: the call it vouched for has already happened.
    PASSPORT_REPLAY: 'flag',
    // An organisation that announces all its calls did not announce this one: never delivered unmarked.
    BANK_CALL_UNEXPECTED: 'flag',
  },
  velocity: {
    windows: [
      { seconds: 60, maxDistinct: 20 },
      { seconds: 3600, maxDistinct: 150 },
    ],
  },
  reports: { halfLifeS: 7 * 86400, maxAgeS: 30 * 86400 },
  campaign: { windowS: 600, minFailedCalls: 10 },
  presentation: { ukMobileFromAbroad: 'withheld' },
};

/** Part of every verdict cache key: a policy change never serves verdicts made under the old one. */
export function policyVersion(policy: Policy): string {
  return createHash('sha256').update(JSON.stringify(policy)).digest('base64url').slice(0, 12);
}

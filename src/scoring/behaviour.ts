import { hash, randomBytes } from 'node:crypto';
import type { PhoneNumber } from '../numbers';
import type { RegistryMatch } from '../registry/registry-index';
import type { Decision } from './decide';
import type { Policy } from './policy';
import type { ReasonCode } from './reasons';
import type { BehaviourSignals } from './signals';

/**
 * Behaviour across calls, the rules: what a call counts as, and how the counts the stores keep
 * (destinations per window, first presenters, reports, a bank's failing calls) become the
 * signals the decision reads. The stores only count; a rule changed here changes the in-process
 * and the Redis paths alike.
 */

/** A call as behaviour across calls sees it. */
export interface ObservedCall {
  callId?: string;
  caller: PhoneNumber;
  callee: PhoneNumber;
  /** Where the call came in: the network number (PAI), trunk and carrier, as one opaque string. */
  route?: string;
  registry: RegistryMatch | null;
  fingerprints: string[];
  at: number;
}

/** A fraud report summary as the rules read it: count, newest time (ms), categories. */
export interface ReportCounts {
  count: number;
  newestAt: number;
  categories: readonly string[];
}

export interface CampaignSummary {
  bankId: string;
  bankName: string;
  /** Caller IDs presented by the campaign's failing calls, most used first (at most 50). */
  numbers: { number: string; calls: number }[];
  failedCalls: number;
  /** ISO time of the first failing call in the window. */
  since: string;
  /** ISO time of the latest failing call. */
  lastSeen: string;
}

export type CampaignSignal = NonNullable<BehaviourSignals['campaign']>;
export type ReportsSignal = NonNullable<BehaviourSignals['reports']>;

/**
 * Reasons that say the caller ID was not what it claimed. A bank's numbers failing these
 * many times in a short window means someone is spoofing that bank at scale. CAMPAIGN_ACTIVE
 * and REPORTED_FRAUD are left out on purpose: counting them would let a campaign (or one
 * reported number) keep itself alive with no new evidence.
 */
export const CAMPAIGN_FAILING_REASONS: ReadonlySet<ReasonCode> = new Set<ReasonCode>([
  'CLI_DOMESTIC_FROM_ABROAD',
  'CLI_MOBILE_FROM_ABROAD',
  'BANK_UNAUTHORISED_ORIGIN',
  'SHAKEN_INVALID',
  'CLI_DNO',
  'VELOCITY_HIGH',
  'PASSPORT_REPLAY',
]);

export const TOP_CAMPAIGN_NUMBERS = 50;

export function failsChecks(decision: Decision): boolean {
  return decision.reasons.some((r) => CAMPAIGN_FAILING_REASONS.has(r.code));
}

/**
 * Who a call identifies itself as in the counts: the same call scored again (a retry, a second
 * look by another switch) counts once, and a PASSporT seen under another token is a replay. A
 * call without a callId cannot be told apart from a retry, so it gets a token of its own and
 * always counts as new. The callId alone is not enough: the SIP Call-ID is the caller's own
 * choice and switches pass it through, so a captured PASSporT replayed under its original
 * callId would pass as the same call. The token also covers the numbers and the route the call
 * came in by.
 */
export function callToken(call: Pick<ObservedCall, 'callId' | 'caller' | 'callee' | 'route'>): string {
  if (call.callId === undefined) return `u:${newId()}`;
  return `c:${hash('sha256', JSON.stringify([call.callId, call.caller.e164, call.callee.e164, call.route ?? null]), 'base64url').slice(0, 22)}`;
}

/** The destination a caller "reached", for velocity. Short codes and junk are not destinations. */
export function velocityKeys(call: ObservedCall): { caller: string; destination: string | null } | null {
  const caller = call.caller.e164;
  // Withheld and invalid callers have no identity to count against (and their own rules
  // already block or flag them). Destinations count whatever their validity: a dialler
  // sweeping unallocated numbers is still sweeping.
  if (caller === null || !call.caller.valid) return null;
  return { caller, destination: call.callee.e164 };
}

export function longestWindowMs(policy: Policy): number {
  return Math.max(0, ...policy.velocity.windows.map((w) => w.seconds)) * 1000;
}

/** `counts[i]` is the number of distinct destinations within `policy.velocity.windows[i]`. */
export function velocitySignal(policy: Policy, counts: readonly number[]): BehaviourSignals['distinctDestinations'] {
  return policy.velocity.windows.map((w, i) => ({ seconds: w.seconds, count: counts[i] ?? 0 }));
}

/**
 * A fingerprint's first presenter is kept as a call token. Seen under another token it is a
 * replay; seen under our own token it is the same call scored again.
 */
export function isReplay(firstPresenter: string | null, ownToken: string): boolean {
  return firstPresenter !== null && firstPresenter !== ownToken;
}

/** Null when there are no reports young enough to matter: the decision then ignores them. */
export function reportsSignal(summary: ReportCounts | null, at: number, maxAgeS: number): ReportsSignal | null {
  if (!summary || summary.count <= 0) return null;
  const newestAgeS = Math.max(0, Math.floor((at - summary.newestAt) / 1000));
  if (newestAgeS > maxAgeS) return null;
  return { count: summary.count, newestAgeS, categories: [...summary.categories].sort() };
}

export function campaignSignal(
  policy: Policy,
  bank: { bankId: string; bankName: string },
  failedCalls: number,
  firstAt: number | null,
): CampaignSignal | null {
  if (failedCalls < policy.campaign.minFailedCalls || firstAt === null) return null;
  return { bankId: bank.bankId, bankName: bank.bankName, failedCalls, since: new Date(firstAt).toISOString() };
}

/** A bank's failing calls in the window, summarised; null below the campaign threshold. */
export function summariseCampaign(
  policy: Policy,
  bank: { bankId: string; bankName: string },
  calls: readonly { number: string; at: number }[],
): CampaignSummary | null {
  if (calls.length < policy.campaign.minFailedCalls || calls.length === 0) return null;
  const perNumber = new Map<string, number>();
  let first = Number.POSITIVE_INFINITY;
  let last = Number.NEGATIVE_INFINITY;
  for (const c of calls) {
    perNumber.set(c.number, (perNumber.get(c.number) ?? 0) + 1);
    if (c.at < first) first = c.at;
    if (c.at > last) last = c.at;
  }
  const numbers = [...perNumber]
    .map(([number, n]) => ({ number, calls: n }))
    .sort((a, b) => b.calls - a.calls || (a.number < b.number ? -1 : a.number > b.number ? 1 : 0))
    .slice(0, TOP_CAMPAIGN_NUMBERS);
  return {
    bankId: bank.bankId,
    bankName: bank.bankName,
    numbers,
    failedCalls: calls.length,
    since: new Date(first).toISOString(),
    lastSeen: new Date(last).toISOString(),
  };
}

export function sortCampaigns(list: CampaignSummary[]): CampaignSummary[] {
  return list.sort((a, b) => b.failedCalls - a.failedCalls || a.bankId.localeCompare(b.bankId));
}

/**
 * A token for a call without a callId: short and unique across instances, a random prefix drawn
 * once per process and a counter. Drawing random bytes for every call cost more than the rest
 * of scoring it.
 */
const ID_PREFIX = randomBytes(6).toString('base64url');
let idCounter = 0;
function newId(): string {
  idCounter = (idCounter + 1) % Number.MAX_SAFE_INTEGER;
  return `${ID_PREFIX}${idCounter.toString(36)}`;
}

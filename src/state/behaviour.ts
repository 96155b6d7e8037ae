import { randomBytes } from 'node:crypto';
import type Redis from 'ioredis';
import type { BehaviourTracker, ObservedCall } from '../calls/assess';
import type { BehaviourSignals, Decision, Policy, ReasonCode } from '../scoring';
import type { HistoryEntry, HistoryStore } from './history';
import type { ReportStore, ReportSummary } from './reports';

/**
 * Behaviour across calls, the part both implementations share: what a call contributes to
 * each count, and how the counts become the signals the decision reads. The in-process and
 * the Redis trackers differ only in where the counts live, so a rule changed here changes
 * both, and this file is unit-tested without any store.
 */

/** A tracker with what the bank and operator routes read: campaigns, verdict history, fraud reports. */
export interface BehaviourStore extends BehaviourTracker {
  listCampaigns(now: number): Promise<CampaignSummary[]>;
  readonly history: HistoryStore;
  readonly reports: ReportStore;
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

/** Default replay memory: twice the default PASSporT freshness (60 s), so no fresh token outlives it. */
export const DEFAULT_REPLAY_TTL_S = 120;

export function failsChecks(decision: Decision): boolean {
  return decision.reasons.some((r) => CAMPAIGN_FAILING_REASONS.has(r.code));
}

/**
 * Short and unique across instances: a random prefix drawn once per process and a counter.
 * Drawing random bytes for every call cost more than the rest of recording it.
 */
const ID_PREFIX = randomBytes(6).toString('base64url');
let idCounter = 0;
export function newId(): string {
  idCounter = (idCounter + 1) % Number.MAX_SAFE_INTEGER;
  return `${ID_PREFIX}${idCounter.toString(36)}`;
}

// ---- What a call counts as -------------------------------------------------------------

/**
 * Who a call identifies itself as in the counts. A call without a callId cannot be told
 * apart from a retry, so it gets a token of its own and always counts as new.
 */
export function callToken(call: Pick<ObservedCall, 'callId'>): string {
  return call.callId !== undefined ? `c:${call.callId}` : `u:${newId()}`;
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
export function reportsSignal(summary: ReportSummary | null, at: number, maxAgeS: number): ReportsSignal | null {
  if (!summary || summary.count <= 0) return null;
  const newestAgeS = Math.max(0, Math.floor((at - summary.newestAt) / 1000));
  if (newestAgeS > maxAgeS) return null;
  return { count: summary.count, newestAgeS, categories: [...summary.categories].sort() };
}

/**
 * Two views of the same reports (the shared store and this instance's copy): each may have
 * missed some, neither double counts, so the larger count and the newer time are the best
 * estimate without a second read.
 */
export function mergeReportSummaries(a: ReportSummary | null, b: ReportSummary | null): ReportSummary | null {
  if (!a) return b;
  if (!b) return a;
  return {
    count: Math.max(a.count, b.count),
    newestAt: Math.max(a.newestAt, b.newestAt),
    categories: [...new Set([...a.categories, ...b.categories])].sort(),
  };
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

/**
 * A failing call in a bank's campaign count: the number it presented and the call's token,
 * so a rescored callId is one call and the campaign report can say which numbers were used.
 */
export function campaignMember(number: string, token: string): string {
  return `${number} ${token}`;
}

export function campaignMemberNumber(member: string): string {
  const space = member.indexOf(' ');
  return space === -1 ? member : member.slice(0, space);
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

/** What the history keeps of a scored call. */
export function historyEntry(call: ObservedCall, decision: Decision, id: string = newId()): HistoryEntry {
  const entry: HistoryEntry = {
    id,
    caller: call.caller.e164,
    // Emergency and other short codes have no E.164 but are worth finding again.
    callee: call.callee.e164 ?? call.callee.shortCode?.code ?? null,
    at: new Date(call.at).toISOString(),
    verdict: decision.verdict,
    score: decision.score,
    reasons: decision.reasons.map((r) => r.code),
  };
  if (call.callId !== undefined) entry.callId = call.callId;
  if (call.registry) entry.bankId = call.registry.bankId;
  return entry;
}

// ---- Redis plumbing shared by the Redis stores ----------------------------------------

/**
 * One Redis command and the hash tag of its only key. Every command the stores send touches
 * one key, and each key carries its entity in a hash tag, so a batch can be split by slot
 * when the client is a Cluster (ioredis refuses a pipeline whose keys live on several nodes).
 */
export interface RedisCommand {
  tag: string;
  args: [string, ...(string | number)[]];
}

/** `{prefix}{kind}:{tag}{rest}`: the tag decides the slot, so keys of one entity share it. */
export function taggedKey(prefix: string, kind: string, tag: string, rest = ''): string {
  return `${prefix}${kind}:{${tag}}${rest}`;
}

/** Makes arbitrary text usable inside a hash tag, keeping distinct inputs distinct. */
export function tagSafe(s: string): string {
  return s.replace(/[%{}]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

export function checkPrefix(prefix: string): string {
  // A brace in the prefix would become the hash tag of every key and put them all in one slot.
  if (/[{}]/.test(prefix)) throw new Error(`redis key prefix must not contain { or }: ${prefix}`);
  return prefix;
}

/**
 * Sends a batch in one round trip and returns the replies in order; throws on any error so
 * the guard counts it and the caller falls back. Against a Cluster the batch goes out as one
 * pipeline per hash tag, all at once: still one round trip of latency.
 */
export async function execBatch(client: Redis, commands: readonly RedisCommand[]): Promise<unknown[]> {
  if (commands.length === 0) return [];
  if (!client.isCluster) return unwrap(await client.pipeline(commands.map((c) => c.args)).exec());
  const groups = new Map<string, number[]>();
  commands.forEach((c, i) => {
    const g = groups.get(c.tag);
    if (g) g.push(i);
    else groups.set(c.tag, [i]);
  });
  const out: unknown[] = new Array(commands.length);
  await Promise.all(
    [...groups.values()].map(async (indexes) => {
      const replies = unwrap(await client.pipeline(indexes.map((i) => commands[i]!.args)).exec());
      indexes.forEach((i, j) => (out[i] = replies[j]));
    }),
  );
  return out;
}

function unwrap(results: [Error | null, unknown][] | null): unknown[] {
  if (!results) throw new Error('redis pipeline was discarded');
  return results.map(([err, value]) => {
    if (err) throw err;
    return value;
  });
}

export function replyNumber(v: unknown): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' ? Number(v) : Number.NaN;
  if (!Number.isFinite(n)) throw new Error(`unexpected redis reply: ${JSON.stringify(v)}`);
  return n;
}

export function replyString(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string') return v;
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  throw new Error(`unexpected redis reply: ${JSON.stringify(v)}`);
}

/**
 * A WITHSCORES reply as [member, score] pairs. RESP2 and ioredis' legacy mapping give a flat
 * array, RESP3 with the "resp3" mapping nested pairs: both are accepted.
 */
export function replyScored(v: unknown): [string, number][] {
  if (!Array.isArray(v)) throw new Error(`unexpected redis reply: ${JSON.stringify(v)}`);
  const out: [string, number][] = [];
  if (v.length > 0 && Array.isArray(v[0])) {
    for (const pair of v as unknown[][]) out.push([replyString(pair[0]) ?? '', replyNumber(pair[1])]);
    return out;
  }
  for (let i = 0; i + 1 < v.length; i += 2) out.push([replyString(v[i]) ?? '', replyNumber(v[i + 1])]);
  return out;
}

export function replyStrings(v: unknown): string[] {
  if (!Array.isArray(v)) throw new Error(`unexpected redis reply: ${JSON.stringify(v)}`);
  return v.map((x) => replyString(x) ?? '');
}

/**
 * Writes made while Redis was down, kept (bounded, oldest dropped first) to be sent once it
 * is back: history and reports are records, not just counters, and should not vanish
 * because of an outage.
 */
export class Backlog<T> {
  private items: T[] = [];
  dropped = 0;

  constructor(private readonly max: number) {}

  get size(): number {
    return this.items.length;
  }

  push(item: T): void {
    this.items.push(item);
    if (this.items.length > this.max) {
      const over = this.items.length - this.max;
      this.items.splice(0, over);
      this.dropped += over;
    }
  }

  take(n: number): T[] {
    return this.items.splice(0, n);
  }

  /** Puts back what could not be sent, ahead of anything written since. */
  restore(items: T[]): void {
    this.items.unshift(...items);
    if (this.items.length > this.max) {
      const over = this.items.length - this.max;
      this.items.splice(0, over);
      this.dropped += over;
    }
  }
}

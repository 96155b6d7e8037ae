import { LRUCache } from 'lru-cache';
import {
  callToken,
  campaignSignal,
  failsChecks,
  isReplay,
  longestWindowMs,
  sortCampaigns,
  summariseCampaign,
  velocityKeys,
  velocitySignal,
  type BehaviourSignals,
  type CampaignSummary,
  type Decision,
  type ObservedCall,
  type Policy,
} from '../../src/scoring';
import { campaignMember } from '../../src/state/campaign-member';
import { DEFAULT_REPLAY_TTL_S } from '../../src/state/ports';
import type { MemoryCallStateOptions as MemoryBehaviourOptions } from '../../src/state/memory/call-state';
import type { HistoryEntry, HistoryQuery, MemoryHistoryOptions } from '../../src/state/history';
import type { FraudReport, MemoryReportOptions, ReportCategory, ReportSummary } from '../../src/state/reports';

/**
 * The in-process behaviour and history as they were before they were made compact (LRUCache,
 * a Map of destinations per caller, an object and queues per history entry), kept as the model
 * the compact versions are checked against: same calls in, same answers out.
 */

export class ReferenceTracker {
  private readonly destinations: LRUCache<string, Map<string, number>>;
  private readonly presenters: LRUCache<string, { token: string; at: number }>;
  private readonly campaigns = new Map<string, { bankName: string; calls: Map<string, { number: string; at: number }> }>();
  private readonly replayTtlMs: number;
  private readonly maxDestinations: number;
  private readonly maxCallsPerBank: number;

  constructor(
    private readonly policy: Policy,
    opts: MemoryBehaviourOptions = {},
  ) {
    this.replayTtlMs = (opts.replayTtlS ?? DEFAULT_REPLAY_TTL_S) * 1000;
    this.maxDestinations = Math.max(1, opts.maxDestinationsPerCaller ?? 2000);
    this.maxCallsPerBank = Math.max(1, opts.maxCallsPerBank ?? 100_000);
    this.destinations = new LRUCache({ max: Math.max(1, opts.maxCallers ?? 200_000) });
    this.presenters = new LRUCache({ max: Math.max(1, opts.maxFingerprints ?? 200_000), ttl: this.replayTtlMs });
  }

  /** `observeSync` without the reports, which did not change. */
  observe(call: ObservedCall): Pick<BehaviourSignals, 'replayed' | 'distinctDestinations' | 'campaign'> {
    const signals: BehaviourSignals = { replayed: this.presented(call) };
    const velocity = this.velocity(call);
    if (velocity) signals.distinctDestinations = velocity;
    signals.campaign = this.campaign(call);
    return signals;
  }

  countFailure(call: ObservedCall, decision: Decision): void {
    const bank = call.registry;
    if (!bank || !failsChecks(decision)) return;
    const number = call.caller.e164 ?? bank.key;
    let entry = this.campaigns.get(bank.bankId);
    if (!entry) this.campaigns.set(bank.bankId, (entry = { bankName: bank.bankName, calls: new Map() }));
    entry.bankName = bank.bankName;
    const member = campaignMember(number, callToken(call));
    const prev = entry.calls.get(member);
    if (prev === undefined || call.at > prev.at) {
      entry.calls.delete(member);
      entry.calls.set(member, { number, at: call.at });
    }
    this.prune(entry, call.at);
    for (const key of entry.calls.keys()) {
      if (entry.calls.size <= this.maxCallsPerBank) break;
      entry.calls.delete(key);
    }
  }

  listCampaigns(now: number): CampaignSummary[] {
    const out: CampaignSummary[] = [];
    for (const [bankId, entry] of this.campaigns) {
      this.prune(entry, now);
      if (entry.calls.size === 0) {
        this.campaigns.delete(bankId);
        continue;
      }
      const summary = summariseCampaign(this.policy, { bankId, bankName: entry.bankName }, [...entry.calls.values()]);
      if (summary) out.push(summary);
    }
    return sortCampaigns(out);
  }

  /** Callers tracked, least recently seen first. */
  trackedCallers(): string[] {
    return [...this.destinations.rkeys()];
  }

  private velocity(call: ObservedCall): BehaviourSignals['distinctDestinations'] | undefined {
    const keys = velocityKeys(call);
    if (!keys) return undefined;
    let dests = this.destinations.get(keys.caller);
    if (!dests) {
      if (keys.destination === null) return velocitySignal(this.policy, []);
      this.destinations.set(keys.caller, (dests = new Map()));
    }
    const cutoff = call.at - longestWindowMs(this.policy);
    for (const [d, t] of dests) {
      if (t >= cutoff) break;
      dests.delete(d);
    }
    if (keys.destination !== null) {
      const prev = dests.get(keys.destination);
      if (prev === undefined || call.at > prev) {
        dests.delete(keys.destination);
        dests.set(keys.destination, call.at);
      }
      for (const d of dests.keys()) {
        if (dests.size <= this.maxDestinations) break;
        dests.delete(d);
      }
    }
    const cutoffs = this.policy.velocity.windows.map((w) => call.at - w.seconds * 1000);
    const counts = cutoffs.map(() => 0);
    for (const t of dests.values()) {
      cutoffs.forEach((c, i) => {
        if (t >= c) counts[i]!++;
      });
    }
    return velocitySignal(this.policy, counts);
  }

  private presented(call: ObservedCall): boolean {
    if (call.fingerprints.length === 0) return false;
    const token = callToken(call);
    let replayed = false;
    for (const fp of call.fingerprints) {
      const first = this.presenters.get(fp);
      if (first && call.at - first.at < this.replayTtlMs) {
        if (isReplay(first.token, token)) replayed = true;
      } else {
        this.presenters.set(fp, { token, at: call.at });
      }
    }
    return replayed;
  }

  private campaign(call: ObservedCall): BehaviourSignals['campaign'] {
    const bank = call.registry;
    if (!bank) return null;
    const entry = this.campaigns.get(bank.bankId);
    if (!entry) return null;
    this.prune(entry, call.at);
    const first = entry.calls.values().next();
    return campaignSignal(this.policy, bank, entry.calls.size, first.done ? null : first.value.at);
  }

  private prune(entry: { calls: Map<string, { at: number }> }, now: number): void {
    const cutoff = now - this.policy.campaign.windowS * 1000;
    for (const [k, c] of entry.calls) {
      if (c.at >= cutoff) break;
      entry.calls.delete(k);
    }
  }
}

const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1000;

class Queue<T> {
  private items: T[] = [];
  private head = 0;

  get size(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  peek(): T | undefined {
    return this.items[this.head];
  }

  shift(): T | undefined {
    const item = this.items[this.head];
    if (item === undefined) return undefined;
    this.head++;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  *newestFirst(): IterableIterator<T> {
    for (let i = this.items.length - 1; i >= this.head; i--) yield this.items[i]!;
  }
}

interface Held {
  entry: HistoryEntry;
  atMs: number;
  key: string;
}

export class ReferenceHistory {
  private readonly all = new Queue<Held>();
  private readonly byKey = new Map<string, Queue<Held>>();
  private readonly retentionMs: number;
  private readonly maxEntries: number;

  constructor(opts: MemoryHistoryOptions = {}) {
    this.retentionMs = (opts.retentionS ?? 30 * 86400) * 1000;
    this.maxEntries = Math.max(1, opts.maxEntries ?? 200_000);
  }

  get size(): number {
    return this.all.size;
  }

  addSync(entry: HistoryEntry): void {
    const key = indexKey(entry.caller, entry.callee);
    if (key === null) return;
    const held: Held = { entry, atMs: Date.parse(entry.at), key };
    this.all.push(held);
    let list = this.byKey.get(key);
    if (!list) this.byKey.set(key, (list = new Queue()));
    list.push(held);
    const cutoff = held.atMs - this.retentionMs;
    for (let oldest = this.all.peek(); oldest && (this.all.size > this.maxEntries || oldest.atMs < cutoff); oldest = this.all.peek()) {
      this.all.shift();
      const own = this.byKey.get(oldest.key);
      own?.shift();
      if (own && own.size === 0) this.byKey.delete(oldest.key);
    }
  }

  query(q: HistoryQuery): HistoryEntry[] {
    const key = indexKey(q.caller, q.callee ?? null);
    if (key === null || (q.caller === null && q.callee === undefined)) return [];
    const list = this.byKey.get(key);
    if (!list) return [];
    const since = sinceOf(q);
    const out: HistoryEntry[] = [];
    for (const held of list.newestFirst()) if (matches(held.entry, q, since)) out.push(held.entry);
    return out.sort(newestFirst).slice(0, limitOf(q));
  }
}

function limitOf(q: HistoryQuery): number {
  return Math.max(1, Math.min(MAX_LIMIT, Math.floor(q.limit ?? DEFAULT_LIMIT)));
}

function sinceOf(q: HistoryQuery): number {
  if (q.since === undefined) return Number.NEGATIVE_INFINITY;
  const ms = typeof q.since === 'number' ? q.since : Date.parse(q.since);
  return Number.isFinite(ms) ? ms : Number.NEGATIVE_INFINITY;
}

function matches(e: HistoryEntry, q: HistoryQuery, since: number): boolean {
  return (
    e.caller === q.caller &&
    (q.callee === undefined || e.callee === q.callee) &&
    (q.bankId === undefined || e.bankId === q.bankId) &&
    Date.parse(e.at) >= since
  );
}

function newestFirst(a: HistoryEntry, b: HistoryEntry): number {
  return Date.parse(b.at) - Date.parse(a.at) || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
}

function indexKey(caller: string | null, callee: string | null): string | null {
  if (caller !== null) return caller;
  return callee === null ? null : `withheld:${callee}`;
}

export class ReferenceReports {
  private readonly byNumber: LRUCache<string, FraudReport[]>;
  private readonly maxAgeMs: number;
  private readonly maxPerNumber: number;

  constructor(opts: MemoryReportOptions) {
    this.maxAgeMs = opts.maxAgeS * 1000;
    this.maxPerNumber = Math.max(1, opts.maxPerNumber ?? 1000);
    this.byNumber = new LRUCache<string, FraudReport[]>({ max: Math.max(1, opts.maxNumbers ?? 100_000) });
  }

  keep(report: FraudReport): void {
    const list = this.byNumber.get(report.number) ?? [];
    if (list.some((r) => r.id === report.id)) return;
    list.push(report);
    if (list.length > this.maxPerNumber) {
      list.sort(reportsNewestFirst);
      list.length = this.maxPerNumber;
    }
    this.byNumber.set(report.number, list);
  }

  summary(number: string, now: number): ReportSummary | null {
    const list = this.byNumber.peek(number);
    if (!list) return null;
    const cutoff = now - this.maxAgeMs;
    let count = 0;
    let newestAt = Number.NEGATIVE_INFINITY;
    const categories = new Set<ReportCategory>();
    for (const r of list) {
      const at = Date.parse(r.at);
      // A genuine report is kept for review and never counts against the number.
      if (at < cutoff || r.category === 'genuine') continue;
      count++;
      if (at > newestAt) newestAt = at;
      categories.add(r.category);
    }
    return count === 0 ? null : { count, newestAt, categories: [...categories].sort() };
  }

  list(number: string, now: number, limit = 100): FraudReport[] {
    const cutoff = now - this.maxAgeMs;
    return (this.byNumber.peek(number) ?? [])
      .filter((r) => Date.parse(r.at) >= cutoff)
      .sort(reportsNewestFirst)
      .slice(0, limit);
  }
}

function reportsNewestFirst(a: FraudReport, b: FraudReport): number {
  return Date.parse(b.at) - Date.parse(a.at) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

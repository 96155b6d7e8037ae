import { LRUCache } from 'lru-cache';
import type { ObservedCall } from '../calls/assess';
import type { BehaviourSignals, Decision, Policy } from '../scoring';
import {
  callToken,
  campaignMember,
  campaignSignal,
  DEFAULT_REPLAY_TTL_S,
  failsChecks,
  historyEntry,
  isReplay,
  longestWindowMs,
  reportsSignal,
  sortCampaigns,
  summariseCampaign,
  velocityKeys,
  velocitySignal,
  type BehaviourStore,
  type CampaignSummary,
} from './behaviour';
import { MemoryHistoryStore } from './history';
import { MemoryReportStore } from './reports';

export interface MemoryBehaviourOptions {
  /** How long a PASSporT fingerprint is remembered (default 120 s, twice the freshness window). */
  replayTtlS?: number;
  /** Callers whose destinations are tracked, least recently seen dropped first. */
  maxCallers?: number;
  /**
   * Destinations kept per caller, oldest dropped first. Far above any velocity limit, so a
   * caller past it is still over the limit: the count saturates, it never under-reports.
   */
  maxDestinationsPerCaller?: number;
  /** Fingerprints remembered, least recent dropped first. */
  maxFingerprints?: number;
  /** Failing calls kept per bank; as with destinations, far above the campaign threshold. */
  maxCallsPerBank?: number;
  history?: MemoryHistoryStore;
  reports?: MemoryReportStore;
}

interface Presenter {
  token: string;
  at: number;
}

interface BankCalls {
  bankName: string;
  /** Member (number + call token) -> call, in time order: expired calls are at the front. */
  calls: Map<string, { number: string; at: number }>;
}

/**
 * Behaviour kept in this process: the whole story for a single instance, and what the Redis
 * tracker falls back on while Redis is away. Every structure is bounded, and time comes from
 * the calls (`at`), never the wall clock, so a replayed test or a pinned clock sees the same
 * answers as live traffic.
 */
export class MemoryBehaviourTracker implements BehaviourStore {
  readonly history: MemoryHistoryStore;
  readonly reports: MemoryReportStore;
  private readonly destinations: LRUCache<string, Map<string, number>>;
  private readonly presenters: LRUCache<string, Presenter>;
  private readonly campaigns = new Map<string, BankCalls>();
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
    // The TTL here only reclaims memory (on the wall clock); replay itself is judged on call times.
    this.presenters = new LRUCache({ max: Math.max(1, opts.maxFingerprints ?? 200_000), ttl: this.replayTtlMs });
    this.history = opts.history ?? new MemoryHistoryStore();
    this.reports = opts.reports ?? new MemoryReportStore({ maxAgeS: policy.reports.maxAgeS });
  }

  async observe(call: ObservedCall): Promise<BehaviourSignals> {
    return this.observeSync(call);
  }

  observeSync(call: ObservedCall): BehaviourSignals {
    const signals: BehaviourSignals = { replayed: this.presented(call) };
    const velocity = this.velocity(call);
    if (velocity) signals.distinctDestinations = velocity;
    const caller = call.caller.e164;
    signals.reports = caller === null ? null : reportsSignal(this.reports.summarySync(caller, call.at), call.at, this.policy.reports.maxAgeS);
    signals.campaign = this.campaign(call);
    return signals;
  }

  async record(call: ObservedCall, decision: Decision): Promise<void> {
    try {
      this.countFailure(call, decision);
      this.history.addSync(historyEntry(call, decision));
    } catch {
      // Recording is best effort: a verdict has already been returned.
    }
  }

  /** The campaign half of `record`: the Redis tracker keeps it here too, for when Redis goes. */
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
      // Re-inserted so that the map stays in time order.
      entry.calls.delete(member);
      entry.calls.set(member, { number, at: call.at });
    }
    this.prune(entry, call.at);
    for (const key of entry.calls.keys()) {
      if (entry.calls.size <= this.maxCallsPerBank) break;
      entry.calls.delete(key);
    }
  }

  async listCampaigns(now: number): Promise<CampaignSummary[]> {
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
      // Like ZADD GT: a late, older call never moves a destination back in time.
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

  /** Like SET NX: the first call to present a fingerprint owns it until it expires. */
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

  private prune(entry: BankCalls, now: number): void {
    const cutoff = now - this.policy.campaign.windowS * 1000;
    for (const [k, c] of entry.calls) {
      if (c.at >= cutoff) break;
      entry.calls.delete(k);
    }
  }
}

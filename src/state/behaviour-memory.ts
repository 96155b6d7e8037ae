import {
  callToken,
  campaignSignal,
  failsChecks,
  isReplay,
  longestWindowMs,
  reportsSignal,
  sortCampaigns,
  summariseCampaign,
  velocityKeys,
  velocitySignal,
  type BehaviourSignals,
  type CampaignSummary,
  type Decision,
  type ObservedCall,
  type Policy,
} from '../scoring';
import { campaignMember } from './campaign-member';
import { MemoryHistoryStore } from './history';
import { LruSlots } from './lru-slots';
import { DEFAULT_REPLAY_TTL_S, type BehaviourStore } from './ports';
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


interface BankCall {
  /** Number + call token (see `campaignMember`): a call scored again is one call. */
  member: string;
  number: string;
  at: number;
}

/**
 * A bank's failing calls in the order they were counted (a call counted again at a later time
 * moves to the back), so the expired are at the front. A Map in insertion order would do, but
 * finding its front again after deleting there makes V8 step over every deleted entry not yet
 * compacted away: tens of microseconds a call once a campaign runs to tens of thousands of
 * calls. Here the order is a queue with a moving head, and a call counted again or dropped
 * leaves its old place behind, told apart by no longer being the call `byMember` holds.
 */
class BankCalls {
  private readonly byMember = new Map<string, BankCall>();
  private order: BankCall[] = [];
  private head = 0;

  constructor(public bankName: string) {}

  get size(): number {
    return this.byMember.size;
  }

  /** Like ZADD GT: a call counted before moves forward only to a later time. */
  count(member: string, number: string, at: number): void {
    const prev = this.byMember.get(member);
    if (prev !== undefined && !(at > prev.at)) return;
    const c: BankCall = { member, number, at };
    this.byMember.set(member, c);
    this.order.push(c);
    this.compact();
  }

  /** Drops the calls before `cutoff` (and a NaN time, as the loop over a Map did). */
  prune(cutoff: number): void {
    for (let c = this.front(); c !== undefined && !(c.at >= cutoff); c = this.front()) this.dropFront(c);
  }

  /** Drops the oldest calls past `max`. */
  trim(max: number): void {
    for (let c = this.front(); c !== undefined && this.byMember.size > max; c = this.front()) this.dropFront(c);
  }

  firstAt(): number | null {
    const c = this.front();
    return c === undefined ? null : c.at;
  }

  /** The calls held, oldest first. */
  calls(): BankCall[] {
    const out: BankCall[] = [];
    for (let i = this.head; i < this.order.length; i++) {
      const c = this.order[i]!;
      if (this.byMember.get(c.member) === c) out.push(c);
    }
    return out;
  }

  private front(): BankCall | undefined {
    const order = this.order;
    while (this.head < order.length) {
      const c = order[this.head]!;
      if (this.byMember.get(c.member) === c) return c;
      this.head++;
    }
    return undefined;
  }

  private dropFront(c: BankCall): void {
    this.byMember.delete(c.member);
    this.head++;
    this.compact();
  }

  /** Cuts the queue down once most of it is behind the head, or left behind by recounts. */
  private compact(): void {
    const length = this.order.length;
    if ((this.head > 1024 && this.head * 2 > length) || length - this.head > 2 * this.byMember.size + 1024) {
      this.order = this.calls();
      this.head = 0;
    }
  }
}

/** No destinations: every window counts none. */
const NO_COUNTS: readonly number[] = [];

/**
 * Behaviour kept in this process: the whole story for a single instance, and what the Redis
 * tracker falls back on while Redis is away. Every structure is bounded, and windows are
 * judged on the calls' own times (`at`), so a replayed test or a pinned clock sees the same
 * answers as live traffic; the one exception is a fingerprint's expiry on this process's clock
 * (see `presented`), as Redis's EX expires it.
 *
 * It runs on every call, Redis or not, so a call's path allocates next to nothing and keeps
 * little: callers and fingerprints are slots of an `LruSlots` with their values in plain arrays,
 * a caller's one destination (most spoofed caller IDs call once) is held inline and a Map is
 * made only at its second distinct destination, the window counts go through scratch arrays,
 * and a bank's failing calls are a queue (see `BankCalls`).
 */
export class MemoryBehaviourTracker implements BehaviourStore {
  readonly history: MemoryHistoryStore;
  readonly reports: MemoryReportStore;
  /** Callers whose destinations are tracked; what each holds is in the arrays below, by slot. */
  private readonly callers: LruSlots;
  /**
   * A caller's destinations: none (null), one held inline (its last call's time in `destAt`),
   * or from the second distinct one a Map (destination -> last call) in the order destinations
   * were last moved forward, so that the expired are at the front.
   */
  private readonly destinations: (string | Map<string, number> | null)[] = [];
  private readonly destAt: number[] = [];
  /**
   * PASSporT fingerprints; by slot, the token of the call that first presented one, that call's
   * time, and when it was stored on this process's monotonic clock (past the TTL on that clock,
   * the fingerprint is forgotten, whatever the calls' times say).
   */
  private readonly presenters: LruSlots;
  private readonly presenterToken: string[] = [];
  private readonly presenterAt: number[] = [];
  private readonly presenterStored: number[] = [];
  private readonly campaigns = new Map<string, BankCalls>();
  private readonly replayTtlMs: number;
  private readonly maxDestinations: number;
  private readonly maxCallsPerBank: number;
  /** The velocity windows in ms, the longest of them, and scratch space for one call's counts. */
  private readonly windowsMs: number[];
  private readonly longestMs: number;
  private readonly counts: number[];
  private readonly cutoffs: number[];

  constructor(
    private readonly policy: Policy,
    opts: MemoryBehaviourOptions = {},
  ) {
    this.replayTtlMs = (opts.replayTtlS ?? DEFAULT_REPLAY_TTL_S) * 1000;
    this.maxDestinations = Math.max(1, opts.maxDestinationsPerCaller ?? 2000);
    this.maxCallsPerBank = Math.max(1, opts.maxCallsPerBank ?? 100_000);
    this.callers = new LruSlots(Math.max(1, opts.maxCallers ?? 200_000));
    this.presenters = new LruSlots(Math.max(1, opts.maxFingerprints ?? 200_000));
    this.windowsMs = policy.velocity.windows.map((w) => w.seconds * 1000);
    this.longestMs = longestWindowMs(policy);
    this.counts = this.windowsMs.map(() => 0);
    this.cutoffs = this.windowsMs.map(() => 0);
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
      // What `historyEntry(call, decision)` makes, stored without making it.
      this.history.addCall(call, decision);
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
    if (!entry) this.campaigns.set(bank.bankId, (entry = new BankCalls(bank.bankName)));
    entry.bankName = bank.bankName;
    entry.count(campaignMember(number, callToken(call)), number, call.at);
    entry.prune(this.campaignCutoff(call.at));
    entry.trim(this.maxCallsPerBank);
  }

  async listCampaigns(now: number): Promise<CampaignSummary[]> {
    const out: CampaignSummary[] = [];
    for (const [bankId, entry] of this.campaigns) {
      entry.prune(this.campaignCutoff(now));
      if (entry.size === 0) {
        this.campaigns.delete(bankId);
        continue;
      }
      const summary = summariseCampaign(this.policy, { bankId, bankName: entry.bankName }, entry.calls());
      if (summary) out.push(summary);
    }
    return sortCampaigns(out);
  }

  /** Callers tracked for velocity, least recently seen first (for tests and diagnostics). */
  trackedCallers(): string[] {
    return [...this.callers.keysByAge()];
  }

  /**
   * The caller's distinct destinations per window, this call's included. Each destination keeps
   * its latest call (ZADD GT: a late, older call never moves it back), destinations older than
   * the longest window go, and past `maxDestinations` the longest unmoved go first.
   */
  private velocity(call: ObservedCall): BehaviourSignals['distinctDestinations'] | undefined {
    const keys = velocityKeys(call);
    if (!keys) return undefined;
    const at = call.at;
    const destination = keys.destination;
    let slot = this.callers.use(keys.caller);
    if (slot === -1) {
      if (destination === null) return velocitySignal(this.policy, NO_COUNTS);
      slot = this.callers.add(keys.caller);
      this.destinations[slot] = destination;
      this.destAt[slot] = at;
      return this.countOne(at, at);
    }
    const held = this.destinations[slot]!;
    if (held !== null && typeof held !== 'string') return this.velocityOfMany(slot, held, at, destination);

    let only: string | null = held;
    let onlyAt = this.destAt[slot]!;
    // Written as the Map loop below is, so that a NaN time expires alike.
    if (only !== null && !(onlyAt >= at - this.longestMs)) only = null;
    if (destination !== null) {
      if (only === null) {
        only = destination;
        onlyAt = at;
      } else if (only === destination) {
        if (at > onlyAt) onlyAt = at;
      } else {
        // The second distinct destination: a Map from now on, the first one first.
        const many = new Map<string, number>();
        many.set(only, onlyAt);
        this.destinations[slot] = many;
        return this.velocityOfMany(slot, many, at, destination);
      }
    }
    this.destinations[slot] = only;
    this.destAt[slot] = onlyAt;
    return only === null ? velocitySignal(this.policy, NO_COUNTS) : this.countOne(onlyAt, at);
  }

  private velocityOfMany(slot: number, dests: Map<string, number>, at: number, destination: string | null): BehaviourSignals['distinctDestinations'] {
    const cutoff = at - this.longestMs;
    for (const [d, t] of dests) {
      if (t >= cutoff) break;
      dests.delete(d);
    }
    if (destination !== null) {
      const prev = dests.get(destination);
      if (prev === undefined || at > prev) {
        dests.delete(destination);
        dests.set(destination, at);
      }
      if (dests.size > this.maxDestinations) {
        for (const d of dests.keys()) {
          if (dests.size <= this.maxDestinations) break;
          dests.delete(d);
        }
      }
    }
    // Back inline once one destination or none is left.
    if (dests.size <= 1) {
      let only: string | null = null;
      let onlyAt = 0;
      for (const [d, t] of dests) {
        only = d;
        onlyAt = t;
      }
      this.destinations[slot] = only;
      this.destAt[slot] = onlyAt;
      return only === null ? velocitySignal(this.policy, NO_COUNTS) : this.countOne(onlyAt, at);
    }
    const { windowsMs, counts, cutoffs } = this;
    for (let i = 0; i < windowsMs.length; i++) {
      cutoffs[i] = at - windowsMs[i]!;
      counts[i] = 0;
    }
    for (const t of dests.values()) {
      for (let i = 0; i < cutoffs.length; i++) if (t >= cutoffs[i]!) counts[i]!++;
    }
    return velocitySignal(this.policy, counts);
  }

  /** The counts of a single destination last called at `t`. */
  private countOne(t: number, at: number): BehaviourSignals['distinctDestinations'] {
    const { windowsMs, counts } = this;
    for (let i = 0; i < windowsMs.length; i++) counts[i] = t >= at - windowsMs[i]! ? 1 : 0;
    return velocitySignal(this.policy, counts);
  }

  /**
   * Like SET NX: the first call to present a fingerprint owns it until it expires. Expiry is
   * judged on call times; a fingerprint stored longer ago than the TTL on this process's own
   * clock is forgotten too (as LRUCache's `ttl` did, and as Redis's EX does).
   */
  private presented(call: ObservedCall): boolean {
    const fingerprints = call.fingerprints;
    if (fingerprints.length === 0) return false;
    const token = callToken(call);
    const ttl = this.replayTtlMs;
    const now = performance.now();
    let replayed = false;
    for (let i = 0; i < fingerprints.length; i++) {
      const fp = fingerprints[i]!;
      let slot = this.presenters.use(fp);
      if (slot !== -1 && !(ttl > 0 && now - this.presenterStored[slot]! > ttl) && call.at - this.presenterAt[slot]! < ttl) {
        if (isReplay(this.presenterToken[slot]!, token)) replayed = true;
        continue;
      }
      if (slot === -1) slot = this.presenters.add(fp);
      this.presenterToken[slot] = token;
      this.presenterAt[slot] = call.at;
      this.presenterStored[slot] = now;
    }
    return replayed;
  }

  private campaign(call: ObservedCall): BehaviourSignals['campaign'] {
    const bank = call.registry;
    if (!bank) return null;
    const entry = this.campaigns.get(bank.bankId);
    if (!entry) return null;
    entry.prune(this.campaignCutoff(call.at));
    return campaignSignal(this.policy, bank, entry.size, entry.firstAt());
  }

  private campaignCutoff(now: number): number {
    return now - this.policy.campaign.windowS * 1000;
  }
}

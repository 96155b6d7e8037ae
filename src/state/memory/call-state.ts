import { LRUCache } from 'lru-cache';
import { MemoryAnnouncementStore } from '../announcements';
import { campaignMember } from '../campaign-member';
import { MemoryDecisionStore } from '../decisions';
import { MemoryHistoryStore } from '../history';
import { LruSlots } from '../lru-slots';
import { DEFAULT_MEMORY_BOUNDS } from '../memory-bounds';
import { DEFAULT_REPLAY_TTL_S, type CallStateQuery, type CallStateReading, type CallStateStore, type CallStateWrite, type CampaignCalls } from '../ports';
import { MemoryReportStore } from '../reports';

export interface MemoryCallStateOptions {
  /** How long a PASSporT fingerprint is remembered (default 120 s, twice the freshness window). */
  replayTtlS?: number;
  /** Callers whose destinations are tracked, least recently seen dropped first. */
  maxCallers?: number;
  /**
   * Destinations kept per caller, oldest dropped first. Far above any velocity limit, so a
   * caller past it is still over the limit: the count saturates, it never under-reports.
   */
  maxDestinationsPerCaller?: number;
  /**
   * Destinations kept over all callers together; past it the least recently seen callers are
   * forgotten whole. Without it, many callers each calling many numbers would hold
   * maxCallers x maxDestinationsPerCaller.
   */
  maxDestinations?: number;
  /** Fingerprints remembered, least recent dropped first. */
  maxFingerprints?: number;
  /** Failing calls kept per bank; as with destinations, far above the campaign threshold. */
  maxCallsPerBank?: number;
  /** How long fraud reports count (default 30 days, the default policy's). */
  reportsMaxAgeS?: number;
  /** Verdict cache entries kept in process, least recent dropped first. */
  verdictCacheSize?: number;
  /** The clock verdict cache entries expire by (milliseconds since the epoch). */
  now?: () => number;
  history?: MemoryHistoryStore;
  reports?: MemoryReportStore;
  announcements?: MemoryAnnouncementStore;
  /** Default: one on the same clock, with its default bounds. */
  decisions?: MemoryDecisionStore;
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

/**
 * State kept in this process: the whole story for a single instance, and what the Redis store
 * falls back on while Redis is away. Every structure is bounded, and windows are judged on the
 * calls' own times (`at`), so a replayed test or a pinned clock sees the same answers as live
 * traffic; the one exception is a fingerprint's expiry on this process's clock (see
 * `presented`), as Redis's EX expires it.
 *
 * It runs on every call, Redis or not, so a call's path allocates little and keeps little:
 * callers and fingerprints are slots of an `LruSlots` with their values in plain arrays, a
 * caller's one destination (most spoofed caller IDs call once) is held inline and a Map is made
 * only at its second distinct destination, and a bank's failing calls are a queue (see
 * `BankCalls`). The verdict cache's in-process level lives here too.
 */
export class MemoryCallState<V extends object> implements CallStateStore<V> {
  readonly history: MemoryHistoryStore;
  readonly reports: MemoryReportStore;
  readonly announcements: MemoryAnnouncementStore;
  readonly decisions: MemoryDecisionStore;
  /** Callers whose destinations are tracked; what each holds is in the arrays below, by slot. */
  private readonly callers: LruSlots;
  /**
   * A caller's destinations: none (null), one held inline (its last call's time in `destAt`),
   * or from the second distinct one a Map (destination -> last call) in the order destinations
   * were last moved forward, so that the expired are at the front.
   */
  private readonly destinations: (string | Map<string, number> | null)[] = [];
  private readonly destAt: number[] = [];
  /** Destinations held over all callers (a Map's size, 1 inline, 0 none). */
  private heldDestinations = 0;
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
  private readonly verdicts: LRUCache<string, V>;
  private readonly replayTtlMs: number;
  private readonly maxDestinations: number;
  private readonly maxDestinationsInAll: number;
  private readonly maxCallsPerBank: number;

  /** The clock verdict cache entries expire by; a Redis store in front of this one reads it too. */
  readonly now: () => number;

  constructor(opts: MemoryCallStateOptions = {}) {
    this.replayTtlMs = (opts.replayTtlS ?? DEFAULT_REPLAY_TTL_S) * 1000;
    this.maxDestinations = Math.max(1, opts.maxDestinationsPerCaller ?? 2000);
    this.maxDestinationsInAll = Math.max(1, opts.maxDestinations ?? DEFAULT_MEMORY_BOUNDS.destinations);
    this.maxCallsPerBank = Math.max(1, opts.maxCallsPerBank ?? 100_000);
    this.callers = new LruSlots(Math.max(1, opts.maxCallers ?? DEFAULT_MEMORY_BOUNDS.callers));
    this.presenters = new LruSlots(Math.max(1, opts.maxFingerprints ?? DEFAULT_MEMORY_BOUNDS.fingerprints));
    this.now = opts.now ?? Date.now;
    // ttlResolution 0: the clock is asked at every look, never a value kept from an earlier one
    // (a clock moved by a test would otherwise be seen a millisecond of real time late).
    this.verdicts = new LRUCache<string, V>({ max: Math.max(1, opts.verdictCacheSize ?? 10_000), ttlAutopurge: false, perf: { now: this.now }, ttlResolution: 0 });
    this.history = opts.history ?? new MemoryHistoryStore();
    this.reports = opts.reports ?? new MemoryReportStore({ maxAgeS: opts.reportsMaxAgeS ?? 30 * 86400 });
    this.announcements = opts.announcements ?? new MemoryAnnouncementStore();
    this.decisions = opts.decisions ?? new MemoryDecisionStore({ now: this.now });
  }

  peekCached(key: string): V | undefined {
    return this.verdicts.get(key);
  }

  /** Fills the in-process verdict cache level (the Redis store's hits and writes land here too). */
  setCached(key: string, value: V, ttlMs: number): void {
    if (ttlMs > 0) this.verdicts.set(key, value, { ttl: ttlMs });
  }

  async read(q: CallStateQuery): Promise<CallStateReading<V>> {
    return this.readSync(q);
  }

  /** `read`, for the Redis store (which runs it on every call to stay warm) and tests. */
  readSync(q: CallStateQuery): CallStateReading<V> {
    return {
      destinations: q.velocity ? this.velocity(q.velocity, q.at) : null,
      presenters: this.presented(q.fingerprints, q.token, q.at),
      reports: q.reportsOf === null ? null : this.reports.summarySync(q.reportsOf, q.at),
      campaign: q.campaign ? this.campaign(q.campaign.bankId, q.campaign.since) : null,
      announced: q.announcement ? this.announcements.matchSync(q.announcement.caller, q.announcement.callee, q.at) : null,
      // The in-process level was peeked before the read; a miss there is a miss here.
      cached: undefined,
    };
  }

  async write(w: CallStateWrite<V>): Promise<void> {
    try {
      this.countCampaign(w.campaign);
      this.history.addRecord(w.history);
      if (w.decision) this.decisions.add(w.decision);
      if (w.cache) this.setCached(w.cache.key, w.cache.value, w.cache.ttlMs);
    } catch {
      // Recording is best effort: a verdict has already been returned.
    }
  }

  /** The campaign half of `write`: the Redis store keeps it here too, for when Redis goes. */
  countCampaign(c: CallStateWrite<V>['campaign']): void {
    if (!c) return;
    let entry = this.campaigns.get(c.bankId);
    if (!entry) this.campaigns.set(c.bankId, (entry = new BankCalls(c.bankName)));
    entry.bankName = c.bankName;
    entry.count(campaignMember(c.number, c.token), c.number, c.at);
    entry.prune(c.at - c.windowMs);
    entry.trim(this.maxCallsPerBank);
  }

  async campaignCalls(since: number): Promise<CampaignCalls[]> {
    const out: CampaignCalls[] = [];
    for (const [bankId, entry] of this.campaigns) {
      entry.prune(since);
      if (entry.size === 0) {
        this.campaigns.delete(bankId);
        continue;
      }
      out.push({ bankId, bankName: entry.bankName, calls: entry.calls() });
    }
    return out;
  }

  /** Callers tracked for velocity, least recently seen first (for tests and diagnostics). */
  trackedCallers(): string[] {
    return [...this.callers.keysByAge()];
  }

  /**
   * The caller's distinct destinations per window, this call's included. Each destination keeps
   * its latest call (ZADD GT: a late, older call never moves it back), destinations older than
   * `keepMs` go, and past `maxDestinations` the longest unmoved go first.
   */
  private velocity(v: NonNullable<CallStateQuery['velocity']>, at: number): number[] {
    let slot = this.callers.use(v.caller);
    if (slot === -1) {
      if (v.destination === null) return v.windowsMs.map(() => 0);
      slot = this.callers.add(v.caller);
      // A reused slot still holds the forgotten caller's destinations.
      this.heldDestinations -= destinationsIn(this.destinations[slot]);
      this.destinations[slot] = null;
      this.destAt[slot] = at;
    }
    const before = destinationsIn(this.destinations[slot]);
    const counts = this.velocityOf(slot, v, at);
    this.heldDestinations += destinationsIn(this.destinations[slot]) - before;
    if (this.heldDestinations > this.maxDestinationsInAll) this.forgetOldestCallers(slot);
    return counts;
  }

  /** Forgets the least recently seen callers, never `keep` (the caller of the call at hand), until the destinations held are within their bound. */
  private forgetOldestCallers(keep: number): void {
    while (this.heldDestinations > this.maxDestinationsInAll) {
      const slot = this.callers.oldestSlot;
      if (slot === -1 || slot === keep) return;
      this.heldDestinations -= destinationsIn(this.destinations[slot]);
      this.destinations[slot] = null;
      this.callers.dropOldest();
    }
  }

  /** Destinations held over all callers (for tests and diagnostics). */
  get destinationsHeld(): number {
    return this.heldDestinations;
  }

  private velocityOf(slot: number, v: NonNullable<CallStateQuery['velocity']>, at: number): number[] {
    const { destination, windowsMs, keepMs } = v;
    const held = this.destinations[slot]!;
    if (held !== null && typeof held !== 'string') return this.velocityOfMany(slot, held, at, destination, windowsMs, keepMs);

    let only: string | null = held;
    let onlyAt = this.destAt[slot]!;
    // Written as the Map loop below is, so that a NaN time expires alike.
    if (only !== null && !(onlyAt >= at - keepMs)) only = null;
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
        return this.velocityOfMany(slot, many, at, destination, windowsMs, keepMs);
      }
    }
    this.destinations[slot] = only;
    this.destAt[slot] = onlyAt;
    return only === null ? windowsMs.map(() => 0) : countOne(windowsMs, onlyAt, at);
  }

  private velocityOfMany(slot: number, dests: Map<string, number>, at: number, destination: string | null, windowsMs: readonly number[], keepMs: number): number[] {
    const cutoff = at - keepMs;
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
      return only === null ? windowsMs.map(() => 0) : countOne(windowsMs, onlyAt, at);
    }
    const cutoffs = windowsMs.map((w) => at - w);
    const counts = windowsMs.map(() => 0);
    for (const t of dests.values()) {
      for (let i = 0; i < cutoffs.length; i++) if (t >= cutoffs[i]!) counts[i]!++;
    }
    return counts;
  }

  /**
   * Like SET NX: the first call to present a fingerprint owns it until it expires. Expiry is
   * judged on call times; a fingerprint stored longer ago than the TTL on this process's own
   * clock is forgotten too (as LRUCache's `ttl` did, and as Redis's EX does).
   */
  private presented(fingerprints: readonly string[], token: string, at: number): (string | null)[] {
    if (fingerprints.length === 0) return [];
    const ttl = this.replayTtlMs;
    const now = performance.now();
    const owners: (string | null)[] = new Array(fingerprints.length);
    for (let i = 0; i < fingerprints.length; i++) {
      const fp = fingerprints[i]!;
      let slot = this.presenters.use(fp);
      if (slot !== -1 && !(ttl > 0 && now - this.presenterStored[slot]! > ttl) && at - this.presenterAt[slot]! < ttl) {
        owners[i] = this.presenterToken[slot]!;
        continue;
      }
      if (slot === -1) slot = this.presenters.add(fp);
      this.presenterToken[slot] = token;
      this.presenterAt[slot] = at;
      this.presenterStored[slot] = now;
      owners[i] = null;
    }
    return owners;
  }

  private campaign(bankId: string, since: number): { count: number; firstAt: number | null } | null {
    const entry = this.campaigns.get(bankId);
    if (!entry) return null;
    entry.prune(since);
    return { count: entry.size, firstAt: entry.firstAt() };
  }
}

function destinationsIn(held: string | Map<string, number> | null | undefined): number {
  return held === null || held === undefined ? 0 : typeof held === 'string' ? 1 : held.size;
}

/** The counts of a single destination last called at `t`. */
function countOne(windowsMs: readonly number[], t: number, at: number): number[] {
  return windowsMs.map((w) => (t >= at - w ? 1 : 0));
}

/**
 * State shared by every instance through Redis (keys: keyspace.ts).
 *
 * Round trips: `read` is one command and `write` is one command, each one EVALSHA of the ops
 * script (ops.ts) doing every read or write of the call server-side, the verdict cache's GET
 * riding in the read and its SET in the write. Against a Cluster each is one script call per
 * hash tag involved, all sent at once: one round trip of latency.
 */
import { hash } from 'node:crypto';
import { RedisAnnouncementStore } from '../announcements';
import { campaignMember, campaignMemberNumber } from '../campaign-member';
import { decisionEntry, RedisDecisionStore } from '../decisions';
import { historyEntry, RedisHistoryStore } from '../history';
import type { MemoryCallState } from '../memory/call-state';
import { DEFAULT_REPLAY_TTL_S, type CallStateQuery, type CallStateReading, type CallStateStore, type CallStateWrite, type CampaignCalls } from '../ports';
import { mergeReportSummaries, RedisReportStore } from '../reports';
import type { RedisGuard } from './client';
import { bankTag, CAMPAIGNS_TAG, keyspace, tagSafe, type Keyspace } from './keyspace';
import { execBatch, execOps, ops, replyNumber, replyScored, replyStrings, replyText, type RedisCommand, type RedisOp } from './ops';

export interface RedisCallStateOptions<V extends object> {
  /**
   * This instance's own state. It sees every call (it is cheap), so when Redis goes away
   * scoring carries on from warm in-process state instead of starting from nothing; it is also
   * the verdict cache's in-process level.
   */
  fallback: MemoryCallState<V>;
  prefix?: string;
  /** Where verdict cache entries go (default `<prefix>verdict:`). */
  verdictPrefix?: string;
  /** How long a PASSporT fingerprint is remembered (default 120 s, twice the freshness window). */
  replayTtlS?: number;
  /** How long fraud reports count (default 30 days, the default policy's). */
  reportsMaxAgeS?: number;
  /** Failing calls kept per bank (bounds the key; far above the campaign threshold). */
  maxCallsPerBank?: number;
  /** Defaults: Redis stores with the same guard and prefix, falling back on `fallback`'s. */
  history?: RedisHistoryStore;
  reports?: RedisReportStore;
  announcements?: RedisAnnouncementStore;
  decisions?: RedisDecisionStore;
  historyRetentionS?: number;
}

export class RedisCallState<V extends object> implements CallStateStore<V> {
  readonly prefix: string;
  private readonly keys: Keyspace;
  readonly history: RedisHistoryStore;
  readonly reports: RedisReportStore;
  readonly announcements: RedisAnnouncementStore;
  readonly decisions: RedisDecisionStore;
  readonly fallback: MemoryCallState<V>;
  private readonly verdictPrefix: string;
  private readonly replayTtlS: number;
  private readonly maxCallsPerBank: number;
  private flushing = false;

  constructor(
    readonly guard: RedisGuard,
    opts: RedisCallStateOptions<V>,
  ) {
    this.keys = keyspace(opts.prefix);
    this.prefix = this.keys.prefix;
    this.fallback = opts.fallback;
    this.verdictPrefix = opts.verdictPrefix ?? this.keys.verdict;
    this.replayTtlS = Math.max(1, Math.ceil(opts.replayTtlS ?? DEFAULT_REPLAY_TTL_S));
    this.maxCallsPerBank = Math.max(1, opts.maxCallsPerBank ?? 100_000);
    this.history =
      opts.history ??
      new RedisHistoryStore(guard, {
        prefix: this.prefix,
        fallback: opts.fallback.history,
        ...(opts.historyRetentionS !== undefined ? { retentionS: opts.historyRetentionS } : {}),
      });
    this.reports = opts.reports ?? new RedisReportStore(guard, { prefix: this.prefix, maxAgeS: opts.reportsMaxAgeS ?? 30 * 86400, fallback: opts.fallback.reports });
    this.announcements = opts.announcements ?? new RedisAnnouncementStore(guard, { prefix: this.prefix, fallback: opts.fallback.announcements });
    // Kept as long as the history.
    this.decisions =
      opts.decisions ??
      new RedisDecisionStore(guard, {
        prefix: this.prefix,
        fallback: opts.fallback.decisions,
        now: opts.fallback.now,
        ...(opts.historyRetentionS !== undefined ? { retentionS: opts.historyRetentionS } : {}),
      });
  }

  peekCached(key: string): V | undefined {
    return this.fallback.peekCached(key);
  }

  /** Cache keys are the call's inputs joined: Redis gets a fixed-size digest of them. */
  verdictKey(key: string): string {
    return this.verdictPrefix + hash('sha256', key, 'base64url');
  }

  /**
   * One command. Never throws: Redis unavailable or a reply it cannot use, the answer is this
   * instance's view and a cache miss.
   */
  async read(q: CallStateQuery): Promise<CallStateReading<V>> {
    // The in-process state sees every call, so that it is warm when Redis goes away.
    const local = this.fallback.readSync(q);
    try {
      const list: RedisOp[] = [];
      // First, so that its reply is the first one.
      if (q.cacheKey !== null) list.push(ops.get(this.verdictKey(q.cacheKey)));
      const parse = this.reads(q, list);
      // Nothing to look up (withheld caller, no PASSporT, no bank, no cache): an empty command
      // would tell the breaker Redis is fine without asking it.
      if (list.length === 0) return local;
      const replies = await this.guard.run((r) => execOps(r, list), null);
      if (replies === null) return local;
      const reading = parse(replies, local);
      if (q.cacheKey !== null) reading.cached = this.accept(q.cacheKey, replyText(replies[0]));
      this.flushBacklogs();
      return reading;
    } catch {
      // A reply we cannot read is no reason to fail a call: this instance's view will do.
      return local;
    }
  }

  /** One command. Best effort: never throws. */
  async write(w: CallStateWrite<V>): Promise<void> {
    try {
      this.fallback.countCampaign(w.campaign);
      const entry = historyEntry(w.history);
      const decision = w.decision ? decisionEntry(w.decision) : null;
      const list = this.campaignWrites(w.campaign);
      for (const op of this.history.writeOps(entry)) list.push(op);
      if (decision) {
        this.decisions.noteMade(decision);
        for (const op of this.decisions.writeOps(decision)) list.push(op);
      }
      if (w.cache && w.cache.ttlMs > 0) {
        const { key, value, ttlMs } = w.cache;
        this.fallback.setCached(key, value, ttlMs);
        // The expiry travels with the value so that filling the local level costs no PTTL round trip.
        list.push(ops.set(this.verdictKey(key), JSON.stringify({ e: this.fallback.now() + ttlMs, v: value }), ttlMs));
      }
      if (list.length === 0) return;
      const ok = await this.guard.run(async (r) => (await execOps(r, list), true), false);
      if (!ok) {
        this.history.keepWhileDegraded(entry);
        if (decision) this.decisions.keepWhileDegraded(decision);
      }
    } catch {
      // Recording is best effort: the verdict has already gone back to the switch.
    }
  }

  async campaignCalls(since: number): Promise<CampaignCalls[]> {
    const index = this.keys.campaignIndex();
    const names = this.keys.campaignNames();
    const banks = await this.guard.run(async (r) => {
      const [listed] = await execBatch(r, [{ tag: CAMPAIGNS_TAG, args: ['zrangebyscore', index, since, '+inf'] }]);
      return replyStrings(listed);
    }, null);
    if (banks === null) return this.fallback.campaignCalls(since);
    if (banks.length === 0) return [];

    const commands: RedisCommand[] = [{ tag: CAMPAIGNS_TAG, args: ['hmget', names, ...banks] }];
    for (const bankId of banks) {
      const tag = bankTag(bankId);
      commands.push({
        tag,
        args: ['zrangebyscore', this.keys.campaign(tag), since, '+inf', 'WITHSCORES', 'LIMIT', 0, this.maxCallsPerBank],
      });
    }
    const replies = await this.guard.run((r) => execBatch(r, commands), null);
    if (replies === null) return this.fallback.campaignCalls(since);
    const bankNames = replyStrings(replies[0]);
    return banks.map((bankId, i) => ({
      bankId,
      bankName: bankNames[i] || bankId,
      calls: replyScored(replies[i + 1]).map(([member, at]) => ({ number: campaignMemberNumber(member), at })),
    }));
  }

  /** What a GET of the verdict entry returned, as a value; fills the in-process level. */
  private accept(key: string, text: string | null): V | undefined {
    if (text === null) return undefined;
    try {
      const { e: expiresAt, v: value } = JSON.parse(text) as { e: number; v: V };
      this.fallback.setCached(key, value, expiresAt - this.fallback.now());
      return value;
    } catch {
      return undefined;
    }
  }

  /**
   * Appends to `list` the ops of what the call adds and what the counts now say, and returns
   * how to read the answer from the replies (flat, in op order, from the first op of `list`).
   */
  private reads(q: CallStateQuery, list: RedisOp[]): (replies: readonly unknown[], local: CallStateReading<V>) => CallStateReading<V> {
    let replies = 0;
    for (const op of list) replies += op.replies;
    /** Adds an op; returns the index of its first reply. */
    const add = (op: RedisOp) => {
      list.push(op);
      replies += op.replies;
      return replies - op.replies;
    };
    const at = q.at;

    let velocity = -1;
    const v = q.velocity;
    if (v) {
      const tag = tagSafe(v.caller);
      velocity = add(ops.velocity(tag, this.keys.velocity(tag), at, v.destination, v.keepMs, v.windowsMs.map((w) => at - w)));
    }
    const presenters = q.fingerprints.map((fp) => {
      const tag = tagSafe(fp);
      return add(ops.presenter(tag, this.keys.presenter(tag), q.token, this.replayTtlS));
    });
    const reports = q.reportsOf === null ? -1 : add(this.reports.summaryOp(q.reportsOf, at));
    let campaign = -1;
    if (q.campaign) {
      const tag = bankTag(q.campaign.bankId);
      campaign = add(ops.campaign(tag, this.keys.campaign(tag), q.campaign.since));
    }
    // Tagged by the caller: one more op in the velocity key's script call, never another round trip.
    const announced = q.announcement === null ? -1 : add(this.announcements.matchOp(q.announcement.caller, q.announcement.callee, at));

    return (r, local) => {
      const oldest = campaign === -1 ? undefined : replyScored(r[campaign + 1])[0];
      return {
        destinations: v ? v.windowsMs.map((_, i) => replyNumber(r[velocity + i])) : null,
        presenters: presenters.map((i) => replyText(r[i])),
        // This instance's copy may hold reports not yet sent to Redis (made while it was away).
        reports: reports === -1 ? null : mergeReportSummaries(this.reports.parseSummary([r[reports], r[reports + 1]]), local.reports),
        campaign: campaign === -1 ? null : { count: replyNumber(r[campaign]), firstAt: oldest ? oldest[1] : null },
        // Redis holds every announcement this instance's copy does (a change is made there first).
        announced: announced === -1 ? null : replyNumber(r[announced]) > 0,
        cached: undefined,
      };
    };
  }

  private campaignWrites(c: CallStateWrite<V>['campaign']): RedisOp[] {
    if (!c) return [];
    const tag = bankTag(c.bankId);
    const member = campaignMember(c.number, c.token);
    return [
      // GT: the same callId scored again is the same call, not one more.
      ops.zadd(tag, [this.keys.campaign(tag)], { gt: true, score: c.at, member, trimBefore: c.at - c.windowMs, keep: this.maxCallsPerBank, expireMs: c.windowMs }),
      ops.zadd(CAMPAIGNS_TAG, [this.keys.campaignIndex()], { gt: true, score: c.at, member: c.bankId, trimBefore: null, keep: null, expireMs: c.windowMs }),
      ops.hset(CAMPAIGNS_TAG, this.keys.campaignNames(), c.bankId, c.bankName, c.windowMs),
    ];
  }

  /**
   * Writes made while Redis was away go back once it answers again. Off the call's path (not
   * awaited) and one batch at a time, so recovery never adds a round trip to a call.
   */
  private flushBacklogs(): void {
    if (this.flushing || (this.history.backlogSize === 0 && this.reports.backlogSize === 0 && this.decisions.backlogSize === 0)) return;
    this.flushing = true;
    void Promise.all([this.history.flushBacklog(), this.reports.flushBacklog(), this.decisions.flushBacklog()])
      .catch(() => undefined)
      .finally(() => (this.flushing = false));
  }
}

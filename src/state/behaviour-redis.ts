/**
 * Behaviour across calls, shared by every instance through Redis (keys: redis/keyspace.ts).
 *
 * Round trips: `observe` is one command and `record` is one command, each one EVALSHA of the
 * call script doing every read or write of the call server-side; when the verdict cache is on
 * the same Redis, its GET rides in the observe command and its SET in the record command
 * (`observeFetching`, `recordStoring`). Against a Cluster each is one script call per hash tag
 * involved, all sent at once: one round trip of latency.
 */
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
import type { MemoryBehaviourTracker } from './behaviour-memory';
import type { VerdictCarrier, VerdictStore } from './call-state';
import { campaignMember, campaignMemberNumber } from './campaign-member';
import { historyEntry, RedisHistoryStore } from './history';
import { DEFAULT_REPLAY_TTL_S, type BehaviourStore } from './ports';
import type { RedisGuard } from './redis/client';
import { bankTag, CAMPAIGNS_TAG, keyspace, tagSafe, type Keyspace } from './redis/keyspace';
import { execBatch, execOps, ops, replyNumber, replyScored, replyStrings, replyText, type RedisCommand, type RedisOp } from './redis/ops';
import { mergeReportSummaries, RedisReportStore } from './reports';
import type { SharedVerdicts } from './verdict-cache';

export interface RedisBehaviourOptions {
  /**
   * This instance's own tracker. It sees every call (it is cheap), so when Redis goes away
   * scoring carries on from warm in-process state instead of starting from nothing.
   */
  fallback: MemoryBehaviourTracker;
  prefix?: string;
  /** How long a PASSporT fingerprint is remembered (default 120 s, twice the freshness window). */
  replayTtlS?: number;
  /** Failing calls kept per bank (bounds the key; far above the campaign threshold). */
  maxCallsPerBank?: number;
  /** Defaults: Redis stores with the same guard and prefix, falling back on `fallback`'s. */
  history?: RedisHistoryStore;
  reports?: RedisReportStore;
  historyRetentionS?: number;
}

type Parse = (replies: readonly unknown[]) => void;

export class RedisBehaviourTracker implements BehaviourStore, VerdictCarrier {
  readonly prefix: string;
  private readonly keys: Keyspace;
  readonly history: RedisHistoryStore;
  readonly reports: RedisReportStore;
  readonly fallback: MemoryBehaviourTracker;
  private readonly replayTtlS: number;
  private readonly maxCallsPerBank: number;
  private readonly longestMs: number;
  private flushing = false;

  constructor(
    private readonly guard: RedisGuard,
    private readonly policy: Policy,
    opts: RedisBehaviourOptions,
  ) {
    this.keys = keyspace(opts.prefix);
    this.prefix = this.keys.prefix;
    this.fallback = opts.fallback;
    this.replayTtlS = Math.max(1, Math.ceil(opts.replayTtlS ?? DEFAULT_REPLAY_TTL_S));
    this.maxCallsPerBank = Math.max(1, opts.maxCallsPerBank ?? 100_000);
    this.longestMs = longestWindowMs(policy);
    this.history =
      opts.history ??
      new RedisHistoryStore(guard, {
        prefix: this.prefix,
        fallback: opts.fallback.history,
        ...(opts.historyRetentionS !== undefined ? { retentionS: opts.historyRetentionS } : {}),
      });
    this.reports =
      opts.reports ?? new RedisReportStore(guard, { prefix: this.prefix, maxAgeS: policy.reports.maxAgeS, fallback: opts.fallback.reports });
  }

  async observe(call: ObservedCall): Promise<BehaviourSignals> {
    return (await this.observeFetching(call, null))[1];
  }

  /** Only a verdict cache on this tracker's own Redis client can ride in its commands. */
  carries<V>(shared: SharedVerdicts<V>): boolean {
    return shared.guard === this.guard;
  }

  /**
   * `observe`, and the shared verdict cache's entry for `verdict.key` read in the same command:
   * the call's first round trip, one command. Never throws: Redis unavailable or a reply it
   * cannot use, the answer is this instance's view and a cache miss.
   */
  async observeFetching<V>(call: ObservedCall, verdict: { shared: SharedVerdicts<V>; key: string } | null): Promise<[V | undefined, BehaviourSignals]> {
    // The in-process tracker sees every call, so that it is warm when Redis goes away.
    const local = this.fallback.observeSync(call);
    try {
      const list: RedisOp[] = [];
      // First, so that its reply is the first one.
      if (verdict) list.push(ops.get(verdict.shared.redisKey(verdict.key)));
      const parse = this.observation(call, list);
      // Nothing to look up (withheld caller, no PASSporT, no bank, no cache): an empty command
      // would tell the breaker Redis is fine without asking it.
      if (list.length === 0) return [undefined, local];
      const replies = await this.guard.run((r) => execOps(r, list), null);
      if (replies === null) return [undefined, local];
      const signals = parse(replies);
      const fetched = verdict ? verdict.shared.accept(verdict.key, replyText(replies[0])) : undefined;
      this.flushBacklogs();
      return [fetched, signals];
    } catch {
      // A reply we cannot read is no reason to fail a call: this instance's view will do.
      return [undefined, local];
    }
  }

  async record(call: ObservedCall, decision: Decision): Promise<void> {
    return this.recordStoring(call, decision, null);
  }

  /**
   * `record`, and the verdict cache entry written in the same command: the call's second round
   * trip, one command. Best effort: never throws.
   */
  async recordStoring<V>(call: ObservedCall, decision: Decision, store: VerdictStore<V> | null): Promise<void> {
    try {
      this.fallback.countFailure(call, decision);
      const entry = historyEntry(call, decision);
      const list = this.campaignWrites(call, decision);
      for (const op of this.history.writeOps(entry)) list.push(op);
      if (store) {
        const text = store.shared.prepare(store.key, store.value, store.ttlMs);
        if (text !== null) list.push(ops.set(store.shared.redisKey(store.key), text, store.ttlMs));
      }
      if (list.length === 0) return;
      const ok = await this.guard.run(async (r) => (await execOps(r, list), true), false);
      if (!ok) this.history.keepWhileDegraded(entry);
    } catch {
      // Recording is best effort: the verdict has already gone back to the switch.
    }
  }

  async listCampaigns(now: number): Promise<CampaignSummary[]> {
    const cutoff = now - this.policy.campaign.windowS * 1000;
    const index = this.keys.campaignIndex();
    const names = this.keys.campaignNames();
    const banks = await this.guard.run(async (r) => {
      const [listed] = await execBatch(r, [{ tag: CAMPAIGNS_TAG, args: ['zrangebyscore', index, cutoff, '+inf'] }]);
      return replyStrings(listed);
    }, null);
    if (banks === null) return this.fallback.listCampaigns(now);
    if (banks.length === 0) return [];

    const commands: RedisCommand[] = [{ tag: CAMPAIGNS_TAG, args: ['hmget', names, ...banks] }];
    for (const bankId of banks) {
      const tag = bankTag(bankId);
      commands.push({
        tag,
        args: ['zrangebyscore', this.keys.campaign(tag), cutoff, '+inf', 'WITHSCORES', 'LIMIT', 0, this.maxCallsPerBank],
      });
    }
    const replies = await this.guard.run((r) => execBatch(r, commands), null);
    if (replies === null) return this.fallback.listCampaigns(now);
    const bankNames = replyStrings(replies[0]);
    const out: CampaignSummary[] = [];
    banks.forEach((bankId, i) => {
      const calls = replyScored(replies[i + 1]).map(([member, at]) => ({ number: campaignMemberNumber(member), at }));
      const summary = summariseCampaign(this.policy, { bankId, bankName: bankNames[i] || bankId }, calls);
      if (summary) out.push(summary);
    });
    return sortCampaigns(out);
  }

  /**
   * Appends to `list` the ops of what the call adds and what the counts now say, and returns
   * how to read the signals from the replies (flat, in op order, from the first op of `list`).
   */
  private observation(call: ObservedCall, list: RedisOp[]): (replies: readonly unknown[]) => BehaviourSignals {
    const parsers: Parse[] = [];
    const at = call.at;
    const signals: BehaviourSignals = { replayed: false, reports: null, campaign: null };
    let replies = 0;
    for (const op of list) replies += op.replies;
    /** Adds an op; returns the index of its first reply. */
    const add = (op: RedisOp) => {
      list.push(op);
      replies += op.replies;
      return replies - op.replies;
    };

    const v = velocityKeys(call);
    if (v) {
      const tag = tagSafe(v.caller);
      const windows = this.policy.velocity.windows;
      const first = add(ops.velocity(tag, this.keys.velocity(tag), at, v.destination, this.longestMs, windows.map((w) => at - w.seconds * 1000)));
      parsers.push((r) => (signals.distinctDestinations = velocitySignal(this.policy, windows.map((_, i) => replyNumber(r[first + i])))));
    }

    if (call.fingerprints.length > 0) {
      const token = callToken(call);
      const reads = call.fingerprints.map((fp) => {
        const tag = tagSafe(fp);
        return add(ops.presenter(tag, this.keys.presenter(tag), token, this.replayTtlS));
      });
      parsers.push((r) => (signals.replayed = reads.some((i) => isReplay(replyText(r[i]), token))));
    }

    const caller = call.caller.e164;
    if (caller !== null) {
      const first = add(this.reports.summaryOp(caller, at));
      parsers.push((r) => {
        const shared = this.reports.parseSummary([r[first], r[first + 1]]);
        const local = this.fallback.reports.summarySync(caller, at);
        signals.reports = reportsSignal(mergeReportSummaries(shared, local), at, this.policy.reports.maxAgeS);
      });
    }

    const bank = call.registry;
    if (bank) {
      const tag = bankTag(bank.bankId);
      const first = add(ops.campaign(tag, this.keys.campaign(tag), at - this.policy.campaign.windowS * 1000));
      parsers.push((r) => {
        const oldest = replyScored(r[first + 1])[0];
        signals.campaign = campaignSignal(this.policy, bank, replyNumber(r[first]), oldest ? oldest[1] : null);
      });
    }

    return (r) => {
      for (const p of parsers) p(r);
      return signals;
    };
  }

  private campaignWrites(call: ObservedCall, decision: Decision): RedisOp[] {
    const bank = call.registry;
    if (!bank || !failsChecks(decision)) return [];
    const windowMs = this.policy.campaign.windowS * 1000;
    const tag = bankTag(bank.bankId);
    const member = campaignMember(call.caller.e164 ?? bank.key, callToken(call));
    return [
      // GT: the same callId scored again is the same call, not one more.
      ops.zadd(tag, [this.keys.campaign(tag)], { gt: true, score: call.at, member, trimBefore: call.at - windowMs, keep: this.maxCallsPerBank, expireMs: windowMs }),
      ops.zadd(CAMPAIGNS_TAG, [this.keys.campaignIndex()], { gt: true, score: call.at, member: bank.bankId, trimBefore: null, keep: null, expireMs: windowMs }),
      ops.hset(CAMPAIGNS_TAG, this.keys.campaignNames(), bank.bankId, bank.bankName, windowMs),
    ];
  }

  /**
   * Writes made while Redis was away go back once it answers again. Off the call's path (not
   * awaited) and one batch at a time, so recovery never adds a round trip to a call.
   */
  private flushBacklogs(): void {
    if (this.flushing || (this.history.backlogSize === 0 && this.reports.backlogSize === 0)) return;
    this.flushing = true;
    void Promise.all([this.history.flushBacklog(), this.reports.flushBacklog()])
      .catch(() => undefined)
      .finally(() => (this.flushing = false));
  }
}

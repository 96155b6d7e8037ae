/**
 * Behaviour across calls, shared by every instance through Redis.
 *
 * Key layout (prefix default `callguard:`). Every command touches exactly one key, and every
 * key carries a hash tag naming its entity, so the layout works unchanged on Redis Cluster:
 * keys of one number share a slot (velocity, reports and history of a caller live together),
 * and a batch is split per tag only when the client is a Cluster (see `execBatch`).
 *
 *   {p}v:{<caller>}               ZSET  velocity: member = destination E.164, score = last call (ms)
 *   {p}r:{<fingerprint>}          STR   replay: token of the call that first presented the
 *                                       PASSporT (`c:<callId>`, or `u:<random>`), EX replayTtlS
 *   {p}rep:{<number>}             ZSET  fraud reports: member = report JSON, score = time (ms)
 *   {p}repc:{<number>}            ZSET  report categories: member = category, score = newest (ms)
 *   {p}c:{b:<bankId>}             ZSET  a bank's failing calls: member = `<number> <token>`,
 *                                       score = time (ms)
 *   {p}cidx:{campaigns}           ZSET  banks with failing calls: member = bankId, score = last (ms)
 *   {p}cname:{campaigns}          HASH  bankId -> bankName, for the campaign list
 *   {p}h:{<caller>}               ZSET  verdict history of a caller: member = compact JSON, score = ms
 *   {p}h:{<caller>}:<callee>      ZSET  verdict history of a caller to one callee
 *   {p}hw:{<callee>}              ZSET  verdict history of withheld/invalid callers to a callee
 *
 * Every sorted set is trimmed by time (and size where a spammer could grow it) on write and
 * carries a PEXPIRE of its window, so idle entities cost nothing. Braces in bank ids and
 * fingerprints are escaped so that they cannot move a key to another slot.
 *
 * Round trips: `observe` is one pipeline and `record` is one pipeline. Against a Cluster
 * each is one pipeline per hash tag involved, all sent at once.
 */
import type { ObservedCall } from '../calls/assess';
import type { BehaviourSignals, Decision, Policy } from '../scoring';
import {
  callToken,
  campaignMember,
  campaignMemberNumber,
  campaignSignal,
  checkPrefix,
  DEFAULT_REPLAY_TTL_S,
  execBatch,
  failsChecks,
  historyEntry,
  isReplay,
  longestWindowMs,
  mergeReportSummaries,
  replyNumber,
  replyScored,
  replyString,
  replyStrings,
  reportsSignal,
  sortCampaigns,
  summariseCampaign,
  taggedKey,
  tagSafe,
  velocityKeys,
  velocitySignal,
  type BehaviourStore,
  type CampaignSummary,
  type RedisCommand,
} from './behaviour';
import type { MemoryBehaviourTracker } from './behaviour-memory';
import { RedisHistoryStore } from './history';
import type { RedisGuard } from './redis';
import { RedisReportStore } from './reports';

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

export class RedisBehaviourTracker implements BehaviourStore {
  readonly prefix: string;
  readonly history: RedisHistoryStore;
  readonly reports: RedisReportStore;
  readonly fallback: MemoryBehaviourTracker;
  private readonly replayTtlS: number;
  private readonly maxCallsPerBank: number;
  private flushing = false;

  constructor(
    private readonly guard: RedisGuard,
    private readonly policy: Policy,
    opts: RedisBehaviourOptions,
  ) {
    this.prefix = checkPrefix(opts.prefix ?? 'callguard:');
    this.fallback = opts.fallback;
    this.replayTtlS = Math.max(1, Math.ceil(opts.replayTtlS ?? DEFAULT_REPLAY_TTL_S));
    this.maxCallsPerBank = Math.max(1, opts.maxCallsPerBank ?? 100_000);
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
    const local = this.fallback.observeSync(call);
    try {
      const { commands, parse } = this.observation(call);
      // Nothing to look up (withheld caller, no PASSporT, no bank): an empty batch would tell
      // the breaker Redis is fine without asking it.
      if (commands.length === 0) return local;
      const replies = await this.guard.run((r) => execBatch(r, commands), null);
      if (replies === null) return local;
      const signals = parse(replies);
      this.flushBacklogs();
      return signals;
    } catch {
      // A reply we cannot read is no reason to fail a call: this instance's view will do.
      return local;
    }
  }

  async record(call: ObservedCall, decision: Decision): Promise<void> {
    try {
      this.fallback.countFailure(call, decision);
      const entry = historyEntry(call, decision);
      const commands = [...this.campaignWrites(call, decision), ...this.history.writeCommands(entry)];
      if (commands.length === 0) return;
      const ok = await this.guard.run(async (r) => (await execBatch(r, commands), true), false);
      if (!ok) this.history.keepWhileDegraded(entry);
    } catch {
      // Recording is best effort: the verdict has already gone back to the switch.
    }
  }

  async listCampaigns(now: number): Promise<CampaignSummary[]> {
    const cutoff = now - this.policy.campaign.windowS * 1000;
    const index = taggedKey(this.prefix, 'cidx', 'campaigns');
    const names = taggedKey(this.prefix, 'cname', 'campaigns');
    const banks = await this.guard.run(async (r) => {
      const [listed] = await execBatch(r, [{ tag: 'campaigns', args: ['zrangebyscore', index, cutoff, '+inf'] }]);
      return replyStrings(listed);
    }, null);
    if (banks === null) return this.fallback.listCampaigns(now);
    if (banks.length === 0) return [];

    const commands: RedisCommand[] = [{ tag: 'campaigns', args: ['hmget', names, ...banks] }];
    for (const bankId of banks) {
      const tag = bankTag(bankId);
      commands.push({
        tag,
        args: ['zrangebyscore', taggedKey(this.prefix, 'c', tag), cutoff, '+inf', 'WITHSCORES', 'LIMIT', 0, this.maxCallsPerBank],
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

  /** One pipeline: what the call adds, and what the counts now say. */
  private observation(call: ObservedCall): { commands: RedisCommand[]; parse: (replies: readonly unknown[]) => BehaviourSignals } {
    const commands: RedisCommand[] = [];
    const parsers: Parse[] = [];
    const at = call.at;
    const signals: BehaviourSignals = { replayed: false, reports: null, campaign: null };
    const add = (cmd: RedisCommand) => commands.push(cmd) - 1;

    const v = velocityKeys(call);
    if (v) {
      const tag = tagSafe(v.caller);
      const key = taggedKey(this.prefix, 'v', tag);
      const longest = longestWindowMs(this.policy);
      // GT: a late, older retry never moves a destination back in time.
      if (v.destination !== null) add({ tag, args: ['zadd', key, 'GT', at, v.destination] });
      add({ tag, args: ['zremrangebyscore', key, '-inf', `(${at - longest}`] });
      const counts = this.policy.velocity.windows.map((w) => add({ tag, args: ['zcount', key, at - w.seconds * 1000, '+inf'] }));
      add({ tag, args: ['pexpire', key, longest] });
      parsers.push((r) => (signals.distinctDestinations = velocitySignal(this.policy, counts.map((i) => replyNumber(r[i])))));
    }

    if (call.fingerprints.length > 0) {
      const token = callToken(call);
      const reads = call.fingerprints.map((fp) => {
        const tag = tagSafe(fp);
        const key = taggedKey(this.prefix, 'r', tag);
        // SET NX then GET rather than SET NX GET, which needs Redis 7.
        add({ tag, args: ['set', key, token, 'NX', 'EX', this.replayTtlS] });
        return add({ tag, args: ['get', key] });
      });
      parsers.push((r) => (signals.replayed = reads.some((i) => isReplay(replyString(r[i]), token))));
    }

    const caller = call.caller.e164;
    if (caller !== null) {
      const first = commands.length;
      const reportCommands = this.reports.summaryCommands(caller, at);
      reportCommands.forEach(add);
      parsers.push((r) => {
        const shared = this.reports.parseSummary(r.slice(first, first + reportCommands.length));
        const local = this.fallback.reports.summarySync(caller, at);
        signals.reports = reportsSignal(mergeReportSummaries(shared, local), at, this.policy.reports.maxAgeS);
      });
    }

    const bank = call.registry;
    if (bank) {
      const tag = bankTag(bank.bankId);
      const key = taggedKey(this.prefix, 'c', tag);
      const from = at - this.policy.campaign.windowS * 1000;
      const count = add({ tag, args: ['zcount', key, from, '+inf'] });
      const first = add({ tag, args: ['zrangebyscore', key, from, '+inf', 'WITHSCORES', 'LIMIT', 0, 1] });
      parsers.push((r) => {
        const oldest = replyScored(r[first])[0];
        signals.campaign = campaignSignal(this.policy, bank, replyNumber(r[count]), oldest ? oldest[1] : null);
      });
    }

    return {
      commands,
      parse: (replies) => {
        for (const p of parsers) p(replies);
        return signals;
      },
    };
  }

  private campaignWrites(call: ObservedCall, decision: Decision): RedisCommand[] {
    const bank = call.registry;
    if (!bank || !failsChecks(decision)) return [];
    const windowMs = this.policy.campaign.windowS * 1000;
    const tag = bankTag(bank.bankId);
    const key = taggedKey(this.prefix, 'c', tag);
    const member = campaignMember(call.caller.e164 ?? bank.key, callToken(call));
    const index = taggedKey(this.prefix, 'cidx', 'campaigns');
    const names = taggedKey(this.prefix, 'cname', 'campaigns');
    return [
      // GT: the same callId scored again is the same call, not one more.
      { tag, args: ['zadd', key, 'GT', call.at, member] },
      { tag, args: ['zremrangebyscore', key, '-inf', `(${call.at - windowMs}`] },
      { tag, args: ['zremrangebyrank', key, 0, -(this.maxCallsPerBank + 1)] },
      { tag, args: ['pexpire', key, windowMs] },
      { tag: 'campaigns', args: ['zadd', index, 'GT', call.at, bank.bankId] },
      { tag: 'campaigns', args: ['pexpire', index, windowMs] },
      { tag: 'campaigns', args: ['hset', names, bank.bankId, bank.bankName] },
      { tag: 'campaigns', args: ['pexpire', names, windowMs] },
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

function bankTag(bankId: string): string {
  return `b:${tagSafe(bankId)}`;
}

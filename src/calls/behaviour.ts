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
import { historyEntry as storedEntry, type HistoryEntry } from '../state/history';
import type { HistoryRecord } from '../state/history';
import type { CallStateQuery, CallStateReading, CallStateStore, CallStateWrite } from '../state/ports';
import { decisionRecord, numberText, type DecisionContext } from './decision-record';

/**
 * Behaviour across calls: a call put into the plain terms a store keeps (`query`, `record`),
 * and the store's counts turned back into the signals the decision reads (`signals`), by
 * scoring's rules. The store only counts; the policy is applied here, once, for every store.
 */
interface Rules {
  policy: Policy;
  windowsMs: readonly number[];
  keepMs: number;
  campaignWindowMs: number;
}

/** Behaviour across calls: the call state store, read and written with the policy's rules. */
export class Behaviour<V extends object> {
  private readonly policyOf: () => Policy;
  private rulesOf?: Rules;

  /** `policy`: the base policy, or where to read the one in force (a reload may change its windows). */
  constructor(
    readonly state: CallStateStore<V>,
    policy: Policy | (() => Policy),
  ) {
    this.policyOf = typeof policy === 'function' ? policy : () => policy;
  }

  /** The windows of the policy in force, worked out again only when it changes. */
  private get rules(): Rules {
    const policy = this.policyOf();
    if (this.rulesOf?.policy !== policy)
      this.rulesOf = {
        policy,
        windowsMs: policy.velocity.windows.map((w) => w.seconds * 1000),
        keepMs: longestWindowMs(policy),
        campaignWindowMs: policy.campaign.windowS * 1000,
      };
    return this.rulesOf;
  }

  private get policy(): Policy {
    return this.rules.policy;
  }

  private get windowsMs(): readonly number[] {
    return this.rules.windowsMs;
  }

  private get keepMs(): number {
    return this.rules.keepMs;
  }

  private get campaignWindowMs(): number {
    return this.rules.campaignWindowMs;
  }

  get history(): CallStateStore<V>['history'] {
    return this.state.history;
  }

  get reports(): CallStateStore<V>['reports'] {
    return this.state.reports;
  }

  get announcements(): CallStateStore<V>['announcements'] {
    return this.state.announcements;
  }

  /** What the store's one read is asked for this call; `cacheKey` rides along when given. */
  readOf(call: ObservedCall, token: string, cacheKey: string | null): CallStateQuery {
    const v = velocityKeys(call);
    const bank = call.registry;
    return {
      at: call.at,
      velocity: v ? { caller: v.caller, destination: v.destination, windowsMs: this.windowsMs, keepMs: this.keepMs } : null,
      fingerprints: call.fingerprints,
      token,
      reportsOf: call.caller.e164,
      campaign: bank ? { bankId: bank.bankId, since: call.at - this.campaignWindowMs } : null,
      announcement: announcementOf(call),
      cacheKey,
    };
  }

  /** The store's answer as the decision reads it. */
  signals(call: ObservedCall, token: string, r: CallStateReading<V>): BehaviourSignals {
    const signals: BehaviourSignals = { replayed: r.presenters.some((owner) => isReplay(owner, token)) };
    if (r.destinations) signals.distinctDestinations = velocitySignal(this.policy, r.destinations);
    signals.reports = call.caller.e164 === null ? null : reportsSignal(r.reports, call.at, this.policy.reports.maxAgeS);
    const bank = call.registry;
    signals.campaign = bank && r.campaign ? campaignSignal(this.policy, bank, r.campaign.count, r.campaign.firstAt) : null;
    if (r.announced !== null) signals.announced = r.announced;
    return signals;
  }

  /**
   * What the store's one write keeps of the call and its decision; with `context`, a call that
   * names itself (a callId) also leaves its decision record.
   */
  writeOf(call: ObservedCall, token: string, decision: Decision, cache: CallStateWrite<V>['cache'], context?: DecisionContext): CallStateWrite<V> {
    const bank = call.registry;
    const callId = call.callId;
    return {
      history: historyRecord(call, decision),
      // Only calls that failed checks count towards a campaign against the bank they presented.
      campaign:
        bank && failsChecks(decision)
          ? { bankId: bank.bankId, bankName: bank.bankName, number: call.caller.e164 ?? bank.key, token, at: call.at, windowMs: this.campaignWindowMs }
          : null,
      cache,
      decision: context && callId !== undefined ? decisionRecord(call, callId, decision, context) : null,
    };
  }

  /** A call's behaviour signals on their own (no verdict cache): one read. */
  async observe(call: ObservedCall): Promise<BehaviourSignals> {
    const token = callToken(call);
    return this.signals(call, token, await this.state.read(this.readOf(call, token, null)));
  }

  /** Keeps a decided call (no verdict cache): one write. Never rejects. */
  record(call: ObservedCall, decision: Decision): Promise<void> {
    return this.state.write(this.writeOf(call, callToken(call), decision, null));
  }

  async listCampaigns(now: number): Promise<CampaignSummary[]> {
    const out: CampaignSummary[] = [];
    for (const bank of await this.state.campaignCalls(now - this.campaignWindowMs)) {
      const summary = summariseCampaign(this.policy, bank, bank.calls);
      if (summary) out.push(summary);
    }
    return sortCampaigns(out);
  }
}

/**
 * The announcement a call could match: only a caller ID an organisation calls from (an outbound
 * registry entry) can have been announced, and only to a number (an announcement names an E.164
 * one). The From number is what is matched, whatever number a PASSporT vouches for.
 */
function announcementOf(call: ObservedCall): CallStateQuery['announcement'] {
  const { registry, caller, callee } = call;
  if (!registry || registry.inboundOnly || caller.e164 === null || callee.e164 === null) return null;
  return { caller: caller.e164, callee: callee.e164 };
}

/** The callee a history entry names: emergency and other short codes have no E.164 but are worth finding again. */
export function historyCallee(call: Pick<ObservedCall, 'callee'>): string | null {
  return numberText(call.callee);
}

export function historyRecord(call: ObservedCall, decision: Decision): HistoryRecord {
  const record: HistoryRecord = {
    caller: call.caller.e164,
    callee: historyCallee(call),
    at: call.at,
    verdict: decision.verdict,
    score: decision.score,
    reasons: decision.reasons,
  };
  if (call.callId !== undefined) record.callId = call.callId;
  if (call.registry) record.bankId = call.registry.bankId;
  return record;
}

/** What the history keeps of a scored call. */
export function historyEntry(call: ObservedCall, decision: Decision, id?: string): HistoryEntry {
  return storedEntry(historyRecord(call, decision), id);
}

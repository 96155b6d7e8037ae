import type { BehaviourSignals, CampaignSummary, Decision, ObservedCall } from '../scoring';
import type { HistoryStore } from './history';
import type { ReportStore } from './reports';

export type { ObservedCall } from '../scoring';

/** Behaviour across calls: observes each call before the decision and records it after. */
export interface BehaviourTracker {
  observe(call: ObservedCall): Promise<BehaviourSignals>;
  /** Keeps the verdict in the history, after the decision. Must not throw. */
  record(call: ObservedCall, decision: Decision): Promise<void>;
}

/** A tracker with what the bank and operator routes read: campaigns, verdict history, fraud reports. */
export interface BehaviourStore extends BehaviourTracker {
  listCampaigns(now: number): Promise<CampaignSummary[]>;
  readonly history: HistoryStore;
  readonly reports: ReportStore;
}


/** Default replay memory: twice the default PASSporT freshness (60 s), so no fresh token outlives it. */
export const DEFAULT_REPLAY_TTL_S = 120;

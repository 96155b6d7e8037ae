/**
 * The scoring room's public surface: the decision with its policy and vocabulary, and the rules
 * that turn counts across calls into signals. Its own tests reach its modules directly.
 */
export { REASON_CODES, VERDICTS, type Reason, type ReasonCode, type Verdict } from './reasons';
export { DEFAULT_POLICY, policyVersion, type Policy, type Presentation } from './policy';
export type { BehaviourSignals, CallSignals, ShakenSignal } from './signals';
export { decide, type CallFacts, type Decision } from './decide';
export { displayOf, type Display } from './display';
export {
  CAMPAIGN_FAILING_REASONS,
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
  type CampaignSummary,
  type ObservedCall,
} from './behaviour';
export { DEFAULT_DOCUMENT, MAX_PROFILES, documentVersion, policyFor, readPolicyDocument, type PolicyDocument } from './policy-document';

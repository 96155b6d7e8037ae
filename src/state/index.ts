/**
 * Storage: behaviour counts, verdict history, fraud reports and the verdict cache, each in
 * process and on Redis. What the routes and use cases read goes through these names.
 */
export type { CallStateQuery, CallStateReading, CallStateStore, CallStateWrite } from './ports';
export type { HistoryEntry, HistoryQuery, HistoryStore } from './history';
export type { DecisionEntry, DecisionOrigin, DecisionReason, DecisionRecord, DecisionShaken, DecisionStore } from './decisions';
export { RECENT_DECISIONS_KEPT } from './decisions';
export { REPORT_CATEGORIES, type FraudReport, type NewFraudReport, type ReportCategory, type ReportStore, type ReportSummary } from './reports';
export {
  DEFAULT_ANNOUNCEMENT_RETENTION_S,
  MAX_ANNOUNCEMENT_WINDOW_S,
  type ActiveAnnouncementsQuery,
  type Announcement,
  type AnnouncementStore,
  type AnnouncementsToQuery,
} from './announcements';
export { MAX_SHADOW_EXAMPLES, mergeTally, MemoryShadowStore, RedisShadowStore, type ShadowCounts, type ShadowExample, type ShadowSetting, type ShadowStore, type ShadowTally } from './shadow';

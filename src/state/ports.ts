import type { AnnouncementStore } from './announcements';
import type { DecisionRecord, DecisionStore } from './decisions';
import type { HistoryRecord, HistoryStore } from './history';
import type { ReportStore, ReportSummary } from './reports';

/**
 * What a scored call reads and writes, as plain data: numbers, strings and times. The rules that
 * decide what to ask for and what the answers mean (velocity windows, replay, report age,
 * campaign thresholds, which reasons fail) live in scoring; a store only keeps and counts.
 */

/** Default replay memory: twice the default PASSporT freshness (60 s), so no fresh token outlives it. */
export const DEFAULT_REPLAY_TTL_S = 120;

/** A call's one read, before the decision. It also counts the call's arrival (see each field). */
export interface CallStateQuery {
  at: number;
  /**
   * The caller's destinations: `destination` (null: none) is added at `at` (a later time only
   * moves it forward), destinations older than `keepMs` go, and the reading counts those within
   * each of `windowsMs`. Null: no caller to count against.
   */
  velocity: { caller: string; destination: string | null; windowsMs: readonly number[]; keepMs: number } | null;
  /** PASSporT fingerprints: the first call to present one (its `token`) owns it for the replay TTL. */
  fingerprints: readonly string[];
  token: string;
  /** The number whose fraud reports are summarised; null: none. */
  reportsOf: string | null;
  /** The bank whose failing calls at or after `since` are counted; null: none. */
  campaign: { bankId: string; since: number } | null;
  /**
   * Whether an announcement from `caller` to `callee` is still in its window at `at`; null: not
   * asked. Read on every call, never cached: an announcement made or withdrawn counts at once.
   */
  announcement: { caller: string; callee: string } | null;
  /** The verdict cache entry to fetch in the same round trip; null: none. */
  cacheKey: string | null;
}

export interface CallStateReading<V> {
  /** Distinct destinations per window of the query, in its order; null when not asked. */
  destinations: number[] | null;
  /** Per fingerprint, the token of the call that owns it; null where this call just became the owner. */
  presenters: (string | null)[];
  reports: ReportSummary | null;
  /** The bank's failing calls since the cutoff and the time of the oldest; null when not asked. */
  campaign: { count: number; firstAt: number | null } | null;
  /** An announcement matches the call; null when not asked. */
  announced: boolean | null;
  /** The verdict cache entry, when asked and found. */
  cached: V | undefined;
}

/** A call's one write, after the decision. */
export interface CallStateWrite<V> {
  history: HistoryRecord;
  /** A call counted against a bank (one that failed checks); null: not counted. */
  campaign: { bankId: string; bankName: string; number: string; token: string; at: number; windowMs: number } | null;
  /** The verdict cache entry to store; null: none. */
  cache: { key: string; value: V; ttlMs: number } | null;
  /** The call's decision record, kept under its call id; absent or null: none (a call without a callId). */
  decision?: DecisionRecord | null;
}

/** A bank's failing calls in a window, as the campaign list shows them. */
export interface CampaignCalls {
  bankId: string;
  bankName: string;
  /** Oldest first. */
  calls: { number: string; at: number }[];
}

/**
 * Everything across calls: one read and one write per call (one round trip each on Redis, the
 * verdict cache's entry riding in both), and what the bank and operator routes read.
 */
export interface CallStateStore<V> {
  /** The verdict cache's in-process level: costs no I/O. */
  peekCached(key: string): V | undefined;
  /** Never rejects: a store that cannot answer answers from this instance's state. */
  read(q: CallStateQuery): Promise<CallStateReading<V>>;
  /** Best effort; never rejects. */
  write(w: CallStateWrite<V>): Promise<void>;
  /** Banks with failing calls at or after `since`. */
  campaignCalls(since: number): Promise<CampaignCalls[]>;
  readonly history: HistoryStore;
  readonly reports: ReportStore;
  readonly announcements: AnnouncementStore;
  readonly decisions: DecisionStore;
}


import { Backlog } from './backlog';
import { newId } from './ids';
import { LruSlots } from './lru-slots';
import { DEFAULT_MEMORY_BOUNDS } from './memory-bounds';
import type { RedisGuard } from './redis/client';
import { keyspace, type Keyspace } from './redis/keyspace';
import { execOps, ops, replyNumber, replyScored, type RedisOp } from './redis/ops';

/**
 * Fraud reports against caller IDs (from customers, the bank's fraud team, other operators).
 * Scoring reads one summary per call (how many reports, how recent, which kinds); the full
 * reports are kept for whoever investigates. Reports older than the policy's
 * `reports.maxAgeS` no longer count and are dropped.
 */

export const REPORT_CATEGORIES = ['spoof', 'scam', 'nuisance', 'genuine'] as const;
export type ReportCategory = (typeof REPORT_CATEGORIES)[number];

/**
 * `genuine` says a flagged or blocked call was genuine. It is kept for review and never counts
 * in the summary scoring reads: a report that could lower a score would let whoever spoofs a
 * number vouch for it.
 */
export const countsAgainst = (category: string): boolean => category !== 'genuine' && (REPORT_CATEGORIES as readonly string[]).includes(category);

/** Which reports a review wants: newest first, at most `limit`. */
export interface ReportQuery {
  category?: ReportCategory;
  /** Milliseconds since the epoch: reports taken at or after it. */
  since?: number;
  limit: number;
  /** Only reports about numbers this accepts (a bank's own numbers). */
  about?: (number: string) => boolean;
}

/** Reports kept for review across all numbers (Redis index), newest dropped last. */
export const REVIEW_INDEX_MAX = 100_000;

export interface NewFraudReport {
  /** E.164. */
  number: string;
  category: ReportCategory;
  callId?: string;
  note?: string;
  /** Who reported it (API key name, team, partner). */
  reporter: string;
  /** Milliseconds since the epoch or an ISO time. */
  at: number | string;
}

export interface FraudReport {
  id: string;
  number: string;
  category: ReportCategory;
  callId?: string;
  note?: string;
  reporter: string;
  /** ISO time. */
  at: string;
}

export interface ReportSummary {
  /** Reports within the max age. */
  count: number;
  /** Milliseconds since the epoch of the newest report. */
  newestAt: number;
  categories: ReportCategory[];
}

export interface ReportStore {
  addReport(report: NewFraudReport): Promise<FraudReport>;
  /** Null when the number has no report within the max age. */
  summary(number: string, now: number): Promise<ReportSummary | null>;
  /** Newest first. */
  list(number: string, now: number, limit?: number): Promise<FraudReport[]>;
  /** Reports about any number within the max age, for review: newest first, bounded by the query's limit. */
  listAll(query: ReportQuery, now: number): Promise<FraudReport[]>;
}

function matches(r: FraudReport, q: ReportQuery, from: number): boolean {
  return Date.parse(r.at) >= from && (q.category === undefined || r.category === q.category) && (q.about === undefined || q.about(r.number));
}

const E164 = /^\+[1-9]\d{1,14}$/;
const MAX_NOTE_CHARS = 1000;

/** Checks and completes a report; throws RangeError on what the HTTP layer should have refused. */
export function normaliseReport(input: NewFraudReport, id: string = newId()): FraudReport {
  if (!E164.test(input.number)) throw new RangeError(`report number must be E.164: ${input.number}`);
  if (!(REPORT_CATEGORIES as readonly string[]).includes(input.category))
    throw new RangeError(`report category must be one of ${REPORT_CATEGORIES.join(', ')}`);
  const at = typeof input.at === 'number' ? input.at : Date.parse(input.at);
  if (!Number.isFinite(at)) throw new RangeError(`report time is not a time: ${String(input.at)}`);
  return {
    id,
    number: input.number,
    category: input.category,
    ...(input.callId !== undefined ? { callId: input.callId } : {}),
    ...(input.note !== undefined ? { note: input.note.slice(0, MAX_NOTE_CHARS) } : {}),
    reporter: input.reporter,
    at: new Date(at).toISOString(),
  };
}

function summarise(reports: readonly FraudReport[], cutoff: number): ReportSummary | null {
  let count = 0;
  let newestAt = Number.NEGATIVE_INFINITY;
  const categories = new Set<ReportCategory>();
  for (const r of reports) {
    const at = Date.parse(r.at);
    if (at < cutoff || !countsAgainst(r.category)) continue;
    count++;
    if (at > newestAt) newestAt = at;
    categories.add(r.category);
  }
  return count === 0 ? null : { count, newestAt, categories: [...categories].sort() };
}

function newestFirst(a: FraudReport, b: FraudReport): number {
  return Date.parse(b.at) - Date.parse(a.at) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/**
 * Two views of the same reports (the shared store and this instance's copy): each may have
 * missed some, neither double counts, so the larger count and the newer time are the best
 * estimate without a second read.
 */
export function mergeReportSummaries(a: ReportSummary | null, b: ReportSummary | null): ReportSummary | null {
  if (!a) return b;
  if (!b) return a;
  return {
    count: Math.max(a.count, b.count),
    newestAt: Math.max(a.newestAt, b.newestAt),
    categories: [...new Set([...a.categories, ...b.categories])].sort(),
  };
}


export interface MemoryReportOptions {
  maxAgeS: number;
  /** Numbers kept, least recently reported dropped first. */
  maxNumbers?: number;
  /** Reports kept per number, oldest dropped first: the summary saturates, it does not break. */
  maxPerNumber?: number;
  /**
   * Reports kept over all numbers; past it the least recently reported numbers are forgotten
   * whole (without it, the store could hold maxNumbers x maxPerNumber).
   */
  maxReports?: number;
}

export class MemoryReportStore implements ReportStore {
  /** The numbers reported, least recently reported evicted first; each one's reports at its slot. */
  private readonly numbers: LruSlots;
  private readonly reports: FraudReport[][] = [];
  private readonly maxAgeMs: number;
  private readonly maxPerNumber: number;
  private readonly maxReports: number;
  /** Reports held over all numbers. */
  private held = 0;

  constructor(opts: MemoryReportOptions) {
    this.maxAgeMs = opts.maxAgeS * 1000;
    this.numbers = new LruSlots(Math.max(1, opts.maxNumbers ?? DEFAULT_MEMORY_BOUNDS.reportedNumbers));
    this.maxPerNumber = Math.max(1, opts.maxPerNumber ?? 1000);
    this.maxReports = Math.max(1, opts.maxReports ?? DEFAULT_MEMORY_BOUNDS.reports);
  }

  async addReport(input: NewFraudReport): Promise<FraudReport> {
    const report = normaliseReport(input);
    this.keep(report);
    return report;
  }

  /** Keeps an already normalised report (the Redis store's local copy shares its id). */
  keep(report: FraudReport): void {
    // Now the most recently reported, even when this report is already held.
    let slot = this.numbers.use(report.number);
    let list: FraudReport[];
    if (slot === -1) {
      slot = this.numbers.add(report.number);
      // A reused slot still holds the forgotten number's reports.
      this.held -= this.reports[slot]?.length ?? 0;
      this.reports[slot] = list = [];
    } else {
      list = this.reports[slot]!;
      if (list.some((r) => r.id === report.id)) return;
    }
    list.push(report);
    this.held++;
    if (list.length > this.maxPerNumber) {
      list.sort(newestFirst);
      this.held -= list.length - this.maxPerNumber;
      list.length = this.maxPerNumber;
    }
    // The number at hand is the most recent, so it is the last that could go.
    while (this.held > this.maxReports && this.numbers.oldestSlot !== slot) {
      const oldest = this.numbers.dropOldest();
      this.held -= this.reports[oldest]!.length;
      this.reports[oldest] = [];
    }
  }

  /** Reports held over all numbers (for tests and diagnostics). */
  get size(): number {
    return this.held;
  }

  private reportsOf(number: string): FraudReport[] | undefined {
    const slot = this.numbers.peek(number);
    return slot === -1 ? undefined : this.reports[slot];
  }

  summarySync(number: string, now: number): ReportSummary | null {
    const list = this.reportsOf(number);
    return list ? summarise(list, now - this.maxAgeMs) : null;
  }

  async summary(number: string, now: number): Promise<ReportSummary | null> {
    return this.summarySync(number, now);
  }

  async list(number: string, now: number, limit = 100): Promise<FraudReport[]> {
    const cutoff = now - this.maxAgeMs;
    return (this.reportsOf(number) ?? [])
      .filter((r) => Date.parse(r.at) >= cutoff)
      .sort(newestFirst)
      .slice(0, limit);
  }

  async listAll(query: ReportQuery, now: number): Promise<FraudReport[]> {
    return this.listAllSync(query, now);
  }

  /** Reads every number held: as bounded as the store (maxNumbers x maxPerNumber). */
  listAllSync(query: ReportQuery, now: number): FraudReport[] {
    const from = Math.max(now - this.maxAgeMs, query.since ?? Number.NEGATIVE_INFINITY);
    const found: FraudReport[] = [];
    for (const number of this.numbers.held()) {
      const list = this.reportsOf(number);
      if (list) for (const r of list) if (matches(r, query, from)) found.push(r);
    }
    return found.sort(newestFirst).slice(0, query.limit);
  }
}

export interface RedisReportOptions {
  maxAgeS: number;
  /** This instance's copy: answers while Redis is down. */
  fallback: MemoryReportStore;
  prefix?: string;
  maxPerNumber?: number;
  /** Reports made while Redis was down, kept to be written when it is back. */
  backlogMax?: number;
}

/**
 * Keys (see redis/keyspace.ts for the whole layout), both tagged with the number so they share
 * a slot with the caller's velocity and history keys:
 *   {prefix}rep:{<number>}   sorted set, member = report JSON, score = time (ms)
 *   {prefix}repc:{<number>}  sorted set, member = category, score = newest report of it (ms)
 * The second set lets scoring read count, newest and categories in two small replies
 * whatever the number of reports. Reads and writes are ops of the call script (see `execOps`):
 * the summary rides in the scoring call's one command.
 */
export class RedisReportStore implements ReportStore {
  readonly prefix: string;
  private readonly keys: Keyspace;
  private readonly maxAgeMs: number;
  private readonly maxPerNumber: number;
  private readonly backlog: Backlog<FraudReport>;

  constructor(
    private readonly guard: RedisGuard,
    private readonly opts: RedisReportOptions,
  ) {
    this.keys = keyspace(opts.prefix);
    this.prefix = this.keys.prefix;
    this.maxAgeMs = opts.maxAgeS * 1000;
    this.maxPerNumber = Math.max(1, opts.maxPerNumber ?? 1000);
    this.backlog = new Backlog(opts.backlogMax ?? 10_000);
  }

  get fallback(): MemoryReportStore {
    return this.opts.fallback;
  }

  get backlogSize(): number {
    return this.backlog.size;
  }

  async addReport(input: NewFraudReport): Promise<FraudReport> {
    const report = normaliseReport(input);
    // Kept locally as well, so this instance goes on scoring with it while Redis is away.
    this.opts.fallback.keep(report);
    const ok = await this.guard.run(async (r) => (await execOps(r, this.writeOps(report)), true), false);
    if (!ok) this.backlog.push(report);
    return report;
  }

  async summary(number: string, now: number): Promise<ReportSummary | null> {
    const local = this.opts.fallback.summarySync(number, now);
    const replies = await this.guard.run((r) => execOps(r, [this.summaryOp(number, now)]), null);
    return replies ? mergeReportSummaries(this.parseSummary(replies), local) : local;
  }

  /**
   * Pages through the review index newest first, keeping what the query wants, until it has
   * enough or the index (bounded by REVIEW_INDEX_MAX) ends; this instance's copy fills in what
   * Redis missed while it was away.
   */
  async listAll(query: ReportQuery, now: number): Promise<FraudReport[]> {
    const local = this.opts.fallback.listAllSync(query, now);
    const from = Math.max(now - this.maxAgeMs, query.since ?? Number.NEGATIVE_INFINITY);
    const key = this.keys.reportIndex();
    const page = Math.max(100, Math.min(query.limit * 2, 5000));
    const shared = await this.guard.run(async (r) => {
      const found: FraudReport[] = [];
      for (let offset = 0; found.length < query.limit && offset < REVIEW_INDEX_MAX; offset += page) {
        const reply = await r.zrevrangebyscore(key, '+inf', from, 'LIMIT', offset, page);
        for (const text of reply) {
          const report = parseReport(text);
          if (report && matches(report, query, from)) found.push(report);
        }
        if (reply.length < page) break;
      }
      return found;
    }, null);
    if (!shared) return local;
    const byId = new Map<string, FraudReport>();
    for (const r of shared) byId.set(r.id, r);
    for (const r of local) byId.set(r.id, r);
    return [...byId.values()].sort(newestFirst).slice(0, query.limit);
  }

  async list(number: string, now: number, limit = 100): Promise<FraudReport[]> {
    const local = await this.opts.fallback.list(number, now, limit);
    const key = this.keys.reports(number);
    const cutoff = now - this.maxAgeMs;
    const reply = await this.guard.run((r) => r.zrevrangebyscore(key, '+inf', cutoff, 'LIMIT', 0, limit), null);
    if (!reply) return local;
    const byId = new Map<string, FraudReport>();
    for (const text of reply) {
      const report = parseReport(text);
      if (report) byId.set(report.id, report);
    }
    for (const r of local) byId.set(r.id, r);
    return [...byId.values()].sort(newestFirst).slice(0, limit);
  }

  /** Sends reports made during an outage; what fails stays for the next attempt. */
  async flushBacklog(batch = 200): Promise<void> {
    const reports = this.backlog.take(batch);
    if (reports.length === 0) return;
    const ok = await this.guard.run(async (r) => (await execOps(r, reports.flatMap((x) => this.writeOps(x))), true), false);
    if (!ok) this.backlog.restore(reports);
  }

  writeOps(report: FraudReport): RedisOp[] {
    const at = Date.parse(report.at);
    const tag = report.number;
    // Trimmed against the report's own time, like every store here: callers may pin the clock.
    const trimBefore = at - this.maxAgeMs;
    const member = JSON.stringify(report);
    // Every report goes to the review index; only those that count against the number go to
    // its own keys, which the call script's summary counts whole.
    const review = ops.zadd(REVIEW_INDEX_TAG, [this.keys.reportIndex()], { score: at, member, trimBefore, keep: REVIEW_INDEX_MAX, expireMs: this.maxAgeMs });
    if (!countsAgainst(report.category)) return [review];
    return [
      ops.zadd(tag, [this.keys.reports(tag)], { score: at, member, trimBefore, keep: this.maxPerNumber, expireMs: this.maxAgeMs }),
      ops.zadd(tag, [this.keys.reportCategories(tag)], { gt: true, score: at, member: report.category, trimBefore, keep: null, expireMs: this.maxAgeMs }),
      review,
    ];
  }

  /** One op with two replies (count, categories), for the tracker's observe command. */
  summaryOp(number: string, now: number): RedisOp {
    return ops.reportSummary(number, this.keys.reports(number), this.keys.reportCategories(number), now - this.maxAgeMs);
  }

  parseSummary(replies: readonly unknown[]): ReportSummary | null {
    const count = replyNumber(replies[0]);
    const cats = replyScored(replies[1]);
    if (count === 0 || cats.length === 0) return null;
    const known = cats.filter(([c]) => countsAgainst(c));
    return {
      count,
      newestAt: Math.max(...cats.map(([, at]) => at)),
      categories: known.map(([c]) => c as ReportCategory).sort(),
    };
  }
}

/** The review index's hash tag: one slot of its own on a Cluster. */
const REVIEW_INDEX_TAG = 'reports';

function parseReport(text: string): FraudReport | null {
  try {
    const r = JSON.parse(text) as FraudReport;
    return typeof r.id === 'string' && typeof r.number === 'string' && typeof r.at === 'string' ? r : null;
  } catch {
    return null;
  }
}

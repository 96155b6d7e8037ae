import type { ReasonCode, Verdict } from '../scoring';
import { Backlog, checkPrefix, execOps, ops, replyStrings, taggedKey, tagSafe, type RedisOp } from './behaviour';
import type { RedisGuard } from './redis';

/**
 * The verdict history: every scored call, kept for `retentionS` (30 days by default), so a
 * bank or an investigator can ask "what did we say about calls from this number (to this
 * customer)?". Written once per call after the decision, read rarely.
 */

export interface HistoryEntry {
  /** Unique per entry: two identical calls are two entries. */
  id: string;
  callId?: string;
  /** E.164; null when withheld or invalid. */
  caller: string | null;
  /** E.164, or the short code dialled; null when unparseable. */
  callee: string | null;
  /** ISO time the call was received. */
  at: string;
  verdict: Verdict;
  score: number;
  reasons: ReasonCode[];
  bankId?: string;
}

export interface HistoryQuery {
  /** E.164, or null for withheld/invalid callers (then `callee` is required). */
  caller: string | null;
  callee?: string;
  /** Milliseconds since the epoch or an ISO time; default: the whole retention. */
  since?: number | string;
  bankId?: string;
  /** Default 100, at most 1000. */
  limit?: number;
}

export interface HistoryStore {
  add(entry: HistoryEntry): Promise<void>;
  /** Newest first. */
  query(q: HistoryQuery): Promise<HistoryEntry[]>;
}

export const DEFAULT_HISTORY_RETENTION_S = 30 * 86400;
const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1000;

function limitOf(q: HistoryQuery): number {
  return Math.max(1, Math.min(MAX_LIMIT, Math.floor(q.limit ?? DEFAULT_LIMIT)));
}

function sinceOf(q: HistoryQuery): number {
  if (q.since === undefined) return Number.NEGATIVE_INFINITY;
  const ms = typeof q.since === 'number' ? q.since : Date.parse(q.since);
  return Number.isFinite(ms) ? ms : Number.NEGATIVE_INFINITY;
}

function matches(e: HistoryEntry, q: HistoryQuery, since: number): boolean {
  return (
    e.caller === q.caller &&
    (q.callee === undefined || e.callee === q.callee) &&
    (q.bankId === undefined || e.bankId === q.bankId) &&
    Date.parse(e.at) >= since
  );
}

function newestFirst(a: HistoryEntry, b: HistoryEntry): number {
  return Date.parse(b.at) - Date.parse(a.at) || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
}

/** A FIFO whose shift is O(1): a plain array's shift would make a busy caller's list quadratic. */
class Queue<T> {
  private items: T[] = [];
  private head = 0;

  get size(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  peek(): T | undefined {
    return this.items[this.head];
  }

  shift(): T | undefined {
    const item = this.items[this.head];
    if (item === undefined) return undefined;
    this.head++;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  *newestFirst(): IterableIterator<T> {
    for (let i = this.items.length - 1; i >= this.head; i--) yield this.items[i]!;
  }
}

interface Held {
  entry: HistoryEntry;
  atMs: number;
  key: string;
}

export interface MemoryHistoryOptions {
  retentionS?: number;
  /** Entries kept in all, oldest dropped first. */
  maxEntries?: number;
}

/** The in-process history: bounded by entries and by time, whichever is reached first. */
export class MemoryHistoryStore implements HistoryStore {
  private readonly all = new Queue<Held>();
  private readonly byKey = new Map<string, Queue<Held>>();
  private readonly retentionMs: number;
  private readonly maxEntries: number;

  constructor(opts: MemoryHistoryOptions = {}) {
    this.retentionMs = (opts.retentionS ?? DEFAULT_HISTORY_RETENTION_S) * 1000;
    this.maxEntries = Math.max(1, opts.maxEntries ?? 200_000);
  }

  get size(): number {
    return this.all.size;
  }

  async add(entry: HistoryEntry): Promise<void> {
    this.addSync(entry);
  }

  addSync(entry: HistoryEntry): void {
    const key = indexKey(entry.caller, entry.callee);
    if (key === null) return;
    const held: Held = { entry, atMs: Date.parse(entry.at), key };
    this.all.push(held);
    let list = this.byKey.get(key);
    if (!list) this.byKey.set(key, (list = new Queue()));
    list.push(held);
    // Insertion order is time order for a live service, so the oldest are always at the front.
    const cutoff = held.atMs - this.retentionMs;
    for (let oldest = this.all.peek(); oldest && (this.all.size > this.maxEntries || oldest.atMs < cutoff); oldest = this.all.peek()) {
      this.all.shift();
      const own = this.byKey.get(oldest.key);
      own?.shift();
      if (own && own.size === 0) this.byKey.delete(oldest.key);
    }
  }

  async query(q: HistoryQuery): Promise<HistoryEntry[]> {
    const key = indexKey(q.caller, q.callee ?? null);
    if (key === null || (q.caller === null && q.callee === undefined)) return [];
    const list = this.byKey.get(key);
    if (!list) return [];
    const since = sinceOf(q);
    const out: HistoryEntry[] = [];
    for (const held of list.newestFirst()) if (matches(held.entry, q, since)) out.push(held.entry);
    return out.sort(newestFirst).slice(0, limitOf(q));
  }
}

/** Entries are indexed by caller; withheld callers, having none, by the number they called. */
function indexKey(caller: string | null, callee: string | null): string | null {
  if (caller !== null) return caller;
  return callee === null ? null : `withheld:${callee}`;
}

export interface RedisHistoryOptions {
  /** Where entries go while Redis is down, and what answers queries then. */
  fallback: MemoryHistoryStore;
  prefix?: string;
  retentionS?: number;
  /** Entries kept per key, oldest dropped first: bounds a robocaller's key. */
  maxPerKey?: number;
  backlogMax?: number;
}

/** Compact member: the score holds the time; the id keeps identical calls distinct. */
interface Member {
  i: string;
  k?: string;
  f: string | null;
  t: string | null;
  v: Verdict;
  s: number;
  r: ReasonCode[];
  b?: string;
}

function toMember(e: HistoryEntry): string {
  const m: Member = { i: e.id, f: e.caller, t: e.callee, v: e.verdict, s: e.score, r: e.reasons };
  if (e.callId !== undefined) m.k = e.callId;
  if (e.bankId !== undefined) m.b = e.bankId;
  return JSON.stringify(m);
}

function fromMember(text: string, atMs: number): HistoryEntry | null {
  try {
    const m = JSON.parse(text) as Member;
    if (typeof m.i !== 'string') return null;
    return {
      id: m.i,
      ...(m.k !== undefined ? { callId: m.k } : {}),
      caller: m.f,
      callee: m.t,
      at: new Date(atMs).toISOString(),
      verdict: m.v,
      score: m.s,
      reasons: m.r,
      ...(m.b !== undefined ? { bankId: m.b } : {}),
    };
  } catch {
    return null;
  }
}

/**
 * Keys (see behaviour-redis.ts for the whole layout), tagged with the caller so the caller's
 * keys share a slot with its velocity and reports keys:
 *   {prefix}h:{<caller>}            sorted set of the caller's calls
 *   {prefix}h:{<caller>}:<callee>   sorted set of the caller's calls to one callee
 *   {prefix}hw:{<callee>}           sorted set of withheld/invalid callers' calls to callee
 * member = compact JSON with a unique id, score = time (ms); trimmed by time and size on each
 * write, PEXPIRE = retention, so a number that stops calling leaves nothing behind.
 */
export class RedisHistoryStore implements HistoryStore {
  readonly prefix: string;
  private readonly retentionMs: number;
  private readonly maxPerKey: number;
  private readonly backlog: Backlog<HistoryEntry>;

  constructor(
    private readonly guard: RedisGuard,
    private readonly opts: RedisHistoryOptions,
  ) {
    this.prefix = checkPrefix(opts.prefix ?? 'callguard:');
    this.retentionMs = (opts.retentionS ?? DEFAULT_HISTORY_RETENTION_S) * 1000;
    this.maxPerKey = Math.max(1, opts.maxPerKey ?? 10_000);
    this.backlog = new Backlog(opts.backlogMax ?? 10_000);
  }

  get backlogSize(): number {
    return this.backlog.size;
  }

  async add(entry: HistoryEntry): Promise<void> {
    const list = this.writeOps(entry);
    if (list.length === 0) return;
    const ok = await this.guard.run(async (r) => (await execOps(r, list), true), false);
    if (!ok) this.keepWhileDegraded(entry);
  }

  /** For an entry whose write failed: answer from memory now, write to Redis once it is back. */
  keepWhileDegraded(entry: HistoryEntry): void {
    this.opts.fallback.addSync(entry);
    this.backlog.push(entry);
  }

  async query(q: HistoryQuery): Promise<HistoryEntry[]> {
    const local = await this.opts.fallback.query(q);
    const key = this.queryKey(q);
    if (key === null) return local;
    const remote = await this.guard.run((r) => this.scan(r, key, q), null);
    if (remote === null) return local;
    // Entries written during an outage and not yet sent back live only here.
    const byId = new Map<string, HistoryEntry>();
    for (const e of remote) byId.set(e.id, e);
    for (const e of local) byId.set(e.id, e);
    return [...byId.values()].sort(newestFirst).slice(0, limitOf(q));
  }

  /** Sends entries written during an outage; what fails stays for the next attempt. */
  async flushBacklog(batch = 200): Promise<void> {
    const entries = this.backlog.take(batch);
    const list = entries.flatMap((e) => this.writeOps(e));
    if (list.length === 0) return;
    const ok = await this.guard.run(async (r) => (await execOps(r, list), true), false);
    if (!ok) this.backlog.restore(entries);
  }

  /**
   * One op: the member goes into the entry's keys (the caller's, and the caller's to this callee,
   * both of one tag), each trimmed by time and size. The member is sent once for both keys.
   */
  writeOps(e: HistoryEntry): RedisOp[] {
    const keys = this.keysFor(e.caller, e.callee);
    if (!keys) return [];
    const at = Date.parse(e.at);
    return [ops.zadd(keys.tag, keys.keys, { score: at, member: toMember(e), trimBefore: at - this.retentionMs, keep: this.maxPerKey, expireMs: this.retentionMs })];
  }

  private keysFor(caller: string | null, callee: string | null): { tag: string; keys: string[] } | null {
    if (caller !== null) {
      const tag = tagSafe(caller);
      const keys = [taggedKey(this.prefix, 'h', tag)];
      if (callee !== null) keys.push(taggedKey(this.prefix, 'h', tag, `:${callee}`));
      return { tag, keys };
    }
    if (callee === null) return null;
    const tag = tagSafe(callee);
    return { tag, keys: [taggedKey(this.prefix, 'hw', tag)] };
  }

  private queryKey(q: HistoryQuery): string | null {
    if (q.caller !== null) return taggedKey(this.prefix, 'h', tagSafe(q.caller), q.callee !== undefined ? `:${q.callee}` : '');
    return q.callee !== undefined ? taggedKey(this.prefix, 'hw', tagSafe(q.callee)) : null;
  }

  /**
   * Reads newest first. Without a bank filter the first page is the answer; with one, pages
   * on until enough match (a caller's entries nearly always share one bank, so this is rare).
   */
  private async scan(client: RedisGuard['client'], key: string, q: HistoryQuery): Promise<HistoryEntry[]> {
    const limit = limitOf(q);
    const since = sinceOf(q);
    const min = Number.isFinite(since) ? String(since) : '-inf';
    const page = Math.max(limit, 100);
    const out: HistoryEntry[] = [];
    for (let offset = 0; out.length < limit && offset < 10 * page; offset += page) {
      const reply = replyStrings(await client.zrevrangebyscore(key, '+inf', min, 'WITHSCORES', 'LIMIT', offset, page));
      for (let i = 0; i + 1 < reply.length; i += 2) {
        const e = fromMember(reply[i]!, Number(reply[i + 1]));
        if (e && matches(e, q, since)) out.push(e);
      }
      if (reply.length < page * 2) break;
    }
    return out.slice(0, limit);
  }
}

import { Backlog } from './backlog';
import { newId } from './ids';
import { DEFAULT_MEMORY_BOUNDS } from './memory-bounds';
import type { RedisGuard } from './redis/client';
import { keyspace, tagSafe, type Keyspace } from './redis/keyspace';
import { execOps, ops, replyStrings, type RedisOp } from './redis/ops';

/**
 * The verdict history: every scored call, kept for `retentionS` (30 days by default), so a
 * bank or an investigator can ask "what did we say about calls from this number (to this
 * customer)?". Written once per call after the decision, read rarely.
 */

/** A history entry before it is stored: the time in ms, reasons by code. */
export interface HistoryRecord {
  callId?: string;
  caller: string | null;
  callee: string | null;
  at: number;
  verdict: HistoryVerdict;
  score: number;
  reasons: readonly { code: string }[];
  bankId?: string;
}

export type HistoryVerdict = 'allow' | 'flag' | 'block';

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
  verdict: HistoryVerdict;
  score: number;
  /** Reason codes. */
  reasons: string[];
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

/** What the history keeps of a scored call. */
export function historyEntry(record: HistoryRecord, id: string = newId()): HistoryEntry {
  const entry: HistoryEntry = {
    id,
    caller: record.caller,
    callee: record.callee,
    at: new Date(record.at).toISOString(),
    verdict: record.verdict,
    score: record.score,
    reasons: record.reasons.map((r) => r.code),
  };
  if (record.callId !== undefined) entry.callId = record.callId;
  if (record.bankId !== undefined) entry.bankId = record.bankId;
  return entry;
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

const sameCode = (code: string) => code;
const codeOfReason = (reason: { code: string }) => reason.code;

function newestFirst(a: HistoryEntry, b: HistoryEntry): number {
  return Date.parse(b.at) - Date.parse(a.at) || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
}

export interface MemoryHistoryOptions {
  retentionS?: number;
  /** Entries kept in all, oldest dropped first. */
  maxEntries?: number;
}

/**
 * A reasons list as kept by the store: a handful of reason sets cover nearly every call, so each
 * distinct list is kept once, found by walking its codes down from the empty list.
 */
interface ReasonsNode {
  codes: readonly string[];
  next: Map<string, ReasonsNode> | undefined;
}

/** Distinct reasons lists a store shares; past it, a list of a new kind is kept as its own copy. */
const MAX_REASONS_LISTS = 4096;

/**
 * The in-process history: bounded by entries and by time, whichever is reached first.
 *
 * It is written on every call of a single instance (and on every call while Redis is away), so
 * an entry is stored without objects of its own: entries take the slots of a ring of columns
 * (entry n in slot n % maxEntries; insertion order is time order for a live service, so the
 * oldest are always at the head), the time is kept as a number and the ISO text made only when
 * a query returns the entry, and each reasons list is shared. An index maps each caller (and
 * each number called by a withheld caller) to its newest entry, and each entry links to the
 * previous one of its key: a query walks that chain, newest first.
 */
export class MemoryHistoryStore implements HistoryStore {
  private readonly retentionMs: number;
  private readonly maxEntries: number;
  /** Numbers of the oldest entry held and of the next entry: entries head .. tail - 1 are held. */
  private head = 0;
  private tail = 0;
  // The columns, by slot. Pointers are cleared when their entry goes, so nothing outlives it.
  private readonly ids: (string | undefined)[] = [];
  private readonly callIds: (string | undefined)[] = [];
  private readonly callers: (string | null | undefined)[] = [];
  private readonly callees: (string | null | undefined)[] = [];
  private readonly verdicts: HistoryVerdict[] = [];
  private readonly reasons: (readonly string[])[] = [];
  private readonly bankIds: (string | undefined)[] = [];
  // Numbers in typed arrays, grown as entries come (to maxEntries at most).
  private capacity = 0;
  /** Milliseconds since the epoch (`Date.parse(entry.at)`). */
  private times = new Float64Array(0);
  private scores = new Float64Array(0);
  /** The slot of the previous entry of the same key, or -1. */
  private previous = new Int32Array(0);
  /** 1 while the entry is its key's newest, the one the index points at. */
  private newest = new Uint8Array(0);
  /** The slot of the newest entry of each caller, and of each number withheld callers called. */
  private readonly byCaller = new Map<string, number>();
  private readonly byWithheld = new Map<string, number>();
  /**
   * Entries given whole whose `at` is not in the form it would be written back in (ISO, as
   * `toISOString` writes it): kept as given and returned as given. Never, from this service.
   */
  private readonly verbatim = new Map<number, HistoryEntry>();
  private readonly reasonsRoot: ReasonsNode = { codes: [], next: undefined };
  private reasonsLists = 1;

  constructor(opts: MemoryHistoryOptions = {}) {
    this.retentionMs = (opts.retentionS ?? DEFAULT_HISTORY_RETENTION_S) * 1000;
    this.maxEntries = Math.max(1, opts.maxEntries ?? DEFAULT_MEMORY_BOUNDS.historyEntries);
  }

  get size(): number {
    return this.tail - this.head;
  }

  async add(entry: HistoryEntry): Promise<void> {
    this.addSync(entry);
  }

  addSync(entry: HistoryEntry): void {
    const atMs = Date.parse(entry.at);
    const asWritten = Number.isFinite(atMs) && new Date(atMs).toISOString() === entry.at;
    const slot = this.push(entry.id, entry.callId, entry.caller, entry.callee, atMs, entry.verdict, entry.score, this.sharedReasons(entry.reasons, sameCode), entry.bankId);
    if (slot !== -1 && !asWritten) this.verbatim.set(slot, entry);
  }

  /**
   * Keeps what `historyEntry(record)` makes, without making it: the same fields, the same id,
   * and the same refusal (a RangeError) of a time that is not one.
   */
  addRecord(record: HistoryRecord): void {
    const id = newId();
    // Past the first 36^4 ids, newId's text is long enough for V8 to make it a rope (the prefix
    // and the counter's text, 56 bytes); reading a character makes it flat (32), kept instead.
    id.charCodeAt(0);
    // What `new Date(record.at).toISOString()` does to the time, then `Date.parse` undoes.
    const atMs = record.at;
    if (!(Math.abs(atMs) <= MAX_TIME_MS)) throw new RangeError('Invalid time value');
    this.push(id, record.callId, record.caller, record.callee, Math.trunc(atMs) + 0, record.verdict, record.score, this.sharedReasons(record.reasons, codeOfReason), record.bankId);
  }

  /** One shared list for every entry with these reasons, in this order (see `nextReasons`). */
  private sharedReasons<T>(items: readonly T[], codeOf: (item: T) => string): readonly string[] {
    let reasons = this.reasonsRoot;
    for (const item of items) {
      const next = this.nextReasons(reasons, codeOf(item));
      if (!next) return items.map(codeOf);
      reasons = next;
    }
    return reasons.codes;
  }

  async query(q: HistoryQuery): Promise<HistoryEntry[]> {
    let slot: number | undefined;
    if (q.caller !== null) slot = this.byCaller.get(q.caller);
    else if (q.callee !== undefined) slot = this.byWithheld.get(q.callee);
    if (slot === undefined) return [];
    const since = sinceOf(q);
    const found: number[] = [];
    // Back along the key's entries while they are held: each is older than the one before.
    for (let age = this.age(slot); ; ) {
      if (
        this.callers[slot] === q.caller &&
        (q.callee === undefined || this.callees[slot] === q.callee) &&
        (q.bankId === undefined || this.bankIds[slot] === q.bankId) &&
        this.times[slot]! >= since
      )
        found.push(slot);
      const prev: number = this.previous[slot]!;
      if (prev === -1) break;
      const prevAge = this.age(prev);
      // Gone, and perhaps its slot taken by a newer entry.
      if (prevAge >= age) break;
      slot = prev;
      age = prevAge;
    }
    // Ordered as `newestFirst` orders entries (a slot's time is its entry's `Date.parse(at)`), and
    // only the entries answered are made.
    const ids = this.ids;
    const times = this.times;
    found.sort((a, b) => times[b]! - times[a]! || (ids[a]! < ids[b]! ? 1 : ids[a]! > ids[b]! ? -1 : 0));
    return found.slice(0, limitOf(q)).map((slot) => this.entryAt(slot));
  }

  /** The held entry in `slot`, as `historyEntry` would have made it. */
  private entryAt(slot: number): HistoryEntry {
    const given = this.verbatim.size === 0 ? undefined : this.verbatim.get(slot);
    if (given) return given;
    const entry: HistoryEntry = {
      id: this.ids[slot]!,
      caller: this.callers[slot]!,
      callee: this.callees[slot]!,
      at: new Date(this.times[slot]!).toISOString(),
      verdict: this.verdicts[slot]!,
      score: this.scores[slot]!,
      reasons: [...this.reasons[slot]!],
    };
    const callId = this.callIds[slot];
    if (callId !== undefined) entry.callId = callId;
    const bankId = this.bankIds[slot];
    if (bankId !== undefined) entry.bankId = bankId;
    return entry;
  }

  /** How many entries are held that are older than the one in `slot` (>= size: not held). */
  private age(slot: number): number {
    const max = this.maxEntries;
    return (slot - (this.head % max) + max) % max;
  }

  /** Stores an entry; returns its slot, or -1 when it has no key to be found by. */
  private push(
    id: string,
    callId: string | undefined,
    caller: string | null,
    callee: string | null,
    atMs: number,
    verdict: HistoryVerdict,
    score: number,
    reasons: readonly string[],
    bankId: string | undefined,
  ): number {
    let index: Map<string, number>;
    let key: string;
    if (caller !== null) {
      index = this.byCaller;
      key = caller;
    } else if (callee !== null) {
      index = this.byWithheld;
      key = callee;
    } else return -1;
    if (this.tail - this.head >= this.maxEntries) this.dropOldest();
    const slot = this.tail % this.maxEntries;
    if (slot === this.capacity) this.grow();
    this.tail++;
    this.ids[slot] = id;
    this.callIds[slot] = callId;
    this.callers[slot] = caller;
    this.callees[slot] = callee;
    this.times[slot] = atMs;
    this.verdicts[slot] = verdict;
    this.scores[slot] = score;
    this.reasons[slot] = reasons;
    this.bankIds[slot] = bankId;
    const previous = index.get(key);
    if (previous === undefined) this.previous[slot] = -1;
    else {
      this.previous[slot] = previous;
      this.newest[previous] = 0;
    }
    this.newest[slot] = 1;
    index.set(key, slot);
    // Insertion order is time order for a live service, so the oldest are always at the front.
    const cutoff = atMs - this.retentionMs;
    while (this.tail > this.head && this.times[this.head % this.maxEntries]! < cutoff) this.dropOldest();
    return slot;
  }

  private dropOldest(): void {
    const slot = this.head % this.maxEntries;
    this.head++;
    if (this.newest[slot] === 1) {
      const caller = this.callers[slot];
      if (caller !== null) this.byCaller.delete(caller!);
      else this.byWithheld.delete(this.callees[slot]!);
      this.newest[slot] = 0;
    }
    this.ids[slot] = undefined;
    this.callIds[slot] = undefined;
    this.callers[slot] = undefined;
    this.callees[slot] = undefined;
    this.reasons[slot] = NO_REASONS;
    this.bankIds[slot] = undefined;
    if (this.verbatim.size !== 0) this.verbatim.delete(slot);
  }

  private grow(): void {
    const size = Math.min(this.maxEntries, Math.max(1024, this.capacity * 2));
    this.times = grown(this.times, new Float64Array(size));
    this.scores = grown(this.scores, new Float64Array(size));
    this.previous = grown(this.previous, new Int32Array(size));
    this.newest = grown(this.newest, new Uint8Array(size));
    this.capacity = size;
  }

  /** The shared list of `node`'s codes followed by `code`; null once there are too many lists. */
  private nextReasons(node: ReasonsNode, code: string): ReasonsNode | null {
    let next = node.next?.get(code);
    if (next) return next;
    if (this.reasonsLists >= MAX_REASONS_LISTS) return null;
    next = { codes: [...node.codes, code], next: undefined };
    (node.next ??= new Map()).set(code, next);
    this.reasonsLists++;
    return next;
  }
}

function grown<T extends Float64Array | Int32Array | Uint8Array>(from: T, to: T): T {
  to.set(from);
  return to;
}

const NO_REASONS: readonly string[] = [];
/** The largest time a Date holds (ms either side of the epoch). */
const MAX_TIME_MS = 8.64e15;

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
  v: HistoryVerdict;
  s: number;
  r: string[];
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
 * Keys (see redis/keyspace.ts for the whole layout), tagged with the caller so the caller's
 * keys share a slot with its velocity and reports keys:
 *   {prefix}h:{<caller>}            sorted set of the caller's calls
 *   {prefix}h:{<caller>}:<callee>   sorted set of the caller's calls to one callee
 *   {prefix}hw:{<callee>}           sorted set of withheld/invalid callers' calls to callee
 * member = compact JSON with a unique id, score = time (ms); trimmed by time and size on each
 * write, PEXPIRE = retention, so a number that stops calling leaves nothing behind.
 */
export class RedisHistoryStore implements HistoryStore {
  readonly prefix: string;
  private readonly keys: Keyspace;
  private readonly retentionMs: number;
  private readonly maxPerKey: number;
  private readonly backlog: Backlog<HistoryEntry>;

  constructor(
    private readonly guard: RedisGuard,
    private readonly opts: RedisHistoryOptions,
  ) {
    this.keys = keyspace(opts.prefix);
    this.prefix = this.keys.prefix;
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
      const keys = [this.keys.history(tag)];
      if (callee !== null) keys.push(this.keys.history(tag, callee));
      return { tag, keys };
    }
    if (callee === null) return null;
    const tag = tagSafe(callee);
    return { tag, keys: [this.keys.withheldHistory(tag)] };
  }

  private queryKey(q: HistoryQuery): string | null {
    if (q.caller !== null) return this.keys.history(tagSafe(q.caller), q.callee);
    return q.callee !== undefined ? this.keys.withheldHistory(tagSafe(q.callee)) : null;
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

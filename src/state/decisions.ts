import { LRUCache } from 'lru-cache';
import { Backlog } from './backlog';
import { DEFAULT_HISTORY_RETENTION_S, type HistoryVerdict } from './history';
import { DEFAULT_MEMORY_BOUNDS } from './memory-bounds';
import { newId } from './ids';
import type { RedisGuard } from './redis/client';
import { keyspace, tagSafe, type Keyspace } from './redis/keyspace';
import { execOps, ops, replyStrings, type RedisOp } from './redis/ops';

/**
 * Decision records: what was decided for a call id and on what evidence, so that an operator can
 * answer "why was this call blocked?" and trace a call back (which carrier signed it, which
 * trunk it came in on). Written in the call's one write, read rarely, kept as long as the verdict
 * history. A switch may score one call id more than once (and a hostile one may reuse an id
 * without end), so each call id keeps only its newest `maxPerCall` decisions.
 */

export interface DecisionReason {
  code: string;
  weight: number;
  message: string;
}

/** The call's STIR/SHAKEN evidence, as judged (codes and values as the score route answers them). */
export interface DecisionShaken {
  /** Where the attestation came from: `passport` (verified here), `upstream`, `none`. */
  source: string;
  verstat: string;
  attestation: string | null;
  spc?: string;
  origid?: string;
  /** The certificate URL of the PASSporT judged. */
  x5u?: string;
  errors: readonly string[];
}

/** The call's origin, as normalised for the decision. */
export interface DecisionOrigin {
  trunk?: string;
  carrier?: string;
  country?: string;
  international?: boolean;
  roamingVerified?: boolean;
}

export type DecisionPresentation = 'allowed' | 'withheld';

/** A decision as the store is handed it: plain data, times in milliseconds since the epoch. */
export interface DecisionRecord {
  callId: string;
  /** When the call was received: the switch's `receivedAt`, else when it was scored. */
  at: number;
  /** When the decision was made, on the service's clock: records are ordered and kept by it. */
  decidedAt: number;
  /** The caller ID: E.164, a short code, or null (withheld or unreadable). */
  from: string | null;
  /** The called number: E.164, a short code, or null (unreadable). */
  to: string | null;
  /** The bank whose registry entry the caller ID matched when the call was scored: whose key may read it. */
  bankId?: string;
  verdict: HistoryVerdict;
  score: number;
  presentation: DecisionPresentation;
  reasons: readonly DecisionReason[];
  /** The evidence came from the verdict cache. */
  cached: boolean;
  shaken: DecisionShaken;
  origin?: DecisionOrigin;
  policyVersion: string;
  registryVersion: string;
}

/** A kept decision: its record, bounded (see `decisionEntry`), with an id of its own. */
export interface DecisionEntry extends DecisionRecord {
  /** Unique per decision: the same call scored twice is two decisions. */
  id: string;
}

export interface DecisionStore {
  /** The call id's decisions within the retention, newest first; empty when none is kept. */
  forCall(callId: string): Promise<DecisionEntry[]>;
  /**
   * The newest decisions this instance made (at most `RECENT_DECISIONS_KEPT`), newest first:
   * what an operator watches live. Only this instance's: a list shared by every instance would
   * be one more write to one hot key on every call.
   */
  recent(limit: number): Promise<DecisionEntry[]>;
}

/** Decisions `recent` can answer: a screenful or a few, never a store. */
export const RECENT_DECISIONS_KEPT = 200;

/** The newest `max` items pushed, newest first: a fixed array written round, nothing allocated per push. */
export class Ring<T> {
  private readonly items: (T | undefined)[];
  private next = 0;
  private count = 0;

  constructor(private readonly max: number) {
    this.items = new Array<T | undefined>(Math.max(1, max));
  }

  push(item: T): void {
    this.items[this.next] = item;
    this.next = (this.next + 1) % this.items.length;
    this.count = Math.min(this.count + 1, this.items.length);
  }

  newest(limit: number): T[] {
    const out: T[] = [];
    for (let i = 1; i <= Math.min(limit, this.count); i++) out.push(this.items[(this.next - i + this.items.length) % this.items.length] as T);
    return out;
  }
}

/** Decisions kept per call id, newest first: a re-scored call's story, never a reused id's flood. */
export const DEFAULT_DECISIONS_PER_CALL = 20;
/** The score route's limit on callId; the store holds itself to it whoever writes. */
export const MAX_CALL_ID_CHARS = 256;
/**
 * Texts a record takes from outside (PASSporT claims and URLs, certificate SPCs, trunk names) are
 * cut to this: an Identity header may be 80 KB, and its claims could be most of it.
 */
const MAX_TEXT_CHARS = 512;
/** More than there are reason codes or shaken error codes. */
const MAX_LIST = 64;

function clip(s: string, max = MAX_TEXT_CHARS): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}

const clipOrNull = (s: string | null): string | null => (s === null ? null : clip(s));

/** The call id as the store keys it (the same cut whoever asks). */
export function decisionCallId(callId: string): string {
  return clip(callId, MAX_CALL_ID_CHARS);
}

/** What the store keeps of a decision: the record with every text and list bounded, and an id. */
export function decisionEntry(r: DecisionRecord, id: string = newId()): DecisionEntry {
  const shaken: DecisionShaken = {
    source: clip(r.shaken.source),
    verstat: clip(r.shaken.verstat),
    attestation: clipOrNull(r.shaken.attestation),
    errors: r.shaken.errors.slice(0, MAX_LIST).map((e) => clip(e)),
  };
  if (r.shaken.spc !== undefined) shaken.spc = clip(r.shaken.spc);
  if (r.shaken.origid !== undefined) shaken.origid = clip(r.shaken.origid);
  if (r.shaken.x5u !== undefined) shaken.x5u = clip(r.shaken.x5u);
  const entry: DecisionEntry = {
    id,
    callId: decisionCallId(r.callId),
    at: r.at,
    decidedAt: r.decidedAt,
    from: clipOrNull(r.from),
    to: clipOrNull(r.to),
    verdict: r.verdict,
    score: r.score,
    presentation: r.presentation,
    reasons: r.reasons.slice(0, MAX_LIST).map((x) => ({ code: clip(x.code), weight: x.weight, message: clip(x.message) })),
    cached: r.cached,
    shaken,
    policyVersion: clip(r.policyVersion),
    registryVersion: clip(r.registryVersion),
  };
  if (r.bankId !== undefined) entry.bankId = clip(r.bankId);
  if (r.origin !== undefined) {
    const o = r.origin;
    const origin: DecisionOrigin = {};
    if (o.trunk !== undefined) origin.trunk = clip(o.trunk);
    if (o.carrier !== undefined) origin.carrier = clip(o.carrier);
    if (o.country !== undefined) origin.country = clip(o.country);
    if (o.international !== undefined) origin.international = o.international;
    if (o.roamingVerified !== undefined) origin.roamingVerified = o.roamingVerified;
    entry.origin = origin;
  }
  return entry;
}

/**
 * A kept decision as text (a Redis list member, and what the in-process store holds): compact
 * JSON with short keys, as the verdict history's members are.
 */
interface Member {
  i: string;
  k: string;
  a: number;
  d: number;
  f: string | null;
  t: string | null;
  b?: string;
  v: HistoryVerdict;
  s: number;
  p: DecisionPresentation;
  /** [code, weight, message] */
  r: [string, number, string][];
  c: boolean;
  h: { s: string; v: string; a: string | null; spc?: string; oid?: string; x5u?: string; e: readonly string[] };
  o?: DecisionOrigin;
  pv: string;
  rv: string;
}

export function encodeDecision(e: DecisionEntry): string {
  const h: Member['h'] = { s: e.shaken.source, v: e.shaken.verstat, a: e.shaken.attestation, e: e.shaken.errors };
  if (e.shaken.spc !== undefined) h.spc = e.shaken.spc;
  if (e.shaken.origid !== undefined) h.oid = e.shaken.origid;
  if (e.shaken.x5u !== undefined) h.x5u = e.shaken.x5u;
  const m: Member = {
    i: e.id,
    k: e.callId,
    a: e.at,
    d: e.decidedAt,
    f: e.from,
    t: e.to,
    v: e.verdict,
    s: e.score,
    p: e.presentation,
    r: e.reasons.map((x) => [x.code, x.weight, x.message]),
    c: e.cached,
    h,
    pv: e.policyVersion,
    rv: e.registryVersion,
  };
  if (e.bankId !== undefined) m.b = e.bankId;
  if (e.origin !== undefined) m.o = e.origin;
  return JSON.stringify(m);
}

const VERDICTS: readonly unknown[] = ['allow', 'flag', 'block'] satisfies HistoryVerdict[];
const PRESENTATIONS: readonly unknown[] = ['allowed', 'withheld'] satisfies DecisionPresentation[];
const isString = (v: unknown): v is string => typeof v === 'string';
const isStringOrNull = (v: unknown): v is string | null => v === null || typeof v === 'string';
const isNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const optional = <T>(v: unknown, is: (v: unknown) => v is T): v is T | undefined => v === undefined || is(v);
const isBoolean = (v: unknown): v is boolean => typeof v === 'boolean';

/**
 * A kept decision back from its text; null for text that is not one (written by something else,
 * or by a release that shaped it otherwise): it is left out rather than answered half-made.
 */
export function decodeDecision(text: string): DecisionEntry | null {
  let m: Partial<Record<keyof Member, unknown>>;
  try {
    m = JSON.parse(text) as typeof m;
  } catch {
    return null;
  }
  if (m === null || typeof m !== 'object') return null;
  const h = m.h as Partial<Record<keyof Member['h'], unknown>> | null | undefined;
  const o = m.o as Partial<Record<keyof DecisionOrigin, unknown>> | null | undefined;
  const ok =
    isString(m.i) &&
    isString(m.k) &&
    isNumber(m.a) &&
    isNumber(m.d) &&
    isStringOrNull(m.f) &&
    isStringOrNull(m.t) &&
    optional(m.b, isString) &&
    VERDICTS.includes(m.v) &&
    isNumber(m.s) &&
    PRESENTATIONS.includes(m.p) &&
    Array.isArray(m.r) &&
    m.r.every((x) => Array.isArray(x) && isString(x[0]) && isNumber(x[1]) && isString(x[2])) &&
    isBoolean(m.c) &&
    isString(m.pv) &&
    isString(m.rv) &&
    h !== null &&
    typeof h === 'object' &&
    isString(h.s) &&
    isString(h.v) &&
    isStringOrNull(h.a) &&
    optional(h.spc, isString) &&
    optional(h.oid, isString) &&
    optional(h.x5u, isString) &&
    Array.isArray(h.e) &&
    h.e.every(isString) &&
    (o === undefined ||
      (o !== null &&
        typeof o === 'object' &&
        optional(o.trunk, isString) &&
        optional(o.carrier, isString) &&
        optional(o.country, isString) &&
        optional(o.international, isBoolean) &&
        optional(o.roamingVerified, isBoolean)));
  if (!ok) return null;
  const shaken: DecisionShaken = { source: h.s as string, verstat: h.v as string, attestation: h.a as string | null, errors: h.e as string[] };
  if (h.spc !== undefined) shaken.spc = h.spc as string;
  if (h.oid !== undefined) shaken.origid = h.oid as string;
  if (h.x5u !== undefined) shaken.x5u = h.x5u as string;
  const entry: DecisionEntry = {
    id: m.i as string,
    callId: m.k as string,
    at: m.a as number,
    decidedAt: m.d as number,
    from: m.f as string | null,
    to: m.t as string | null,
    verdict: m.v as HistoryVerdict,
    score: m.s as number,
    presentation: m.p as DecisionPresentation,
    reasons: (m.r as [string, number, string][]).map(([code, weight, message]) => ({ code, weight, message })),
    cached: m.c as boolean,
    shaken,
    policyVersion: m.pv as string,
    registryVersion: m.rv as string,
  };
  if (m.b !== undefined) entry.bankId = m.b as string;
  if (o !== undefined) {
    // Only the fields a record has: the view answers them as they are.
    const origin: DecisionOrigin = {};
    if (o.trunk !== undefined) origin.trunk = o.trunk as string;
    if (o.carrier !== undefined) origin.carrier = o.carrier as string;
    if (o.country !== undefined) origin.country = o.country as string;
    if (o.international !== undefined) origin.international = o.international as boolean;
    if (o.roamingVerified !== undefined) origin.roamingVerified = o.roamingVerified as boolean;
    entry.origin = origin;
  }
  return entry;
}

/** Newest decision first; equal times keep the order given. */
function newestFirst(entries: DecisionEntry[]): DecisionEntry[] {
  return entries.sort((a, b) => b.decidedAt - a.decidedAt);
}

export interface MemoryDecisionOptions {
  /** How long a decision is kept (default: the verdict history's, 30 days). */
  retentionS?: number;
  /** Decisions kept per call id, oldest dropped first (default 20). */
  maxPerCall?: number;
  /** Call ids kept, the least recently decided dropped first (default DEFAULT_MEMORY_BOUNDS.decisionCalls). */
  maxCalls?: number;
  /**
   * Bytes of records held in all, as `approxBytes` weighs them, the least recently decided call
   * ids dropped first (default DEFAULT_MEMORY_BOUNDS.decisionBytes).
   */
  maxBytes?: number;
  /** The clock retention is judged by (milliseconds since the epoch). */
  now?: () => number;
}

/**
 * One decision as held: the record as handed in, linked to the call id's previous decision. The
 * newest of a call id is the one the cache holds, and its `count` and `bytes` are the chain's.
 */
interface Held {
  record: DecisionRecord;
  /** Given (an entry from the Redis store), or made when the decision is first answered. */
  id: string | undefined;
  older: Held | undefined;
  /** This decision's weight (`approxBytes`). */
  own: number;
  /** Decisions from this one back, this one included, and their weight. */
  count: number;
  bytes: number;
}

/** What a record's objects cost beyond their texts (headers, numbers, pointers), roughly. */
const RECORD_OVERHEAD_BYTES = 600;
const REASON_OVERHEAD_BYTES = 80;
const textBytes = (s: string | null | undefined): number => (s ? s.length : 0);

/**
 * A record's weight in memory, roughly and from above for the texts (the whole of each, as held,
 * before any cut): a walk over a few fields, no allocation.
 */
function approxBytes(r: DecisionRecord): number {
  let n = RECORD_OVERHEAD_BYTES + textBytes(r.callId) + textBytes(r.from) + textBytes(r.to) + textBytes(r.bankId);
  n += textBytes(r.policyVersion) + textBytes(r.registryVersion);
  for (const x of r.reasons) n += REASON_OVERHEAD_BYTES + textBytes(x.code) + textBytes(x.message);
  const h = r.shaken;
  n += textBytes(h.spc) + textBytes(h.origid) + textBytes(h.x5u) + 16 * h.errors.length;
  const o = r.origin;
  if (o) n += textBytes(o.trunk) + textBytes(o.carrier) + textBytes(o.country);
  return n;
}

/**
 * The in-process decision records: the whole store of a single instance, and the Redis store's
 * fallback while Redis is away. Bounded three ways: decisions per call id, call ids, and the bytes
 * of the records held in all; the least recently decided call ids go first, and none outlives the
 * retention.
 *
 * It is written on every call that has a callId, and what a store holds for long costs the
 * garbage collector on every call after (it is copied out of the young generation, then marked
 * on every full collection). So a decision is held as the record handed in, which shares the
 * decision's reasons and the cached evidence's STIR/SHAKEN and origin objects (nothing changes
 * them), in one link of a chain per call id: no copy, no text made. The cuts and copies of
 * `decisionEntry` are made when it is read, off the call's path.
 */
export class MemoryDecisionStore implements DecisionStore {
  private readonly calls: LRUCache<string, Held>;
  /** The newest decisions held, whatever their call id: links shared with the chains, no copy. */
  private readonly latest = new Ring<Held>(RECENT_DECISIONS_KEPT);
  private readonly retentionMs: number;
  private readonly maxPerCall: number;
  private readonly now: () => number;

  constructor(opts: MemoryDecisionOptions = {}) {
    this.retentionMs = (opts.retentionS ?? DEFAULT_HISTORY_RETENTION_S) * 1000;
    this.maxPerCall = Math.max(1, opts.maxPerCall ?? DEFAULT_DECISIONS_PER_CALL);
    this.now = opts.now ?? Date.now;
    this.calls = new LRUCache<string, Held>({
      max: Math.max(1, opts.maxCalls ?? DEFAULT_MEMORY_BOUNDS.decisionCalls),
      maxSize: Math.max(1, opts.maxBytes ?? DEFAULT_MEMORY_BOUNDS.decisionBytes),
      sizeCalculation: (newest) => Math.max(1, newest.bytes),
      ttl: this.retentionMs,
      ttlAutopurge: false,
      // As the call state's verdict cache: the clock is asked at every look.
      perf: { now: this.now },
      ttlResolution: 0,
      // A call id is renewed by its decisions, not by being read.
      updateAgeOnGet: false,
    });
  }

  /** Call ids held (for tests and diagnostics). */
  get size(): number {
    return this.calls.size;
  }

  add(record: DecisionRecord): void {
    this.hold(undefined, record);
  }

  /** An entry made elsewhere (the Redis store's, while Redis is away), kept under its own id. */
  addEntry(entry: DecisionEntry): void {
    this.hold(entry.id, entry);
  }

  private hold(id: string | undefined, record: DecisionRecord): void {
    const callId = decisionCallId(record.callId);
    const older = this.calls.peek(callId);
    const own = approxBytes(record);
    const newest: Held = { record, id, older, own, count: (older?.count ?? 0) + 1, bytes: (older?.bytes ?? 0) + own };
    if (newest.count > this.maxPerCall) {
      // Cut the chain after the oldest decision kept.
      let last = newest;
      let bytes = newest.own;
      for (let i = 1; i < this.maxPerCall; i++) {
        last = last.older!;
        bytes += last.own;
      }
      last.older = undefined;
      newest.count = this.maxPerCall;
      newest.bytes = bytes;
    }
    this.calls.set(callId, newest);
    this.latest.push(newest);
  }

  async forCall(callId: string): Promise<DecisionEntry[]> {
    return this.forCallSync(callId);
  }

  async recent(limit: number): Promise<DecisionEntry[]> {
    const cutoff = this.now() - this.retentionMs;
    return this.latest
      .newest(limit)
      .filter((h) => h.record.decidedAt >= cutoff)
      .map((h) => decisionEntry(h.record, (h.id ??= newId())));
  }

  forCallSync(callId: string): DecisionEntry[] {
    const cutoff = this.now() - this.retentionMs;
    const out: DecisionEntry[] = [];
    // Newest first, as a Redis list holds them.
    for (let h = this.calls.peek(decisionCallId(callId)); h !== undefined; h = h.older) {
      if (h.record.decidedAt >= cutoff) out.push(decisionEntry(h.record, (h.id ??= newId())));
    }
    return newestFirst(out);
  }
}

export interface RedisDecisionOptions {
  /** Where decisions go while Redis is down, and what answers with Redis then. */
  fallback: MemoryDecisionStore;
  prefix?: string;
  retentionS?: number;
  maxPerCall?: number;
  backlogMax?: number;
  now?: () => number;
}

/**
 * Decision records in Redis (key `{prefix}d:{<callId>}`, see keyspace.ts): a list per call id,
 * the newest decision at its head, cut to `maxPerCall` and expiring a retention after its latest
 * decision. Written by the call's write script (`writeOps`), so it costs the call no round trip.
 * Like the verdict history, a decision whose write failed is kept in process and sent once Redis
 * is back: nothing decided is lost to an outage.
 */
export class RedisDecisionStore implements DecisionStore {
  private readonly keys: Keyspace;
  private readonly retentionMs: number;
  private readonly maxPerCall: number;
  private readonly backlog: Backlog<DecisionEntry>;
  private readonly latest = new Ring<DecisionEntry>(RECENT_DECISIONS_KEPT);
  private readonly now: () => number;

  constructor(
    private readonly guard: RedisGuard,
    private readonly opts: RedisDecisionOptions,
  ) {
    this.keys = keyspace(opts.prefix);
    this.retentionMs = (opts.retentionS ?? DEFAULT_HISTORY_RETENTION_S) * 1000;
    this.maxPerCall = Math.max(1, opts.maxPerCall ?? DEFAULT_DECISIONS_PER_CALL);
    this.backlog = new Backlog(opts.backlogMax ?? 10_000);
    this.now = opts.now ?? Date.now;
  }

  get backlogSize(): number {
    return this.backlog.size;
  }

  /** One op: the entry onto its call id's list. */
  writeOps(e: DecisionEntry): RedisOp[] {
    const tag = tagSafe(e.callId);
    return [ops.lpush(tag, this.keys.decisions(tag), encodeDecision(e), this.maxPerCall, this.retentionMs)];
  }

  /** A decision this instance made, for `recent` (whether or not its write reaches Redis). */
  noteMade(entry: DecisionEntry): void {
    this.latest.push(entry);
  }

  async recent(limit: number): Promise<DecisionEntry[]> {
    const cutoff = this.now() - this.retentionMs;
    return this.latest.newest(limit).filter((e) => e.decidedAt >= cutoff);
  }

  /** For an entry whose write failed: answer from memory now, write to Redis once it is back. */
  keepWhileDegraded(entry: DecisionEntry): void {
    // Into the fallback's chains only: `recent` has it already (noteMade).
    this.opts.fallback.addEntry(entry);
    this.backlog.push(entry);
  }

  /** Sends entries written during an outage; what fails stays for the next attempt. */
  async flushBacklog(batch = 200): Promise<void> {
    const entries = this.backlog.take(batch);
    const list = entries.flatMap((e) => this.writeOps(e));
    if (list.length === 0) return;
    const ok = await this.guard.run(async (r) => (await execOps(r, list), true), false);
    if (!ok) this.backlog.restore(entries);
  }

  async forCall(callId: string): Promise<DecisionEntry[]> {
    const local = this.opts.fallback.forCallSync(callId);
    const key = this.keys.decisions(tagSafe(decisionCallId(callId)));
    const remote = await this.guard.run(async (r) => replyStrings(await r.lrange(key, 0, this.maxPerCall - 1)), null);
    if (remote === null) return local;
    const cutoff = this.now() - this.retentionMs;
    // Decisions written during an outage and not yet sent back live only here.
    const byId = new Map<string, DecisionEntry>();
    for (const text of remote) {
      const e = decodeDecision(text);
      if (e && e.decidedAt >= cutoff) byId.set(e.id, e);
    }
    for (const e of local) if (!byId.has(e.id)) byId.set(e.id, e);
    return newestFirst([...byId.values()]).slice(0, this.maxPerCall);
  }
}

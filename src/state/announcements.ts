import { UnavailableError } from '../errors';
import { DEFAULT_MEMORY_BOUNDS } from './memory-bounds';
import type { RedisGuard } from './redis/client';
import { bankTag, keyspace, tagSafe, type Keyspace } from './redis/keyspace';
import { execBatch, execOps, ops, replyString, replyStrings, type RedisCommand, type RedisOp } from './redis/ops';

/**
 * Announced bank calls: an organisation's word that it is about to call `to` from `from`. A
 * call from `from` to `to` before `expiresAt` matches it (the per-call check is one op of the call
 * state's read, see ports.ts); past its window it is kept for the callback answers, like the
 * verdict history (`retentionS`, 30 days by default), then dropped.
 */
export interface Announcement {
  id: string;
  /** E.164: the caller ID the announced call presents. */
  from: string;
  /** E.164: the number it calls. */
  to: string;
  bankId: string;
  /** When it was made (ms since the epoch). */
  at: number;
  /** The end of its window (ms): it matches calls received before this time. */
  expiresAt: number;
  /** The organisation's own reference for the call (a case number, an agent). */
  reference?: string;
}

export interface ActiveAnnouncementsQuery {
  /** The banks whose announcements are listed. */
  bankIds: readonly string[];
  from?: string;
  to?: string;
  /** Announcements whose window ends after this time (ms) are active. */
  now: number;
  limit: number;
}

export interface AnnouncementsToQuery {
  /** E.164 of the number called. */
  to: string;
  bankId: string;
  /** Announcements whose window reached this time (ms) or later: made since, or still running then. */
  since: number;
  limit: number;
}

export interface AnnouncementStore {
  /**
   * Keeps a new announcement. Rejects with an UnavailableError when it cannot promise that every
   * instance will match it (the shared store did not confirm the write).
   */
  add(a: Announcement): Promise<void>;
  /** An announcement still held (active, or past its window within the retention); null: none. */
  get(id: string): Promise<Announcement | null>;
  /** Withdraws one: no call matches it and no list shows it any more. Rejects as `add` does. */
  remove(a: Announcement): Promise<void>;
  /** Active announcements of the banks, newest first, at most `limit`. */
  active(q: ActiveAnnouncementsQuery): Promise<Announcement[]>;
  /** A bank's announcements to one number, newest first, at most `limit`, past ones included. */
  toNumber(q: AnnouncementsToQuery): Promise<Announcement[]>;
}

export const DEFAULT_ANNOUNCEMENT_RETENTION_S = 30 * 86400;
/** The longest window an announcement may have: the active keys live this long after their last write. */
export const MAX_ANNOUNCEMENT_WINDOW_S = 86400;

function newestFirst(a: Announcement, b: Announcement): number {
  return b.at - a.at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

function matchesActive(a: Announcement, q: ActiveAnnouncementsQuery, banks: ReadonlySet<string>): boolean {
  return a.expiresAt > q.now && banks.has(a.bankId) && (q.from === undefined || a.from === q.from) && (q.to === undefined || a.to === q.to);
}

export interface MemoryAnnouncementOptions {
  /**
   * Announcements held, active and past, in all (default 100,000). At the bound, those past their
   * retention go first, then the oldest past their window; when every one held is still active,
   * `add` refuses a new one (it would otherwise drop a call the bank announced) and `keep` (the
   * Redis store's local copy, which Redis backs) drops the oldest.
   */
  maxAnnouncements?: number;
  retentionS?: number;
}

/**
 * The in-process announcements: the whole story for a single instance, and the Redis store's
 * local copy of the announcements made on this instance, which goes on matching while Redis is
 * away. Held in creation order, so the ones to drop first are at the front.
 */
export class MemoryAnnouncementStore implements AnnouncementStore {
  private readonly byId = new Map<string, Announcement>();
  /** By `from to`: what a call's check reads. */
  private readonly byCall = new Map<string, Announcement[]>();
  /** By `to`: what the callback answers read. */
  private readonly byCallee = new Map<string, Announcement[]>();
  private readonly max: number;
  private readonly retentionMs: number;

  constructor(opts: MemoryAnnouncementOptions = {}) {
    this.max = Math.max(1, opts.maxAnnouncements ?? DEFAULT_MEMORY_BOUNDS.announcements);
    this.retentionMs = (opts.retentionS ?? DEFAULT_ANNOUNCEMENT_RETENTION_S) * 1000;
  }

  get size(): number {
    return this.byId.size;
  }

  async add(a: Announcement): Promise<void> {
    if (!this.makeRoom(a.at, false)) {
      throw new UnavailableError(
        'announcements_full',
        `this instance holds ${this.max} announcements, all still in their window: announce again once some have ended or been withdrawn`,
        { confirmed: true },
      );
    }
    this.insert(a);
  }

  /** Keeps a copy of an announcement the shared store holds; at the bound the oldest goes. */
  keep(a: Announcement): void {
    if (this.byId.has(a.id)) return;
    this.makeRoom(a.at, true);
    this.insert(a);
  }

  async get(id: string): Promise<Announcement | null> {
    return this.getSync(id);
  }

  getSync(id: string): Announcement | null {
    return this.byId.get(id) ?? null;
  }

  async remove(a: Announcement): Promise<void> {
    this.removeSync(a.id);
  }

  removeSync(id: string): void {
    const held = this.byId.get(id);
    if (!held) return;
    this.byId.delete(id);
    dropFrom(this.byCall, callKey(held.from, held.to), id);
    dropFrom(this.byCallee, held.to, id);
  }

  /** Whether an announcement from `from` to `to` is in its window at `at`: the call's check. */
  matchSync(from: string, to: string, at: number): boolean {
    const list = this.byCall.get(callKey(from, to));
    return list !== undefined && list.some((a) => a.expiresAt > at);
  }

  async active(q: ActiveAnnouncementsQuery): Promise<Announcement[]> {
    const banks = new Set(q.bankIds);
    const out: Announcement[] = [];
    for (const a of this.byId.values()) if (matchesActive(a, q, banks)) out.push(a);
    return out.sort(newestFirst).slice(0, q.limit);
  }

  async toNumber(q: AnnouncementsToQuery): Promise<Announcement[]> {
    const list = this.byCallee.get(q.to) ?? [];
    return list.filter((a) => a.bankId === q.bankId && a.expiresAt >= q.since).sort(newestFirst).slice(0, q.limit);
  }

  private insert(a: Announcement): void {
    this.byId.set(a.id, a);
    append(this.byCall, callKey(a.from, a.to), a);
    append(this.byCallee, a.to, a);
  }

  /**
   * Drops what has passed its retention by `now` from the front (announcements are added in time
   * order, and no window is longer than a day, so the front holds the oldest), then, at the bound,
   * the oldest past its window, then, when `evict`, the oldest. False: still full.
   */
  private makeRoom(now: number, evict: boolean): boolean {
    const cutoff = now - this.retentionMs;
    for (const a of this.byId.values()) {
      if (!(a.expiresAt < cutoff)) break;
      this.removeSync(a.id);
    }
    if (this.byId.size < this.max) return true;
    for (const a of this.byId.values()) {
      if (a.expiresAt <= now) {
        this.removeSync(a.id);
        return true;
      }
    }
    if (!evict) return false;
    const oldest = this.byId.keys().next();
    if (!oldest.done) this.removeSync(oldest.value);
    return true;
  }
}

const callKey = (from: string, to: string) => `${from} ${to}`;

function append(index: Map<string, Announcement[]>, key: string, a: Announcement): void {
  const list = index.get(key);
  if (list) list.push(a);
  else index.set(key, [a]);
}

function dropFrom(index: Map<string, Announcement[]>, key: string, id: string): void {
  const list = index.get(key);
  if (!list) return;
  const left = list.filter((a) => a.id !== id);
  if (left.length === 0) index.delete(key);
  else index.set(key, left);
}

export interface RedisAnnouncementOptions {
  /** This instance's copy of the announcements made here: it answers while Redis is away. */
  fallback: MemoryAnnouncementStore;
  prefix?: string;
  retentionS?: number;
  /** Announcements kept per caller and callee, and per callee, the soonest to end dropped first. */
  maxPerKey?: number;
  /** Active announcements listed per bank (more may match calls; they are not listed). */
  maxActivePerBank?: number;
}

/** Compact member: the same text goes into every set that holds the announcement. */
interface Member {
  i: string;
  f: string;
  t: string;
  b: string;
  a: number;
  e: number;
  r?: string;
}

function toMember(a: Announcement): string {
  const m: Member = { i: a.id, f: a.from, t: a.to, b: a.bankId, a: a.at, e: a.expiresAt };
  if (a.reference !== undefined) m.r = a.reference;
  return JSON.stringify(m);
}

function fromMember(text: string | null): Announcement | null {
  if (text === null) return null;
  try {
    const m = JSON.parse(text) as Member;
    if (typeof m.i !== 'string' || typeof m.f !== 'string' || typeof m.t !== 'string' || typeof m.b !== 'string') return null;
    if (typeof m.a !== 'number' || typeof m.e !== 'number') return null;
    return { id: m.i, from: m.f, to: m.t, bankId: m.b, at: m.a, expiresAt: m.e, ...(typeof m.r === 'string' ? { reference: m.r } : {}) };
  } catch {
    return null;
  }
}

/**
 * Announcements shared by every instance (keys: redis/keyspace.ts):
 *   {p}ann:{<from>}:<to>   ZSET  member = id, score = end of the window: what a call's read counts,
 *                                tagged by the caller so that it rides in the call's one command
 *   {p}anid:{<id>}         STR   the announcement, until the end of its retention
 *   {p}anb:{b:<bankId>}    ZSET  the bank's active announcements (member = the announcement)
 *   {p}anc:{<to>}          ZSET  announcements to a number, past ones included (callbacks)
 * Every set is trimmed (by time, and by size) when written and expires when idle.
 *
 * A change is made in Redis or not at all: a write Redis does not confirm is answered with an
 * UnavailableError (503) rather than kept on this instance alone, since an announcement only this
 * instance knows would go unmatched on every other one. Confirmed ones are also kept in this
 * instance's copy, which answers while Redis is away: then this instance matches the calls
 * announced through it, and not those announced through others.
 */
export class RedisAnnouncementStore implements AnnouncementStore {
  private readonly keys: Keyspace;
  private readonly retentionMs: number;
  private readonly windowMs = MAX_ANNOUNCEMENT_WINDOW_S * 1000;
  private readonly maxPerKey: number;
  private readonly maxActivePerBank: number;

  constructor(
    private readonly guard: RedisGuard,
    private readonly opts: RedisAnnouncementOptions,
  ) {
    this.keys = keyspace(opts.prefix);
    this.retentionMs = (opts.retentionS ?? DEFAULT_ANNOUNCEMENT_RETENTION_S) * 1000;
    this.maxPerKey = Math.max(1, opts.maxPerKey ?? 1000);
    this.maxActivePerBank = Math.max(1, opts.maxActivePerBank ?? 100_000);
  }

  get fallback(): MemoryAnnouncementStore {
    return this.opts.fallback;
  }

  async add(a: Announcement): Promise<void> {
    const member = toMember(a);
    const callerTag = tagSafe(a.from);
    const calleeTag = tagSafe(a.to);
    const bank = bankTag(a.bankId);
    // Each key's lifetime is the longest any of its members can need, so a shorter window
    // written later never cuts an earlier, longer one short.
    const list: RedisOp[] = [
      ops.zadd(callerTag, [this.keys.announced(callerTag, a.to)], { score: a.expiresAt, member: a.id, trimBefore: a.at, keep: this.maxPerKey, expireMs: this.windowMs }),
      ops.set(this.keys.announcement(tagSafe(a.id)), member, a.expiresAt - a.at + this.retentionMs),
      ops.zadd(bank, [this.keys.bankAnnouncements(bank)], { score: a.expiresAt, member, trimBefore: a.at, keep: this.maxActivePerBank, expireMs: this.windowMs }),
      ops.zadd(calleeTag, [this.keys.announcementsTo(calleeTag)], {
        score: a.expiresAt,
        member,
        trimBefore: a.at - this.retentionMs,
        keep: this.maxPerKey,
        expireMs: this.windowMs + this.retentionMs,
      }),
    ];
    const ok = await this.guard.run(async (r) => (await execOps(r, list), true), false);
    if (!ok) throw unconfirmed('made');
    this.opts.fallback.keep(a);
  }

  async get(id: string): Promise<Announcement | null> {
    const key = this.keys.announcement(tagSafe(id));
    const reply = await this.guard.run(async (r) => ({ text: replyString(await r.get(key)) }), null);
    return reply === null ? this.opts.fallback.getSync(id) : fromMember(reply.text);
  }

  async remove(a: Announcement): Promise<void> {
    // This instance stops matching it at once, whatever Redis says.
    this.opts.fallback.removeSync(a.id);
    const member = toMember(a);
    const callerTag = tagSafe(a.from);
    const calleeTag = tagSafe(a.to);
    const idTag = tagSafe(a.id);
    const bank = bankTag(a.bankId);
    const commands: RedisCommand[] = [
      { tag: callerTag, args: ['zrem', this.keys.announced(callerTag, a.to), a.id] },
      { tag: bank, args: ['zrem', this.keys.bankAnnouncements(bank), member] },
      { tag: calleeTag, args: ['zrem', this.keys.announcementsTo(calleeTag), member] },
      { tag: idTag, args: ['del', this.keys.announcement(idTag)] },
    ];
    const ok = await this.guard.run(async (r) => (await execBatch(r, commands), true), false);
    if (!ok) throw unconfirmed('withdrawn');
  }

  async active(q: ActiveAnnouncementsQuery): Promise<Announcement[]> {
    if (q.bankIds.length === 0) return [];
    // Read latest-ending first: a filter may have to look past the first page of a busy bank.
    const scan = q.from === undefined && q.to === undefined ? q.limit : Math.max(q.limit, 10_000);
    const commands: RedisCommand[] = q.bankIds.map((bankId) => {
      const tag = bankTag(bankId);
      return { tag, args: ['zrevrangebyscore', this.keys.bankAnnouncements(tag), '+inf', `(${q.now}`, 'LIMIT', 0, scan] };
    });
    const replies = await this.guard.run((r) => execBatch(r, commands), null);
    if (replies === null) return this.opts.fallback.active(q);
    const banks = new Set(q.bankIds);
    const out: Announcement[] = [];
    for (const reply of replies) {
      for (const text of replyStrings(reply)) {
        const a = fromMember(text);
        if (a && matchesActive(a, q, banks)) out.push(a);
      }
    }
    return out.sort(newestFirst).slice(0, q.limit);
  }

  async toNumber(q: AnnouncementsToQuery): Promise<Announcement[]> {
    const tag = tagSafe(q.to);
    const key = this.keys.announcementsTo(tag);
    const since = Number.isFinite(q.since) ? String(q.since) : '-inf';
    const reply = await this.guard.run(async (r) => replyStrings(await r.zrevrangebyscore(key, '+inf', since, 'LIMIT', 0, this.maxPerKey)), null);
    if (reply === null) return this.opts.fallback.toNumber(q);
    const out: Announcement[] = [];
    for (const text of reply) {
      const a = fromMember(text);
      if (a && a.bankId === q.bankId && a.to === q.to && a.expiresAt >= q.since) out.push(a);
    }
    return out.sort(newestFirst).slice(0, q.limit);
  }

  /** The op of a call's read: how many announcements from `caller` to `callee` are still in their window at `at`. */
  matchOp(caller: string, callee: string, at: number): RedisOp {
    const tag = tagSafe(caller);
    return ops.announced(tag, this.keys.announced(tag, callee), at);
  }
}

function unconfirmed(what: 'made' | 'withdrawn'): UnavailableError {
  return new UnavailableError(
    'announcements_unavailable',
    `the shared store (Redis) did not confirm the change: the announcement may or may not have been ${what}; list the announcements before trying again`,
    { confirmed: false },
  );
}

import { randomBytes } from 'node:crypto';
import type { AuditRecord, Bank, RegistryEntry } from './model';
import { RegistryIndex, type RegistryContent } from './registry-index';
import { Slicer } from './slicer';

/** One change to the registry. Absolute (set or delete), so applying one twice is harmless. */
export type Mutation =
  | { type: 'bank'; id: string; value: Bank | null }
  | { type: 'entry'; kind: 'number' | 'prefix'; key: string; value: RegistryEntry | null }
  | { type: 'reset' };


/**
 * What an acknowledged change survives. `waitaof`: Redis confirmed each change on its disk
 * (WAITAOF); `appendfsync-always`: Redis syncs its AOF before it answers; `not-durable`: a
 * Redis crash may lose acknowledged changes; `unknown`: Redis does not say (CONFIG disabled);
 * `fsync`: the embedded journal, synced before each change is acknowledged.
 */
export type DurabilityMode = 'waitaof' | 'appendfsync-always' | 'not-durable' | 'unknown' | 'fsync';

export interface Durability {
  mode: DurabilityMode;
  /** Why an operator should worry, when they should; null otherwise. */
  warning: string | null;
}

/**
 * The backend applied a change but could not confirm that it is durable: it may be kept or lost
 * (a Redis that crashes before syncing it forgets it). The caller must not take it as refused.
 */
export class RegistryUnconfirmedError extends Error {
  override readonly name = 'RegistryUnconfirmedError';
}

/**
 * A shared backend found holding an older registry than this instance has seen (restarted from
 * an older AOF or RDB, failed over to a lagging replica): the store writes its own back.
 */
export interface Rollback {
  /** What the backend holds: its change sequence number and version. */
  held: { seq: number; version: string };
  /** The newest sequence number this instance has seen. */
  seen: number;
  /**
   * Changes made on the older registry after it came back, oldest first: newer than anything
   * this instance holds, so applied on top of it before it is written back.
   */
  since: Mutation[][];
  /** Changes made on the older registry too large to carry (imports): not merged. */
  sinceUnmerged: number;
}

/** A page of the audit log: at most `limit` records older than the cursor `before`, of one bank when asked. */
export interface AuditQuery {
  limit: number;
  bankId?: string;
  /** A cursor the backend gave (a record's `id`, or a page's `next`); absent: from the newest. */
  before?: string;
}

export interface AuditPage {
  /** Newest first; `id` is the record's place in the log, a cursor for the next page. */
  records: (AuditRecord & { id: string })[];
  /** Where the next (older) page starts, or null when the log has nothing older. */
  next: string | null;
}

/** Where the registry lives durably: a data file on the embedded default, Redis otherwise. */
export interface RegistryBackend {
  readonly name: string;
  /** The registry as persisted, or null when nothing is persisted yet. */
  load(): Promise<{ data: RegistryContent; version: string } | null>;
  /** Persists initial data when nothing is persisted; returns what is persisted afterwards. */
  seed(data: RegistryContent, version: string): Promise<{ data: RegistryContent; version: string }>;
  /**
   * Makes mutations and their audit records durable before resolving, all or none: no audit
   * record is kept for a change that was not applied. Throws when it cannot; throws
   * RegistryUnconfirmedError when the change was applied but is not confirmed durable.
   * `current` is the index before the mutations (its version is the one before `version`).
   */
  commit(mutations: Mutation[], audit: AuditRecord[], version: string, current: () => RegistryIndex): Promise<void>;
  /** A page of the audit log, newest first (see AuditQuery); never the whole log at once. */
  readAudit(query: AuditQuery): Promise<AuditPage>;
  /**
   * Shared backends only: the changes made since the last poll, by any instance, in order.
   * `current` is the index's version. Throws when the backend does not answer.
   */
  poll?(current: () => string): Promise<RemoteChange[]>;
  /** How often to poll (shared backends), ms. */
  readonly pollMs?: number;
  /**
   * Shared backends: writes `data` as the registry's new head after a poll reported `rollback`.
   * Throws, writing nothing, when the backend changed since that poll.
   */
  restore?(data: RegistryContent, version: string, rollback: Rollback): Promise<void>;
  /** What an acknowledged change survives; backends without it sync each change themselves. */
  durability?(): Durability;
  /**
   * Whether a call that failed with `err` may yet have taken effect (a timeout: the backend got
   * the change and did not answer in time). Without it, only RegistryUnconfirmedError may have.
   */
  mayHaveApplied?(err: unknown): boolean;
  close(): Promise<void>;
}

/**
 * What a shared backend's change log says: mutations to replay, "read everything again",
 * "I hold no registry" (seed me with yours), or "I hold an older registry than you have seen".
 */
export type RemoteChange = { mutations: Mutation[]; version: string } | { reload: true } | { reseed: true } | { rollback: Rollback };

export interface StoreLog {
  error?(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  info?(obj: object, msg: string): void;
  debug?(obj: object, msg: string): void;
}

export function newVersion(): string {
  return randomBytes(9).toString('base64url');
}

/** Applies mutations to the index, in order. */
export function applyMutations(index: RegistryIndex, mutations: Mutation[]): void {
  for (const m of mutations) {
    if (m.type === 'reset') index.load({ banks: [], entries: [] });
    else if (m.type === 'bank') {
      if (m.value) index.setBank(m.value);
      else index.deleteBank(m.id);
    } else if (m.value) index.setEntry(m.value);
    else index.deleteEntry(m.kind, m.key);
  }
}

/** Changes above this many are applied beside the live index and swapped in (see below). */
const APPLY_IN_PLACE_MAX = 2000;

/**
 * Applies mutations without holding the event loop for long: a large change (an import) is
 * applied slice by slice to a copy sharing the index's tables (never changed in place), and
 * the result swapped in at once, so a lookup sees the registry before or after the whole
 * change, never part of it. Nothing else may change the index meanwhile (the store's queue).
 */
export async function applyMutationsInSlices(index: RegistryIndex, mutations: Mutation[]): Promise<void> {
  if (mutations.length <= APPLY_IN_PLACE_MAX) return applyMutations(index, mutations);
  const slicer = new Slicer();
  // The copy starts from the index's table, so the index's own pending changes are merged first.
  await index.compactInSlices(slicer);
  // Every change waits in the copy's overlay and is merged once, in slices, at the end: merging
  // every few thousand changes, as a live index does, is a pass over the whole table each time.
  const next = new RegistryIndex(index.view(), index.version, true);
  for (let i = 0; i < mutations.length; i += 256) {
    applyMutations(next, mutations.slice(i, i + 256));
    await slicer.tick();
  }
  await next.compactInSlices(slicer);
  const view = next.view();
  await slicer.tick();
  index.load(view);
}

/** What a plan given to `RegistryStore.change` returns (see admin.ts). */
export interface PlanResult<T> {
  mutations: Mutation[];
  audit: AuditRecord[];
  result: T;
}

/**
 * The registry: the lookup index every call reads, kept in step with a durable backend.
 * Every change is made durable (with its audit record) before it is applied and acknowledged.
 * Changes, and the polls of a shared backend's change log, run one at a time through one queue,
 * so the backend's order is the index's order.
 */
export class RegistryStore {
  private queue: Promise<unknown> = Promise.resolve();
  private timers: NodeJS.Timeout[] = [];
  /** Times this instance wrote its registry back over an older one the backend came back with. */
  readonly restores = { count: 0, lastAt: null as string | null };

  private constructor(
    readonly index: RegistryIndex,
    readonly backend: RegistryBackend,
    private readonly log: StoreLog | undefined,
    private readonly now: () => number,
  ) {}

  /**
   * Loads what the backend holds, seeding it with `seed()` when it holds nothing. `now` dates
   * what the store records itself (restores).
   */
  static async open(
    backend: RegistryBackend,
    seed: () => { data: RegistryContent; version: string },
    log?: StoreLog,
    opts: { now?: () => number } = {},
  ): Promise<RegistryStore> {
    let loaded: { data: RegistryContent; version: string } | null;
    try {
      loaded = await backend.load();
      if (!loaded) {
        const initial = seed();
        loaded = await backend.seed(initial.data, initial.version);
      }
    } catch (err) {
      // A shared backend (Redis) that is down at start must not stop calls being scored: serve
      // the seed registry. Once Redis answers, the follower's first poll takes what it holds,
      // or seeds it with this index (still the seed: it refuses changes until it holds one).
      if (!backend.poll) throw err;
      log?.warn({ err: (err as Error).message }, 'registry backend unavailable at start: serving the seed registry until it answers');
      loaded = seed();
    }
    const store = new RegistryStore(new RegistryIndex(loaded.data, loaded.version), backend, log, opts.now ?? Date.now);
    if (backend.poll) store.follow(backend.pollMs ?? 250);
    return store;
  }

  get version(): string {
    return this.index.version;
  }

  /**
   * Runs `plan` against the current index, makes its mutations durable, then applies them.
   * `plan` returns the mutations and audit records, or throws to refuse the change.
   */
  change<T>(plan: (index: RegistryIndex) => PlanResult<T> | Promise<PlanResult<T>>): Promise<T> {
    return this.enqueue(async () => {
      // Start from the latest registry: a change another instance made a moment ago (a number
      // added there, deleted here) is seen before this one is planned.
      if (this.backend.poll) await this.sync();
      const { mutations, audit, result } = await plan(this.index);
      if (mutations.length === 0) return result;
      const version = newVersion();
      await this.backend.commit(mutations, audit, version, () => this.index);
      await applyMutationsInSlices(this.index, mutations);
      this.index.version = version;
      return result;
    });
  }

  /** The newest `limit` audit records (of one bank when asked). */
  async readAudit(query: { limit: number; bankId?: string }): Promise<AuditRecord[]> {
    return (await this.backend.readAudit(query)).records;
  }

  readAuditPage(query: AuditQuery): Promise<AuditPage> {
    return this.backend.readAudit(query);
  }

  /** Whether a change that failed with `err` may still have been made (see RegistryBackend.mayHaveApplied). */
  mayHaveApplied(err: unknown): boolean {
    return err instanceof RegistryUnconfirmedError || (this.backend.mayHaveApplied?.(err) ?? false);
  }

  durability(): Durability {
    // The embedded journal syncs every change to disk before it is acknowledged.
    return this.backend.durability?.() ?? { mode: 'fsync', warning: null };
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    await this.queue;
    await this.backend.close();
  }

  /** Runs `task` once every change and poll queued before it has finished. */
  private enqueue<T>(task: () => Promise<T>): Promise<T> {
    const next = this.queue.then(task, task);
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Polls a shared backend's change log every `pollMs`, through the queue (never two at once). */
  private follow(pollMs: number): void {
    let queued = false;
    this.every(pollMs, () => {
      if (queued) return;
      queued = true;
      this.enqueue(() => this.sync())
        // Redis unavailable: keep serving the index we have; a later poll catches up.
        .catch((err: unknown) => this.log?.debug?.({ err: (err as Error).message }, 'registry change log not read'))
        .finally(() => (queued = false));
    });
  }

  /** Applies what the shared backend has that this index lacks. Runs in the queue. */
  private async sync(): Promise<void> {
    for (const change of await this.backend.poll!(() => this.index.version)) {
      if ('reseed' in change) {
        this.log?.warn({ registryVersion: this.index.version }, 'the registry backend holds no registry: seeding it with this instance\'s');
        // Another instance may have seeded it first: then its registry is the one to hold.
        this.adopt(await this.backend.seed(this.index.view(), this.index.version));
        return;
      }
      if ('rollback' in change) {
        await this.restore(change.rollback);
        return;
      }
      if ('reload' in change) {
        this.adopt(await this.backend.load());
        return; // what came after it in the log is in what was loaded
      }
      if (change.version === this.index.version) continue;
      applyMutations(this.index, change.mutations);
      this.index.version = change.version;
    }
  }

  /**
   * The backend went back to an older registry: taking it would silently undo acknowledged
   * changes on every instance, so this instance's (the newest it knows) becomes the head again,
   * with a new version that every other instance then loads.
   */
  private async restore(rollback: Rollback): Promise<void> {
    const loud = this.log?.error ? this.log.error.bind(this.log) : this.log?.warn.bind(this.log);
    loud?.(
      { held: rollback.held, seen: rollback.seen, registryVersion: this.index.version, changesSince: rollback.since.length, unmerged: rollback.sinceUnmerged },
      'the registry backend holds an older registry than this instance has seen (restarted from an older copy, or failed over to a lagging replica): writing this instance\'s registry back',
    );
    if (rollback.sinceUnmerged > 0) {
      this.log?.warn({ unmerged: rollback.sinceUnmerged }, 'imports made on the older registry are not carried over: run them again');
    }
    for (const mutations of rollback.since) applyMutations(this.index, mutations);
    const version = newVersion();
    await this.backend.restore!(this.index.view(), version, rollback);
    this.index.version = version;
    this.restores.count++;
    this.restores.lastAt = new Date(this.now()).toISOString();
  }

  /** Takes the registry the backend holds, when it is another than this index's. */
  private adopt(held: { data: RegistryContent; version: string } | null): void {
    if (held && held.version !== this.index.version) {
      this.index.load(held.data);
      this.index.version = held.version;
    }
  }

  private every(ms: number, fn: () => void): void {
    const timer = setInterval(fn, ms);
    timer.unref();
    this.timers.push(timer);
  }
}

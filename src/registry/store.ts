import { randomBytes } from 'node:crypto';
import type { Bank, RegistryEntry } from './format';
import { RegistryIndex, type RegistryContent } from './registry-index';

/** One change to the registry. Absolute (set or delete), so applying one twice is harmless. */
export type Mutation =
  | { type: 'bank'; id: string; value: Bank | null }
  | { type: 'entry'; kind: 'number' | 'prefix'; key: string; value: RegistryEntry | null }
  | { type: 'reset' };

/** Who changed what, when, from what to what. */
export interface AuditRecord {
  at: string;
  actor: string;
  action: string;
  /** The bank the change concerns: a bank key reads only its own bank's records. */
  bankId: string | null;
  target: string;
  before: unknown;
  after: unknown;
}

/** Where the registry lives durably: a data file on the embedded default, Redis otherwise. */
export interface RegistryBackend {
  readonly name: string;
  /** The registry as persisted, or null when nothing is persisted yet. */
  load(): Promise<{ data: RegistryContent; version: string } | null>;
  /** Persists initial data when nothing is persisted; returns what is persisted afterwards. */
  seed(data: RegistryContent, version: string): Promise<{ data: RegistryContent; version: string }>;
  /**
   * Makes mutations and their audit records durable before resolving. Throws when it cannot.
   * `current` is the index before the mutations (its version is the one before `version`).
   */
  commit(mutations: Mutation[], audit: AuditRecord[], version: string, current: () => RegistryIndex): Promise<void>;
  readAudit(query: { limit: number; bankId?: string }): Promise<AuditRecord[]>;
  /**
   * Shared backends only: the changes made since the last poll, by any instance, in order.
   * `current` is the index's version. Throws when the backend does not answer.
   */
  poll?(current: () => string): Promise<RemoteChange[]>;
  /** How often to poll (shared backends), ms. */
  readonly pollMs?: number;
  close(): Promise<void>;
}

/**
 * What a shared backend's change log says: mutations to replay, "read everything again", or
 * "I hold no registry" (seed me with yours).
 */
export type RemoteChange = { mutations: Mutation[]; version: string } | { reload: true } | { reseed: true };

export interface StoreLog {
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

/**
 * The registry: the lookup index every call reads, kept in step with a durable backend.
 * Every change is made durable (with its audit record) before it is applied and acknowledged.
 * Changes, and the polls of a shared backend's change log, run one at a time through one queue,
 * so the backend's order is the index's order.
 */
export class RegistryStore {
  private queue: Promise<unknown> = Promise.resolve();
  private timers: NodeJS.Timeout[] = [];

  private constructor(
    readonly index: RegistryIndex,
    readonly backend: RegistryBackend,
    private readonly log?: StoreLog,
  ) {}

  /** Loads what the backend holds, seeding it with `seed()` when it holds nothing. */
  static async open(backend: RegistryBackend, seed: () => { data: RegistryContent; version: string }, log?: StoreLog): Promise<RegistryStore> {
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
    const store = new RegistryStore(new RegistryIndex(loaded.data, loaded.version), backend, log);
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
  change<T>(plan: (index: RegistryIndex) => { mutations: Mutation[]; audit: AuditRecord[]; result: T }): Promise<T> {
    return this.enqueue(async () => {
      // Start from the latest registry: a change another instance made a moment ago (a number
      // added there, deleted here) is seen before this one is planned.
      if (this.backend.poll) await this.sync();
      const { mutations, audit, result } = plan(this.index);
      if (mutations.length === 0) return result;
      const version = newVersion();
      await this.backend.commit(mutations, audit, version, () => this.index);
      applyMutations(this.index, mutations);
      this.index.version = version;
      return result;
    });
  }

  readAudit(query: { limit: number; bankId?: string }): Promise<AuditRecord[]> {
    return this.backend.readAudit(query);
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
        this.log?.warn({ version: this.index.version }, 'the registry backend holds no registry: seeding it with this instance\'s');
        // Another instance may have seeded it first: then its registry is the one to hold.
        this.adopt(await this.backend.seed(this.index.view(), this.index.version));
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

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
  /** Calls `onChange` with changes other instances made (shared backends only). Returns a stop function. */
  follow?(current: () => string, onChange: (change: { mutations: Mutation[]; version: string } | { reload: true }) => void): () => void;
  close(): Promise<void>;
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
 * Every change is made durable (with its audit record) before it is applied and acknowledged,
 * and changes are serialised so the backend's order is the index's order.
 */
export class RegistryStore {
  private queue: Promise<unknown> = Promise.resolve();
  private stopFollowing: (() => void) | null = null;

  private constructor(
    readonly index: RegistryIndex,
    readonly backend: RegistryBackend,
  ) {}

  /** Loads what the backend holds, seeding it with `seed()` when it holds nothing. */
  static async open(
    backend: RegistryBackend,
    seed: () => { data: RegistryContent; version: string },
    log?: { warn(obj: object, msg: string): void },
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
      // the seed registry, and let the follower load the shared one once Redis answers.
      if (!backend.follow) throw err;
      log?.warn({ err: (err as Error).message }, 'registry backend unavailable at start: serving the seed registry until it answers');
      loaded = seed();
    }
    const store = new RegistryStore(new RegistryIndex(loaded.data, loaded.version), backend);
    if (backend.follow) {
      store.stopFollowing = backend.follow(
        () => store.index.version,
        (change) =>
          void store.applyRemote(change).catch((err: unknown) => log?.warn({ err: (err as Error).message }, 'could not apply a registry change from another instance')),
      );
    }
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
    const run = async () => {
      const { mutations, audit, result } = plan(this.index);
      if (mutations.length === 0) return result;
      const version = newVersion();
      await this.backend.commit(mutations, audit, version, () => this.index);
      applyMutations(this.index, mutations);
      this.index.version = version;
      return result;
    };
    const next = this.queue.then(run, run);
    this.queue = next.catch(() => undefined);
    return next;
  }

  readAudit(query: { limit: number; bankId?: string }): Promise<AuditRecord[]> {
    return this.backend.readAudit(query);
  }

  private async applyRemote(change: { mutations: Mutation[]; version: string } | { reload: true }): Promise<void> {
    await this.change(() => ({ mutations: [], audit: [], result: undefined })); // wait for local changes in flight
    if ('reload' in change) {
      const loaded = await this.backend.load().catch(() => null);
      if (loaded && loaded.version !== this.index.version) {
        this.index.load(loaded.data);
        this.index.version = loaded.version;
      }
      return;
    }
    if (change.version === this.index.version) return;
    applyMutations(this.index, change.mutations);
    this.index.version = change.version;
  }

  async close(): Promise<void> {
    this.stopFollowing?.();
    await this.queue;
    await this.backend.close();
  }
}

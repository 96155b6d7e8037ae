import { DomainError, NotFoundError, UnavailableError } from '../errors';
import { entryKey, planDeleteBank, planDeleteEntry, planImport, planPutBank, planPutEntry, type Actor, type Plan } from './admin';
import { exportChunks, readCsvImport, readJsonImport } from './bulk';
import type { Bank, EntryKind, ImportResult, RegistryEntry, RegistryMatch } from './model';
import type { RegistryIndex } from './registry-index';
import type { AuditPage, RegistryStore } from './store';

export interface RegistryAdministrationOptions {
  defaultCountry: string;
  /** Shortest prefix a key may create, in digits after the `+` (REGISTRY_MIN_PREFIX_DIGITS). */
  minPrefixDigits: number;
  /** The clock audit records are dated by. */
  now: () => number;
}

/** An import's body as it arrived: read in slices here, not parsed whole beforehand. */
export interface ImportBody {
  format: 'json' | 'csv';
  bytes: Buffer;
}

/**
 * Registry administration, one use case a method: each reads the registry or runs a plan
 * (admin.ts) through the store, holding the actor to its bank. Refusals are domain errors; a
 * store that cannot make a change durable is an UnavailableError that says whether the change
 * may still have been made.
 */
export class RegistryAdministration {
  constructor(
    private readonly store: RegistryStore,
    private readonly opts: RegistryAdministrationOptions,
  ) {}

  /** Every bank for an admin; a bank key's own. */
  listBanks(actor: Actor): Bank[] {
    const banks = this.store.index.allBanks();
    return actor.bankId === null ? banks : banks.filter((b) => b.id === actor.bankId);
  }

  putBank(actor: Actor, id: string, body: unknown): Promise<{ bank: Bank; created: boolean }> {
    return this.run((i, at) => planPutBank(i, actor, id, body, this.opts.defaultCountry, at));
  }

  deleteBank(actor: Actor, id: string, cascade: boolean): Promise<{ removedEntries: number }> {
    return this.run((i, at) => planDeleteBank(i, actor, id, cascade, at));
  }

  /** What the registry says of a number: its own entry, or the longest prefix covering it. */
  lookupNumber(actor: Actor, raw: string): RegistryEntry & Pick<RegistryMatch, 'match' | 'bankName'> {
    const key = entryKey('number', raw, this.opts.defaultCountry);
    const match = this.store.index.lookup(key);
    // A bank key sees only its own bank's entries: others are simply not found.
    if (!match || (actor.bankId !== null && match.bankId !== actor.bankId)) throw new NotFoundError(`${key} is not in the registry`);
    const entry = this.store.index.entry(match.match, match.key)!;
    return { ...entry, match: match.match, bankName: match.bankName };
  }

  putEntry(actor: Actor, kind: EntryKind, raw: string, body: unknown): Promise<{ entry: RegistryEntry; created: boolean }> {
    const key = entryKey(kind, raw, this.opts.defaultCountry);
    return this.run((i, at) => planPutEntry(i, actor, kind, key, body, this.opts.defaultCountry, this.opts.minPrefixDigits, at));
  }

  deleteEntry(actor: Actor, kind: EntryKind, raw: string): Promise<{ entry: RegistryEntry }> {
    const key = entryKey(kind, raw, this.opts.defaultCountry);
    return this.run((i, at) => planDeleteEntry(i, actor, kind, key, at));
  }

  /** The registry file (a bank key: its own bank) as it is now, in chunks of JSON text. */
  exportFile(actor: Actor): AsyncGenerator<string> {
    return exportChunks(this.store.index.view(), actor.bankId);
  }

  async importFile(actor: Actor, body: ImportBody, mode: 'merge' | 'replace'): Promise<ImportResult> {
    const input = body.format === 'csv' ? await readCsvImport(body.bytes) : await readJsonImport(body.bytes);
    return this.run((i, at) => planImport(i, actor, input, mode, this.opts.defaultCountry, this.opts.minPrefixDigits, at));
  }

  /** A page of the audit log, newest first (a bank key: its own bank's records). */
  auditPage(actor: Actor, query: { limit: number; before?: string }): Promise<AuditPage> {
    return this.store.readAuditPage({ ...query, ...(actor.bankId !== null ? { bankId: actor.bankId } : {}) });
  }

  /**
   * Runs a plan, dated when it runs (after the changes queued before it); a store that cannot
   * make it durable becomes an UnavailableError, never anything else.
   */
  private async run<T>(plan: (index: RegistryIndex, at: string) => Plan<T> | Promise<Plan<T>>): Promise<T> {
    try {
      return await this.store.change((index) => plan(index, new Date(this.opts.now()).toISOString()));
    } catch (err) {
      if (err instanceof DomainError) throw err;
      // A change the backend got and did not confirm (a timeout, a WAITAOF that failed) may yet
      // be made, or a crash may still lose it: the caller must read it back, not retry blindly.
      if (this.store.mayHaveApplied(err)) {
        throw new UnavailableError(
          'registry_unconfirmed',
          'the registry did not confirm the change in time: it may or may not have been made; read it back before trying again',
          { confirmed: false, cause: err },
        );
      }
      throw new UnavailableError('registry_unavailable', 'the registry cannot store changes right now; nothing was changed, try again', { confirmed: true, cause: err });
    }
  }
}

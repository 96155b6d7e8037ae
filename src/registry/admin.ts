import { parse as parseCsv } from 'csv-parse/sync';
import {
  readBank,
  normalisePrefix,
  normaliseRegistryNumber,
  toEntry,
  type Bank,
  readEntryInput,
  type RegistryEntry,
} from './format';
import type { RegistryIndex } from './registry-index';
import type { AuditRecord, Mutation } from './store';

/**
 * Registry administration as plans: each function reads the current index and the request and
 * returns the mutations and audit records to make durable, or throws a RegistryAdminError. No
 * I/O here; `RegistryStore.change` runs a plan and persists it.
 */

/** Who is acting: an admin (every bank) or a bank key (its own bank only). */
export interface Actor {
  name: string;
  bankId: string | null;
}

export class RegistryAdminError extends Error {
  constructor(
    readonly status: 400 | 403 | 404 | 409 | 422,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

export interface Plan<T> {
  mutations: Mutation[];
  audit: AuditRecord[];
  result: T;
}

function audit(
  actor: Actor,
  action: string,
  bankId: string | null,
  target: string,
  before: unknown,
  after: unknown,
  at = new Date().toISOString(),
): AuditRecord {
  return { at, actor: actor.name, action, bankId, target, before: before ?? null, after: after ?? null };
}

function assertMayEdit(actor: Actor, bankId: string): void {
  if (actor.bankId !== null && actor.bankId !== bankId) {
    throw new RegistryAdminError(403, 'forbidden', `this key may only change bank "${actor.bankId}"`);
  }
}

export function planPutBank(index: RegistryIndex, actor: Actor, id: string, body: unknown, defaultCountry: string): Plan<{ bank: Bank; created: boolean }> {
  assertMayEdit(actor, id);
  const bank = readBank({ ...(typeof body === 'object' && body !== null ? body : {}), id }, defaultCountry);
  if ('error' in bank) throw new RegistryAdminError(400, 'validation_failed', bank.error);
  const before = index.bank(id);
  return {
    mutations: [{ type: 'bank', id, value: bank }],
    audit: [audit(actor, before ? 'bank.update' : 'bank.create', id, `bank:${id}`, before, bank)],
    result: { bank, created: !before },
  };
}

export function planDeleteBank(index: RegistryIndex, actor: Actor, id: string, cascade: boolean): Plan<{ removedEntries: number }> {
  assertMayEdit(actor, id);
  const before = index.bank(id);
  if (!before) throw new RegistryAdminError(404, 'not_found', `no bank "${id}"`);
  const entries = index.entriesOfBank(id);
  if (entries.length > 0 && !cascade) {
    throw new RegistryAdminError(409, 'bank_has_entries', `bank "${id}" still has ${entries.length} numbers or prefixes: delete them first, or pass ?cascade=true`);
  }
  return {
    mutations: [...entries.map((e): Mutation => ({ type: 'entry', kind: e.kind, key: e.key, value: null })), { type: 'bank', id, value: null }],
    audit: [
      ...entries.map((e) => audit(actor, `${e.kind}.delete`, id, `${e.kind}:${e.key}`, e, null)),
      audit(actor, 'bank.delete', id, `bank:${id}`, before, null),
    ],
    result: { removedEntries: entries.length },
  };
}

/** Normalises the path parameter of /numbers/{number} or /prefixes/{prefix}. */
export function entryKey(kind: 'number' | 'prefix', raw: string, defaultCountry: string): string {
  const key = kind === 'number' ? normaliseRegistryNumber(raw, defaultCountry) : normalisePrefix(raw);
  if (typeof key !== 'string') throw new RegistryAdminError(400, 'validation_failed', `${kind}: ${key.error}`);
  return key;
}

export function planPutEntry(
  index: RegistryIndex,
  actor: Actor,
  kind: 'number' | 'prefix',
  key: string,
  body: unknown,
  defaultCountry: string,
): Plan<{ entry: RegistryEntry; created: boolean }> {
  const raw = { ...(typeof body === 'object' && body !== null ? body : {}), [kind]: key } as Record<string, unknown>;
  delete raw[kind === 'number' ? 'prefix' : 'number'];
  const input = readEntryInput(raw);
  if ('error' in input) throw new RegistryAdminError(400, 'validation_failed', input.error);
  assertMayEdit(actor, input.bankId);
  const entry = toEntry(input, defaultCountry, new Set(index.bank(input.bankId) ? [input.bankId] : []));
  if ('error' in entry) throw new RegistryAdminError(entry.error.includes('is not a bank') ? 422 : 400, 'validation_failed', entry.error);
  const before = index.entry(kind, entry.key);
  // A bank key may not take over another bank's number.
  if (before) assertMayEdit(actor, before.bankId);
  return {
    mutations: [{ type: 'entry', kind, key: entry.key, value: entry }],
    audit: [audit(actor, before ? `${kind}.update` : `${kind}.create`, entry.bankId, `${kind}:${entry.key}`, before, entry)],
    result: { entry, created: !before },
  };
}

export function planDeleteEntry(index: RegistryIndex, actor: Actor, kind: 'number' | 'prefix', key: string): Plan<{ entry: RegistryEntry }> {
  const before = index.entry(kind, key);
  if (!before) throw new RegistryAdminError(404, 'not_found', `no ${kind} ${key} in the registry`);
  assertMayEdit(actor, before.bankId);
  return {
    mutations: [{ type: 'entry', kind, key, value: null }],
    audit: [audit(actor, `${kind}.delete`, before.bankId, `${kind}:${key}`, before, null)],
    result: { entry: before },
  };
}

export interface ImportResult {
  mode: 'merge' | 'replace';
  applied: boolean;
  added: number;
  updated: number;
  removed: number;
  rejected: { line: number; error: string }[];
}

interface ImportRow {
  line: number;
  raw: unknown;
}

/** An import as read from its body. `banks` is null when it names none (CSV always): the registry's banks then stand. */
export interface ImportInput {
  banks: unknown[] | null;
  rows: ImportRow[];
  rejected: ImportResult['rejected'];
}

/** Reads the CSV import format: header `number,bankId,inboundOnly,authorisedSpcs` (or `prefix`). */
export function readCsvRows(text: string): ImportInput {
  const rejected: ImportResult['rejected'] = [];
  let records: { record: Record<string, string>; info: { lines: number } }[];
  try {
    records = parseCsv(text, { columns: (h: string[]) => h.map((c) => c.trim()), info: true, skip_empty_lines: true, trim: true, relax_column_count: true, bom: true });
  } catch (err) {
    const e = err as { lines?: number; message: string };
    throw new RegistryAdminError(400, 'invalid_csv', `CSV is malformed${e.lines ? ` at line ${e.lines}` : ''}: ${e.message}`);
  }
  const rows: ImportRow[] = [];
  for (const { record, info } of records) {
    const inbound = (record.inboundOnly ?? '').toLowerCase();
    const inboundOnly = ['true', 'yes', '1', 'y'].includes(inbound) ? true : ['false', 'no', '0', 'n'].includes(inbound) ? false : undefined;
    if (inboundOnly === undefined) {
      rejected.push({ line: info.lines, error: `inboundOnly must be true or false, not "${record.inboundOnly ?? ''}"` });
      continue;
    }
    const spcs = (record.authorisedSpcs ?? '').split(/[\s;|,]+/).filter(Boolean);
    rows.push({
      line: info.lines,
      raw: {
        ...(record.number ? { number: record.number } : {}),
        ...(record.prefix ? { prefix: record.prefix } : {}),
        bankId: record.bankId ?? '',
        inboundOnly,
        ...(spcs.length ? { authorisedSpcs: spcs } : {}),
      },
    });
  }
  // CSV carries no banks: the import says nothing about them.
  return { banks: null, rows, rejected };
}

/** Reads the JSON import format (the registry file); `line` is the entry's position, from 1. */
export function readJsonRows(doc: unknown): ImportInput {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new RegistryAdminError(400, 'validation_failed', 'body: the registry file is an object with banks and numbers');
  }
  const { banks, numbers } = doc as { banks?: unknown; numbers?: unknown };
  if (banks !== undefined && !Array.isArray(banks)) throw new RegistryAdminError(400, 'validation_failed', 'banks must be an array');
  if (!Array.isArray(numbers)) throw new RegistryAdminError(400, 'validation_failed', 'numbers must be an array');
  return { banks: banks ?? null, rows: numbers.map((raw, i) => ({ line: i + 1, raw })), rejected: [] };
}

/**
 * Plans an import. `merge` adds and updates; `replace` makes the registry (or, for a bank key,
 * that bank's part of it) exactly the import, and applies nothing when any line is rejected.
 */
export function planImport(
  index: RegistryIndex,
  actor: Actor,
  input: ImportInput,
  mode: 'merge' | 'replace',
  defaultCountry: string,
): Plan<ImportResult> {
  const rejected = [...input.rejected];
  // One import is one moment: every record it writes carries the same time.
  const at = new Date().toISOString();
  const mutations: Mutation[] = [];
  const records: AuditRecord[] = [];

  const banks = new Map<string, Bank>();
  // Replace makes the banks exactly the import's only when the import names banks at all.
  const replacesBanks = mode === 'replace' && actor.bankId === null && input.banks !== null;
  (input.banks ?? []).forEach((raw, i) => {
    const bank = readBank(raw, defaultCountry);
    if ('error' in bank) return rejected.push({ line: i + 1, error: `banks[${i}]: ${bank.error}` });
    if (actor.bankId !== null && bank.id !== actor.bankId) return rejected.push({ line: i + 1, error: `banks[${i}]: this key may only change bank "${actor.bankId}"` });
    banks.set(bank.id, bank);
  });
  const knownBanks = new Set<string>([...banks.keys(), ...(replacesBanks ? [] : index.allBanks().map((b) => b.id))]);

  const incoming = new Map<string, RegistryEntry>();
  for (const { line, raw } of input.rows) {
    const data = readEntryInput(raw);
    if ('error' in data) {
      rejected.push({ line, error: data.error });
      continue;
    }
    if (actor.bankId !== null && data.bankId !== actor.bankId) {
      rejected.push({ line, error: `bankId "${data.bankId}": this key may only change bank "${actor.bankId}"` });
      continue;
    }
    const entry = toEntry(data, defaultCountry, knownBanks);
    if ('error' in entry) {
      rejected.push({ line, error: entry.error });
      continue;
    }
    const id = `${entry.kind}:${entry.key}`;
    if (incoming.has(id)) {
      rejected.push({ line, error: `${entry.kind} ${entry.key} appears twice in the import` });
      continue;
    }
    const current = index.entry(entry.kind, entry.key);
    if (current && actor.bankId !== null && current.bankId !== actor.bankId) {
      rejected.push({ line, error: `${entry.kind} ${entry.key} belongs to another bank` });
      continue;
    }
    incoming.set(id, entry);
  }

  rejected.sort((a, b) => a.line - b.line);
  const result: ImportResult = { mode, applied: false, added: 0, updated: 0, removed: 0, rejected };
  if (mode === 'replace' && rejected.length > 0) return { mutations: [], audit: [], result };

  if (mode === 'replace') {
    // Everything in scope that the import does not hold goes.
    for (const e of actor.bankId === null ? index.allEntries() : index.entriesOfBank(actor.bankId)) {
      if (!incoming.has(`${e.kind}:${e.key}`)) {
        mutations.push({ type: 'entry', kind: e.kind, key: e.key, value: null });
        records.push(audit(actor, `${e.kind}.delete`, e.bankId, `${e.kind}:${e.key}`, e, null, at));
        result.removed++;
      }
    }
    if (replacesBanks) {
      for (const b of index.allBanks()) {
        if (!banks.has(b.id)) {
          mutations.push({ type: 'bank', id: b.id, value: null });
          records.push(audit(actor, 'bank.delete', b.id, `bank:${b.id}`, b, null, at));
        }
      }
    }
  }
  for (const bank of banks.values()) {
    const before = index.bank(bank.id);
    mutations.push({ type: 'bank', id: bank.id, value: bank });
    records.push(audit(actor, before ? 'bank.update' : 'bank.create', bank.id, `bank:${bank.id}`, before, bank, at));
  }
  for (const entry of incoming.values()) {
    const before = index.entry(entry.kind, entry.key);
    if (before) result.updated++;
    else result.added++;
    mutations.push({ type: 'entry', kind: entry.kind, key: entry.key, value: entry });
    records.push(audit(actor, before ? `${entry.kind}.update` : `${entry.kind}.create`, entry.bankId, `${entry.kind}:${entry.key}`, before, entry, at));
  }
  result.applied = true;
  return { mutations, audit: records, result };
}

import { parse as parseCsv } from 'csv-parse/sync';
import { ConflictError, ForbiddenError, NotFoundError, UnprocessableError, ValidationError } from '../errors';
import {
  readBank,
  normalisePrefix,
  normaliseRegistryNumber,
  toEntry,
  readEntryInput,
  unknownBank,
} from './format';
import type { AuditRecord, Bank, ImportResult, RegistryEntry } from './model';
import { DEFAULT_MIN_PREFIX_DIGITS, enclosingOwnPrefix, foreignCallbacks, overriddenEntry, prefixDigits, ProjectedRegistry, sameEntry } from './authority';
import { Slicer } from './slicer';
import type { RegistryIndex } from './registry-index';
import type { Mutation } from './store';

/**
 * Registry administration as plans: each function reads the current index and the request and
 * returns the mutations and audit records to make durable, or throws a domain error (src/errors.ts). No
 * I/O here; `RegistryStore.change` runs a plan and persists it.
 */

/** Who is acting: an admin (every bank) or a bank key (its own bank only). */
export interface Actor {
  name: string;
  bankId: string | null;
}

export interface Plan<T> {
  mutations: Mutation[];
  audit: AuditRecord[];
  result: T;
}

/** When a plan is not told the time (tests of the plans themselves): the wall clock. */
const nowIso = () => new Date().toISOString();

function audit(
  actor: Actor,
  action: string,
  bankId: string | null,
  target: string,
  before: unknown,
  after: unknown,
  at: string,
): AuditRecord {
  return { at, actor: actor.name, action, bankId, target, before: before ?? null, after: after ?? null };
}

function assertMayEdit(actor: Actor, bankId: string): void {
  if (actor.bankId !== null && actor.bankId !== bankId) {
    throw new ForbiddenError(`this key may only change bank "${actor.bankId}"`);
  }
}

export function planPutBank(index: RegistryIndex, actor: Actor, id: string, body: unknown, defaultCountry: string, at = nowIso()): Plan<{ bank: Bank; created: boolean }> {
  assertMayEdit(actor, id);
  const bank = readBank({ ...(typeof body === 'object' && body !== null ? body : {}), id }, defaultCountry);
  if ('error' in bank) throw new ValidationError(null, bank.error);
  const foreign = foreignCallbacks(new ProjectedRegistry(index, new Map()), bank);
  if (foreign.length > 0) throw new ValidationError('callbackNumbers', notTheBanks(id, foreign));
  const before = index.bank(id);
  return {
    mutations: [{ type: 'bank', id, value: bank }],
    audit: [audit(actor, before ? 'bank.update' : 'bank.create', id, `bank:${id}`, before, bank, at)],
    result: { bank, created: !before },
  };
}

export function planDeleteBank(index: RegistryIndex, actor: Actor, id: string, cascade: boolean, at = nowIso()): Plan<{ removedEntries: number }> {
  assertMayEdit(actor, id);
  const before = index.bank(id);
  if (!before) throw new NotFoundError(`no bank "${id}"`);
  const entries = index.entriesOfBank(id);
  if (entries.length > 0 && !cascade) {
    throw new ConflictError(`bank "${id}" still has ${entries.length} numbers or prefixes: delete them first, or pass ?cascade=true`, 'bank_has_entries');
  }
  return {
    mutations: [...entries.map((e): Mutation => ({ type: 'entry', kind: e.kind, key: e.key, value: null })), { type: 'bank', id, value: null }],
    audit: [
      ...entries.map((e) => audit(actor, `${e.kind}.delete`, id, `${e.kind}:${e.key}`, e, null, at)),
      audit(actor, 'bank.delete', id, `bank:${id}`, before, null, at),
    ],
    result: { removedEntries: entries.length },
  };
}

function notTheBanks(bankId: string, numbers: string[]): string {
  return `callbackNumbers: ${numbers.join(', ')} ${numbers.length === 1 ? 'is' : 'are'} not among the numbers the registry gives to bank "${bankId}" (add ${numbers.length === 1 ? 'it' : 'them'} as the bank's number or under its prefix first)`;
}

function overrideMessage(entry: RegistryEntry, other: RegistryEntry): string {
  return `${entry.kind} ${entry.key} would override ${other.kind} ${other.key} of bank "${other.bankId}": only an administrator may place an entry inside another bank's range`;
}

/**
 * Why a bank key may not create `entry`, or null when it may: an entry the registry does not
 * hold yet must lie inside one of the bank's own prefixes (see `enclosingOwnPrefix`). Without
 * this a bank key could claim any range no bank holds (every number in it then scored as the
 * bank's, its callers' history shown to the bank) or make an attacker's line its outbound number.
 */
function outsideOwnRanges(index: RegistryIndex, actor: Actor, entry: RegistryEntry, existing: RegistryEntry | undefined): string | null {
  if (actor.bankId === null || existing || enclosingOwnPrefix(index, entry)) return null;
  return (
    `${entry.kind} ${entry.key} is not inside a prefix of bank "${entry.bankId}": a bank key may add numbers and prefixes only inside its own bank's prefixes; ` +
    "an administrator must add numbers outside the bank's own ranges"
  );
}

function tooShort(prefix: string, minPrefixDigits: number): string {
  return `prefix: ${prefix} has ${prefixDigits(prefix)} digits after the +; a new prefix has at least ${minPrefixDigits} (REGISTRY_MIN_PREFIX_DIGITS)`;
}

/**
 * A change moves numbers from one bank to another or out of the registry; a bank's callback
 * numbers that are then no longer the bank's leave its list (with an audit record), so that
 * customers are never told to call a number the bank no longer holds. `affected` says which
 * numbers the change can move at all.
 */
function dropLostCallbacks(
  actor: Actor,
  banks: Iterable<Bank>,
  registry: ProjectedRegistry,
  affected: ((n: string) => boolean) | undefined,
  at: string,
): { mutations: Mutation[]; audit: AuditRecord[] } {
  const mutations: Mutation[] = [];
  const records: AuditRecord[] = [];
  for (const bank of banks) {
    const lost = foreignCallbacks(registry, bank, affected);
    if (lost.length === 0) continue;
    const after: Bank = { ...bank, callbackNumbers: bank.callbackNumbers.filter((n) => !lost.includes(n)) };
    mutations.push({ type: 'bank', id: bank.id, value: after });
    records.push(audit(actor, 'bank.update', bank.id, `bank:${bank.id}`, bank, after, at));
  }
  return { mutations, audit: records };
}

/** The numbers a change to this entry can move: the number itself, or those under the prefix. */
const movedBy = (kind: 'number' | 'prefix', key: string) => (kind === 'number' ? (n: string) => n === key : (n: string) => n.startsWith(key));

/** Normalises the path parameter of /numbers/{number} or /prefixes/{prefix}. */
export function entryKey(kind: 'number' | 'prefix', raw: string, defaultCountry: string): string {
  const key = kind === 'number' ? normaliseRegistryNumber(raw, defaultCountry) : normalisePrefix(raw);
  if (typeof key !== 'string') throw new ValidationError(kind, `${kind}: ${key.error}`);
  return key;
}

export function planPutEntry(
  index: RegistryIndex,
  actor: Actor,
  kind: 'number' | 'prefix',
  key: string,
  body: unknown,
  defaultCountry: string,
  minPrefixDigits = DEFAULT_MIN_PREFIX_DIGITS,
  at = nowIso(),
): Plan<{ entry: RegistryEntry; created: boolean }> {
  const raw = { ...(typeof body === 'object' && body !== null ? body : {}), [kind]: key } as Record<string, unknown>;
  delete raw[kind === 'number' ? 'prefix' : 'number'];
  const input = readEntryInput(raw);
  if ('error' in input) throw new ValidationError(null, input.error);
  assertMayEdit(actor, input.bankId);
  // Well formed, but naming no bank: nothing the caller can fix in the entry itself.
  if (!index.bank(input.bankId)) throw new UnprocessableError(unknownBank(input.bankId));
  const entry = toEntry(input, defaultCountry, new Set([input.bankId]));
  if ('error' in entry) throw new ValidationError(kind, entry.error);
  const before = index.entry(kind, entry.key);
  // A bank key may not take over another bank's number.
  if (before) assertMayEdit(actor, before.bankId);
  // Prefixes already in the registry (a seed's) stay editable; a new one must not be too broad.
  if (kind === 'prefix' && !before && prefixDigits(entry.key) < minPrefixDigits) throw new ValidationError('prefix', tooShort(entry.key, minPrefixDigits));
  if (actor.bankId !== null && !sameEntry(before, entry)) {
    const other = overriddenEntry(index, entry);
    if (other) throw new ConflictError(overrideMessage(entry, other));
  }
  const outside = outsideOwnRanges(index, actor, entry, before);
  if (outside) throw new ForbiddenError(outside);
  const drops = dropLostCallbacks(actor, index.allBanks(), new ProjectedRegistry(index, new Map([[`${kind}:${entry.key}`, entry]])), movedBy(kind, entry.key), at);
  return {
    mutations: [{ type: 'entry', kind, key: entry.key, value: entry }, ...drops.mutations],
    audit: [audit(actor, before ? `${kind}.update` : `${kind}.create`, entry.bankId, `${kind}:${entry.key}`, before, entry, at), ...drops.audit],
    result: { entry, created: !before },
  };
}

export function planDeleteEntry(index: RegistryIndex, actor: Actor, kind: 'number' | 'prefix', key: string, at = nowIso()): Plan<{ entry: RegistryEntry }> {
  const before = index.entry(kind, key);
  if (!before) throw new NotFoundError(`no ${kind} ${key} in the registry`);
  assertMayEdit(actor, before.bankId);
  const drops = dropLostCallbacks(actor, index.allBanks(), new ProjectedRegistry(index, new Map([[`${kind}:${key}`, null]])), movedBy(kind, key), at);
  return {
    mutations: [{ type: 'entry', kind, key, value: null }, ...drops.mutations],
    audit: [audit(actor, `${kind}.delete`, before.bankId, `${kind}:${key}`, before, null, at), ...drops.audit],
    result: { entry: before },
  };
}

/** Rejected lines an import answers with; `rejectedCount` says how many there were in all. */
export const REJECTED_SHOWN = 100;

export interface ImportRow {
  line: number;
  raw: unknown;
}

/** An import as read from its body. `banks` is null when it names none (CSV always): the registry's banks then stand. */
export interface ImportInput {
  banks: unknown[] | null;
  rows: ImportRow[];
  rejected: { line: number; error: string }[];
}

/** A list column of the CSV import: values separated by `;` (or `|`, `,` or spaces), none of which a value holds. */
const csvList = (cell: string | undefined) => (cell ?? '').split(/[\s;|,]+/).filter(Boolean);

/** One CSV record (columns by header) as an import row, or why its line is rejected. */
export function csvRecordToRow(record: Record<string, string>, line: number): ImportRow | { line: number; error: string } {
  const inbound = (record.inboundOnly ?? '').toLowerCase();
  const inboundOnly = ['true', 'yes', '1', 'y'].includes(inbound) ? true : ['false', 'no', '0', 'n'].includes(inbound) ? false : undefined;
  if (inboundOnly === undefined) return { line, error: `inboundOnly must be true or false, not "${record.inboundOnly ?? ''}"` };
  const spcs = csvList(record.authorisedSpcs);
  const origins = csvList(record.overseasOrigins);
  return {
    line,
    raw: {
      ...(record.number ? { number: record.number } : {}),
      ...(record.prefix ? { prefix: record.prefix } : {}),
      bankId: record.bankId ?? '',
      inboundOnly,
      ...(spcs.length ? { authorisedSpcs: spcs } : {}),
      ...(origins.length ? { overseasOrigins: origins } : {}),
    },
  };
}

/**
 * Reads the CSV import format: header `number,bankId,inboundOnly,authorisedSpcs` (or `prefix`),
 * and optionally an `overseasOrigins` column.
 */
export function readCsvRows(text: string): ImportInput {
  const rejected: ImportInput['rejected'] = [];
  let records: { record: Record<string, string>; info: { lines: number } }[];
  try {
    records = parseCsv(text, { columns: (h: string[]) => h.map((c) => c.trim()), info: true, skip_empty_lines: true, trim: true, relax_column_count: true, bom: true });
  } catch (err) {
    const e = err as { lines?: number; message: string };
    throw new ValidationError('body', `CSV is malformed${e.lines ? ` at line ${e.lines}` : ''}: ${e.message}`, { code: 'invalid_csv' });
  }
  const rows: ImportRow[] = [];
  for (const { record, info } of records) {
    const row = csvRecordToRow(record, info.lines);
    if ('error' in row) rejected.push(row);
    else rows.push(row);
  }
  // CSV carries no banks: the import says nothing about them.
  return { banks: null, rows, rejected };
}

/** Reads the JSON import format (the registry file); `line` is the entry's position, from 1. */
export function readJsonRows(doc: unknown): ImportInput {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new ValidationError('body', 'body: the registry file is an object with banks and numbers');
  }
  const { banks, numbers } = doc as { banks?: unknown; numbers?: unknown };
  if (banks !== undefined && !Array.isArray(banks)) throw new ValidationError('banks', 'banks must be an array');
  if (!Array.isArray(numbers)) throw new ValidationError('numbers', 'numbers must be an array');
  return { banks: banks ?? null, rows: numbers.map((raw, i) => ({ line: i + 1, raw })), rejected: [] };
}

/**
 * Plans an import. `merge` adds and updates; `replace` makes the registry (or, for a bank key,
 * that bank's part of it) exactly the import, and applies nothing when any line is rejected.
 * Each line is held to the rules of a single edit (a bank key's authority, the shortest
 * prefix), and the banks' callback numbers are judged against the registry as the import would
 * leave it. Works in slices, handing the event loop back between them: a 200,000-line import
 * takes seconds to check, and calls are scored meanwhile.
 */
export async function planImport(
  index: RegistryIndex,
  actor: Actor,
  input: ImportInput,
  mode: 'merge' | 'replace',
  defaultCountry: string,
  minPrefixDigits = DEFAULT_MIN_PREFIX_DIGITS,
  // One import is one moment: every record it writes carries the same time.
  at = nowIso(),
): Promise<Plan<ImportResult>> {
  const slicer = new Slicer();
  const rejected = [...input.rejected];
  const mutations: Mutation[] = [];
  const records: AuditRecord[] = [];

  const banks = new Map<string, { bank: Bank; line: number }>();
  // Replace makes the banks exactly the import's only when the import names banks at all.
  const replacesBanks = mode === 'replace' && actor.bankId === null && input.banks !== null;
  (input.banks ?? []).forEach((raw, i) => {
    const bank = readBank(raw, defaultCountry);
    if ('error' in bank) return rejected.push({ line: i + 1, error: `banks[${i}]: ${bank.error}` });
    if (actor.bankId !== null && bank.id !== actor.bankId) return rejected.push({ line: i + 1, error: `banks[${i}]: this key may only change bank "${actor.bankId}"` });
    banks.set(bank.id, { bank, line: i + 1 });
  });
  const knownBanks = new Set<string>([...banks.keys(), ...(replacesBanks ? [] : index.allBanks().map((b) => b.id))]);

  const incoming = new Map<string, RegistryEntry>();
  const lineOf = new Map<string, number>();
  for (const { line, raw } of input.rows) {
    await slicer.tick();
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
    if (entry.kind === 'prefix' && !current && prefixDigits(entry.key) < minPrefixDigits) {
      rejected.push({ line, error: tooShort(entry.key, minPrefixDigits) });
      continue;
    }
    if (actor.bankId !== null && !sameEntry(current, entry)) {
      const other = overriddenEntry(index, entry);
      if (other) {
        rejected.push({ line, error: overrideMessage(entry, other) });
        continue;
      }
    }
    const outside = outsideOwnRanges(index, actor, entry, current);
    if (outside) {
      rejected.push({ line, error: outside });
      continue;
    }
    incoming.set(id, entry);
    lineOf.set(id, line);
  }

  // The registry as the import would leave it: in replace mode, what is in scope and not in
  // the import goes.
  const inScope = (e: RegistryEntry) => actor.bankId === null || e.bankId === actor.bankId;
  const after = new ProjectedRegistry(index, incoming, mode === 'replace' ? inScope : undefined);
  const refusedBanks = new Set<string>();
  for (const { bank, line } of banks.values()) {
    await slicer.tick();
    const foreign = foreignCallbacks(after, bank);
    if (foreign.length === 0) continue;
    rejected.push({ line, error: `banks[${line - 1}]: ${notTheBanks(bank.id, foreign)}` });
    banks.delete(bank.id);
    if (!index.bank(bank.id)) refusedBanks.add(bank.id);
  }
  // The lines of a new bank that was refused have no bank to belong to.
  if (refusedBanks.size > 0) {
    for (const [id, entry] of incoming) {
      if (!refusedBanks.has(entry.bankId)) continue;
      rejected.push({ line: lineOf.get(id)!, error: `bankId "${entry.bankId}": its bank was rejected` });
      incoming.delete(id);
    }
  }

  rejected.sort((a, b) => a.line - b.line);
  const result: ImportResult = {
    mode,
    applied: false,
    added: 0,
    updated: 0,
    removed: 0,
    rejected: rejected.slice(0, REJECTED_SHOWN),
    rejectedCount: rejected.length,
    callbackNumbersDropped: [],
  };
  if (mode === 'replace' && rejected.length > 0) return { mutations: [], audit: [], result };

  if (mode === 'replace') {
    // Everything in scope that the import does not hold goes.
    for (const e of actor.bankId === null ? index.allEntries() : index.entriesOfBank(actor.bankId)) {
      await slicer.tick();
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
  for (const { bank } of banks.values()) {
    const before = index.bank(bank.id);
    mutations.push({ type: 'bank', id: bank.id, value: bank });
    records.push(audit(actor, before ? 'bank.update' : 'bank.create', bank.id, `bank:${bank.id}`, before, bank, at));
  }
  for (const entry of incoming.values()) {
    await slicer.tick();
    const before = index.entry(entry.kind, entry.key);
    if (before) result.updated++;
    else result.added++;
    mutations.push({ type: 'entry', kind: entry.kind, key: entry.key, value: entry });
    records.push(audit(actor, before ? `${entry.kind}.update` : `${entry.kind}.create`, entry.bankId, `${entry.kind}:${entry.key}`, before, entry, at));
  }
  // The banks the import leaves as they are keep only the callback numbers still theirs.
  const standing = replacesBanks ? [] : index.allBanks().filter((b) => !banks.has(b.id));
  const drops = dropLostCallbacks(actor, standing, after, undefined, at);
  mutations.push(...drops.mutations);
  records.push(...drops.audit);
  for (const m of drops.mutations) {
    if (m.type !== 'bank' || !m.value) continue;
    const kept = new Set(m.value.callbackNumbers);
    for (const number of index.bank(m.id)!.callbackNumbers) if (!kept.has(number)) result.callbackNumbersDropped.push({ bankId: m.id, number });
  }
  result.applied = true;
  return { mutations, audit: records, result };
}

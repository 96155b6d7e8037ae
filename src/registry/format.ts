import { type z } from 'zod';
import { parseNumber } from '../numbers';
import { BankSchema, OVERSEAS_ORIGIN_RE, OVERSEAS_ORIGINS_MAX, type Bank, type NumberEntryInput, type RegistryData, type RegistryEntry, type RegistryFile, type RegistryProblem } from './model';
import { entryAt, internList, internOrigins, keyString, type NumberTable } from './number-table';

/**
 * The registry file of the contract, validated entry by entry so that one bad line names
 * itself instead of sinking the whole file silently.
 */

const SPC_RE = /^[A-Za-z0-9]{1,16}$/;
const ENTRY_FIELDS = new Set(['number', 'prefix', 'bankId', 'inboundOnly', 'authorisedSpcs', 'overseasOrigins']);

/**
 * Checks one raw number entry's shape. Hand-written rather than a zod schema because a
 * registry of a million entries is read at start, and this runs in a fraction of the time.
 */
export function readEntryInput(raw: unknown): NumberEntryInput | { error: string } {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return { error: 'an entry must be an object' };
  const e = raw as Record<string, unknown>;
  const { number, prefix, bankId, inboundOnly, authorisedSpcs, overseasOrigins } = e;
  let known = 2;
  if (number !== undefined) known++;
  if (prefix !== undefined) known++;
  if (authorisedSpcs !== undefined) known++;
  if (overseasOrigins !== undefined) known++;
  // Counting beats walking the keys: an extra field is the rare case, looked for only then.
  if (Object.keys(e).length !== known) {
    const extra = Object.keys(e).find((k) => !ENTRY_FIELDS.has(k));
    if (extra !== undefined) return { error: `unknown field "${extra}"` };
  }
  if ((number === undefined) === (prefix === undefined)) return { error: 'an entry has exactly one of number or prefix' };
  if (number !== undefined && (typeof number !== 'string' || number.length > 64)) return { error: 'number: must be a string of at most 64 characters' };
  if (prefix !== undefined && (typeof prefix !== 'string' || prefix.length > 64)) return { error: 'prefix: must be a string of at most 64 characters' };
  if (typeof bankId !== 'string' || bankId.length === 0 || bankId.length > 64) return { error: 'bankId: must be a string of 1-64 characters' };
  if (typeof inboundOnly !== 'boolean') return { error: 'inboundOnly: must be true or false' };
  if (authorisedSpcs !== undefined) {
    if (!Array.isArray(authorisedSpcs) || authorisedSpcs.length > 1000) return { error: 'authorisedSpcs: must be an array of at most 1000 codes' };
    for (const spc of authorisedSpcs) {
      if (typeof spc !== 'string' || !SPC_RE.test(spc)) return { error: 'authorisedSpcs: a service provider code is 1-16 letters or digits' };
    }
  }
  if (overseasOrigins !== undefined) {
    if (!Array.isArray(overseasOrigins) || overseasOrigins.length > OVERSEAS_ORIGINS_MAX) return { error: `overseasOrigins: must be an array of at most ${OVERSEAS_ORIGINS_MAX} trunks or carriers` };
    for (const origin of overseasOrigins) {
      if (typeof origin !== 'string' || !OVERSEAS_ORIGIN_RE.test(origin))
        return { error: 'overseasOrigins: a trunk or carrier is 1-64 printable ASCII characters, without spaces, commas, semicolons or |' };
    }
  }
  // Checked field by field above: the object itself is the input, no copy needed.
  return e as unknown as NumberEntryInput;
}

/** `+` then 1-15 digits, no more than an E.164 number has. */
const PREFIX_RE = /^\+[1-9]\d{0,14}$/;

/** `+` and 7-15 digits: the shape of an E.164 number, checked without the numbering plan. */
export const E164_SHAPE = /^\+[1-9]\d{6,14}$/;

/**
 * A registry number as E.164. `deferPlanCheck` trusts an already-E.164 number's shape and leaves
 * the numbering-plan check (about 10 µs a number) to the caller: a million-entry file is read at
 * start, and its numbers are checked in the background (see `findInvalidNumbers`).
 */
export function normaliseRegistryNumber(input: string, defaultCountry: string, deferPlanCheck = false): string | { error: string } {
  if (deferPlanCheck && E164_SHAPE.test(input)) return input;
  const n = parseNumber(input, defaultCountry);
  if (!n.e164 || !n.valid) return { error: `"${input}" is not a valid phone number` };
  // libphonenumber accepts a few national plans' 16- and 17-digit numbers; E.164 stops at 15
  // digits, and so does the registry's table (see numberKey).
  if (!E164_SHAPE.test(n.e164)) return { error: `"${input}" has more digits than an E.164 number may (15)` };
  return n.e164;
}

export function normalisePrefix(input: string): string | { error: string } {
  const compact = input.replace(/[\s().-]/g, '');
  return PREFIX_RE.test(compact) ? compact : { error: `prefix "${input}" must be + followed by 1-15 digits` };
}

export const unknownBank = (bankId: string) => `bankId "${bankId}" is not a bank in the registry`;

/**
 * The normalised number or prefix of one checked raw entry, or what is wrong with it: the checks
 * of `toEntry` without making the entry (the registry file's reader keeps no entry objects).
 */
export function entryKeyOf(
  raw: NumberEntryInput,
  defaultCountry: string,
  bankIds: ReadonlySet<string>,
  deferPlanCheck = false,
): string | { error: string } {
  if (!bankIds.has(raw.bankId)) return { error: unknownBank(raw.bankId) };
  return raw.number !== undefined ? normaliseRegistryNumber(raw.number, defaultCountry, deferPlanCheck) : normalisePrefix(raw.prefix ?? '');
}

/** Turns one raw entry into a RegistryEntry, or says what is wrong with it. */
export function toEntry(
  raw: NumberEntryInput,
  defaultCountry: string,
  bankIds: ReadonlySet<string>,
  deferPlanCheck = false,
): RegistryEntry | { error: string } {
  const key = entryKeyOf(raw, defaultCountry, bankIds, deferPlanCheck);
  if (typeof key !== 'string') return key;
  const entry: RegistryEntry = { kind: raw.number !== undefined ? 'number' : 'prefix', key, bankId: raw.bankId, inboundOnly: raw.inboundOnly };
  if (raw.authorisedSpcs) entry.authorisedSpcs = internList(raw.authorisedSpcs);
  const origins = internOrigins(raw.overseasOrigins);
  if (origins) entry.overseasOrigins = origins;
  return entry;
}

/**
 * The registry numbers that are E.164-shaped but not valid in the numbering plan: the check
 * `deferPlanCheck` left for later. Takes entries or a compact table (walked in place: no entry
 * objects are made but for the invalid numbers). Works in slices and yields between them, so it
 * can run beside live traffic.
 */
export async function findInvalidNumbers(numbers: readonly RegistryEntry[] | NumberTable, defaultCountry: string, sliceSize = 2000): Promise<RegistryEntry[]> {
  const invalid: RegistryEntry[] = [];
  const valid = (key: string) => parseNumber(key, defaultCountry).valid;
  const count = 'templateIds' in numbers ? numbers.keys.length : numbers.length;
  for (let i = 0; i < count; i += sliceSize) {
    for (let j = i; j < Math.min(count, i + sliceSize); j++) {
      if ('templateIds' in numbers) {
        if (!valid(keyString(numbers.keys[j]!))) invalid.push(entryAt(numbers, j));
      } else {
        const e = numbers[j]!;
        if (e.kind === 'number' && !valid(e.key)) invalid.push(e);
      }
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
  return invalid;
}

function describeZod(error: z.ZodError): string {
  return error.issues
    .map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message))
    .join('; ');
}

/** One bank, checked and with its callback numbers in E.164, or what is wrong with it. */
export function readBank(raw: unknown, defaultCountry: string): Bank | { error: string } {
  const parsed = BankSchema.safeParse(raw);
  if (!parsed.success) return { error: describeZod(parsed.error) };
  const callbackNumbers: string[] = [];
  for (const n of parsed.data.callbackNumbers) {
    const e164 = normaliseRegistryNumber(n, defaultCountry);
    if (typeof e164 !== 'string') return { error: `callbackNumbers: ${e164.error}` };
    callbackNumbers.push(e164);
  }
  return { ...parsed.data, callbackNumbers };
}

/**
 * A registry's banks, each checked, into `banks`; what is wrong with any into `problems`, named
 * `banks[i]`. Returns the ids read, against which the numbers' bankIds are checked.
 */
export function readBanks(rawBanks: unknown, defaultCountry: string, banks: Bank[], problems: RegistryProblem[]): Set<string> {
  const bankIds = new Set<string>();
  (Array.isArray(rawBanks) ? rawBanks : []).forEach((raw, i) => {
    const bank = readBank(raw, defaultCountry);
    if ('error' in bank) return problems.push({ at: `banks[${i}]`, error: bank.error });
    if (bankIds.has(bank.id)) return problems.push({ at: `banks[${i}]`, error: `bank id "${bank.id}" appears twice` });
    bankIds.add(bank.id);
    banks.push(bank);
  });
  return bankIds;
}

/**
 * Validates a whole registry document. Returns the data and every problem found; callers
 * decide whether problems are fatal (at start they are: a registry is not half-loaded).
 */
export function parseRegistryDocument(
  doc: unknown,
  defaultCountry: string,
  opts: { deferPlanCheck?: boolean } = {},
): { data: RegistryData; problems: RegistryProblem[] } {
  const problems: RegistryProblem[] = [];
  const banks: Bank[] = [];
  const entries: RegistryEntry[] = [];
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    return { data: { banks, entries }, problems: [{ at: '$', error: 'the registry must be a JSON object with banks and numbers' }] };
  }
  const { banks: rawBanks, numbers: rawNumbers } = doc as { banks?: unknown; numbers?: unknown };
  if (!Array.isArray(rawBanks)) problems.push({ at: 'banks', error: 'banks must be an array' });
  if (!Array.isArray(rawNumbers)) problems.push({ at: 'numbers', error: 'numbers must be an array' });

  const bankIds = readBanks(rawBanks, defaultCountry, banks, problems);

  const seen = { number: new Set<string>(), prefix: new Set<string>() };
  (Array.isArray(rawNumbers) ? rawNumbers : []).forEach((raw, i) => {
    const input = readEntryInput(raw);
    if ('error' in input) return problems.push({ at: `numbers[${i}]`, error: input.error });
    const entry = toEntry(input, defaultCountry, bankIds, opts.deferPlanCheck);
    if ('error' in entry) return problems.push({ at: `numbers[${i}]`, error: entry.error });
    if (seen[entry.kind].has(entry.key)) return problems.push({ at: `numbers[${i}]`, error: `${entry.kind} ${entry.key} appears twice` });
    seen[entry.kind].add(entry.key);
    entries.push(entry);
  });
  return { data: { banks, entries }, problems };
}

/** A bank as the registry file writes it: the fields it was given, in the contract's order. */
export function toFileBank(b: Bank): RegistryFile['banks'][number] {
  return {
    id: b.id,
    name: b.name,
    ...(b.kind !== undefined ? { kind: b.kind } : {}),
    ...(b.announcesCalls !== undefined ? { announcesCalls: b.announcesCalls } : {}),
    callbackNumbers: b.callbackNumbers,
  };
}

/** An entry as a line of the registry file's `numbers`. */
export function toFileEntry(e: RegistryEntry): RegistryFile['numbers'][number] {
  return {
    [e.kind]: e.key,
    bankId: e.bankId,
    inboundOnly: e.inboundOnly,
    ...(e.authorisedSpcs ? { authorisedSpcs: e.authorisedSpcs } : {}),
    ...(e.overseasOrigins ? { overseasOrigins: e.overseasOrigins } : {}),
  };
}

/** The registry file of the contract, from data: what export writes and import reads. */
export function toRegistryDocument(data: RegistryData): RegistryFile {
  return { banks: data.banks.map(toFileBank), numbers: data.entries.map(toFileEntry) };
}

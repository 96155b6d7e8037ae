import { z } from 'zod';
import { parseNumber } from '../numbers';

/**
 * The registry file of the contract, validated entry by entry so that one bad line names
 * itself instead of sinking the whole file silently.
 */

export const SpcSchema = z
  .string()
  .regex(/^[A-Za-z0-9]{1,16}$/, { error: 'a service provider code is 1-16 letters or digits' });

export const BankSchema = z.strictObject({
  id: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, {
    error: 'bank id must be 1-64 lowercase letters, digits, - or _',
  }),
  name: z.string().trim().min(1).max(200),
  callbackNumbers: z.array(z.string().max(64)).max(100).default([]),
});

export const NumberEntrySchema = z
  .strictObject({
    number: z.string().max(64).optional(),
    prefix: z.string().max(64).optional(),
    bankId: z.string().min(1).max(64),
    inboundOnly: z.boolean(),
    authorisedSpcs: z.array(SpcSchema).max(1000).optional(),
  })
  .refine((e) => (e.number === undefined) !== (e.prefix === undefined), {
    error: 'an entry has exactly one of number or prefix',
  });

export type Bank = z.infer<typeof BankSchema>;
export type NumberEntryInput = z.infer<typeof NumberEntrySchema>;

/** A validated registry entry: `key` is the normalised E.164 number or prefix. */
export interface RegistryEntry {
  kind: 'number' | 'prefix';
  key: string;
  bankId: string;
  inboundOnly: boolean;
  authorisedSpcs?: string[];
}

export interface RegistryData {
  banks: Bank[];
  entries: RegistryEntry[];
}

export interface RegistryProblem {
  /** Where the problem is: `banks[2]`, `numbers[14]`, or a CSV line number. */
  at: string;
  error: string;
}

/** `+` then 1-15 digits, no more than an E.164 number has. */
const PREFIX_RE = /^\+[1-9]\d{0,14}$/;

export function normaliseRegistryNumber(input: string, defaultCountry: string): string | { error: string } {
  const n = parseNumber(input, defaultCountry, { withType: false });
  if (!n.e164 || !n.valid) return { error: `"${input}" is not a valid phone number` };
  return n.e164;
}

export function normalisePrefix(input: string): string | { error: string } {
  const compact = input.replace(/[\s().-]/g, '');
  return PREFIX_RE.test(compact) ? compact : { error: `prefix "${input}" must be + followed by 1-15 digits` };
}

/** Turns one raw entry into a RegistryEntry, or says what is wrong with it. */
export function toEntry(
  raw: NumberEntryInput,
  defaultCountry: string,
  bankIds: ReadonlySet<string>,
): RegistryEntry | { error: string } {
  if (!bankIds.has(raw.bankId)) return { error: `bankId "${raw.bankId}" is not a bank in the registry` };
  const key =
    raw.number !== undefined ? normaliseRegistryNumber(raw.number, defaultCountry) : normalisePrefix(raw.prefix ?? '');
  if (typeof key !== 'string') return key;
  return {
    kind: raw.number !== undefined ? 'number' : 'prefix',
    key,
    bankId: raw.bankId,
    inboundOnly: raw.inboundOnly,
    ...(raw.authorisedSpcs ? { authorisedSpcs: [...new Set(raw.authorisedSpcs)] } : {}),
  };
}

function describeZod(error: z.ZodError): string {
  return error.issues
    .map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message))
    .join('; ');
}

/**
 * Validates a whole registry document. Returns the data and every problem found; callers
 * decide whether problems are fatal (at start they are: a registry is not half-loaded).
 */
export function parseRegistryDocument(
  doc: unknown,
  defaultCountry: string,
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

  const bankIds = new Set<string>();
  (Array.isArray(rawBanks) ? rawBanks : []).forEach((raw, i) => {
    const parsed = BankSchema.safeParse(raw);
    if (!parsed.success) return problems.push({ at: `banks[${i}]`, error: describeZod(parsed.error) });
    if (bankIds.has(parsed.data.id)) return problems.push({ at: `banks[${i}]`, error: `bank id "${parsed.data.id}" appears twice` });
    const callbackNumbers: string[] = [];
    for (const n of parsed.data.callbackNumbers) {
      const e164 = normaliseRegistryNumber(n, defaultCountry);
      if (typeof e164 !== 'string') problems.push({ at: `banks[${i}].callbackNumbers`, error: e164.error });
      else callbackNumbers.push(e164);
    }
    bankIds.add(parsed.data.id);
    banks.push({ ...parsed.data, callbackNumbers });
  });

  const seen = new Set<string>();
  (Array.isArray(rawNumbers) ? rawNumbers : []).forEach((raw, i) => {
    const parsed = NumberEntrySchema.safeParse(raw);
    if (!parsed.success) return problems.push({ at: `numbers[${i}]`, error: describeZod(parsed.error) });
    const entry = toEntry(parsed.data, defaultCountry, bankIds);
    if ('error' in entry) return problems.push({ at: `numbers[${i}]`, error: entry.error });
    const id = `${entry.kind}:${entry.key}`;
    if (seen.has(id)) return problems.push({ at: `numbers[${i}]`, error: `${entry.kind} ${entry.key} appears twice` });
    seen.add(id);
    entries.push(entry);
  });
  return { data: { banks, entries }, problems };
}

/** The registry file of the contract, from data: what export writes and import reads. */
export function toRegistryDocument(data: RegistryData) {
  return {
    banks: data.banks.map((b) => ({ id: b.id, name: b.name, callbackNumbers: b.callbackNumbers })),
    numbers: data.entries.map((e) => ({
      [e.kind]: e.key,
      bankId: e.bankId,
      inboundOnly: e.inboundOnly,
      ...(e.authorisedSpcs ? { authorisedSpcs: e.authorisedSpcs } : {}),
    })),
  };
}

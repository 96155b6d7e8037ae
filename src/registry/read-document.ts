import { entryKeyOf, readBanks, readEntryInput } from './format';
import type { Bank, RegistryEntry, RegistryProblem } from './model';
import { bufferSource, JsonScanError, lineAndColumn, openFileSource, scanOutline, textOf, type ByteSource, type Member } from './json-scan';
import { EMPTY_TABLE, keyString, NumberTableBuilder, numberKey, toEntryObject, type CompactRegistry } from './number-table';

/**
 * Entries per JSON.parse: about 64 KB of text. Larger batches parse no faster (measured: 4,096
 * entries took a quarter longer in all), as their objects outgrow the young generation.
 */
const BATCH = 1024;

export interface ReadOptions {
  /** Leave E.164-shaped numbers' numbering-plan check to the caller (see findInvalidNumbers). */
  deferPlanCheck?: boolean;
  /** Sees every byte of the document once, in order (for its content hash). */
  onBytes?: (bytes: Buffer) => void;
  /** The scan's window; for tests. */
  windowBytes?: number;
}

export interface ReadResult {
  data: CompactRegistry;
  problems: RegistryProblem[];
  /** The other top-level members (a snapshot's `version`), parsed. */
  rest: Record<string, unknown>;
}

export function readRegistryBuffer(buf: Buffer, defaultCountry: string, opts: ReadOptions = {}): ReadResult {
  return readRegistry(bufferSource(buf), defaultCountry, opts);
}

/** Reads a registry file through a window; the file is closed afterwards. */
export function readRegistryFile(path: string, defaultCountry: string, opts: ReadOptions = {}): ReadResult {
  const src = openFileSource(path);
  try {
    return readRegistry(src, defaultCountry, opts);
  } finally {
    src.close();
  }
}

/**
 * Reads a registry document (the contract format) into the compact form, validating entry by
 * entry like `parseRegistryDocument` and naming problems the same way (`numbers[i]`).
 *
 * A million-entry file is never one string, one tree of objects nor one buffer: json-scan finds
 * the outline through a small window, JSON.parse then reads the entries a thousand at a time,
 * and each entry goes into the table builder as a number and a template id, its object left to
 * the garbage collector's young generation. Duplicates are found when the table is sorted, not
 * with a Set of every key. Members come in any order (banks are read before numbers).
 */
export function readRegistry(src: ByteSource, defaultCountry: string, opts: ReadOptions = {}): ReadResult {
  const banks: Bank[] = [];
  const fatal = (error: string): ReadResult => ({ data: { banks, numbers: EMPTY_TABLE, prefixes: [] }, problems: [{ at: '$', error }], rest: {} });

  let members;
  try {
    members = scanOutline(src, 'numbers', opts.onBytes, opts.windowBytes);
  } catch (err) {
    if (!(err instanceof JsonScanError)) throw err;
    return fatal(`not valid JSON: ${err.reason} at ${lineAndColumn(src, err.offset)}`);
  }
  if (!members) {
    try {
      JSON.parse(textOf(src, 0, src.size));
    } catch (err) {
      return fatal(`not valid JSON: ${(err as Error).message}`);
    }
    return fatal('the registry must be a JSON object with banks and numbers');
  }

  // Every value is parsed, even one this reader ignores: the file must be valid JSON throughout.
  const rest: Record<string, unknown> = {};
  let rawBanks: unknown;
  /** The outline of the numbers array, read below once the banks are known; null while there is none. */
  let array: Member['array'] = null;
  // A registry that names its banks or numbers twice is refused: JSON.parse would keep the last
  // silently, and the scanner would not check the elements of the first.
  for (const name of ['banks', 'numbers']) {
    if (members.filter((m) => m.name === name).length > 1) return fatal(`"${name}" appears more than once in the registry`);
  }
  for (const m of members) {
    if (m.name === 'numbers' && m.array) {
      array = m.array;
      continue;
    }
    let value: unknown;
    try {
      value = JSON.parse(textOf(src, m.start, m.end));
    } catch (err) {
      return fatal(`not valid JSON: ${(err as Error).message} (in ${m.name}, at ${lineAndColumn(src, m.start)})`);
    }
    if (m.name === 'banks') rawBanks = value;
    else if (m.name === 'numbers') array = null; // not an array
    else rest[m.name] = value;
  }

  const problems: RegistryProblem[] = [];
  if (!Array.isArray(rawBanks)) problems.push({ at: 'banks', error: 'banks must be an array' });
  if (!array) problems.push({ at: 'numbers', error: 'numbers must be an array' });

  const bankIds = readBanks(rawBanks, defaultCountry, banks, problems);

  const builder = new NumberTableBuilder(array?.ends.length);
  const prefixes = new Map<string, RegistryEntry>();
  /** Problems of single entries, in file order; duplicate numbers are merged in by place at the end. */
  const entryProblems: { place: number; problem: RegistryProblem }[] = [];
  const readEntry = (raw: unknown, i: number) => {
    const input = readEntryInput(raw);
    if ('error' in input) return entryProblems.push({ place: i, problem: { at: `numbers[${i}]`, error: input.error } });
    const key = entryKeyOf(input, defaultCountry, bankIds, opts.deferPlanCheck);
    if (typeof key !== 'string') return entryProblems.push({ place: i, problem: { at: `numbers[${i}]`, error: key.error } });
    const templateId = builder.interner.id(input);
    if (input.number !== undefined) {
      const n = numberKey(key);
      // Cannot happen for a number normalised to E.164, but a NaN key would corrupt the table's order.
      if (Number.isNaN(n)) return entryProblems.push({ place: i, problem: { at: `numbers[${i}]`, error: `"${input.number}" is not a valid phone number` } });
      return builder.add(n, templateId, i);
    }
    if (prefixes.has(key)) return entryProblems.push({ place: i, problem: { at: `numbers[${i}]`, error: `prefix ${key} appears twice` } });
    prefixes.set(key, toEntryObject('prefix', key, builder.interner.templates[templateId]!));
  };

  if (array) {
    const error = readBatches(src, array, readEntry);
    if (error) return fatal(error);
  }

  const { table, duplicates } = builder.build();
  for (const d of duplicates) entryProblems.push({ place: d.place, problem: { at: `numbers[${d.place}]`, error: `number ${keyString(d.key)} appears twice` } });
  // An entry has one problem at most: the sort only puts the duplicates in their places.
  entryProblems.sort((a, b) => a.place - b.place);
  for (const p of entryProblems) problems.push(p.problem);
  return { data: { banks, numbers: table, prefixes: [...prefixes.values()] }, problems, rest };
}

/**
 * Parses the array's elements a batch at a time and hands each to `read` with its index.
 * Returns what is wrong when a batch is not valid JSON, naming the first bad entry.
 */
function readBatches(src: ByteSource, array: { open: number; ends: Float64Array }, read: (raw: unknown, i: number) => void): string | null {
  const { open, ends } = array;
  // An element starts past the `[` or the comma before it, and ends at its own comma or the `]`.
  const startOf = (i: number) => (i === 0 ? open : ends[i - 1]!) + 1;
  for (let first = 0; first < ends.length; first += BATCH) {
    const last = Math.min(first + BATCH, ends.length) - 1;
    let batch: unknown[];
    try {
      // The exact bytes from the first entry to the last, commas included: JSON.parse checks them all.
      batch = JSON.parse(`[${textOf(src, startOf(first), ends[last]!)}]`) as unknown[];
    } catch {
      return firstBadEntry(src, startOf, ends, first, last);
    }
    if (batch.length !== last - first + 1) return `not valid JSON (in numbers[${first}..${last}])`;
    for (let k = 0; k < batch.length; k++) read(batch[k], first + k);
  }
  return null;
}

function firstBadEntry(src: ByteSource, startOf: (i: number) => number, ends: Float64Array, first: number, last: number): string {
  for (let i = first; i <= last; i++) {
    const text = textOf(src, startOf(i), ends[i]!);
    try {
      JSON.parse(text);
    } catch (err) {
      // Whitespace is one byte a character: the entry's first byte is that many bytes in.
      const at = startOf(i) + text.length - text.trimStart().length;
      return `not valid JSON: ${(err as Error).message} (in numbers[${i}], at ${lineAndColumn(src, at)})`;
    }
  }
  return `not valid JSON (in numbers[${first}..${last}])`;
}

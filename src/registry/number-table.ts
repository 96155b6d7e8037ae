import type { Bank, RegistryEntry } from './model';
import type { Slicer } from './slicer';

/**
 * The compact form of the registry's numbers. A million entries as objects (and a Map of them)
 * cost over 200 bytes each; here a number costs 10 bytes:
 *
 * - an E.164 number is at most 15 digits, so its digits are exactly an integer below 2^53: a
 *   double. The numbers sit sorted in a Float64Array and are found by binary search;
 * - what the registry says of a number (bank, inbound-only, authorised carriers, overseas
 *   origins) is shared by thousands of numbers: each distinct combination is one "template",
 *   and a number holds only its template's id (a Uint16Array while there are at most 65,536
 *   templates).
 *
 * A table is never changed in place: changes make a new one (see `mergeNumbers`). So a table can
 * be shared (the seed, the index, a snapshot being written, the background plan check) and read
 * at leisure while the registry goes on changing.
 */

/** What a number's entry says, besides the number itself. */
export interface EntryTemplate {
  bankId: string;
  inboundOnly: boolean;
  /** Absent means any carrier may originate calls from the number. */
  authorisedSpcs?: string[];
  /** Trunks and carriers that may present the number on calls from abroad; absent (never empty) means none. */
  overseasOrigins?: string[];
}

export interface NumberTable {
  /** The numbers' digits (without the `+`), ascending, no two equal. */
  keys: Float64Array;
  /** `templates[templateIds[i]]` is the entry of `keys[i]`. */
  templateIds: Uint16Array | Uint32Array;
  templates: readonly EntryTemplate[];
}

/** The registry in compact form: what the file loader, the snapshot and `RegistryIndex.view()` give. */
export interface CompactRegistry {
  banks: Bank[];
  numbers: NumberTable;
  /** Prefixes are few (a thousand in a million-number registry): plain entries. */
  prefixes: RegistryEntry[];
}

/**
 * One shared array per distinct list of carriers or overseas origins: a million entries name a
 * handful of lists, and a copy each would cost tens of megabytes. Entries are never mutated in
 * place, so a carrier list and an origin list that say the same may share one array. Duplicates
 * are dropped.
 */
const sharedLists = new Map<string, string[]>();
export function internList(items: readonly string[]): string[] {
  const unique = [...new Set(items)];
  // Neither a carrier code nor an overseas origin holds a comma (format.ts checks both).
  const key = unique.join(',');
  let shared = sharedLists.get(key);
  if (!shared) {
    if (sharedLists.size > 10_000) sharedLists.clear();
    sharedLists.set(key, (shared = unique));
  }
  return shared;
}

/** An entry's overseas origins as the registry keeps them: shared, and absent rather than empty (an empty list authorises nothing, as none does). */
export function internOrigins(origins: readonly string[] | undefined): string[] | undefined {
  return origins && origins.length > 0 ? internList(origins) : undefined;
}

export const EMPTY_TABLE: NumberTable = { keys: new Float64Array(0), templateIds: new Uint16Array(0), templates: [] };

/**
 * A number's key in a table: its digits as a whole number, or NaN when the string is not `+`,
 * a non-zero digit and at most 15 digits in all (what fits exactly in a double; no such string
 * is in any table). One pass over the characters: this runs for every entry of a file and every
 * lookup, and a regular expression plus Number() costs several times as much.
 */
export function numberKey(e164: string): number {
  const len = e164.length;
  if (len < 2 || len > 16 || e164.charCodeAt(0) !== 0x2b || e164.charCodeAt(1) === 0x30) return NaN;
  let n = 0;
  for (let i = 1; i < len; i++) {
    const d = e164.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return NaN;
    n = n * 10 + d;
  }
  return n;
}

/** A number entry's key. Entries are validated before they get here: anything else is a bug. */
export function requireNumberKey(e164: string): number {
  const n = numberKey(e164);
  if (Number.isNaN(n)) throw new Error(`registry number ${JSON.stringify(e164)} is not in E.164 form`);
  return n;
}

/** The E.164 string of a table key: the inverse of `numberKey`. */
export function keyString(key: number): string {
  return `+${key}`;
}

/** Where `key` is in the table, or -1. */
export function findNumber(table: NumberTable, key: number): number {
  const keys = table.keys;
  let lo = 0;
  let hi = keys.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const k = keys[mid]!;
    if (k < key) lo = mid + 1;
    else if (k > key) hi = mid - 1;
    else return mid;
  }
  return -1;
}

export function templateAt(table: NumberTable, i: number): EntryTemplate {
  return table.templates[table.templateIds[i]!]!;
}

/** The entry of the table's i-th number, as an object (made on demand: the table holds none). */
export function entryAt(table: NumberTable, i: number): RegistryEntry {
  return toEntryObject('number', keyString(table.keys[i]!), templateAt(table, i));
}

export function toEntryObject(kind: 'number' | 'prefix', key: string, t: EntryTemplate): RegistryEntry {
  const entry: RegistryEntry = { kind, key, bankId: t.bankId, inboundOnly: t.inboundOnly };
  if (t.authorisedSpcs) entry.authorisedSpcs = t.authorisedSpcs;
  if (t.overseasOrigins) entry.overseasOrigins = t.overseasOrigins;
  return entry;
}

/**
 * Hands out one id per distinct template. A template's lists are the shared ones of `internList`
 * (duplicates dropped; an empty list of overseas origins dropped), as an entry made by `toEntry`
 * has. Takes anything shaped like a template: an entry, a checked line of a file, a template.
 */
export class TemplateInterner {
  readonly templates: EntryTemplate[] = [];
  /** Templates without lists (most of them) by bank id, inbound-only or not: no key to build. */
  private readonly plain = [new Map<string, number>(), new Map<string, number>()] as const;
  private readonly withLists = new Map<string, number>();

  id({ bankId, inboundOnly, authorisedSpcs, overseasOrigins }: EntryTemplate): number {
    const origins = overseasOrigins && overseasOrigins.length > 0 ? overseasOrigins : undefined;
    const plain = !authorisedSpcs && !origins;
    const map = plain ? this.plain[inboundOnly ? 1 : 0] : this.withLists;
    // `|` is in no carrier code, origin or bank id; `S` and `O` tell an empty list from none.
    const key = plain ? bankId : `${inboundOnly ? 1 : 0}|${authorisedSpcs ? `S${authorisedSpcs.join(',')}` : ''}|${origins ? `O${origins.join(',')}` : ''}|${bankId}`;
    let id = map.get(key);
    if (id === undefined) {
      id = this.templates.length;
      const t: EntryTemplate = { bankId, inboundOnly };
      if (authorisedSpcs) t.authorisedSpcs = internList(authorisedSpcs);
      if (origins) t.overseasOrigins = internList(origins);
      this.templates.push(t);
      map.set(key, id);
    }
    return id;
  }
}

/** A template-id array wide enough for `templateCount` templates. */
export function idArray(length: number, templateCount: number): Uint16Array | Uint32Array {
  return templateCount <= 0x10000 ? new Uint16Array(length) : new Uint32Array(length);
}

/**
 * Collects numbers in any order (a file's), then sorts them into a table. Duplicates are found by
 * the sort (equal keys end up side by side) instead of a Set of every key: the table itself is
 * the only copy of the numbers.
 */
export class NumberTableBuilder {
  readonly interner = new TemplateInterner();
  private keys = new Float64Array(1024);
  private ids = new Uint32Array(1024);
  /** Each number's place in the input (`numbers[i]` of a file), to name a duplicate; grows as numbers are added. */
  private places = new Uint32Array(1024);
  private count = 0;

  constructor(expected = 0) {
    if (expected > 0) this.grow(expected);
  }

  add(key: number, templateId: number, place = this.count): void {
    if (this.count === this.keys.length) this.grow(this.count * 2);
    this.keys[this.count] = key;
    this.ids[this.count] = templateId;
    this.places[this.count] = place;
    this.count++;
  }

  /**
   * The sorted table. Of equal keys the one added last is kept (as a Map would), and the places
   * of the others after the first are the duplicates: where a reader walking the input in order
   * would have seen the key a second time.
   */
  build(): { table: NumberTable; duplicates: { key: number; place: number }[] } {
    const n = this.count;
    const { keys, ids } = sortNumbers(this.keys, this.ids, n);
    const repeated = new Set<number>();
    let m = 0;
    for (let j = 0; j < n; j++) {
      const key = keys[j]!;
      if (m > 0 && keys[m - 1] === key) {
        // The sort is stable: this one was added after the one before it, and replaces it.
        repeated.add(key);
        m--;
      }
      keys[m] = key;
      ids[m] = ids[j]!;
      m++;
    }
    const templates = this.interner.templates;
    const templateIds = idArray(m, templates.length);
    templateIds.set(ids.subarray(0, m));
    const table = { keys: m < n ? keys.slice(0, m) : keys, templateIds, templates };
    return { table, duplicates: repeated.size > 0 ? this.laterPlaces(repeated) : [] };
  }

  /**
   * Where each repeated key was added after its first time, in input order. Only for input with
   * duplicates (a file that will not start): one more pass rather than carrying every number's
   * place through the sort.
   */
  private laterPlaces(repeated: Set<number>): { key: number; place: number }[] {
    const seen = new Set<number>();
    const out: { key: number; place: number }[] = [];
    for (let i = 0; i < this.count; i++) {
      const key = this.keys[i]!;
      if (!repeated.has(key)) continue;
      if (seen.has(key)) out.push({ key, place: this.places[i]! });
      else seen.add(key);
    }
    return out;
  }

  private grow(capacity: number): void {
    const keys = new Float64Array(capacity);
    const ids = new Uint32Array(capacity);
    const places = new Uint32Array(capacity);
    keys.set(this.keys.subarray(0, this.count));
    ids.set(this.ids.subarray(0, this.count));
    places.set(this.places.subarray(0, this.count));
    this.keys = keys;
    this.ids = ids;
    this.places = places;
  }
}

/**
 * The first `n` keys in ascending order, each with its id: a stable LSD radix sort on four
 * 13-bit digits of the key (keys are whole numbers below 2^52). Several times quicker than
 * `sort` with a comparator, which calls back into JavaScript some 20 million times for a
 * million numbers, and a native sort of the keys alone would lose their ids. The ids travel
 * with the digits, so each pass reads its input in order.
 *
 * Each loop is a function of its own: the sort runs once, at start, and a function holding all
 * the loops would be optimised while in its first loop, then thrown back to the interpreter on
 * reaching each next one (measured: a third longer for a million numbers).
 */
function sortNumbers(keys: Float64Array, ids: Uint32Array, n: number): { keys: Float64Array; ids: Uint32Array } {
  let lo = new Uint32Array(n);
  let hi = new Uint32Array(n);
  splitKeys(keys, n, lo, hi);
  let id = ids.slice(0, n);
  let lo2 = new Uint32Array(n);
  let hi2 = new Uint32Array(n);
  let id2 = new Uint32Array(n);
  const count = new Uint32Array(1 << DIGIT);
  for (let pass = 0; pass < 4; pass++) {
    const digits = pass < 2 ? lo : hi;
    const shift = (pass & 1) * DIGIT;
    // When every key has the same digit here (the country code's, often), there is nothing to move.
    if (!countDigits(digits, shift, n, count)) continue;
    scatter(digits, shift, n, count, [lo, hi, id], [lo2, hi2, id2]);
    [lo, lo2, hi, hi2, id, id2] = [lo2, lo, hi2, hi, id2, id];
  }
  return { keys: joinKeys(lo, hi, n), ids: id };
}

const DIGIT = 13;
const MASK = (1 << DIGIT) - 1;
const HALF = 2 ** (2 * DIGIT);

function splitKeys(keys: Float64Array, n: number, lo: Uint32Array, hi: Uint32Array): void {
  for (let i = 0; i < n; i++) {
    const h = Math.floor(keys[i]! / HALF);
    hi[i] = h;
    lo[i] = keys[i]! - h * HALF;
  }
}

function joinKeys(lo: Uint32Array, hi: Uint32Array, n: number): Float64Array {
  const keys = new Float64Array(n);
  for (let i = 0; i < n; i++) keys[i] = hi[i]! * HALF + lo[i]!;
  return keys;
}

/** Turns `count` into each digit's first place in the output; false when all keys share the digit. */
function countDigits(digits: Uint32Array, shift: number, n: number, count: Uint32Array): boolean {
  count.fill(0);
  for (let i = 0; i < n; i++) count[(digits[i]! >>> shift) & MASK]!++;
  if (n === 0 || count[(digits[0]! >>> shift) & MASK] === n) return false;
  for (let d = 0, sum = 0; d <= MASK; d++) {
    const c = count[d]!;
    count[d] = sum;
    sum += c;
  }
  return true;
}

function scatter(digits: Uint32Array, shift: number, n: number, count: Uint32Array, from: Uint32Array[], to: Uint32Array[]): void {
  const [lo, hi, id] = from as [Uint32Array, Uint32Array, Uint32Array];
  const [lo2, hi2, id2] = to as [Uint32Array, Uint32Array, Uint32Array];
  for (let i = 0; i < n; i++) {
    const at = count[(digits[i]! >>> shift) & MASK]!++;
    lo2[at] = lo[i]!;
    hi2[at] = hi[i]!;
    id2[at] = id[i]!;
  }
}

/** Numbers a merge handles between two points where it may hand the event loop back. */
const MERGE_STEP = 8192;
/** Changed keys are sorted natively in runs of this many (about a millisecond each), then the runs merged. */
const SORT_RUN = 16384;

/**
 * A new table: `table` with `changes` applied (a template, or null to delete), in one pass. The
 * templates no number uses any more are dropped on the way.
 */
export function mergeNumbers(table: NumberTable, changes: ReadonlyMap<number, EntryTemplate | null>): NumberTable {
  const steps = mergeSteps(table, changes);
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
  }
}

/**
 * `mergeNumbers`, handing the event loop back between slices of `slicer`'s budget: a merge is a
 * pass over the whole table (a million numbers: tens of milliseconds, more with a few hundred
 * thousand changed numbers to sort), too long to hold calls up for. `table` and `changes` must
 * not change meanwhile.
 */
export async function mergeNumbersInSlices(table: NumberTable, changes: ReadonlyMap<number, EntryTemplate | null>, slicer: Slicer): Promise<NumberTable> {
  const steps = mergeSteps(table, changes);
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
    await slicer.tick();
  }
}

/** The merge, as steps: each `yield` is a point where it may stop for a while. */
function* mergeSteps(table: NumberTable, changes: ReadonlyMap<number, EntryTemplate | null>): Generator<void, NumberTable> {
  const changed = yield* sortedKeys(changes);
  const { keys, templateIds, templates } = table;
  const interner = new TemplateInterner();
  const remapped = new Int32Array(templates.length).fill(-1);
  const outKeys = new Float64Array(keys.length + changed.length);
  const outIds = new Uint32Array(keys.length + changed.length);
  let m = 0;
  let i = 0;
  let steps = 0;
  const keepOld = (at: number) => {
    const old = templateIds[at]!;
    let id = remapped[old]!;
    if (id < 0) {
      const t = templates[old]!;
      remapped[old] = id = interner.id(t);
    }
    outKeys[m] = keys[at]!;
    outIds[m++] = id;
  };
  for (let c = 0; c < changed.length; c++) {
    const key = changed[c]!;
    while (i < keys.length && keys[i]! < key) {
      keepOld(i++);
      if (++steps === MERGE_STEP) {
        steps = 0;
        yield;
      }
    }
    if (i < keys.length && keys[i] === key) i++; // replaced or deleted
    const t = changes.get(key)!;
    if (t) {
      outKeys[m] = key;
      outIds[m++] = interner.id(t);
    }
    if (++steps === MERGE_STEP) {
      steps = 0;
      yield;
    }
  }
  while (i < keys.length) {
    keepOld(i++);
    if (++steps === MERGE_STEP) {
      steps = 0;
      yield;
    }
  }
  const ids = idArray(m, interner.templates.length);
  ids.set(outIds.subarray(0, m));
  yield;
  // Deleted numbers leave room at the end: copied off (megabytes: a step of its own) only then.
  return { keys: m < outKeys.length ? outKeys.slice(0, m) : outKeys, templateIds: ids, templates: interner.templates };
}

/**
 * The keys of `changes`, ascending. A comparator sort of a few hundred thousand keys takes over
 * 100 ms in one piece; here runs are sorted natively (a typed array sorts numerically) and then
 * merged pairwise, with points to stop between them.
 */
function* sortedKeys(changes: ReadonlyMap<number, unknown>): Generator<void, Float64Array> {
  const n = changes.size;
  let from = new Float64Array(n);
  let k = 0;
  for (const key of changes.keys()) from[k++] = key;
  yield;
  for (let lo = 0; lo < n; lo += SORT_RUN) {
    from.subarray(lo, lo + SORT_RUN).sort();
    yield;
  }
  let to = new Float64Array(n);
  for (let run = SORT_RUN; run < n; run *= 2) {
    for (let lo = 0; lo < n; lo += 2 * run) {
      const mid = Math.min(lo + run, n);
      const hi = Math.min(lo + 2 * run, n);
      let a = lo;
      let b = mid;
      let out = lo;
      while (a < mid && b < hi) {
        to[out++] = from[a]! <= from[b]! ? from[a++]! : from[b++]!;
        if ((out & (MERGE_STEP - 1)) === 0) yield;
      }
      to.set(from.subarray(a, mid), out);
      to.set(from.subarray(b, hi), out + (mid - a));
    }
    [from, to] = [to, from];
    yield;
  }
  return from;
}

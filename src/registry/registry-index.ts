import type { Bank, RegistryData, RegistryEntry, RegistryMatch } from './model';
import {
  EMPTY_TABLE,
  entryAt,
  findNumber,
  mergeNumbers,
  mergeNumbersInSlices,
  NumberTableBuilder,
  numberKey,
  requireNumberKey,
  templateAt,
  type CompactRegistry,
  type EntryTemplate,
  type NumberTable,
} from './number-table';
import type { Slicer } from './slicer';

/** The first place in `keys` (ascending) whose key is at least `key`. */
function lowerBound(keys: Float64Array, key: number): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keys[mid]! < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

// Scoring reads the match type from here.
export type { RegistryMatch } from './model';

/** The registry's content in either form: entry objects (tests, Redis, small data) or compact (files, snapshots). */
export type RegistryContent = RegistryData | CompactRegistry;

/** Changed numbers held beside the table before they are merged into a new one: at least this many... */
const OVERLAY_MIN = 4096;
/** ...or this share of the table, so merging (a pass over the whole table) costs O(1) per change. */
const OVERLAY_SHARE = 32;

/**
 * The registry's lookup index.
 *
 * Numbers live in a compact table (number-table.ts: sorted doubles and template ids, 10 bytes a
 * number) and are found by binary search. A table is never changed in place: set and delete go
 * to a small overlay (a Map read before the table, null marking a deleted number), and once the
 * overlay grows past a share of the table the two are merged into a new table. So a change
 * costs O(log n), and a lookup one Map read and about 20 steps of binary search.
 *
 * Prefixes are few: a Map, found longest first by trying each prefix length in use (at most 15
 * Map lookups).
 *
 * Changes are applied in place by synchronous methods: JavaScript runs one thing at a time, so
 * a lookup sees the registry before or after a change (or a whole import), never half of it.
 */
export class RegistryIndex {
  private readonly banks = new Map<string, Bank>();
  private table: NumberTable = EMPTY_TABLE;
  /** Numbers set (their entry) or deleted (null) since the table was made, by table key. */
  private overlay = new Map<number, RegistryEntry | null>();
  private numberCount = 0;
  private readonly prefixes = new Map<string, RegistryEntry>();
  /** How many prefixes there are of each length: the lengths worth trying in a lookup. */
  private readonly prefixLengths = new Map<number, number>();
  private longestPrefix = 0;
  private shortestPrefix = Number.POSITIVE_INFINITY;

  constructor(
    content: RegistryContent,
    /** Changes with every change to the registry: part of every verdict cache key. */
    public version: string,
    /**
     * Keep every change in the overlay until `compactInSlices` (or `compact`) is called, instead
     * of merging every few thousand changes: for a copy that takes a whole import and is merged
     * once, in slices, at the end (each merge is a pass over the whole table, in one piece).
     */
    private readonly mergeLater = false,
  ) {
    this.load(content);
  }

  /** Replaces the whole content. A compact table is taken as it is (tables are never changed in place). */
  load(content: RegistryContent): void {
    this.banks.clear();
    this.overlay.clear();
    this.prefixes.clear();
    this.prefixLengths.clear();
    for (const bank of content.banks) this.banks.set(bank.id, bank);
    if ('entries' in content) {
      const builder = new NumberTableBuilder();
      for (const entry of content.entries) {
        if (entry.kind === 'prefix') this.setPrefix(entry);
        else builder.add(requireNumberKey(entry.key), builder.interner.id(entry));
      }
      // Of a number given twice the last one stays, as with one set after the other.
      this.table = builder.build().table;
    } else {
      this.table = content.numbers;
      for (const entry of content.prefixes) this.setPrefix(entry);
    }
    this.numberCount = this.table.keys.length;
    this.recomputePrefixBounds();
  }

  get size(): { banks: number; numbers: number; prefixes: number } {
    return { banks: this.banks.size, numbers: this.numberCount, prefixes: this.prefixes.size };
  }

  /** Numbers changed since the table was last merged (see `compact`). */
  get pendingChanges(): number {
    return this.overlay.size;
  }

  bank(id: string): Bank | undefined {
    return this.banks.get(id);
  }

  allBanks(): Bank[] {
    return [...this.banks.values()];
  }

  /** Every entry, numbers (ascending) then prefixes, made on demand (for export). */
  *allEntries(): Generator<RegistryEntry> {
    const table = this.compacted();
    for (let i = 0; i < table.keys.length; i++) yield entryAt(table, i);
    yield* this.prefixes.values();
  }

  entriesOfBank(bankId: string): RegistryEntry[] {
    const table = this.compacted();
    // The bank's templates first: only its own numbers are made into objects.
    const ofBank = table.templates.map((t) => t.bankId === bankId);
    const out: RegistryEntry[] = [];
    for (let i = 0; i < table.keys.length; i++) if (ofBank[table.templateIds[i]!]) out.push(entryAt(table, i));
    for (const e of this.prefixes.values()) if (e.bankId === bankId) out.push(e);
    return out;
  }

  data(): RegistryData {
    return { banks: this.allBanks(), entries: [...this.allEntries()] };
  }

  /**
   * The content as it is now, compact. Nothing in it is changed afterwards (tables are replaced,
   * not changed), so it can be written out while the index goes on changing.
   */
  view(): CompactRegistry {
    return { banks: this.allBanks(), numbers: this.compacted(), prefixes: [...this.prefixes.values()] };
  }

  /** The entry for an E.164 number: the exact number first, then the longest prefix. */
  lookup(e164: string): RegistryMatch | null {
    const key = numberKey(e164);
    if (!Number.isNaN(key)) {
      const changed = this.overlay.get(key);
      if (changed) return this.toMatch(changed, 'number', e164);
      if (changed === undefined) {
        const i = findNumber(this.table, key);
        if (i >= 0) return this.toMatch(templateAt(this.table, i), 'number', e164);
      }
    }
    for (let len = Math.min(e164.length, this.longestPrefix); len >= this.shortestPrefix; len--) {
      if (!this.prefixLengths.has(len)) continue;
      const prefix = e164.slice(0, len);
      const entry = this.prefixes.get(prefix);
      if (entry) return this.toMatch(entry, 'prefix', prefix);
    }
    return null;
  }

  /** The entry stored under exactly this number or prefix. */
  entry(kind: 'number' | 'prefix', key: string): RegistryEntry | undefined {
    if (kind === 'prefix') return this.prefixes.get(key);
    const n = numberKey(key);
    if (Number.isNaN(n)) return undefined;
    const changed = this.overlay.get(n);
    if (changed !== undefined) return changed ?? undefined;
    const i = findNumber(this.table, n);
    return i >= 0 ? entryAt(this.table, i) : undefined;
  }

  /** Every prefix entry. */
  prefixEntries(): IterableIterator<RegistryEntry> {
    return this.prefixes.values();
  }

  /**
   * A number entry that `prefix` covers and `match` accepts, or undefined. Looks at the numbers
   * changed since the table was made, then at each run of the table that can start with the
   * prefix (one per length of number: a number's key is its digits, so the numbers of one length
   * that start with the prefix are one range of keys).
   */
  findNumberUnder(prefix: string, match: (t: EntryTemplate) => boolean): RegistryEntry | undefined {
    const digits = prefix.slice(1);
    for (const [key, e] of this.overlay) if (e && String(key).startsWith(digits) && match(e)) return e;
    const value = Number(digits);
    const { keys } = this.table;
    for (let length = Math.max(digits.length, 7); length <= 15; length++) {
      const scale = 10 ** (length - digits.length);
      const end = lowerBound(keys, (value + 1) * scale);
      for (let i = lowerBound(keys, value * scale); i < end; i++) {
        if (this.overlay.has(keys[i]!)) continue; // changed: looked at above
        const t = templateAt(this.table, i);
        if (match(t)) return entryAt(this.table, i);
      }
    }
    return undefined;
  }

  setBank(bank: Bank): void {
    this.banks.set(bank.id, bank);
  }

  deleteBank(id: string): void {
    this.banks.delete(id);
  }

  setEntry(entry: RegistryEntry): void {
    if (entry.kind === 'prefix') {
      this.setPrefix(entry);
      return;
    }
    const key = requireNumberKey(entry.key);
    if (!this.hasNumber(key)) this.numberCount++;
    this.overlay.set(key, entry);
    this.compactIfLarge();
  }

  deleteEntry(kind: 'number' | 'prefix', key: string): void {
    if (kind === 'prefix') {
      this.deletePrefix(key);
      return;
    }
    const n = numberKey(key);
    if (Number.isNaN(n) || !this.hasNumber(n)) return;
    this.numberCount--;
    // Only a number the table holds needs a mark; one set since then is simply forgotten.
    if (findNumber(this.table, n) >= 0) this.overlay.set(n, null);
    else this.overlay.delete(n);
    this.compactIfLarge();
  }

  /** Merges the overlay into a new table. Lookups are as quick either way; this bounds the overlay's memory. */
  compact(): void {
    if (this.overlay.size === 0) return;
    this.table = mergeNumbers(this.table, this.overlay);
    this.overlay = new Map();
  }

  /**
   * `compact`, handing the event loop back between slices. The index stays readable meanwhile
   * (the table and overlay are swapped only at the end); nothing may change it meanwhile (the
   * store's queue). Should something compact it in one piece meanwhile (an export's `view`),
   * that table stands: it holds the same.
   */
  async compactInSlices(slicer: Slicer): Promise<void> {
    if (this.overlay.size === 0) return;
    const { table, overlay } = this;
    const merged = await mergeNumbersInSlices(table, overlay, slicer);
    if (this.table !== table || this.overlay !== overlay) return;
    this.table = merged;
    this.overlay = new Map();
  }

  private compacted(): NumberTable {
    this.compact();
    return this.table;
  }

  private compactIfLarge(): void {
    if (!this.mergeLater && this.overlay.size > Math.max(OVERLAY_MIN, this.table.keys.length / OVERLAY_SHARE)) this.compact();
  }

  private hasNumber(key: number): boolean {
    const changed = this.overlay.get(key);
    return changed !== undefined ? changed !== null : findNumber(this.table, key) >= 0;
  }

  private setPrefix(entry: RegistryEntry): void {
    if (!this.prefixes.has(entry.key)) {
      const len = entry.key.length;
      this.prefixLengths.set(len, (this.prefixLengths.get(len) ?? 0) + 1);
      this.longestPrefix = Math.max(this.longestPrefix, len);
      this.shortestPrefix = Math.min(this.shortestPrefix, len);
    }
    this.prefixes.set(entry.key, entry);
  }

  private deletePrefix(key: string): void {
    if (!this.prefixes.delete(key)) return;
    const left = (this.prefixLengths.get(key.length) ?? 1) - 1;
    if (left > 0) this.prefixLengths.set(key.length, left);
    else {
      this.prefixLengths.delete(key.length);
      this.recomputePrefixBounds();
    }
  }

  private recomputePrefixBounds(): void {
    const lengths = [...this.prefixLengths.keys()];
    this.longestPrefix = lengths.length ? Math.max(...lengths) : 0;
    this.shortestPrefix = lengths.length ? Math.min(...lengths) : Number.POSITIVE_INFINITY;
  }

  private toMatch(t: EntryTemplate, match: 'number' | 'prefix', key: string): RegistryMatch {
    const bank = this.banks.get(t.bankId);
    return {
      bankId: t.bankId,
      bankName: bank?.name ?? t.bankId,
      inboundOnly: t.inboundOnly,
      ...(t.authorisedSpcs ? { authorisedSpcs: t.authorisedSpcs } : {}),
      ...(t.overseasOrigins ? { overseasOrigins: t.overseasOrigins } : {}),
      ...(bank?.kind !== undefined && bank.kind !== 'bank' ? { bankKind: bank.kind } : {}),
      ...(bank?.announcesCalls === true ? { announcesCalls: true as const } : {}),
      match,
      key,
    };
  }
}

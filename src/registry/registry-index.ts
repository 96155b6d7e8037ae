import type { Bank, RegistryData, RegistryEntry } from './format';

/** What a caller ID matched in the registry. */
export interface RegistryMatch {
  bankId: string;
  bankName: string;
  inboundOnly: boolean;
  /** Absent means any carrier may originate calls from the number. */
  authorisedSpcs?: string[];
  match: 'number' | 'prefix';
  /** The number or prefix that matched. */
  key: string;
}

/**
 * The registry's lookup index. Exact numbers are one Map lookup; prefixes are found longest
 * first by trying each length of the number (at most 15 Map lookups), so a lookup costs
 * O(length of the number) whatever the registry's size.
 *
 * Changes are applied in place by synchronous methods: JavaScript runs one thing at a time, so
 * a lookup sees the registry before or after a change (or a whole import), never half of it.
 */
export class RegistryIndex {
  private readonly numbers = new Map<string, RegistryEntry>();
  private readonly prefixes = new Map<string, RegistryEntry>();
  private readonly banks = new Map<string, Bank>();
  /** How many prefixes there are of each length: the lengths worth trying in a lookup. */
  private readonly prefixLengths = new Map<number, number>();
  private longestPrefix = 0;
  private shortestPrefix = Number.POSITIVE_INFINITY;

  constructor(
    data: RegistryData,
    /** Changes with every change to the registry: part of every verdict cache key. */
    public version: string,
  ) {
    this.load(data);
  }

  /** Replaces the whole content. */
  load(data: RegistryData): void {
    this.numbers.clear();
    this.prefixes.clear();
    this.banks.clear();
    this.prefixLengths.clear();
    for (const bank of data.banks) this.banks.set(bank.id, bank);
    for (const entry of data.entries) this.setEntry(entry);
    this.recomputePrefixBounds();
  }

  get size(): { banks: number; numbers: number; prefixes: number } {
    return { banks: this.banks.size, numbers: this.numbers.size, prefixes: this.prefixes.size };
  }

  bank(id: string): Bank | undefined {
    return this.banks.get(id);
  }

  allBanks(): Bank[] {
    return [...this.banks.values()];
  }

  /** Every entry, numbers then prefixes (for export). */
  *allEntries(): Generator<RegistryEntry> {
    yield* this.numbers.values();
    yield* this.prefixes.values();
  }

  entriesOfBank(bankId: string): RegistryEntry[] {
    return [...this.allEntries()].filter((e) => e.bankId === bankId);
  }

  data(): RegistryData {
    return { banks: this.allBanks(), entries: [...this.allEntries()] };
  }

  /** The entry for an E.164 number: the exact number first, then the longest prefix. */
  lookup(e164: string): RegistryMatch | null {
    const exact = this.numbers.get(e164);
    if (exact) return this.toMatch(exact);
    for (let len = Math.min(e164.length, this.longestPrefix); len >= this.shortestPrefix; len--) {
      if (!this.prefixLengths.has(len)) continue;
      const entry = this.prefixes.get(e164.slice(0, len));
      if (entry) return this.toMatch(entry);
    }
    return null;
  }

  /** The entry stored under exactly this number or prefix. */
  entry(kind: 'number' | 'prefix', key: string): RegistryEntry | undefined {
    return (kind === 'number' ? this.numbers : this.prefixes).get(key);
  }

  setBank(bank: Bank): void {
    this.banks.set(bank.id, bank);
  }

  deleteBank(id: string): void {
    this.banks.delete(id);
  }

  setEntry(entry: RegistryEntry): void {
    if (entry.kind === 'number') {
      this.numbers.set(entry.key, entry);
      return;
    }
    if (!this.prefixes.has(entry.key)) {
      const len = entry.key.length;
      this.prefixLengths.set(len, (this.prefixLengths.get(len) ?? 0) + 1);
      this.longestPrefix = Math.max(this.longestPrefix, len);
      this.shortestPrefix = Math.min(this.shortestPrefix, len);
    }
    this.prefixes.set(entry.key, entry);
  }

  deleteEntry(kind: 'number' | 'prefix', key: string): void {
    if (kind === 'number') {
      this.numbers.delete(key);
      return;
    }
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

  private toMatch(entry: RegistryEntry): RegistryMatch {
    const bank = this.banks.get(entry.bankId);
    return {
      bankId: entry.bankId,
      bankName: bank?.name ?? entry.bankId,
      inboundOnly: entry.inboundOnly,
      ...(entry.authorisedSpcs ? { authorisedSpcs: entry.authorisedSpcs } : {}),
      match: entry.kind,
      key: entry.key,
    };
  }
}

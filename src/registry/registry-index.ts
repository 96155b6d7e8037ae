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
 * An immutable lookup snapshot of the registry. Exact numbers are one Map lookup; prefixes
 * are found longest first by trying each length of the number (at most 15 Map lookups), so
 * lookups cost O(length of the number) whatever the registry's size. Changes build a new
 * index and swap it in, so a lookup never sees half an update.
 */
export class RegistryIndex {
  private readonly numbers = new Map<string, RegistryEntry>();
  private readonly prefixes = new Map<string, RegistryEntry>();
  private readonly banks = new Map<string, Bank>();
  private longestPrefix = 0;
  private shortestPrefix = Number.POSITIVE_INFINITY;

  constructor(
    readonly data: RegistryData,
    /** Changes with every change to the registry: part of every verdict cache key. */
    readonly version: string,
  ) {
    for (const bank of data.banks) this.banks.set(bank.id, bank);
    for (const entry of data.entries) {
      if (entry.kind === 'number') {
        this.numbers.set(entry.key, entry);
      } else {
        this.prefixes.set(entry.key, entry);
        this.longestPrefix = Math.max(this.longestPrefix, entry.key.length);
        this.shortestPrefix = Math.min(this.shortestPrefix, entry.key.length);
      }
    }
  }

  get size(): { banks: number; numbers: number; prefixes: number } {
    return { banks: this.banks.size, numbers: this.numbers.size, prefixes: this.prefixes.size };
  }

  bank(id: string): Bank | undefined {
    return this.banks.get(id);
  }

  /** The entry for an E.164 number: the exact number first, then the longest prefix. */
  lookup(e164: string): RegistryMatch | null {
    const exact = this.numbers.get(e164);
    if (exact) return this.toMatch(exact);
    for (let len = Math.min(e164.length, this.longestPrefix); len >= this.shortestPrefix; len--) {
      const entry = this.prefixes.get(e164.slice(0, len));
      if (entry) return this.toMatch(entry);
    }
    return null;
  }

  /** The entry stored under exactly this number or prefix (for administration). */
  entry(kind: 'number' | 'prefix', key: string): RegistryEntry | undefined {
    return (kind === 'number' ? this.numbers : this.prefixes).get(key);
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

import type { Bank, RegistryEntry } from './model';
import type { RegistryIndex } from './registry-index';

/**
 * Who may claim what in the registry. The longest match wins a lookup, so an entry placed
 * inside another bank's range (a number under its prefix, a prefix around or inside its
 * entries) takes calls from that bank: a bank key may not do that; an administrator may, to
 * carve a range up deliberately.
 */

/** Shortest prefix, in digits after the `+`, when REGISTRY_MIN_PREFIX_DIGITS does not say. */
export const DEFAULT_MIN_PREFIX_DIGITS = 6;

/**
 * The registry as a change would leave it: the index, with the entries in `changed` set (an
 * entry) or removed (null), keyed `kind:key`, and the index's entries that `gone` accepts
 * removed (an import in replace mode: whatever in its scope it does not hold).
 */
export class ProjectedRegistry {
  constructor(
    private readonly index: RegistryIndex,
    private readonly changed: ReadonlyMap<string, RegistryEntry | null>,
    private readonly gone?: (e: RegistryEntry) => boolean,
  ) {}

  entry(kind: 'number' | 'prefix', key: string): RegistryEntry | undefined {
    const changed = this.changed.get(`${kind}:${key}`);
    if (changed !== undefined) return changed ?? undefined;
    const e = this.index.entry(kind, key);
    return e && this.gone?.(e) ? undefined : e;
  }

  /** The bank the registry gives a number to: its own entry, else the longest prefix covering it. */
  ownerOf(e164: string): string | undefined {
    const own = this.entry('number', e164);
    if (own) return own.bankId;
    for (let length = e164.length; length >= 2; length--) {
      const prefix = this.entry('prefix', e164.slice(0, length));
      if (prefix) return prefix.bankId;
    }
    return undefined;
  }
}

/**
 * Another bank's entry that `entry` would override, or null: for a number, another bank's
 * prefix covering it; for a prefix, another bank's prefix covering it or inside it, or another
 * bank's number it covers or lies inside. Judged against the index: a bank's own change never
 * moves another bank's entries.
 */
export function overriddenEntry(index: RegistryIndex, entry: RegistryEntry): RegistryEntry | null {
  const { key, bankId } = entry;
  const other = (e: RegistryEntry | undefined) => (e && e.bankId !== bankId ? e : null);
  for (let length = key.length; length >= 2; length--) {
    const covering = other(index.entry('prefix', key.slice(0, length)));
    if (covering) return covering;
  }
  if (entry.kind === 'number') return null;
  for (const p of index.prefixEntries()) if (p.bankId !== bankId && p.key.startsWith(key)) return p;
  // A number that the prefix lies inside: the prefix is that number, or longer.
  for (let length = 8; length <= key.length; length++) {
    const number = other(index.entry('number', key.slice(0, length)));
    if (number) return number;
  }
  return index.findNumberUnder(key, (t) => t.bankId !== bankId) ?? null;
}

/**
 * The prefix entry of the entry's own bank that the entry lies inside, or null. The registry is
 * the allocation: a bank key may add numbers and prefixes only within a range the registry
 * already gives its bank (a number under, or equal to, one of its prefixes; a prefix strictly
 * longer than one of them), so it can neither claim numbers that belong to nobody nor widen a
 * range it holds. Judged against the index: an import's own lines do not grant a range.
 */
export function enclosingOwnPrefix(index: RegistryIndex, entry: RegistryEntry): RegistryEntry | null {
  const longest = entry.kind === 'number' ? entry.key.length : entry.key.length - 1;
  for (let length = longest; length >= 2; length--) {
    const prefix = index.entry('prefix', entry.key.slice(0, length));
    if (prefix && prefix.bankId === entry.bankId) return prefix;
  }
  return null;
}

/** Whether two entries say the same: writing one over the other changes nothing. */
export function sameEntry(a: RegistryEntry | undefined, b: RegistryEntry): boolean {
  if (!a || a.kind !== b.kind || a.key !== b.key || a.bankId !== b.bankId || a.inboundOnly !== b.inboundOnly) return false;
  return sameList(a.authorisedSpcs, b.authorisedSpcs) && sameList(a.overseasOrigins, b.overseasOrigins);
}

/** Two optional lists, absent equal only to absent (an absent carrier list means any carrier, an empty one none). */
function sameList(a: readonly string[] | undefined, b: readonly string[] | undefined): boolean {
  const x = a ?? null;
  const y = b ?? null;
  return x === y || (x !== null && y !== null && x.length === y.length && x.every((s, i) => s === y[i]));
}

/** Digits after the `+` of a prefix. */
export const prefixDigits = (prefix: string) => prefix.length - 1;

/** A bank's callback numbers that `registry` does not give to that bank. */
export function foreignCallbacks(registry: ProjectedRegistry, bank: Bank, only?: (n: string) => boolean): string[] {
  return bank.callbackNumbers.filter((n) => (!only || only(n)) && registry.ownerOf(n) !== bank.id);
}

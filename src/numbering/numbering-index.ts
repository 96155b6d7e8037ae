import { createHash } from 'node:crypto';
import { StartupError } from '../errors';
import { NUMBERING_STATUSES, type NumberingStatus, type OfcomRange } from './ofcom-csv';

/** What Ofcom's data says of the range a number is in. */
export interface RangeStatus {
  status: NumberingStatus;
  /** The range holder, when Ofcom names one. */
  operator?: string;
}

export const NUMBERING_FORMAT = 'callguard-numbering/1';

/**
 * The file the import writes and the service loads: ranges grouped by (status, operator), so
 * each provider's name is written once and loading is one JSON.parse and a Map fill.
 */
export interface NumberingDocument {
  format: typeof NUMBERING_FORMAT;
  /** Changes whenever the ranges do: part of the verdict cache key. */
  version: string;
  generatedAt: string;
  sources: { file: string; sha256: string; rows: number; ranges: number; rejected: number }[];
  groups: { status: NumberingStatus; operator?: string; prefixes: string[] }[];
}

/** When the numbering data was imported, and from which of Ofcom's files. */
export interface NumberingProvenance {
  generatedAt: string | null;
  sources: { file: string; sha256: string }[];
}

export class NumberingDataError extends StartupError {}

const PREFIX_RE = /^[1-9]\d{0,9}$/;
const valueKey = (v: RangeStatus) => `${v.status}\u0000${v.operator ?? ''}`;

/**
 * Ofcom's ranges by national prefix. A lookup tries the number's own prefixes longest first,
 * only at the lengths some range has: at most one Map lookup per digit, whatever the data's size.
 */
export class NumberingIndex {
  private readonly byPrefix = new Map<string, RangeStatus>();
  /** Prefix lengths present, longest first. */
  private readonly lengths: number[];

  constructor(
    entries: Iterable<[string, RangeStatus]>,
    readonly version: string,
    /** Where loaded data came from (the import's date and Ofcom's files); null for an index built in process. */
    readonly provenance: NumberingProvenance | null = null,
  ) {
    // One frozen object per distinct value: a lookup returns it, and allocates nothing.
    const shared = new Map<string, RangeStatus>();
    for (const [prefix, value] of entries) {
      const key = valueKey(value);
      let v = shared.get(key);
      if (!v) shared.set(key, (v = Object.freeze({ status: value.status, ...(value.operator !== undefined ? { operator: value.operator } : {}) })));
      this.byPrefix.set(prefix, v);
    }
    this.lengths = [...new Set([...this.byPrefix.keys()].map((p) => p.length))].sort((a, b) => b - a);
  }

  get size(): number {
    return this.byPrefix.size;
  }

  /** The longest range covering a UK national significant number (digits after the trunk 0). */
  lookupNational(nsn: string): RangeStatus | null {
    for (const len of this.lengths) {
      if (len > nsn.length) continue;
      const v = this.byPrefix.get(nsn.slice(0, len));
      if (v) return v;
    }
    return null;
  }

  /**
   * The range an E.164 number is in, or null when the number is not a UK (+44) number or no
   * range covers it (then the data has no opinion, and libphonenumber's word stands).
   * Bound, so it can be handed around as a plain function.
   */
  readonly rangeStatus = (e164: string): RangeStatus | null => {
    if (!e164.startsWith('+44')) return null;
    const nsn = e164.slice(3);
    return /^\d{1,12}$/.test(nsn) ? this.lookupNational(nsn) : null;
  };

  /** Entries for the document, grouped by value, prefixes sorted (stable output for diffs). */
  groups(): NumberingDocument['groups'] {
    const byValue = new Map<string, { status: NumberingStatus; operator?: string; prefixes: string[] }>();
    for (const [prefix, v] of this.byPrefix) {
      const key = valueKey(v);
      let g = byValue.get(key);
      if (!g) byValue.set(key, (g = { status: v.status, ...(v.operator !== undefined ? { operator: v.operator } : {}), prefixes: [] }));
      g.prefixes.push(prefix);
    }
    const out = [...byValue.values()];
    for (const g of out) g.prefixes.sort();
    return out.sort((a, b) => a.status.localeCompare(b.status) || (a.operator ?? '').localeCompare(b.operator ?? ''));
  }

  toDocument(sources: NumberingDocument['sources'], generatedAt: Date): NumberingDocument {
    return { format: NUMBERING_FORMAT, version: this.version, generatedAt: generatedAt.toISOString(), sources, groups: this.groups() };
  }

  /** Checks a loaded document as thoroughly as an import would have; throws NumberingDataError. */
  static fromDocument(doc: unknown, where = 'numbering data'): NumberingIndex {
    const fail = (why: string): never => {
      throw new NumberingDataError(`${where}: ${why}`);
    };
    if (typeof doc !== 'object' || doc === null) return fail('not a JSON object');
    const d = doc as Partial<NumberingDocument>;
    if (d.format !== NUMBERING_FORMAT) return fail(`format is ${JSON.stringify(d.format)}, expected ${NUMBERING_FORMAT} (re-run npm run numbering:import)`);
    if (!Array.isArray(d.groups)) return fail('groups must be an array');
    const entries: [string, RangeStatus][] = [];
    d.groups.forEach((g: unknown, i) => {
      const group = g as Partial<NumberingDocument['groups'][number]> | null;
      if (!group || !(NUMBERING_STATUSES as readonly unknown[]).includes(group.status)) return fail(`groups[${i}].status is not a known status`);
      if (group.operator !== undefined && typeof group.operator !== 'string') return fail(`groups[${i}].operator must be a string`);
      if (!Array.isArray(group.prefixes)) return fail(`groups[${i}].prefixes must be an array`);
      const value: RangeStatus = { status: group.status!, ...(group.operator !== undefined ? { operator: group.operator } : {}) };
      for (const p of group.prefixes) {
        if (typeof p !== 'string' || !PREFIX_RE.test(p)) return fail(`groups[${i}] has a prefix that is not 1-10 digits: ${JSON.stringify(p)}`);
        entries.push([p, value]);
      }
    });
    return new NumberingIndex(entries, typeof d.version === 'string' ? d.version : versionOf(entries), provenanceOf(d));
  }

  /**
   * Builds the index from parsed ranges. The same block listed twice (Ofcom's summary file
   * and its detail file, or two overlapping files) resolves to allocated if either says so:
   * a conflict in the data must not block a real number. Then the ranges are compacted
   * without changing any answer (see `compact`).
   */
  static fromRanges(ranges: Iterable<OfcomRange>): NumberingIndex {
    const map = new Map<string, RangeStatus>();
    for (const r of ranges) {
      const prev = map.get(r.prefix);
      if (prev?.status === 'allocated' && r.status !== 'allocated') continue;
      map.set(r.prefix, { status: r.status, ...(r.operator !== undefined ? { operator: r.operator } : {}) });
    }
    compact(map);
    const entries = [...map.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1));
    return new NumberingIndex(entries, versionOf(entries));
  }
}

/** The document's date and sources, as far as they are well formed (they decide nothing, so they never fail a load). */
function provenanceOf(d: Partial<NumberingDocument>): NumberingProvenance {
  const sources = Array.isArray(d.sources) ? d.sources : [];
  return {
    generatedAt: typeof d.generatedAt === 'string' ? d.generatedAt : null,
    sources: sources
      .filter((s): s is NumberingDocument['sources'][number] => typeof s === 'object' && s !== null && typeof s.file === 'string' && typeof s.sha256 === 'string')
      .map((s) => ({ file: s.file, sha256: s.sha256 })),
  };
}

function versionOf(entries: readonly [string, RangeStatus][]): string {
  const h = createHash('sha256');
  for (const [p, v] of entries) h.update(`${p}\u0001${valueKey(v)}\n`);
  return h.digest('hex').slice(0, 16);
}

function nearestAncestor(map: Map<string, RangeStatus>, prefix: string): RangeStatus | undefined {
  for (let len = prefix.length - 1; len >= 1; len--) {
    const v = map.get(prefix.slice(0, len));
    if (v) return v;
  }
  return undefined;
}

/**
 * Makes the data smaller without changing what any lookup returns: a block that says the same
 * as the range around it is dropped, and ten sibling blocks that say the same thing become
 * their parent (when the parent has no entry of its own, every number under it is covered by
 * one of the ten, so the parent may stand for them). Ofcom lists most of the plan in
 * 1,000- or 10,000-number blocks, so whole free or protected codes shrink to one entry.
 */
export function compact(map: Map<string, RangeStatus>): void {
  const dropRedundant = () => {
    // Shortest first, so each block is compared with an ancestor already settled.
    for (const prefix of [...map.keys()].sort((a, b) => a.length - b.length)) {
      const own = map.get(prefix)!;
      const above = nearestAncestor(map, prefix);
      if (above && valueKey(above) === valueKey(own)) map.delete(prefix);
    }
  };
  dropRedundant();
  for (let changed = true; changed; ) {
    changed = false;
    const children = new Map<string, string[]>();
    for (const prefix of map.keys()) {
      if (prefix.length < 2) continue;
      const parent = prefix.slice(0, -1);
      const list = children.get(parent);
      if (list) list.push(prefix);
      else children.set(parent, [prefix]);
    }
    for (const [parent, kids] of children) {
      if (kids.length !== 10 || map.has(parent)) continue;
      const first = valueKey(map.get(kids[0]!)!);
      if (!kids.every((k) => valueKey(map.get(k)!) === first)) continue;
      map.set(parent, map.get(kids[0]!)!);
      for (const k of kids) map.delete(k);
      changed = true;
    }
  }
  dropRedundant();
}

/**
 * Why a caller ID in this range cannot be genuine, for the CLI_INVALID message; null when the
 * range is allocated (then the data raises no objection).
 */
export function unallocatedReason(range: RangeStatus | null | undefined): string | null {
  if (!range || range.status === 'allocated') return null;
  const holder = range.operator ? `; range holder ${range.operator}` : '';
  return `in a range Ofcom lists as ${range.status} (not allocated${holder})`;
}

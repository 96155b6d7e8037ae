import { parse as parseCsv } from 'csv-parse/sync';

/**
 * Ofcom's number-range files: every UK number block with its status and the provider it is
 * allocated to. Ofcom publishes them weekly on its "numbering data" page, one CSV per part
 * of the plan (S1 geographic 01/02, S3, S5, S7 mobile, S8, S9, and the sabc summary).
 *
 * Two layouts are in circulation, and the reader is driven by the header row so both work:
 *   current  `NMS Number Block: Number Block, Block Status, CP Name, (Geographic|Non Geo)
 *            Number Length, Allocation Date, Notes` - the block is the digits after the trunk 0,
 *            spaced as SABC D/DE F (`1134 96 0`);
 *   earlier  `SABC, D/DE, (F,) Status, Date, Communications Provider (or Operator), Number
 *            Length, Change, ...` - the block is split over the SABC, D/DE and F columns, and
 *            D/DE may be a run such as `0-9`.
 * Only the block, the status and the provider are read; lengths and dates are left to
 * libphonenumber and to the file itself.
 */

/** Ofcom's block statuses, reduced to what they mean for a caller ID. */
export const NUMBERING_STATUSES = ['allocated', 'free', 'protected', 'withdrawn', 'quarantined', 'reserved', 'designated', 'unavailable'] as const;
export type NumberingStatus = (typeof NUMBERING_STATUSES)[number];

export interface OfcomRange {
  /** National significant digits the block covers: the number without its trunk 0 (`1134960`). */
  prefix: string;
  status: NumberingStatus;
  /** The range holder (the provider it was allocated to; a ported number is served by another). */
  operator?: string;
}

export interface OfcomFile {
  source: string;
  /** Header names the reader used, as written in the file. */
  columns: { block: string[]; status: string; operator: string | null };
  ranges: (OfcomRange & { line: number })[];
  rejected: { line: number; error: string }[];
  rows: number;
}

export class OfcomFormatError extends Error {}

/**
 * `Allocated(Closed Range)` is allocated: "closed" only means no further blocks are handed out
 * in it. A status not listed here is rejected, line by line, rather than guessed: an unknown
 * word must never make a real number look unallocated (and calls from it blocked).
 */
export function normaliseStatus(raw: string): NumberingStatus | null {
  const s = raw.toLowerCase().replace(/[^a-z]/g, '');
  if (s === 'allocated' || s === 'allocatedclosedrange') return 'allocated';
  if (s === 'free' || s === 'freeforallocation') return 'free';
  if (s === 'protected') return 'protected';
  if (s === 'withdrawn') return 'withdrawn';
  if (s === 'quarantined' || s === 'quarantine') return 'quarantined';
  if (s.startsWith('reserved')) return 'reserved';
  if (s === 'designated') return 'designated';
  if (s === 'notdesignated' || s === 'unavailable' || s === 'unusable' || s === 'notinuse') return 'unavailable';
  return null;
}

const header = (h: string) => h.replace(/^\uFEFF/, '').toLowerCase().replace(/[^a-z0-9]/g, '');

// Aliases after `header()`; the first one present wins.
const BLOCK = ['nmsnumberblocknumberblock', 'nmsnumberblock', 'numberblock', 'numberrange', 'block'];
const SABC = ['sabc', 'sabccode', 'code'];
const DDE = ['dde', 'de', 'd', 'range'];
const F = ['f', 'subrange'];
const STATUS = ['blockstatus', 'status'];
const OPERATOR = ['cpname', 'communicationsprovider', 'communicationprovider', 'operator', 'provider', 'rangeholder'];

function find(headers: string[], aliases: string[]): number {
  for (const alias of aliases) {
    const i = headers.indexOf(alias);
    if (i !== -1) return i;
  }
  return -1;
}

/** Longest national significant number in the UK plan: 10 digits after the trunk 0. */
const PREFIX_RE = /^[1-9]\d{0,9}$/;
/** A run such as `0-9` in a D/DE cell expands to this many blocks at most. */
const MAX_RUN = 100;

/** A cell's digit runs: `96` -> [`96`]; `0-9` -> [`0`, ..., `9`]; empty -> [``]. */
function expand(cell: string): string[] | { error: string } {
  const v = cell.replace(/\s+/g, '');
  if (v === '') return [''];
  if (/^\d+$/.test(v)) return [v];
  const run = /^(\d+)-(\d+)$/.exec(v);
  if (!run || run[1]!.length !== run[2]!.length) return { error: `"${cell}" is not digits or a run of digits` };
  const from = Number(run[1]);
  const to = Number(run[2]);
  if (to < from || to - from >= MAX_RUN) return { error: `"${cell}" is not a usable run of digits` };
  const out: string[] = [];
  for (let n = from; n <= to; n++) out.push(String(n).padStart(run[1]!.length, '0'));
  return out;
}

/**
 * Reads one of Ofcom's CSV files. Throws OfcomFormatError when the header names no number
 * block or no status (not this format); a bad line is rejected with its line number and the
 * rest of the file is read.
 */
export function parseOfcomCsv(text: string, source = 'ofcom.csv'): OfcomFile {
  let records: { record: string[]; info: { lines: number } }[];
  try {
    // With `info`, each record comes with its line number; csv-parse's types do not say so.
    records = parseCsv(text, { bom: true, info: true, relax_column_count: true, relax_quotes: true, skip_empty_lines: true, trim: true, max_record_size: 65_536 }) as unknown as typeof records;
  } catch (err) {
    throw new OfcomFormatError(`${source}: not readable as CSV: ${(err as Error).message}`);
  }
  const head = records[0]?.record ?? [];
  const names = head.map(header);
  let block = find(names, BLOCK);
  if (block === -1) block = names.findIndex((n) => n.endsWith('numberblock'));
  const sabc = block === -1 ? find(names, SABC) : -1;
  const dde = sabc === -1 ? -1 : find(names, DDE);
  const f = sabc === -1 ? -1 : find(names, F);
  const status = find(names, STATUS);
  const operator = find(names, OPERATOR);
  if ((block === -1 && sabc === -1) || status === -1) {
    throw new OfcomFormatError(
      `${source}: the header names ${block === -1 && sabc === -1 ? 'no number block ("NMS Number Block: Number Block", or "SABC" with "D/DE")' : 'no status ("Block Status" or "Status")'}; ` +
        `it reads: ${head.slice(0, 10).join(', ') || '(empty)'}`,
    );
  }
  const blockIndexes = block !== -1 ? [block] : [sabc, dde, f].filter((i) => i !== -1);
  const blockColumns = blockIndexes.map((i) => head[i]!);

  const ranges: OfcomFile['ranges'] = [];
  const rejected: OfcomFile['rejected'] = [];
  for (const { record, info } of records.slice(1)) {
    const line = info.lines;
    const statusText = record[status] ?? '';
    if (statusText === '' && record.every((c) => c === '')) continue;
    const st = normaliseStatus(statusText);
    if (!st) {
      rejected.push({ line, error: `unknown status "${statusText.slice(0, 60)}"` });
      continue;
    }
    const parts = blockIndexes.map((i) => record[i] ?? '');
    let prefixes = [''];
    let bad: string | null = null;
    for (const [i, part] of parts.entries()) {
      // The combined block is spaced as Ofcom writes numbers (`1134 96 0`): only its digits count.
      const runs = expand(block !== -1 ? part.replace(/\D/g, '') : part);
      if ('error' in runs) {
        bad = `${blockColumns[i] ?? 'block'}: ${runs.error}`;
        break;
      }
      prefixes = prefixes.flatMap((p) => runs.map((r) => p + r));
    }
    if (bad) {
      rejected.push({ line, error: bad });
      continue;
    }
    const op = operator !== -1 ? (record[operator] ?? '').slice(0, 200) : '';
    for (const raw of prefixes) {
      const prefix = raw.startsWith('0') ? raw.slice(1) : raw;
      if (!PREFIX_RE.test(prefix)) {
        rejected.push({ line, error: `"${parts.join(' ').trim().slice(0, 40)}" is not a UK number block` });
        break;
      }
      ranges.push({ prefix, status: st, ...(op !== '' ? { operator: op } : {}), line });
    }
  }
  return {
    source,
    columns: { block: blockColumns, status: head[status]!, operator: operator !== -1 ? head[operator]! : null },
    ranges,
    rejected,
    rows: Math.max(0, records.length - 1),
  };
}

/**
 * Ofcom's files have been published both as UTF-8 (with a byte-order mark) and as Windows-1252;
 * a provider's name with an accent must come out right either way.
 */
export function decodeOfcomFile(bytes: Uint8Array): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return new TextDecoder('windows-1252').decode(bytes);
  }
}

import { parse as parseCsv } from 'csv-parse/sync';
import { ValidationError } from '../errors';
import { csvRecordToRow, readJsonRows, type ImportInput, type ImportRow } from './admin';
import { toFileBank, toFileEntry } from './format';
import type { RegistryEntry } from './model';
import { entryAt, type CompactRegistry } from './number-table';
import { Slicer } from './slicer';

/** Entries per JSON.parse when reading an import (as when reading the registry file). */
const JSON_BATCH = 1024;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

function invalidJson(detail: string): ValidationError {
  return new ValidationError('body', `body is not valid JSON: ${detail}`, { code: 'invalid_json' });
}

/**
 * Reads a JSON import (the registry file) from its bytes without one JSON.parse of the whole
 * body: a scan finds the `numbers` array of the top-level object and where each of its elements
 * ends, and the elements are parsed a thousand at a time, the event loop getting its turn
 * between slices. The rest of the document (the banks, any other member) is parsed in one piece
 * with the array emptied. Every byte is read by JSON.parse once, so a body is accepted exactly
 * when JSON.parse would accept it.
 */
export async function readJsonImport(bytes: Buffer): Promise<ImportInput> {
  const slicer = new Slicer();
  const rows: ImportRow[] = [];
  let depth = 0;
  /** Inside the top-level object, the next string is a member name. */
  let expectName = false;
  let name: string | null = null;
  let seenNumbers = false;
  /** The numbers array: where its `[` and `]` are, where the current batch starts. */
  let open = -1;
  let close = -1;
  let batchStart = -1;
  let batchCount = 0;
  let awaitingValue = false;

  const flush = (end: number, last: boolean) => {
    const text = bytes.toString('utf8', batchStart, end);
    let batch: unknown[];
    try {
      batch = JSON.parse(`[${text}]`) as unknown[];
    } catch (err) {
      throw invalidJson(`${(err as Error).message} (in numbers[${rows.length}..${rows.length + batchCount - 1}])`);
    }
    // An empty array has no element; anything else has as many as commas plus one.
    const expected = last && rows.length === 0 && batchCount === 1 && text.trim() === '' ? 0 : batchCount;
    if (batch.length !== expected) throw invalidJson(`an element of numbers is missing (in numbers[${rows.length}..${rows.length + batchCount - 1}])`);
    for (const raw of batch) rows.push({ line: rows.length + 1, raw });
    batchStart = end + 1;
    batchCount = 0;
  };

  let first = 0;
  while (first < bytes.length && (bytes[first] === 0x20 || bytes[first] === 0x0a || bytes[first] === 0x0d || bytes[first] === 0x09)) first++;
  if (bytes[first] !== 0x7b) return wholeDocument(bytes);

  let nextTick = 0;
  for (let i = first; i < bytes.length; i++) {
    if (i >= nextTick) {
      await slicer.tick();
      nextTick = i + 65536;
    }
    const c = bytes[i]!;
    if (c === QUOTE) {
      // Jump to the closing quote: one not preceded by an odd number of backslashes.
      let end = i;
      for (;;) {
        end = bytes.indexOf(QUOTE, end + 1);
        if (end < 0) throw invalidJson('a string is not terminated');
        let slashes = 0;
        while (bytes[end - 1 - slashes] === BACKSLASH) slashes++;
        if (slashes % 2 === 0) break;
      }
      if (depth === 1 && expectName) {
        try {
          name = JSON.parse(bytes.toString('utf8', i, end + 1)) as string;
        } catch (err) {
          throw invalidJson((err as Error).message);
        }
        expectName = false;
      }
      awaitingValue = false;
      i = end;
      continue;
    }
    if (c === 0x3a /* : */ && depth === 1) {
      awaitingValue = name === 'numbers';
      if (awaitingValue && seenNumbers) throw new ValidationError('numbers', '"numbers" appears more than once in the registry file');
      if (awaitingValue) seenNumbers = true;
      continue;
    }
    if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (awaitingValue && c === 0x5b && depth === 1) {
        open = i;
        batchStart = i + 1;
        batchCount = 1;
      }
      awaitingValue = false;
      depth++;
      if (depth === 1) expectName = true;
      continue;
    }
    if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      depth--;
      if (depth === 1 && open >= 0 && close < 0 && c === 0x5d) {
        flush(i, true);
        close = i;
        await slicer.tick();
      }
      if (depth < 0) throw invalidJson(`unexpected "${String.fromCharCode(c)}" at byte ${i}`);
      continue;
    }
    if (c === 0x2c /* , */) {
      if (depth === 1) expectName = true;
      else if (depth === 2 && open >= 0 && close < 0) {
        if (batchCount === JSON_BATCH) {
          flush(i, false);
          await slicer.tick();
        }
        batchCount++;
      }
      continue;
    }
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) awaitingValue = false;
  }

  if (open < 0 || close < 0) return wholeDocument(bytes);
  // The document with the numbers array emptied: JSON.parse checks all of it but the elements.
  let outline: unknown;
  try {
    outline = JSON.parse(bytes.toString('utf8', 0, open + 1) + bytes.toString('utf8', close));
  } catch (err) {
    throw invalidJson((err as Error).message);
  }
  const banks = (outline as { banks?: unknown }).banks;
  if (banks !== undefined && !Array.isArray(banks)) throw new ValidationError('banks', 'banks must be an array');
  return { banks: banks ?? null, rows, rejected: [] };
}

/** A body whose numbers are not an array: parsed whole, for the message that says what is wrong. */
function wholeDocument(bytes: Buffer): ImportInput {
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw invalidJson((err as Error).message);
  }
  return readJsonRows(doc);
}

/** Bytes of CSV per csv-parse call (about 3,000 lines). */
const CSV_SLICE_BYTES = 128 * 1024;

/**
 * Reads a CSV import a slice at a time. A slice ends at a line break outside quotes (quotes in
 * a quoted field are doubled, so an even count of quotes before a break means it ends a
 * record), so no record is cut in two; the header read from the first slice names the columns
 * of the others, and line numbers count from the top of the body.
 */
export async function readCsvImport(bytes: Buffer): Promise<ImportInput> {
  const slicer = new Slicer();
  const rows: ImportRow[] = [];
  const rejected: ImportInput['rejected'] = [];
  let columns: string[] | null = null;
  let start = 0;
  let linesBefore = 0;
  while (start < bytes.length) {
    const end = sliceEnd(bytes, start);
    let records: { record: Record<string, string>; info: { lines: number } }[];
    try {
      records = parseCsv(bytes.subarray(start, end), {
        columns: columns ?? ((h: string[]) => (columns = h.map((c) => c.trim()))),
        info: true,
        skip_empty_lines: true,
        trim: true,
        relax_column_count: true,
        bom: start === 0,
      });
    } catch (err) {
      const e = err as { lines?: number; message: string };
      throw new ValidationError('body', `CSV is malformed${e.lines ? ` at line ${e.lines + linesBefore}` : ''}: ${e.message}`, { code: 'invalid_csv' });
    }
    for (const { record, info } of records) {
      const row = csvRecordToRow(record, info.lines + linesBefore);
      if ('error' in row) rejected.push(row);
      else rows.push(row);
    }
    for (let i = bytes.indexOf(0x0a, start); i >= 0 && i < end; i = bytes.indexOf(0x0a, i + 1)) linesBefore++;
    start = end;
    await slicer.tick();
  }
  // CSV carries no banks: the import says nothing about them.
  return { banks: null, rows, rejected };
}

/** Where the slice from `start` ends: just past a line break outside quotes, or the end. */
function sliceEnd(bytes: Buffer, start: number): number {
  if (bytes.length - start <= CSV_SLICE_BYTES) return bytes.length;
  let quotes = 0;
  let counted = start;
  let at = start + CSV_SLICE_BYTES;
  for (;;) {
    const nl = bytes.indexOf(0x0a, at);
    if (nl < 0) return bytes.length;
    for (let q = bytes.indexOf(QUOTE, counted); q >= 0 && q < nl; q = bytes.indexOf(QUOTE, q + 1)) quotes++;
    counted = nl;
    if (quotes % 2 === 0) return nl + 1;
    at = nl + 1;
  }
}

/** Entries per chunk of an export. */
const EXPORT_CHUNK = 2000;

/**
 * The registry file of `view` (a bank's part when `bankId` is set), as chunks of text, made a
 * couple of thousand entries at a time as the response is read: a million-entry registry is
 * never one string. The view is the registry of one moment (its table is never changed in
 * place), whatever changes are made while the response is sent.
 */
export async function* exportChunks(view: CompactRegistry, bankId: string | null): AsyncGenerator<string> {
  const banks = bankId === null ? view.banks : view.banks.filter((b) => b.id === bankId);
  yield `{"banks":${JSON.stringify(banks.map(toFileBank))},"numbers":[`;
  const { numbers } = view;
  const ofBank = numbers.templates.map((t) => bankId === null || t.bankId === bankId);
  let parts: string[] = [];
  let first = true;
  const out = (e: RegistryEntry) => parts.push(JSON.stringify(toFileEntry(e)));
  const chunk = () => {
    const text = (first ? '\n' : ',\n') + parts.join(',\n');
    first = false;
    parts = [];
    return text;
  };
  for (let i = 0; i < numbers.keys.length; i++) {
    if (!ofBank[numbers.templateIds[i]!]) continue;
    out(entryAt(numbers, i));
    if (parts.length === EXPORT_CHUNK) {
      yield chunk();
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }
  for (const e of view.prefixes) if (bankId === null || e.bankId === bankId) out(e);
  if (parts.length) yield chunk();
  yield '\n]}\n';
}

import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

/**
 * Finds the outline of a large JSON document without building it: where each member of the
 * top-level object has its name and value, and where each element of a member's array ends.
 * The values are then read with JSON.parse in small pieces (see read-document.ts), so a 66 MB
 * registry is never one string, one tree of objects, nor even one buffer: the document is read
 * through a window of a megabyte, and the pieces again by position.
 *
 * The scan checks the grammar of the top-level object and of the one array it outlines; inside
 * a value it only tracks strings (with their escapes) and bracket depth, leaving the rest to
 * JSON.parse, which reads every member value and every array element (with the commas between
 * them). So a document is accepted exactly when JSON.parse would accept it, provided the caller
 * parses every piece.
 */

/** Bytes by position: a file (read as needed) or a buffer. */
export interface ByteSource {
  readonly size: number;
  /** `length` bytes from `position`. Valid until the next read. */
  read(position: number, length: number): Buffer;
}

export function bufferSource(buf: Buffer): ByteSource {
  return { size: buf.length, read: (position, length) => buf.subarray(position, position + length) };
}

/** A file as a ByteSource, read into one buffer that grows to the largest read. */
export function openFileSource(path: string): ByteSource & { close(): void } {
  const fd = openSync(path, 'r');
  let size: number;
  try {
    size = fstatSync(fd).size;
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  let buf = Buffer.alloc(0);
  return {
    size,
    read(position, length) {
      if (buf.length < length) buf = Buffer.allocUnsafe(Math.max(length, 64 * 1024));
      let got = 0;
      while (got < length) {
        const n = readSync(fd, buf, got, length - got, position + got);
        if (n === 0) throw new Error(`the file ended at byte ${position + got} while it was being read: was it changed meanwhile?`);
        got += n;
      }
      return buf.subarray(0, length);
    },
    close: () => closeSync(fd),
  };
}

export class JsonScanError extends Error {
  constructor(
    readonly reason: string,
    /** Byte offset in the document. */
    readonly offset: number,
  ) {
    super(reason);
    this.name = 'JsonScanError';
  }
}

/** One member of the top-level object, as byte offsets (ends exclusive). */
export interface Member {
  name: string;
  /** Where the value is. */
  start: number;
  end: number;
  /** For the member whose elements are wanted, when its value is an array: where its `[` is, and where each element ends (at its `,` or the `]`). */
  array: { open: number; ends: Float64Array } | null;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;

/** A window of a megabyte: reading it costs well under a millisecond, and it stays in cache. */
const WINDOW = 1 << 20;

function isSpace(c: number | undefined): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

function describe(c: number): string {
  return c >= 0x21 && c < 0x7f ? `"${String.fromCharCode(c)}"` : `byte 0x${c.toString(16).padStart(2, '0')}`;
}

/**
 * Skips one value starting at `buf[i]` and returns where it ends, or -1 when the buffer ends
 * first (`final`: the buffer ends where the document does). Small on purpose: it runs once per
 * registry entry and is optimised after a few of them, where one loop over the whole document
 * would run unoptimised for a long while (the start is measured cold).
 */
function skipValue(buf: Buffer, i: number, final: boolean): number {
  const n = buf.length;
  const first = buf[i]!;
  if (first === QUOTE) return skipString(buf, i);
  if (first === OPEN_BRACE || first === OPEN_BRACKET) {
    let depth = 0;
    for (let j = i; j < n; j++) {
      const c = buf[j]!;
      if (c === QUOTE) {
        j = skipString(buf, j) - 1;
        if (j < 0) return -1;
      } else if (c === OPEN_BRACE || c === OPEN_BRACKET) depth++;
      else if ((c === CLOSE_BRACE || c === CLOSE_BRACKET) && --depth === 0) return j + 1;
    }
    return -1;
  }
  // A number or a literal: up to the next delimiter. JSON.parse checks what it is.
  let j = i;
  while (j < n && buf[j] !== COMMA && buf[j] !== CLOSE_BRACE && buf[j] !== CLOSE_BRACKET && !isSpace(buf[j])) j++;
  if (j === i) throw new JsonScanError(`unexpected ${describe(first)} where a value was expected`, -1);
  return j < n || final ? j : -1;
}

/** `i` is at the opening quote; returns the offset past the closing one, or -1. */
function skipString(buf: Buffer, i: number): number {
  const n = buf.length;
  for (let j = i + 1; j < n; j++) {
    const c = buf[j];
    if (c === QUOTE) return j + 1;
    if (c === BACKSLASH) j++; // whatever is escaped, it does not end the string
  }
  return -1;
}

/**
 * The document through a window that moves forward (and grows for a value larger than it).
 * Every byte is handed to `onBytes` once, in order, as it first comes into the window.
 */
class Window {
  buf: Buffer = Buffer.alloc(0);
  base = 0;
  private seen = 0;

  constructor(
    private readonly src: ByteSource,
    private readonly bytes: number,
    private readonly onBytes?: (bytes: Buffer) => void,
  ) {}

  /** The window from `from`, at least `least` bytes long where the document has them. */
  private load(from: number, least: number): void {
    if (from > this.seen) throw new Error(`json-scan: bytes ${this.seen}..${from} were skipped unread`);
    this.base = from;
    this.buf = this.src.read(from, Math.min(Math.max(least, this.bytes), this.src.size - from));
    const end = from + this.buf.length;
    if (end > this.seen) {
      this.onBytes?.(this.buf.subarray(this.seen - from));
      this.seen = end;
    }
  }

  /** The byte at `at`, or undefined at the document's end. */
  byte(at: number): number | undefined {
    if (at < this.base || at >= this.base + this.buf.length) {
      if (at >= this.src.size) return undefined;
      this.load(at, this.bytes);
    }
    return this.buf[at - this.base];
  }

  space(at: number): number {
    while (isSpace(this.byte(at))) at++;
    return at;
  }

  /** Runs `skip` from `at` (see skipValue), reading on as long as it needs; `what` names the value for a message. */
  skip(at: number, skip: (buf: Buffer, i: number, final: boolean) => number, what: string): number {
    if (this.byte(at) === undefined) throw new JsonScanError(`the document ends where ${what} was expected`, at);
    for (;;) {
      const final = this.base + this.buf.length >= this.src.size;
      let end: number;
      try {
        end = skip(this.buf, at - this.base, final);
      } catch (err) {
        if (err instanceof JsonScanError && err.offset < 0) throw new JsonScanError(err.reason, at);
        throw err;
      }
      if (end >= 0) return this.base + end;
      if (final) throw new JsonScanError(`the document ends inside ${what}`, this.src.size);
      this.load(at, 2 * (this.base + this.buf.length - at));
    }
  }

  /** The text of [start, end), which is in the window. */
  text(start: number, end: number): string {
    return this.buf.toString('utf8', start - this.base, end - this.base);
  }

  expected(at: number, what: string): never {
    const c = this.byte(at);
    throw new JsonScanError(c === undefined ? `the document ends where ${what} was expected` : `expected ${what}, found ${describe(c)}`, at);
  }
}

/** Element ends, growing by doubling. */
class Ends {
  private a = new Float64Array(1024);
  count = 0;
  push(offset: number): void {
    if (this.count === this.a.length) {
      const bigger = new Float64Array(this.count * 2);
      bigger.set(this.a);
      this.a = bigger;
    }
    this.a[this.count++] = offset;
  }
  done(): Float64Array {
    return this.a.subarray(0, this.count);
  }
}

/**
 * The top-level object's members, in order, with the outline of the array `elementsOf` (the
 * registry's `numbers`); or null when the document is not an object (it may still be valid JSON:
 * the caller decides what to say). `onBytes` sees every byte once, in order, if the scan gets to
 * the end (the registry's content hash is made from it). `windowBytes` is for tests.
 */
export function scanOutline(src: ByteSource, elementsOf: string, onBytes?: (bytes: Buffer) => void, windowBytes = WINDOW): Member[] | null {
  const w = new Window(src, windowBytes, onBytes);
  let at = w.space(0);
  if (w.byte(at) !== OPEN_BRACE) return null;
  const members: Member[] = [];
  at = w.space(at + 1);
  if (w.byte(at) === CLOSE_BRACE) at++;
  else {
    for (;;) {
      if (w.byte(at) !== QUOTE) w.expected(at, 'a member name');
      const nameEnd = w.skip(at, skipString, 'a string');
      let name: string;
      try {
        name = JSON.parse(w.text(at, nameEnd)) as string;
      } catch (err) {
        throw new JsonScanError(`${(err as Error).message} (in a member name)`, at);
      }
      at = w.space(nameEnd);
      if (w.byte(at) !== COLON) w.expected(at, '":"');
      const start = w.space(at + 1);
      const array = name === elementsOf && w.byte(start) === OPEN_BRACKET ? scanArray(w, start, name) : null;
      const end = array ? array.end : w.skip(start, skipValue, `the value of ${name}`);
      members.push({ name, start, end, array: array && { open: start, ends: array.ends } });
      at = w.space(end);
      if (w.byte(at) === COMMA) {
        at = w.space(at + 1);
        continue;
      }
      if (w.byte(at) === CLOSE_BRACE) {
        at++;
        break;
      }
      w.expected(at, '"," or "}"');
    }
  }
  at = w.space(at);
  const c = w.byte(at);
  if (c !== undefined) throw new JsonScanError(`unexpected ${describe(c)} after the end of the document`, at);
  return members;
}

/** `open` is at the array's `[`: where each element ends (at its delimiter), and the offset past the `]`. */
function scanArray(w: Window, open: number, name: string): { ends: Float64Array; end: number } {
  const ends = new Ends();
  let at = w.space(open + 1);
  if (w.byte(at) === CLOSE_BRACKET) return { ends: ends.done(), end: at + 1 };
  for (;;) {
    try {
      at = w.space(w.skip(at, skipValue, 'a value'));
    } catch (err) {
      if (err instanceof JsonScanError) throw new JsonScanError(`${err.reason} (in ${name}[${ends.count}])`, err.offset);
      throw err;
    }
    const c = w.byte(at);
    if (c === COMMA || c === CLOSE_BRACKET) ends.push(at);
    if (c === CLOSE_BRACKET) return { ends: ends.done(), end: at + 1 };
    if (c !== COMMA) w.expected(at, `"," or "]" after ${name}[${ends.count}]`);
    at = w.space(at + 1);
  }
}

/** The text of bytes [start, end). */
export function textOf(src: ByteSource, start: number, end: number): string {
  return src.read(start, end - start).toString('utf8');
}

/** `line 3, column 17` (1-based; the column counts bytes) for an offset, for messages. */
export function lineAndColumn(src: ByteSource, offset: number): string {
  let line = 1;
  let lineStart = 0;
  for (let base = 0; base < offset; base += WINDOW) {
    const buf = src.read(base, Math.min(WINDOW, offset - base));
    for (let i = buf.indexOf(0x0a); i !== -1; i = buf.indexOf(0x0a, i + 1)) {
      line++;
      lineStart = base + i + 1;
    }
  }
  return `line ${line}, column ${offset - lineStart + 1}`;
}

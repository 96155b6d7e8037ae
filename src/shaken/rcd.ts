import { canonicalJson } from './canonical-json';
import { createHash } from 'node:crypto';

/**
 * Rich call data (RFC 9795) carried in a `shaken` PASSporT: the `rcd` claim (`nam`, `jcd` an
 * inline jCard, `jcl` a jCard by reference, `icn` an icon), the call reason `crn`, and the
 * integrity claim `rcdi`. Pure: the one piece of I/O, fetching a `jcl` jCard, is done by the
 * verifier, which hands the bytes (or their absence) to `finishRichCallData`.
 *
 * Only a name and a call reason are ever taken from it, and both end up in SIP headers and on
 * phone screens: they are cleaned (cleanDisplayText) and bounded before anyone sees them.
 */

/** What a verified PASSporT's rich call data says, cleaned and bounded. */
export interface RichCallData {
  name?: string;
  callReason?: string;
}

/** The raw claims as the payload carried them; read by passport.ts, judged here. */
export interface RawRichClaims {
  rcd?: unknown;
  crn?: unknown;
  rcdi?: unknown;
}

export interface ParsedRichClaims {
  rcd: Record<string, unknown>;
  nam?: string;
  crn?: string;
  jcd?: unknown[];
  /** The jCard's URL: fetched when it can give something (a name, or content rcdi covers). */
  jcl?: string;
  /** pointer -> digest, from `rcdi`. */
  rcdi: Map<string, Digest>;
}

interface Digest {
  algorithm: 'sha256' | 'sha384' | 'sha512';
  value: Buffer;
}

/** Longest name shown (code points): a display name, not a paragraph. */
export const MAX_DISPLAY_NAME = 64;
/** Longest call reason kept (code points). */
export const MAX_CALL_REASON = 128;
/** Longest raw string read before cleaning: anything longer is not a name but an attack. */
const MAX_RAW_TEXT = 2048;
/** rcdi entries read at most: each costs a digest. */
const MAX_RCDI_ENTRIES = 16;

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * Text fit for a SIP display name and a phone screen: control and format characters (C0, C1,
 * DEL, zero-width and bidirectional overrides, line and paragraph separators) go, as do the
 * characters that would end or escape a quoted display name or a name-addr (`"`, `\`, `<`,
 * `>`); runs of white space become one space; the result is trimmed and cut to `max` code
 * points. Undefined when nothing is left.
 */
export function cleanDisplayText(raw: string, max: number): string | undefined {
  const cleaned = raw
    .normalize('NFC')
    .replace(/[\p{Cc}\p{Cf}\u2028\u2029]/gu, ' ')
    .replace(/["\\<>]/g, '')
    .replace(/\s+/gu, ' ')
    .trim();
  if (cleaned === '') return undefined;
  const points = [...cleaned];
  return points.length > max ? points.slice(0, max).join('').trimEnd() : cleaned;
}

function parseDigest(v: unknown): Digest | null {
  if (typeof v !== 'string') return null;
  const m = /^(sha256|sha384|sha512)-([A-Za-z0-9+/]+={0,2})$/.exec(v);
  if (!m) return null;
  const value = Buffer.from(m[2]!, 'base64');
  const size = { sha256: 32, sha384: 48, sha512: 64 }[m[1] as Digest['algorithm']];
  return value.length === size ? { algorithm: m[1] as Digest['algorithm'], value } : null;
}

/** RFC 6901 tokens of a JSON pointer; null when it is not one ("" is the whole document, never meant here). */
export function pointerTokens(pointer: string): string[] | null {
  if (!pointer.startsWith('/')) return null;
  const tokens = pointer.slice(1).split('/');
  if (tokens.some((t) => /~[^01]|~$/.test(t))) return null;
  return tokens.map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function resolvePointer(doc: unknown, tokens: readonly string[]): { found: boolean; value?: unknown } {
  let cur: unknown = doc;
  for (const t of tokens) {
    if (Array.isArray(cur)) {
      if (!/^(0|[1-9]\d*)$/.test(t) || Number(t) >= cur.length) return { found: false };
      cur = cur[Number(t)];
    } else if (isObject(cur) && Object.prototype.hasOwnProperty.call(cur, t)) {
      cur = cur[t];
    } else {
      return { found: false };
    }
  }
  return { found: true, value: cur };
}

function digestMatches(d: Digest, content: Buffer | string): boolean {
  return createHash(d.algorithm).update(content).digest().equals(d.value);
}

/**
 * Reads the rich call data claims. Null when they are malformed (RCD_INVALID): an `rcd` that is
 * not an object, a member of the wrong type, a `jcl` that is not an https URL (http too when
 * `allowInsecure`), an `rcdi` that is not an object of JSON pointers to SRI-style digests
 * (`sha256-<base64>`), or `rcdi` without `rcd`.
 */
export function parseRichClaims(raw: RawRichClaims, allowInsecure = false): ParsedRichClaims | null {
  const { rcd, crn, rcdi } = raw;
  if (rcd === undefined && rcdi !== undefined) return null;
  if (rcd !== undefined && !isObject(rcd)) return null;
  const out: ParsedRichClaims = { rcd: rcd ?? {}, rcdi: new Map() };
  const text = (v: unknown) => typeof v === 'string' && v.length <= MAX_RAW_TEXT;
  if (crn !== undefined) {
    if (!text(crn)) return null;
    out.crn = crn as string;
  }
  if (isObject(rcd)) {
    if (rcd.nam !== undefined) {
      if (!text(rcd.nam)) return null;
      out.nam = rcd.nam as string;
    }
    if (rcd.jcd !== undefined) {
      if (!Array.isArray(rcd.jcd)) return null;
      out.jcd = rcd.jcd;
    }
    if (rcd.jcl !== undefined) {
      if (!text(rcd.jcl) || !isFetchableUrl(rcd.jcl as string, allowInsecure)) return null;
      out.jcl = rcd.jcl as string;
    }
    // RFC 9795: a jCard comes inline or by reference, never both.
    if (out.jcd !== undefined && out.jcl !== undefined) return null;
    if (rcd.icn !== undefined && !text(rcd.icn)) return null;
  }
  if (rcdi !== undefined) {
    if (!isObject(rcdi)) return null;
    const entries = Object.entries(rcdi);
    if (entries.length > MAX_RCDI_ENTRIES) return null;
    for (const [pointer, value] of entries) {
      const digest = parseDigest(value);
      if (pointerTokens(pointer) === null || digest === null) return null;
      out.rcdi.set(pointer, digest);
    }
  }
  return out;
}

function isFetchableUrl(s: string, allowInsecure: boolean): boolean {
  try {
    const u = new URL(s);
    return u.protocol === 'https:' || (allowInsecure && u.protocol === 'http:');
  } catch {
    return false;
  }
}

/**
 * Whether the jCard behind `jcl` must be fetched: when rcdi covers it (its integrity can only
 * be checked with it), or when it is the only source of a name.
 */
export function needsJcl(p: ParsedRichClaims): boolean {
  return p.jcl !== undefined && (p.rcdi.has('/jcl') || p.nam === undefined);
}

/** The `fn` (formatted name) of a jCard (RFC 7095: ["vcard", [[name, params, type, value], ...]]). */
export function jCardName(card: unknown): string | undefined {
  if (!Array.isArray(card) || card[0] !== 'vcard' || !Array.isArray(card[1])) return undefined;
  for (const prop of card[1] as unknown[]) {
    if (Array.isArray(prop) && prop[0] === 'fn' && typeof prop[3] === 'string' && prop[3].length <= MAX_RAW_TEXT) return prop[3];
  }
  return undefined;
}

function parseJCard(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
}

/**
 * Checks `rcdi` and reads the name and call reason. `jclBody` is the fetched jCard: null when
 * it was needed and could not be had, undefined when it was not fetched.
 *
 * What each rcdi pointer (RFC 6901, into the `rcd` claim) covers:
 * - `/jcl`: the bytes of the referenced jCard, as fetched; unfetchable content it covers fails.
 * - a pointer to a URL whose content is never fetched here (`/icn`, a photo or logo inside a jCard:
 *   `/jcl/...`, `/jcd/...` naming a URI): nothing shown comes from that content, so its digest
 *   is not checked.
 * - any other pointer (`/nam`, `/jcd`, a member of the inline jCard): the JCS canonical JSON
 *   (RFC 8785) of the value it points to. A pointer to nothing fails.
 *
 * `ok: false` is RCD_INVALID: nothing of the rich call data may be shown.
 */
export function finishRichCallData(p: ParsedRichClaims, jclBody: Buffer | null | undefined): { ok: true; rcd?: RichCallData } | { ok: false } {
  for (const [pointer, digest] of p.rcdi) {
    const tokens = pointerTokens(pointer)!;
    if (tokens[0] === 'jcl') {
      if (tokens.length > 1) continue;
      if (p.jcl === undefined || !jclBody || !digestMatches(digest, jclBody)) return { ok: false };
      continue;
    }
    if (tokens[0] === 'icn' && tokens.length === 1) {
      if (p.rcd.icn === undefined) return { ok: false };
      continue;
    }
    const target = resolvePointer(p.rcd, tokens);
    if (!target.found) return { ok: false };
    if (tokens[0] === 'jcd' && typeof target.value === 'string' && /^https?:/i.test(target.value)) continue;
    if (!digestMatches(digest, canonicalJson(target.value))) return { ok: false };
  }

  let name = p.nam;
  if (name === undefined && p.jcd !== undefined) name = jCardName(p.jcd);
  if (name === undefined && jclBody) {
    const card = parseJCard(jclBody);
    name = jCardName(card);
    // A jCard the signer vouched for (rcdi) that is no jCard is malformed rich call data.
    if (card === undefined && p.rcdi.has('/jcl')) return { ok: false };
  }
  const out: RichCallData = {};
  const cleanName = name !== undefined ? cleanDisplayText(name, MAX_DISPLAY_NAME) : undefined;
  if (cleanName !== undefined) out.name = cleanName;
  const reason = p.crn !== undefined ? cleanDisplayText(p.crn, MAX_CALL_REASON) : undefined;
  if (reason !== undefined) out.callReason = reason;
  return out.name !== undefined || out.callReason !== undefined ? { ok: true, rcd: out } : { ok: true };
}

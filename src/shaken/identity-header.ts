import type { IdentityEntry, IdentityKind } from './types';

export type { IdentityEntry, IdentityKind } from './types';

/**
 * SIP Identity header values (RFC 8224 section 4):
 *   Identity: <compact JWS> ;info=<https://cert.example/sp.pem> ;alg=ES256 ;ppt=shaken
 * A header may carry several identities joined by commas, and a request several headers.
 */


export interface ParseLimits {
  /** Identities beyond this many are not verified (and make the call MALFORMED): each may cost a certificate fetch. */
  maxIdentities?: number;
  /** Longest identity accepted, in characters. */
  maxLength?: number;
}

// One shaken PASSporT and a div PASSporT per diversion (RFC 8946): a real call has two or
// three. Every one costs an ES256 check, so the cap is a cost bound as much as a sanity one.
const DEFAULT_MAX_IDENTITIES = 5;
const DEFAULT_MAX_LENGTH = 16 * 1024;
// Three base64url parts; the signature may be empty only so that `alg: none` is reported as
// UNSUPPORTED_ALG rather than MALFORMED. Header and payload must be present: the RFC 8224
// compact form (empty payload rebuilt from SIP) needs SIP context this service does not get.
const JWS_RE = /^([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]*)$/;

/**
 * Splits on `sep` where it is outside `<...>` and outside double quotes (with backslash escapes
 * inside quotes), so commas and semicolons inside an info URI or a quoted value do not split.
 */
export function splitOutside(value: string, sep: ',' | ';'): string[] {
  const out: string[] = [];
  // Jump from one special character to the next: the base64url token between them is most of
  // the header, and walking it one character at a time was the parser's main cost.
  const special = sep === ',' ? /[\\",<>]/g : /[\\";<>]/g;
  let inQuote = false;
  let inAngle = false;
  let start = 0;
  for (let m = special.exec(value); m !== null; m = special.exec(value)) {
    const c = m[0];
    if (inQuote) {
      if (c === '\\') special.lastIndex++;
      else if (c === '"') inQuote = false;
    } else if (c === '"') inQuote = true;
    else if (c === '<') inAngle = true;
    else if (c === '>') inAngle = false;
    else if (c === sep && !inAngle) {
      out.push(value.slice(start, m.index));
      start = m.index + 1;
    }
  }
  out.push(value.slice(start));
  return out;
}

function unquote(v: string): string {
  const t = v.trim();
  if (t.length >= 2 && t.startsWith('"') && t.endsWith('"')) return t.slice(1, -1).replace(/\\(.)/g, '$1');
  if (t.startsWith('<') && t.endsWith('>')) return t.slice(1, -1).trim();
  return t;
}

// One signer sends the same header (same x5u) on every call: decoding it once saves a
// base64 decode and a JSON.parse per call. Bounded so that varied junk cannot grow it.
const headerMemo = new Map<string, Record<string, unknown> | undefined>();
const HEADER_MEMO_MAX = 1024;

function decodeHeader(part: string): Record<string, unknown> | undefined {
  if (headerMemo.has(part)) return headerMemo.get(part);
  const header = decodeJsonObject(part);
  if (header) Object.freeze(header);
  if (headerMemo.size >= HEADER_MEMO_MAX) headerMemo.clear();
  headerMemo.set(part, header);
  return header;
}

function decodeJsonObject(part: string): Record<string, unknown> | undefined {
  // A base64url length of 1 mod 4 cannot come from any byte string; Buffer would silently drop the extra character.
  if (part.length % 4 === 1) return undefined;
  try {
    const v: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function kindOf(ppt: string | undefined): IdentityKind {
  return ppt === 'shaken' ? 'shaken' : ppt === 'div' ? 'div' : 'other';
}

/** Parses one identity (token plus parameters). Never throws. */
export function parseIdentity(raw: string, maxLength = DEFAULT_MAX_LENGTH): IdentityEntry {
  // SIP allows folded header lines; folding whitespace is just whitespace.
  const value = (raw.includes('\n') ? raw.replace(/\r?\n[ \t]+/g, ' ') : raw).trim();
  if (value.length > maxLength) return { kind: 'shaken', token: '', errors: ['MALFORMED'] };
  const [tokenPart = '', ...paramParts] = splitOutside(value, ';');
  const entry: IdentityEntry = { kind: 'other', token: tokenPart.trim(), errors: [] };
  for (const p of paramParts) {
    const eq = p.indexOf('=');
    const name = (eq < 0 ? p : p.slice(0, eq)).trim().toLowerCase();
    const val = eq < 0 ? '' : unquote(p.slice(eq + 1));
    // The first occurrence wins, so a second `info` appended downstream cannot override the original.
    if (name === 'info' && entry.info === undefined) entry.info = val;
    else if (name === 'alg' && entry.alg === undefined) entry.alg = val;
    else if (name === 'ppt' && entry.ppt === undefined) entry.ppt = val.toLowerCase();
  }

  const m = JWS_RE.exec(entry.token);
  if (m) {
    entry.signingInput = `${m[1]}.${m[2]}`;
    entry.payloadPart = m[2];
    entry.signaturePart = m[3];
    entry.header = decodeHeader(m[1]!);
  }
  const headerPpt = typeof entry.header?.ppt === 'string' ? entry.header.ppt.toLowerCase() : undefined;

  if (entry.ppt !== undefined) entry.kind = kindOf(entry.ppt);
  else if (entry.header) entry.kind = kindOf(headerPpt);
  else entry.kind = 'shaken';

  if (!m || !entry.header) entry.errors.push('MALFORMED');
  if (entry.info === undefined || entry.info === '') entry.errors.push('MALFORMED');
  // The parameter is unsigned; a header that says otherwise than the signed ppt is inconsistent.
  if (entry.ppt !== undefined && headerPpt !== undefined && entry.ppt !== headerPpt) entry.errors.push('MALFORMED');
  if (entry.alg !== undefined && entry.alg !== 'ES256') entry.errors.push('UNSUPPORTED_ALG');
  entry.errors = [...new Set(entry.errors)];
  return entry;
}

/**
 * Every identity in the header value(s), in order. Empty elements (a trailing comma, an empty
 * header) are skipped. Identities beyond `maxIdentities` are dropped and replaced by one
 * MALFORMED `shaken` entry, so a flood of identities cannot make one call fetch many URLs.
 */
export function parseIdentityHeaders(input: string | readonly string[], limits: ParseLimits = {}): IdentityEntry[] {
  const maxIdentities = limits.maxIdentities ?? DEFAULT_MAX_IDENTITIES;
  const values = typeof input === 'string' ? [input] : input;
  const out: IdentityEntry[] = [];
  let dropped = false;
  for (const value of values) {
    if (typeof value !== 'string') continue;
    for (const piece of splitOutside(value, ',')) {
      if (piece.trim() === '') continue;
      if (out.length >= maxIdentities) {
        dropped = true;
        continue;
      }
      out.push(parseIdentity(piece, limits.maxLength));
    }
  }
  if (dropped) out.push({ kind: 'shaken', token: '', errors: ['MALFORMED'] });
  return out;
}

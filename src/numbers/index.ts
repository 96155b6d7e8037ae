import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js/max';
import { LRUCache } from 'lru-cache';
import { NumberClassifier } from './classify';
import { lookupShortCode, type ShortCode } from './short-codes';

export type { ShortCode } from './short-codes';

/**
 * One normalised description of a number as it arrived on a call, whatever its form:
 * E.164, national, `tel:` or `sip:`/`sips:` URI, withheld markers or a short code.
 */
export interface PhoneNumber {
  /** E.164 (`+442079460123`); null when withheld, unparseable or a short code. */
  e164: string | null;
  /** A valid, diallable number or a recognised short code. */
  valid: boolean;
  withheld: boolean;
  /** libphonenumber-js type (`FIXED_LINE`, `MOBILE`, `PREMIUM_RATE`, ...), or `SHORT_CODE` / `EMERGENCY`. */
  type?: string;
  /** ISO 3166-1 alpha-2 of the number's country. */
  country?: string;
  shortCode?: ShortCode;
}

const WITHHELD_WORDS = new Set(['anonymous', 'unavailable', 'withheld', 'private', 'restricted', 'unknown']);

/** Longer than any real number or URI user part a switch sends; refuses work on junk. */
const MAX_NUMBER_CHARS = 64;

/**
 * Pulls the number out of the contract's input forms. Returns the bare number text (digits,
 * a leading `+`, visual separators) or a withheld marker word.
 */
export function extractNumberText(input: string): string {
  let s = input.trim();
  // `"Display" <sip:...>`: keep what is inside the angle brackets.
  const lt = s.indexOf('<');
  if (lt !== -1) {
    const gt = s.indexOf('>', lt);
    s = s.slice(lt + 1, gt === -1 ? undefined : gt).trim();
  }
  const lower = s.toLowerCase();
  if (lower.startsWith('sip:') || lower.startsWith('sips:')) {
    const rest = s.slice(lower.startsWith('sip:') ? 4 : 5);
    const at = rest.indexOf('@');
    // The user part may carry RFC 4904 parameters (`;npdi`, `;rn=...`): the number comes first.
    s = (at === -1 ? rest : rest.slice(0, at)).split(';')[0] ?? '';
    s = safeDecode(s);
  } else if (lower.startsWith('tel:')) {
    const [num = '', ...params] = s.slice(4).split(';');
    s = num;
    // A local number with a global phone-context (`tel:7946 0123;phone-context=+44-20`) is E.164
    // once the context's digits are put in front of it (RFC 3966 section 5.1.5).
    if (!s.trim().startsWith('+')) {
      const ctx = params.find((p) => p.toLowerCase().startsWith('phone-context='));
      const value = ctx?.slice('phone-context='.length) ?? '';
      if (value.startsWith('+')) s = value + s;
    }
  }
  return s.trim();
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** One for the process: it compiles each numbering plan's patterns the first time it meets it. */
const classifier = new NumberClassifier();

/** Reads a number in any of the contract's forms; validity and type come from one walk (classify.ts). */
export function parseNumber(input: string, defaultCountry: string): PhoneNumber {
  if (input.length > MAX_NUMBER_CHARS * 4) return { e164: null, valid: false, withheld: false };
  // An empty field is a withheld caller ID; an empty URI user part (`sip:@host`) is malformed.
  if (input.trim() === '') return { e164: null, valid: false, withheld: true };
  const text = extractNumberText(input);
  if (WITHHELD_WORDS.has(text.toLowerCase())) return { e164: null, valid: false, withheld: true };

  // Caller IDs are digits; letters would let libphonenumber read vanity words as digits.
  if (text.length > MAX_NUMBER_CHARS || !/^\+?[\d\s().\-/]+$/.test(text)) {
    return { e164: null, valid: false, withheld: false };
  }
  const digits = text.replace(/\D/g, '');
  if (!text.startsWith('+') && digits.length <= 6) {
    const shortCode = lookupShortCode(digits, defaultCountry);
    if (shortCode) {
      return {
        e164: null,
        valid: true,
        withheld: false,
        type: shortCode.emergency ? 'EMERGENCY' : 'SHORT_CODE',
        country: defaultCountry,
        shortCode,
      };
    }
  }
  // `+` and digits, as switches send caller IDs, are read without the library's full parse: it
  // costs ten times more, mostly in building the same regular expressions again (see classify.ts).
  const parsed =
    (text.charCodeAt(0) === 0x2b && digits.length === text.length - 1 ? classifier.readInternational(digits) : undefined) ??
    parsePhoneNumberFromString(text, defaultCountry as CountryCode);
  if (!parsed) return { e164: null, valid: false, withheld: false };
  const { valid, type } = classifier.classify(parsed);
  return {
    e164: `+${parsed.countryCallingCode}${parsed.nationalNumber}`,
    valid,
    withheld: false,
    ...(type ? { type } : {}),
    ...(parsed.country ? { country: parsed.country } : {}),
  };
}

/**
 * Why a number must never be presented as caller ID, following Ofcom's guidance on CLI
 * facilities: a presentation number must be a valid, diallable number that does not connect
 * to a premium-rate or revenue-sharing service, and network-only or service codes are not
 * numbers a person can call back. Returns null when the number may be presented.
 */
export function cliRestriction(n: PhoneNumber): string | null {
  if (n.shortCode) {
    if (n.shortCode.emergency) return `${n.shortCode.code} is an emergency number`;
    if (n.shortCode.code === '159') return '159 is the banks\' fraud short code and is never a caller ID';
    return `${n.shortCode.code} is a short code (${n.shortCode.service}), not a caller ID`;
  }
  if (!n.e164?.startsWith('+44')) return null;
  const national = n.e164.slice(3);
  if (national.startsWith('9')) return 'UK premium-rate numbers (09) must not be presented as caller ID';
  if (/^87[0-3]/.test(national)) return 'UK revenue-sharing numbers (0870-0873) must not be presented as caller ID';
  if (national.startsWith('8979')) return '08979 is reserved as a network-number placeholder and is not diallable';
  return null;
}

/** UK numbers that a call from abroad should not carry (Ofcom's 2024 guidance on spoofed UK CLIs). */
export function ukCategory(n: PhoneNumber): 'domestic' | 'mobile' | null {
  // +44 covers the Crown Dependencies too (GG, JE, IM share the UK numbering plan).
  if (!n.valid || !n.e164?.startsWith('+44')) return null;
  if (n.type === 'MOBILE') return 'mobile';
  return 'domestic';
}

/**
 * `parseNumber` with a memory: calls repeat numbers (a call centre's callers, a bank's
 * numbers, the same callee), and a number in a national or URI form still goes through the
 * library's full parse (about 15 µs). The results are shared, so callers must treat them as
 * read-only.
 */
export function createNumberParser(defaultCountry: string, opts: { maxEntries?: number } = {}): (input: string) => PhoneNumber {
  const memo = new LRUCache<string, PhoneNumber>({ max: Math.max(1, opts.maxEntries ?? 20_000) });
  return (input: string) => {
    let n = memo.get(input);
    if (n === undefined) {
      n = parseNumber(input, defaultCountry);
      memo.set(input, n);
    }
    return n;
  };
}

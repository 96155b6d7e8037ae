import { hostname } from 'node:os';
import pino, { type LevelWithSilent } from 'pino';
import { PACKAGE_INFO } from '../config';

/** Named on every log line, so lines from many services and releases can be told apart. */
export const SERVICE = 'callguard';
/** The release (package.json's version). */
export const VERSION: string = PACKAGE_INFO.version;

/** Digits a masked number keeps: country and area, enough to tell calls apart, not to call anyone. */
const KEPT_DIGITS = 5;

/**
 * A phone number as it may stand in any logged text: `+` (or `%2B`, in a URL) and at least 7
 * digits, or at least 9 digits without (`02079460123`, a SHAKEN TN `442079460123`), the digits
 * possibly grouped by spaces, dashes or parentheses. A bare run must start a token: digits inside
 * a word (a hash, a JWS) or after a decimal point are not a number anyone dials (a letter after a
 * backslash starts a token: in a JSON string `\n0740...` is a new line). Request ids (UUIDs) are
 * matched first and kept whole, so their digit groups are never taken for a number.
 */
const UUID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';
const PREFIXED = '(\\+|%2B)(\\d(?:[ ()-]{0,2}\\d){6,})';
const BARE = '(?<!(?<!\\\\)[\\w.])(\\d(?:[ ()-]{0,2}\\d){8,})';
const NUMBER_OR_UUID = new RegExp(`(${UUID})|${PREFIXED}|${BARE}`, 'gi');
/** Whether a text may hold a number at all: most log lines do not, and are written untouched. */
const MAY_HOLD_NUMBER = new RegExp(`${PREFIXED}|${BARE}`, 'i');
/** A JSON string literal (a key or a value) of a serialised line. */
const JSON_STRING = /"(?:[^"\\]|\\.)*"/g;

function masked(match: string, uuid: string | undefined, prefix: string | undefined, prefixed: string | undefined, bare: string | undefined): string {
  if (uuid !== undefined) return match;
  const digits = (prefixed ?? bare ?? '').replace(/\D/g, '');
  return `${prefix ?? ''}${digits.slice(0, KEPT_DIGITS)}${'*'.repeat(Math.max(0, digits.length - KEPT_DIGITS))}`;
}

/**
 * Phone numbers are personal data: logs keep the first digits of a number (country and area)
 * and mask the rest (`+442079460123` becomes `+44207*******`).
 */
export function maskNumber(value: string): string {
  return value.replace(NUMBER_OR_UUID, masked);
}

/**
 * Masks the numbers of one serialised log line, in every string of it (message, fields, error
 * messages and stacks alike) and nowhere else: a JSON number is a count or a time, and masking
 * one would break the line. Runs as a line is written, so a line never written costs nothing.
 */
export function maskLine(line: string): string {
  if (!MAY_HOLD_NUMBER.test(line)) return line;
  return line.replace(JSON_STRING, maskNumber);
}

/** Fields that hold a number or a PASSporT whole, wherever they appear in a logged object. */
const REDACTED_PATHS = [
  'from', 'to', 'pai', 'identity', 'number', 'customer', 'e164',
  '*.from', '*.to', '*.pai', '*.identity', '*.number', '*.customer', '*.e164',
  'req.headers.authorization', 'req.headers.identity',
];

/**
 * The service's pino options: ISO times, the service and its version on every line, PASSporT and
 * key fields redacted, and numbers masked wherever they appear (maskLine), messages included.
 */
export function loggerOptions(level: LevelWithSilent): pino.LoggerOptions {
  return {
    level,
    base: { service: SERVICE, version: VERSION, pid: process.pid, hostname: hostname() },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACTED_PATHS, censor: '[masked]' },
    hooks: { streamWrite: maskLine },
    serializers: {
      // Fastify's default logs the whole URL: registry paths carry numbers.
      req: (req: { method: string; url: string; id: string; ip?: string }) => ({
        id: req.id,
        method: req.method,
        url: maskNumber(req.url),
        remoteAddress: req.ip,
      }),
    },
  };
}

import pino from 'pino';
import { loggerOptions, SERVICE, VERSION } from '../../src/ops/logger';

/**
 * Every log line of the apps the tests build (test/helpers/build.ts), held until the check after
 * each test (test/setup/log-lines.ts). On the global object: the setup file and a test file see
 * one list even if a test isolates its modules.
 */
const LINES = Symbol.for('callguard.test.logLines');
type WithLines = typeof globalThis & { [LINES]?: string[] };

function lines(): string[] {
  return ((globalThis as WithLines)[LINES] ??= []);
}

/** The lines written since the last call, and forgets them. */
export function takeLogLines(): string[] {
  return lines().splice(0);
}

/**
 * The service's own logger (its options, its masking) writing to the list instead of stdout,
 * at `trace`: every line the code has, not only those a production level lets through.
 */
export function capturingLogger(): pino.Logger {
  const list = lines();
  return pino({ ...loggerOptions('trace') }, { write: (line: string) => void list.push(line) });
}

/** The JSON lines of a real server process's output, held to the same rules as the apps'. */
export function holdLogOutput(output: string): void {
  lines().push(...output.split('\n').filter((line) => line.startsWith('{')));
}

/**
 * Phone numbers that must never reach a log unmasked: `+` (or `%2B`) and 7 digits or more, a UK
 * national number (0 and 9 or 10 digits), a SHAKEN TN (44 and 9 or 10 digits), standing on
 * their own. A masked number keeps 5 digits and so matches none of them.
 */
const UNMASKED = [/(\+|%2B)\d(?:[ ()-]{0,2}\d){6,}/i, /(?<![\w.])0\d(?:[ ()-]?\d){8,9}(?!\d)/, /(?<![\w.])44\d{9,10}(?!\d)/];
/** Request ids: their digit groups are not numbers. */
const UUIDS = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

function strings(value: unknown, into: string[] = []): string[] {
  if (typeof value === 'string') into.push(value);
  else if (Array.isArray(value)) for (const v of value) strings(v, into);
  else if (typeof value === 'object' && value !== null) {
    for (const [k, v] of Object.entries(value)) {
      into.push(k);
      strings(v, into);
    }
  }
  return into;
}

/** What is wrong with one log line; empty when nothing is. */
export function logLineProblems(line: string): string[] {
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return [`not JSON: ${line}`];
  }
  const problems: string[] = [];
  if (parsed.service !== SERVICE) problems.push(`service is ${String(parsed.service)}`);
  if (parsed.version !== VERSION) problems.push(`version is ${String(parsed.version)}`);
  if (typeof parsed.time !== 'string' || !ISO_TIME.test(parsed.time)) problems.push(`time ${String(parsed.time)} is not an ISO time`);
  for (const text of strings(parsed).map((s) => s.replace(UUIDS, 'uuid'))) {
    const found = UNMASKED.map((p) => p.exec(text)?.[0]).find((m) => m !== undefined);
    if (found !== undefined) problems.push(`unmasked number ${found}`);
  }
  return problems;
}

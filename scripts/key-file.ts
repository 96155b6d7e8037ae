/**
 * The parts of `npm run key:new` that decide things, apart from the process around them (see
 * new-key.ts): reading the arguments, and adding an entry to an API_KEYS_FILE.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { parseArgs } from 'node:util';

export const USAGE = `usage: npm run key:new -- --role switch|bank|admin [--bank <bankId>] [--name <name>] [--append <keys file>]

Prints a fresh API key once, and its line for the API_KEYS_FILE (which keeps only the key's SHA-256).

  --role     switch (score and verify), bank (its own bank's numbers and entries) or admin (everything)
  --bank     the bankId of a bank key; required for a bank key, not allowed for other roles
  --name     the key's name, as logs and reports show it (default: <role>-<date>)
  --append   add the line to this keys file (a JSON array; created if absent, written whole
             through a temporary file; a name already in it is refused)
  --help     this text
`;

export type Role = 'switch' | 'bank' | 'admin';

export interface KeyEntry {
  name: string;
  role: Role;
  bankId?: string;
  sha256: string;
}

export type KeyCommand =
  | { kind: 'help' }
  | { kind: 'error'; message: string }
  | { kind: 'new'; role: Role; bankId: string | undefined; name: string; append: string | undefined };

/** What the arguments ask for; `today` names a key given no name. */
export function parseKeyArgs(args: readonly string[], today: Date = new Date()): KeyCommand {
  let values: { role?: string; bank?: string; name?: string; append?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: [...args],
      options: { role: { type: 'string' }, bank: { type: 'string' }, name: { type: 'string' }, append: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
    }));
  } catch (err) {
    return { kind: 'error', message: (err as Error).message };
  }
  if (values.help) return { kind: 'help' };
  const role = values.role;
  if (role !== 'switch' && role !== 'bank' && role !== 'admin') return { kind: 'error', message: '--role must be switch, bank or admin' };
  if ((role === 'bank') !== (values.bank !== undefined)) return { kind: 'error', message: '--bank <bankId> is required for a bank key and not allowed for other roles' };
  if (values.name !== undefined && values.name.trim() === '') return { kind: 'error', message: '--name must not be empty' };
  if (values.append !== undefined && values.append === '') return { kind: 'error', message: '--append needs a file' };
  return { kind: 'new', role, bankId: values.bank, name: values.name ?? `${role}-${today.toISOString().slice(0, 10)}`, append: values.append };
}

/** A fresh key: 256 random bits, with a prefix that lets secret scanners recognise it. */
export function newKey(): string {
  return `cg_${randomBytes(32).toString('base64url')}`;
}

export class KeyFileAppendError extends Error {}

/**
 * Adds an entry to a keys file: the file must hold a JSON array (a missing file is an empty one),
 * and no entry of it may have the same name, since logs and reports tell keys apart by name.
 * The whole file is written to a temporary file beside it and renamed over it, so a service
 * reading it (at start) never sees half a file.
 */
export function appendKeyEntry(file: string, entry: KeyEntry): void {
  let entries: unknown[] = [];
  let mode = 0o600;
  let text: string | null = null;
  try {
    text = readFileSync(file, 'utf8');
    mode = statSync(file).mode & 0o777;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new KeyFileAppendError(`${file} cannot be read: ${(err as Error).message}`);
  }
  if (text !== null) {
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (err) {
      throw new KeyFileAppendError(`${file} is not JSON: ${(err as Error).message}`);
    }
    if (!Array.isArray(doc)) throw new KeyFileAppendError(`${file} must hold a JSON array of keys`);
    entries = doc;
  }
  if (entries.some((e) => typeof e === 'object' && e !== null && (e as { name?: unknown }).name === entry.name))
    throw new KeyFileAppendError(`${file} already has a key named ${JSON.stringify(entry.name)}: choose another --name`);
  const body = `[\n${[...entries, entry].map((e) => `  ${JSON.stringify(e)}`).join(',\n')}\n]\n`;
  const temp = join(dirname(file), `.${basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    writeFileSync(temp, body, { mode, flag: 'wx' });
    renameSync(temp, file);
  } catch (err) {
    rmSync(temp, { force: true });
    throw new KeyFileAppendError(`${file} cannot be written: ${(err as Error).message}`);
  }
}

/**
 * `npm run key:new -- --role bank --bank examplebank --name "Example Bank call centre" [--append keys.json]`
 * Prints a fresh API key once, and the line to add to the API_KEYS_FILE (which keeps only
 * the key's SHA-256); with --append, adds it there too. `--help` tells the options.
 */
import { sha256Hex } from '../src/http/auth';
import { appendKeyEntry, KeyFileAppendError, newKey, parseKeyArgs, USAGE, type KeyEntry } from './key-file';

const command = parseKeyArgs(process.argv.slice(2));
if (command.kind === 'help') {
  process.stdout.write(USAGE);
  process.exit(0);
}
if (command.kind === 'error') {
  process.stderr.write(`${command.message}\n\n${USAGE}`);
  process.exit(2);
}
const key = newKey();
const entry: KeyEntry = { name: command.name, role: command.role, ...(command.bankId !== undefined ? { bankId: command.bankId } : {}), sha256: sha256Hex(key) };
if (command.append !== undefined) {
  try {
    appendKeyEntry(command.append, entry);
  } catch (err) {
    if (!(err instanceof KeyFileAppendError)) throw err;
    // Nothing was written, and the key is not shown: it would be a key nobody can use.
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  }
}
process.stdout.write(`API key (shown once, store it safely):\n  ${key}\n\n`);
process.stdout.write(command.append !== undefined ? `Added to ${command.append} (restart the service to take it):\n  ${JSON.stringify(entry)}\n` : `Add to API_KEYS_FILE:\n  ${JSON.stringify(entry)}\n`);

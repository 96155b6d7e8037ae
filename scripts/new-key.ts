/**
 * `npm run key:new -- --role bank --bank examplebank --name "Example Bank call centre"`
 * Prints a fresh API key once, and the line to add to the API_KEYS_FILE (which keeps only
 * the key's SHA-256).
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { sha256Hex } from '../src/http/auth';

const { values } = parseArgs({
  options: { role: { type: 'string' }, bank: { type: 'string' }, name: { type: 'string' } },
});
const role = values.role;
if (role !== 'switch' && role !== 'bank' && role !== 'admin') {
  process.stderr.write('usage: npm run key:new -- --role switch|bank|admin [--bank <bankId>] --name <name>\n');
  process.exit(2);
}
if ((role === 'bank') !== (values.bank !== undefined)) {
  process.stderr.write('--bank <bankId> is required for a bank key and not allowed for other roles\n');
  process.exit(2);
}
const name = values.name ?? `${role}-${new Date().toISOString().slice(0, 10)}`;
const key = `cg_${randomBytes(32).toString('base64url')}`;
const entry = { name, role, ...(values.bank ? { bankId: values.bank } : {}), sha256: sha256Hex(key) };
process.stdout.write(`API key (shown once, store it safely):\n  ${key}\n\nAdd to API_KEYS_FILE:\n  ${JSON.stringify(entry)}\n`);

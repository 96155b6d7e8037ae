import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { appendKeyEntry, KeyFileAppendError, newKey, parseKeyArgs, USAGE, type KeyEntry } from '../../scripts/key-file';
import { KeyRing, sha256Hex } from '../../src/http/auth';

const today = new Date('2026-12-07T10:00:00Z');
const entry = (name: string): KeyEntry => ({ name, role: 'switch', sha256: sha256Hex(name) });
const dir = () => mkdtempSync(join(tmpdir(), 'callguard-keys-'));

describe('parseKeyArgs', () => {
  it('--help (or -h) asks for the usage, whatever else is given', () => {
    expect(parseKeyArgs(['--help'])).toEqual({ kind: 'help' });
    expect(parseKeyArgs(['-h', '--role', 'nobody'])).toEqual({ kind: 'help' });
    expect(USAGE).toMatch(/--append/);
  });
  it('a bank key with its bank, name and file', () => {
    expect(parseKeyArgs(['--role', 'bank', '--bank', 'examplebank', '--name', 'cc', '--append', 'keys.json'], today)).toEqual({ kind: 'new', role: 'bank', bankId: 'examplebank', name: 'cc', append: 'keys.json' });
  });
  it('a key given no name is named by role and date; no file, nothing appended', () => {
    expect(parseKeyArgs(['--role', 'admin'], today)).toEqual({ kind: 'new', role: 'admin', bankId: undefined, name: 'admin-2026-12-07', append: undefined });
  });
  it.each([
    [[], /--role/],
    [['--role', 'root'], /--role/],
    [['--role', 'bank'], /--bank/],
    [['--role', 'switch', '--bank', 'x'], /--bank/],
    [['--role', 'switch', '--name', ' '], /--name/],
    [['--role', 'switch', '--colour', 'red'], /colour/],
    [['--role', 'switch', 'stray'], /stray/],
  ])('%j is an error naming the option', (args, why) => {
    const got = parseKeyArgs(args as string[]);
    expect(got.kind).toBe('error');
    expect(got.kind === 'error' && got.message).toMatch(why);
  });
});

describe('appendKeyEntry', () => {
  it('adds the entry to the array, keeps the others, leaves no temporary file, and the service reads the result', () => {
    const d = dir();
    const file = join(d, 'keys.json');
    writeFileSync(file, JSON.stringify([entry('a')]), { mode: 0o640 });
    appendKeyEntry(file, entry('b'));
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual([entry('a'), entry('b')]);
    expect(readdirSync(d)).toEqual(['keys.json']);
    expect(statSync(file).mode & 0o777).toBe(0o640);
    expect(KeyRing.fromFile(file).identify('b')).toMatchObject({ name: 'b', role: 'switch' });
  });
  it('a missing file is created holding the entry alone', () => {
    const file = join(dir(), 'new.json');
    appendKeyEntry(file, entry('a'));
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual([entry('a')]);
  });
  it('refuses a name already in the file, and leaves the file as it was', () => {
    const file = join(dir(), 'keys.json');
    const before = JSON.stringify([entry('a')]);
    writeFileSync(file, before);
    expect(() => appendKeyEntry(file, { ...entry('a'), sha256: sha256Hex(newKey()) })).toThrow(KeyFileAppendError);
    expect(() => appendKeyEntry(file, entry('a'))).toThrow(/already has a key named "a"/);
    expect(readFileSync(file, 'utf8')).toBe(before);
  });
  it.each([
    ['{"name":"a"}', /JSON array/],
    ['not json', /not JSON/],
  ])('refuses a file that is not a JSON array (%s), and leaves it as it was', (text, why) => {
    const file = join(dir(), 'keys.json');
    writeFileSync(file, text);
    expect(() => appendKeyEntry(file, entry('b'))).toThrow(why);
    expect(readFileSync(file, 'utf8')).toBe(text);
  });
});

describe('newKey', () => {
  it('is fresh each time, with its prefix', () => {
    const a = newKey();
    expect(a).toMatch(/^cg_[A-Za-z0-9_-]{43}$/);
    expect(newKey()).not.toBe(a);
  });
});

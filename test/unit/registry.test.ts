import { findInvalidNumbers, parseRegistryDocument, readEntryInput, toRegistryDocument } from '../../src/registry/format';
import { loadRegistryFile, RegistryLoadError } from '../../src/registry/load';
import { RegistryIndex } from '../../src/registry/registry-index';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const doc = {
  banks: [
    { id: 'examplebank', name: 'Example Bank', callbackNumbers: ['+443450000000'] },
    { id: 'other', name: 'Other Bank' },
  ],
  numbers: [
    { number: '+443450000000', bankId: 'examplebank', inboundOnly: true },
    { number: '020 7946 0000', bankId: 'examplebank', inboundOnly: false, authorisedSpcs: ['1234'] },
    { prefix: '+4420794601', bankId: 'examplebank', inboundOnly: true },
    { prefix: '+442079460', bankId: 'other', inboundOnly: false },
  ],
};

describe('registry file', () => {
  it('parses the contract format and normalises numbers to E.164', () => {
    const { data, problems } = parseRegistryDocument(doc, 'GB');
    expect(problems).toEqual([]);
    expect(data.entries.map((e) => `${e.kind}:${e.key}`)).toEqual([
      'number:+443450000000',
      'number:+442079460000',
      'prefix:+4420794601',
      'prefix:+442079460',
    ]);
    expect(data.banks[1]?.callbackNumbers).toEqual([]);
  });

  it('names every bad entry and why', () => {
    const { problems } = parseRegistryDocument(
      {
        banks: [{ id: 'b', name: 'B' }, { id: 'b', name: 'again' }, { id: 'Bad Id', name: 'x' }],
        numbers: [
          { number: 'not-a-number', bankId: 'b', inboundOnly: true },
          { number: '+442079460000', bankId: 'nobank', inboundOnly: true },
          { prefix: '44207', bankId: 'b', inboundOnly: true },
          { number: '+442079460000', prefix: '+44', bankId: 'b', inboundOnly: true },
          { number: '+442079460001', bankId: 'b' },
          { number: '+442079460002', bankId: 'b', inboundOnly: false, authorisedSpcs: ['12 34'] },
          { number: '+442079460003', bankId: 'b', inboundOnly: false },
          { number: '020 7946 0003', bankId: 'b', inboundOnly: true },
        ],
      },
      'GB',
    );
    const byPlace = Object.fromEntries(problems.map((p) => [p.at, p.error]));
    expect(byPlace['banks[1]']).toMatch(/appears twice/);
    expect(byPlace['banks[2]']).toMatch(/bank id/);
    expect(byPlace['numbers[0]']).toMatch(/not a valid phone number/);
    expect(byPlace['numbers[1]']).toMatch(/"nobank" is not a bank/);
    expect(byPlace['numbers[2]']).toMatch(/prefix "44207"/);
    expect(byPlace['numbers[3]']).toMatch(/exactly one of number or prefix/);
    expect(byPlace['numbers[4]']).toMatch(/inboundOnly/);
    expect(byPlace['numbers[5]']).toMatch(/service provider code/);
    expect(byPlace['numbers[6]']).toBeUndefined();
    expect(byPlace['numbers[7]']).toMatch(/appears twice/);
  });

  it('refuses to start on an invalid file, naming the file and the entry', () => {
    const dir = mkdtempSync(join(tmpdir(), 'callguard-reg-'));
    const file = join(dir, 'registry.json');
    writeFileSync(file, JSON.stringify({ banks: [], numbers: [{ number: '+442079460000', bankId: 'x', inboundOnly: true }] }));
    expect(() => loadRegistryFile(file, 'GB')).toThrow(RegistryLoadError);
    expect(() => loadRegistryFile(file, 'GB')).toThrow(/registry\.json is invalid:\n {2}- numbers\[0\]: bankId "x"/);
    writeFileSync(file, '{ not json');
    expect(() => loadRegistryFile(file, 'GB')).toThrow(/not valid JSON/);
    expect(() => loadRegistryFile(join(dir, 'missing.json'), 'GB')).toThrow(/cannot read the file/);
  });

  it('loads the shipped sample, which uses only valid numbers', () => {
    const { data, version } = loadRegistryFile(undefined, 'GB');
    expect(data.banks.length).toBeGreaterThan(1);
    expect(version).toMatch(/^[\w-]{16}$/);
  });

  it('round-trips through export', () => {
    const { data } = parseRegistryDocument(doc, 'GB');
    const again = parseRegistryDocument(toRegistryDocument(data), 'GB');
    expect(again.problems).toEqual([]);
    expect(again.data).toEqual(data);
  });
});

describe('RegistryIndex.lookup', () => {
  const index = new RegistryIndex(parseRegistryDocument(doc, 'GB').data, 'v1');

  it('finds an exact number first', () => {
    expect(index.lookup('+442079460000')).toMatchObject({ bankId: 'examplebank', inboundOnly: false, match: 'number', authorisedSpcs: ['1234'] });
  });

  it('then the longest prefix', () => {
    expect(index.lookup('+442079460123')).toMatchObject({ bankId: 'examplebank', inboundOnly: true, match: 'prefix', key: '+4420794601' });
    expect(index.lookup('+442079460999')).toMatchObject({ bankId: 'other', match: 'prefix', key: '+442079460' });
  });

  it('returns null for numbers outside the registry', () => {
    expect(index.lookup('+447400123456')).toBeNull();
    expect(index.lookup('+44')).toBeNull();
  });

  it('carries the bank name', () => {
    expect(index.lookup('+443450000000')?.bankName).toBe('Example Bank');
  });
});

describe('numbers checked against the numbering plan after start', () => {
  const doc = {
    banks: [{ id: 'b', name: 'B' }],
    numbers: [
      { number: '+442079460000', bankId: 'b', inboundOnly: true },
      { number: '+4420794600001', bankId: 'b', inboundOnly: true },
      { number: '020 7946 0001', bankId: 'b', inboundOnly: true },
      { number: '+4420', bankId: 'b', inboundOnly: true },
    ],
  };

  it('deferPlanCheck trusts E.164-shaped numbers, still parses other forms and refuses malformed ones', () => {
    const { data, problems } = parseRegistryDocument(doc, 'GB', { deferPlanCheck: true });
    expect(data.entries.map((e) => e.key)).toEqual(['+442079460000', '+4420794600001', '+442079460001']);
    expect(problems).toEqual([{ at: 'numbers[3]', error: expect.stringMatching(/not a valid phone number/) }]);
  });

  it('findInvalidNumbers names the ones the plan does not allow', async () => {
    const { data } = parseRegistryDocument(doc, 'GB', { deferPlanCheck: true });
    expect((await findInvalidNumbers(data.entries, 'GB', 1)).map((e) => e.key)).toEqual(['+4420794600001']);
  });

  it('entries naming the same carriers share one list', () => {
    const { data } = parseRegistryDocument(
      { banks: [{ id: 'b', name: 'B' }], numbers: [1, 2].map((n) => ({ number: `+44207946000${n}`, bankId: 'b', inboundOnly: false, authorisedSpcs: ['1234', '5678'] })) },
      'GB',
    );
    expect(data.entries[0]!.authorisedSpcs).toBe(data.entries[1]!.authorisedSpcs);
  });
});

describe('organisations of any kind, and overseas origins', () => {
  const orgs = {
    banks: [
      { id: 'revenue', name: 'Crown Revenue Office', kind: 'government', callbackNumbers: [] },
      { id: 'water', name: 'Fenland Water', kind: 'utility', announcesCalls: true },
      { id: 'plain', name: 'Plain Bank', kind: 'bank', announcesCalls: false },
    ],
    numbers: [
      { number: '+442079460000', bankId: 'revenue', inboundOnly: false, authorisedSpcs: ['1234'], overseasOrigins: ['trunk-offshore-in', '1234'] },
      { number: '+442079460001', bankId: 'water', inboundOnly: false, overseasOrigins: ['trunk-offshore-in', '1234'] },
      { number: '+442079460002', bankId: 'plain', inboundOnly: false, overseasOrigins: [] },
      { prefix: '+4420794601', bankId: 'water', inboundOnly: false, overseasOrigins: ['sip:gw1@carrier.example:5060'] },
    ],
  };

  it('are read, kept and written back by export as they were given', () => {
    const { data, problems } = parseRegistryDocument(orgs, 'GB');
    expect(problems).toEqual([]);
    const file = toRegistryDocument(data);
    expect(file.banks).toEqual(orgs.banks.map((b) => ({ callbackNumbers: [], ...b })));
    // An empty list of overseas origins is none: not written back.
    expect(file.numbers).toEqual(orgs.numbers.map((n) => (n.overseasOrigins?.length === 0 ? { number: n.number, bankId: n.bankId, inboundOnly: n.inboundOnly } : n)));
    expect(parseRegistryDocument(file, 'GB').data).toEqual(data);
  });

  it('the lookup carries the overseas origins, the kind (but `bank`) and announcesCalls', () => {
    const index = new RegistryIndex(parseRegistryDocument(orgs, 'GB').data, 'v');
    expect(index.lookup('+442079460000')).toEqual({
      bankId: 'revenue', bankName: 'Crown Revenue Office', bankKind: 'government', inboundOnly: false,
      authorisedSpcs: ['1234'], overseasOrigins: ['trunk-offshore-in', '1234'], match: 'number', key: '+442079460000',
    });
    expect(index.lookup('+442079460001')).toMatchObject({ bankKind: 'utility', announcesCalls: true });
    expect(index.lookup('+442079460123')).toMatchObject({ match: 'prefix', overseasOrigins: ['sip:gw1@carrier.example:5060'] });
    const plain = index.lookup('+442079460002')!;
    expect(plain).not.toHaveProperty('bankKind');
    expect(plain).not.toHaveProperty('announcesCalls');
    expect(plain).not.toHaveProperty('overseasOrigins');
  });

  it('entries naming the same overseas origins share one list, as with carriers', () => {
    const { data } = parseRegistryDocument(orgs, 'GB');
    expect(data.entries[0]!.overseasOrigins).toBe(data.entries[1]!.overseasOrigins);
    const index = new RegistryIndex(data, 'v');
    expect(index.lookup('+442079460000')!.overseasOrigins).toBe(index.lookup('+442079460001')!.overseasOrigins);
  });

  it.each([
    ['not an array', 'trunk-offshore-in', /overseasOrigins: must be an array/],
    ['more than 100', Array.from({ length: 101 }, (_, i) => `t${i}`), /at most 100/],
    ['an empty name', [''], /1-64 printable ASCII/],
    ['a name of 65 characters', ['x'.repeat(65)], /1-64 printable ASCII/],
    ['a space', ['trunk offshore'], /without spaces/],
    ['a comma (a CSV list separator)', ['a,b'], /commas, semicolons or \|/],
    ['a semicolon', ['a;b'], /commas, semicolons or \|/],
    ['a bar', ['a|b'], /commas, semicolons or \|/],
    ['a letter outside ASCII', ['tronc-é'], /ASCII/],
    ['a control character', ['trunk\u0000'], /ASCII/],
    ['not a string', [7], /ASCII/],
  ])('a line with %s in overseasOrigins is refused, naming the field', (_what, overseasOrigins, message) => {
    const input = readEntryInput({ number: '+442079460000', bankId: 'b', inboundOnly: false, overseasOrigins });
    expect(input).toEqual({ error: expect.stringMatching(/^overseasOrigins: /) });
    expect((input as { error: string }).error).toMatch(message);
  });

  it('100 names, each of 64 printable characters, are fine', () => {
    const overseasOrigins = Array.from({ length: 100 }, (_, i) => `${'!#$%&()*+-./:<=>?@[]^_{}~'}${String(i).padStart(39, 'x')}`);
    expect(overseasOrigins[0]).toHaveLength(64);
    expect(readEntryInput({ number: '+442079460000', bankId: 'b', inboundOnly: false, overseasOrigins })).not.toHaveProperty('error');
  });

  it('a bad kind or announcesCalls is named', () => {
    const { problems } = parseRegistryDocument({ banks: [{ id: 'a', name: 'A', kind: 'ministry' }, { id: 'b', name: 'B', announcesCalls: 'yes' }], numbers: [] }, 'GB');
    expect(problems).toEqual([
      { at: 'banks[0]', error: expect.stringMatching(/^kind: /) },
      { at: 'banks[1]', error: expect.stringMatching(/^announcesCalls: /) },
    ]);
  });
});

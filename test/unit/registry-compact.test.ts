import { parseRegistryDocument } from '../../src/registry/format';
import type { Bank, RegistryEntry } from '../../src/registry/model';
import { keyString, mergeNumbers, NumberTableBuilder, numberKey } from '../../src/registry/number-table';
import { RegistryIndex } from '../../src/registry/registry-index';

const banks: Bank[] = [
  { id: 'a', name: 'Bank A', callbackNumbers: [] },
  { id: 'b', name: 'Bank B', callbackNumbers: [] },
];
const num = (key: string, bankId = 'a', inboundOnly = false, authorisedSpcs?: string[]): RegistryEntry => ({
  kind: 'number',
  key,
  bankId,
  inboundOnly,
  ...(authorisedSpcs ? { authorisedSpcs } : {}),
});
const prefix = (key: string, bankId = 'a', inboundOnly = true): RegistryEntry => ({ kind: 'prefix', key, bankId, inboundOnly });
const byKey = (entries: Iterable<RegistryEntry>) => [...entries].sort((x, y) => (x.kind + x.key < y.kind + y.key ? -1 : 1));

describe('table keys', () => {
  it('are the digits of an E.164 number, and back', () => {
    for (const e164 of ['+1', '+442079460000', '+999999999999999']) expect(keyString(numberKey(e164))).toBe(e164);
  });

  it('are NaN for anything that is not + and 1-15 digits', () => {
    for (const s of ['', '+', '442079460000', '+0442079460', '+1e7', '+0x1f', '+44 20', '+4420794600001234', '+-1', '+12a']) {
      expect([s, numberKey(s)]).toEqual([s, NaN]);
    }
  });
});

describe('NumberTableBuilder', () => {
  it('sorts numbers of any order and shares one template per distinct entry', () => {
    const b = new NumberTableBuilder();
    const keys = [442079460003, 15550001, 442079460001, 999999999999999, 442079460002];
    keys.forEach((k, i) => b.add(k, b.interner.id({ bankId: i % 2 ? 'a' : 'b', inboundOnly: false, ...(i === 4 ? { authorisedSpcs: ['1234', '1234', '5678'] } : {}) }), i));
    const { table, duplicates } = b.build();
    expect(duplicates).toEqual([]);
    expect([...table.keys]).toEqual([...keys].sort((x, y) => x - y));
    expect(table.templates).toEqual([
      { bankId: 'b', inboundOnly: false },
      { bankId: 'a', inboundOnly: false },
      // Carrier lists lose their repeats, as toEntry's do.
      { bankId: 'b', inboundOnly: false, authorisedSpcs: ['1234', '5678'] },
    ]);
    expect(table.templateIds).toBeInstanceOf(Uint16Array);
  });

  it('finds duplicates by sorting: the later places are named, the last one added stays', () => {
    const b = new NumberTableBuilder();
    const a = b.interner.id({ bankId: 'a', inboundOnly: false });
    const z = b.interner.id({ bankId: 'z', inboundOnly: true });
    b.add(5, a, 0);
    b.add(7, a, 2);
    b.add(5, a, 3);
    b.add(9, a, 4);
    b.add(5, z, 8);
    b.add(7, z, 9);
    const { table, duplicates } = b.build();
    expect(duplicates).toEqual([
      { key: 5, place: 3 },
      { key: 5, place: 8 },
      { key: 7, place: 9 },
    ]);
    expect([...table.keys]).toEqual([5, 7, 9]);
    expect([...table.templateIds].map((id) => table.templates[id]!.bankId)).toEqual(['z', 'z', 'a']);
  });

  it('sorts keys that differ only in any of their digits, large and small', () => {
    const b = new NumberTableBuilder();
    const keys: number[] = [];
    // Keys spread over every radix digit, including the top bits of 15-digit numbers.
    for (let i = 0; i < 20_000; i++) keys.push(Math.floor(((i * 7919) % 20_000) * 49_999_999_999.95) + 1);
    keys.forEach((k, i) => b.add(k, 0, i));
    b.interner.id({ bankId: 'a', inboundOnly: false });
    const { table } = b.build();
    expect([...table.keys]).toEqual([...new Set(keys)].sort((x, y) => x - y));
  });

  it('tells templates apart by their overseas origins, shares their lists, and takes an empty list for none', () => {
    const b = new NumberTableBuilder();
    const withOrigins = b.interner.id({ bankId: 'a', inboundOnly: false, overseasOrigins: ['trunk-1', 'trunk-1', '1234'] });
    const again = b.interner.id({ bankId: 'a', inboundOnly: false, overseasOrigins: ['trunk-1', '1234'] });
    const asCarriers = b.interner.id({ bankId: 'a', inboundOnly: false, authorisedSpcs: ['trunk-1', '1234'] });
    const both = b.interner.id({ bankId: 'a', inboundOnly: false, authorisedSpcs: ['1234'], overseasOrigins: ['1234'] });
    const plain = b.interner.id({ bankId: 'a', inboundOnly: false });
    expect(b.interner.id({ bankId: 'a', inboundOnly: false, overseasOrigins: [] })).toBe(plain);
    expect(new Set([withOrigins, asCarriers, both, plain]).size).toBe(4);
    const t = b.interner.templates;
    expect(t[withOrigins]).toEqual({ bankId: 'a', inboundOnly: false, overseasOrigins: ['trunk-1', '1234'] });
    expect(t[again]!.overseasOrigins).toBe(t[withOrigins]!.overseasOrigins);
    expect(t[both]).toEqual({ bankId: 'a', inboundOnly: false, authorisedSpcs: ['1234'], overseasOrigins: ['1234'] });
    expect(t[plain]).toEqual({ bankId: 'a', inboundOnly: false });
  });

  it('mergeNumbers keeps overseas origins, of the table and of the changes', () => {
    const b = new NumberTableBuilder();
    b.add(10, b.interner.id({ bankId: 'a', inboundOnly: false, overseasOrigins: ['trunk-1'] }));
    b.add(20, b.interner.id({ bankId: 'a', inboundOnly: false }));
    const merged = mergeNumbers(b.build().table, new Map([[30, { bankId: 'a', inboundOnly: false, overseasOrigins: ['trunk-2'] }]]));
    expect([...merged.templateIds].map((id) => merged.templates[id]!.overseasOrigins)).toEqual([['trunk-1'], undefined, ['trunk-2']]);
  });

  it('mergeNumbers applies changes and drops the templates no number uses', () => {
    const b = new NumberTableBuilder();
    b.add(10, b.interner.id({ bankId: 'a', inboundOnly: false }));
    b.add(20, b.interner.id({ bankId: 'b', inboundOnly: false }));
    b.add(30, b.interner.id({ bankId: 'a', inboundOnly: false }));
    const { table } = b.build();
    const merged = mergeNumbers(
      table,
      new Map([
        [20, null],
        [25, { bankId: 'c', inboundOnly: true }],
        [5, { bankId: 'a', inboundOnly: false }],
      ]),
    );
    expect([...merged.keys]).toEqual([5, 10, 25, 30]);
    expect(merged.templates.map((t) => t.bankId).sort()).toEqual(['a', 'c']);
    // The table it was made from is untouched.
    expect([...table.keys]).toEqual([10, 20, 30]);
  });
});

describe('RegistryIndex on the compact table', () => {
  const data = {
    banks,
    entries: [
      num('+442079460000', 'a', false, ['1234']),
      num('+442079460001', 'b', true),
      prefix('+44207946'),
      prefix('+442079461', 'b', false),
      prefix('+4420794612', 'a', true),
    ],
  };

  it('looks up an exact number first, then the longest prefix', () => {
    const index = new RegistryIndex(data, 'v');
    expect(index.lookup('+442079460000')).toEqual({ bankId: 'a', bankName: 'Bank A', inboundOnly: false, authorisedSpcs: ['1234'], match: 'number', key: '+442079460000' });
    expect(index.lookup('+442079460001')).toMatchObject({ bankId: 'b', inboundOnly: true, match: 'number' });
    expect(index.lookup('+442079460002')).toMatchObject({ match: 'prefix', key: '+44207946' });
    expect(index.lookup('+442079461999')).toMatchObject({ match: 'prefix', key: '+442079461', bankId: 'b' });
    expect(index.lookup('+442079461234')).toMatchObject({ match: 'prefix', key: '+4420794612', bankId: 'a' });
    expect(index.lookup('+442079999999')).toBeNull();
    // Not E.164: no number matches, whatever Number() would make of it.
    expect(index.lookup('+4.42079460000e11')).toBeNull();
  });

  it('makes entries on demand that round-trip through data()', () => {
    const index = new RegistryIndex(data, 'v');
    expect(index.entry('number', '+442079460000')).toEqual(data.entries[0]);
    expect(index.entry('prefix', '+44207946')).toEqual(data.entries[2]);
    expect(index.entry('number', '+44207946')).toBeUndefined();
    expect(byKey(index.data().entries)).toEqual(byKey(data.entries));
    const again = new RegistryIndex(index.data(), 'v2');
    expect(byKey(again.allEntries())).toEqual(byKey(data.entries));
    expect(index.entriesOfBank('b')).toEqual([data.entries[1], data.entries[3]]);
  });

  it('set, delete and set again go through the overlay, and size follows', () => {
    const index = new RegistryIndex(data, 'v');
    expect(index.size).toEqual({ banks: 2, numbers: 2, prefixes: 3 });
    index.setEntry(num('+15550001234', 'b'));
    index.setEntry(num('+442079460000', 'b', true)); // replaces a table number
    expect(index.size.numbers).toBe(3);
    expect(index.lookup('+442079460000')).toMatchObject({ bankId: 'b', inboundOnly: true });
    expect(index.lookup('+442079460000')?.authorisedSpcs).toBeUndefined();

    index.deleteEntry('number', '+442079460001');
    index.deleteEntry('number', '+442079460001'); // twice is harmless
    index.deleteEntry('number', '+449999999999'); // so is a number that is not there
    expect(index.size.numbers).toBe(2);
    // A deleted number falls through to the prefixes, as a number never registered does.
    expect(index.lookup('+442079460001')).toMatchObject({ match: 'prefix', key: '+44207946' });
    expect(index.entry('number', '+442079460001')).toBeUndefined();

    index.setEntry(num('+442079460001', 'a'));
    expect(index.lookup('+442079460001')).toMatchObject({ match: 'number', bankId: 'a' });
    expect(index.size.numbers).toBe(3);

    index.deleteEntry('prefix', '+4420794612');
    expect(index.lookup('+442079461234')).toMatchObject({ key: '+442079461' });

    // Merging the overlay into the table changes nothing that can be seen.
    const probe = ['+15550001234', '+442079460000', '+442079460001', '+442079460002', '+442079461234'];
    const before = probe.map((n) => [index.lookup(n), index.entry('number', n)]);
    expect(index.pendingChanges).toBe(3);
    index.compact();
    expect(index.pendingChanges).toBe(0);
    expect(probe.map((n) => [index.lookup(n), index.entry('number', n)])).toEqual(before);
    expect(index.size).toEqual({ banks: 2, numbers: 3, prefixes: 2 });
  });

  it('merges a large overlay into a new table by itself, without changing what lookups see', () => {
    const index = new RegistryIndex({ banks, entries: [] }, 'v');
    const key = (i: number) => `+4416149${String(i).padStart(5, '0')}`;
    for (let i = 0; i < 10_000; i++) index.setEntry(num(key(i), i % 2 ? 'a' : 'b', i % 3 === 0));
    // Merged at 4097 and 8194 changes: the overlay never holds more than 4096.
    expect(index.pendingChanges).toBe(10_000 - 2 * 4097);
    for (let i = 0; i < 10_000; i += 2) index.deleteEntry('number', key(i));
    expect(index.pendingChanges).toBeLessThanOrEqual(4096);
    expect(index.size.numbers).toBe(5000);
    for (let i = 0; i < 10_000; i += 997) {
      expect([i, index.lookup(key(i))?.inboundOnly ?? null]).toEqual([i, i % 2 ? i % 3 === 0 : null]);
    }
    const view = index.view();
    // What the view holds does not change with later changes (a snapshot is written from it).
    index.setEntry(num(key(1), 'b', true));
    index.compact();
    expect(view.numbers.keys.length).toBe(5000);
    expect(view.numbers.templates[view.numbers.templateIds[0]!]).toEqual({ bankId: 'a', inboundOnly: false });
  });

  it('load() replaces everything, and keeps the last of a number given twice', () => {
    const index = new RegistryIndex(data, 'v');
    index.setEntry(num('+15550001234'));
    index.load({ banks: [banks[1]!], entries: [num('+15550009999', 'b'), num('+15550009999', 'b', true)] });
    expect(index.size).toEqual({ banks: 1, numbers: 1, prefixes: 0 });
    expect(index.lookup('+15550001234')).toBeNull();
    expect(index.lookup('+15550009999')?.inboundOnly).toBe(true);
  });

  it('refuses a number entry whose key is not E.164 rather than mis-storing it', () => {
    const index = new RegistryIndex({ banks, entries: [] }, 'v');
    expect(() => index.setEntry(num('020 7946 0000'))).toThrow(/not in E.164 form/);
  });

  it('serves the same answers as the entries it was built from', () => {
    const { data: parsed } = parseRegistryDocument(
      {
        banks: [{ id: 'x', name: 'X' }],
        numbers: Array.from({ length: 300 }, (_, i) => ({ number: `+4416149${String(i * 37).padStart(5, '0')}`, bankId: 'x', inboundOnly: i % 2 === 0 })),
      },
      'GB',
    );
    const index = new RegistryIndex(parsed, 'v');
    for (const e of parsed.entries) expect(index.entry('number', e.key)).toEqual(e);
  });
});

import type { RegistryEntry } from '../../src/registry/model';
import { mergeNumbers, mergeNumbersInSlices, NumberTableBuilder } from '../../src/registry/number-table';
import { RegistryIndex } from '../../src/registry/registry-index';
import { Slicer } from '../../src/registry/slicer';
import { applyMutationsInSlices, type Mutation } from '../../src/registry/store';
import { calmestStallWithin } from '../helpers/stall';

/** A registry of `count` numbers +4411300000000 upwards, every third one, for bank a. */
function largeIndex(count: number): RegistryIndex {
  const builder = new NumberTableBuilder(count);
  const template = builder.interner.id({ bankId: 'a', inboundOnly: false });
  for (let i = 0; i < count; i++) builder.add(4411300000000 + i * 3, template);
  return new RegistryIndex({ banks: [{ id: 'a', name: 'Bank A', callbackNumbers: [] }], numbers: builder.build().table, prefixes: [] }, 'v1');
}

describe('a large change applied in slices', () => {
  it('merges its changed numbers into the table in slices: no merge holds the event loop for long', async () => {
    const index = largeIndex(2_000_000);
    // 100,000 numbers in between the table's, in no particular order: each set is a new number.
    const mutations: Mutation[] = [];
    for (let i = 0; i < 100_000; i++) {
      const key = `+${4411300000001 + ((i * 7919) % 100_000) * 3}`;
      mutations.push({ type: 'entry', kind: 'number', key, value: { kind: 'number', key, bankId: 'a', inboundOnly: i % 2 === 0 } });
    }
    const { stall, bound } = await calmestStallWithin(60, 0.05, 1, () => applyMutationsInSlices(index, mutations));
    expect(index.size.numbers).toBe(2_100_000);
    expect(index.pendingChanges).toBe(0);
    expect(index.lookup('+4411300000001')).toMatchObject({ bankId: 'a', inboundOnly: true });
    expect(index.lookup('+4411300000004')).toMatchObject({ bankId: 'a', inboundOnly: false });
    expect(index.lookup('+4411300000003')).toMatchObject({ bankId: 'a', match: 'number' });
    // Merged in one piece (sorting the changed numbers, then a pass over 2,000,000), a merge
    // holds the loop 100-200 ms on a fast machine; a slice is a few ms. The bound leaves room for
    // a loaded test machine, and follows a slow one (see calmestStallWithin).
    expect(stall).toBeLessThan(bound);
  }, 60_000);

  it('mergeNumbersInSlices makes the same table as mergeNumbers, handing the event loop back meanwhile', async () => {
    const index = largeIndex(50_000);
    const table = index.view().numbers;
    const changes = new Map<number, RegistryEntry | null>();
    for (let i = 0; i < 40_000; i++) changes.set(4411300000000 + ((i * 104_729) % 150_000), i % 5 === 0 ? null : { kind: 'number', key: '', bankId: i % 3 ? 'a' : 'b', inboundOnly: i % 2 === 0 });
    let turns = 0;
    const counting = setInterval(() => turns++, 0);
    const sliced = await mergeNumbersInSlices(table, changes, new Slicer(0));
    clearInterval(counting);
    const whole = mergeNumbers(table, changes);
    expect(Array.from(sliced.keys)).toEqual(Array.from(whole.keys));
    expect(Array.from(sliced.templateIds)).toEqual(Array.from(whole.templateIds));
    expect(sliced.templates).toEqual(whole.templates);
    expect(turns).toBeGreaterThan(0);
    // And that table is the right one: the old numbers and the changes, ascending.
    const expected = new Set(Array.from(table.keys));
    for (const [key, value] of changes) {
      if (value) expected.add(key);
      else expected.delete(key);
    }
    expect(Array.from(sliced.keys)).toEqual([...expected].sort((a, b) => a - b));
  });
});

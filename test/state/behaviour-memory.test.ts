import { DEFAULT_POLICY, type Policy } from '../../src/scoring';
import { LruSlots } from '../../src/state/lru-slots';
import { ReferenceTracker } from './reference-memory';
import { BANK, call, dest, FAILING, T0, MemoryBehaviourTracker } from './support';

/**
 * What the in-process tracker does to keep a call cheap, seen from outside: callers and
 * fingerprints in an LRU of slots, a caller's one destination inline and a Map only from the
 * second, a bank's failing calls in a queue. Boundaries are checked against the model of the
 * tracker as it was (reference-memory.ts) as well as against the numbers.
 */

const counts = (s: ReturnType<MemoryBehaviourTracker['observeSync']>) => s.distinctDestinations?.map((d) => d.count);

/** How the tracker holds a caller's destinations: none, one inline, or a Map. */
function held(t: MemoryBehaviourTracker, caller = '+442079460123'): 'none' | 'inline' | 'map' | 'untracked' {
  const inner = t.state as unknown as { callers: LruSlots; destinations: unknown[] };
  const slot = inner.callers.peek(caller);
  if (slot === -1) return 'untracked';
  const d = inner.destinations[slot];
  return d === null ? 'none' : typeof d === 'string' ? 'inline' : 'map';
}

describe('LruSlots', () => {
  it('hands out slots in order, then gives a new key the least recently used one', () => {
    const s = new LruSlots(3);
    expect([s.add('a'), s.add('b'), s.add('c')]).toEqual([0, 1, 2]);
    expect(s.use('a')).toBe(0);
    expect(s.peek('b')).toBe(1); // not a use: b stays the least recent
    expect(s.add('d')).toBe(1);
    expect(s.use('b')).toBe(-1);
    expect(s.peek('b')).toBe(-1);
    expect([...s.keysByAge()]).toEqual(['c', 'a', 'd']);
    expect(s.size).toBe(3);
    expect(s.use('d')).toBe(1); // the most recent already
    expect([...s.keysByAge()]).toEqual(['c', 'a', 'd']);
  });

  it('holds one key at max 1', () => {
    const s = new LruSlots(1);
    expect(s.add('a')).toBe(0);
    expect(s.add('b')).toBe(0);
    expect([...s.keysByAge()]).toEqual(['b']);
    expect(s.use('a')).toBe(-1);
  });

  it('keeps its order as it grows and wraps, like an array kept in recency order', () => {
    const s = new LruSlots(500);
    const order: string[] = [];
    const slotOf = new Map<string, number>();
    for (let i = 0; i < 5000; i++) {
      const key = `k${(i * 7919) % 900}`;
      const slot = s.use(key);
      if (slot === -1) {
        // A new slot while there is room, then the slot of the key that goes.
        let expected = slotOf.size;
        if (order.length === 500) {
          const gone = order.shift()!;
          expected = slotOf.get(gone)!;
          slotOf.delete(gone);
        }
        expect(s.add(key)).toBe(expected);
        slotOf.set(key, expected);
      } else {
        expect(slot).toBe(slotOf.get(key));
        order.splice(order.indexOf(key), 1);
      }
      order.push(key);
    }
    expect([...s.keysByAge()]).toEqual(order);
    expect(new Set(slotOf.values()).size).toBe(500);
  });
});

describe('velocity, in-process', () => {
  it('holds a caller\'s first destination inline, a Map from the second, and goes back as they expire', () => {
    const t = new MemoryBehaviourTracker(DEFAULT_POLICY);
    expect(counts(t.observeSync(call({ to: dest(1), at: T0 })))).toEqual([1, 1]);
    expect(held(t)).toBe('inline');
    expect(counts(t.observeSync(call({ to: dest(1), at: T0 + 1000 })))).toEqual([1, 1]);
    expect(held(t)).toBe('inline');
    expect(counts(t.observeSync(call({ to: dest(2), at: T0 + 2000 })))).toEqual([2, 2]);
    expect(held(t)).toBe('map');
    // dest(1) (last called at T0 + 1000) has left the minute, not the hour.
    expect(counts(t.observeSync(call({ to: dest(2), at: T0 + 62_000 })))).toEqual([1, 2]);
    expect(held(t)).toBe('map');
    // No destination (a short code): dest(1) leaves the hour, dest(2) is left, inline.
    expect(counts(t.observeSync(call({ to: '999', at: T0 + 1000 + 3_600_001 })))).toEqual([0, 1]);
    expect(held(t)).toBe('inline');
    expect(counts(t.observeSync(call({ to: '999', at: T0 + 62_000 + 3_600_001 })))).toEqual([0, 0]);
    expect(held(t)).toBe('none');
    expect(counts(t.observeSync(call({ to: dest(3), at: T0 + 62_000 + 3_600_002 })))).toEqual([1, 1]);
    expect(held(t)).toBe('inline');
  });

  it('counts a destination exactly one window old in that window, inline or not', () => {
    const policy = DEFAULT_POLICY;
    for (const second of [null, dest(2)]) {
      const t = new MemoryBehaviourTracker(policy);
      const model = new ReferenceTracker(policy);
      const calls = [call({ to: dest(1), at: T0 }), ...(second ? [call({ to: second, at: T0 - 5 })] : []), call({ to: '999', at: T0 + 60_000 }), call({ to: '999', at: T0 + 3_600_000 }), call({ to: '999', at: T0 + 3_600_001 })];
      const got = calls.map((c) => counts(t.observeSync(c)));
      expect(got).toEqual(calls.map((c) => model.observe(c).distinctDestinations?.map((d) => d.count)));
      expect(got.slice(-3)).toEqual(second ? [[1, 2], [0, 1], [0, 0]] : [[1, 1], [0, 1], [0, 0]]);
    }
  });

  it('never moves an inline destination back for a late call, nor for a call at the same time', () => {
    const t = new MemoryBehaviourTracker(DEFAULT_POLICY);
    t.observeSync(call({ to: dest(1), at: T0 + 100_000 }));
    t.observeSync(call({ to: dest(1), at: T0 }));
    t.observeSync(call({ to: dest(1), at: T0 + 100_000 }));
    expect(held(t)).toBe('inline');
    expect(counts(t.observeSync(call({ to: '999', at: T0 + 159_000 })))).toEqual([1, 1]);
  });

  it('keeps the destinations moved forward last past maxDestinationsPerCaller, inline at 1', () => {
    const one = new MemoryBehaviourTracker(DEFAULT_POLICY, { maxDestinationsPerCaller: 1 });
    for (let i = 0; i < 4; i++) expect(counts(one.observeSync(call({ to: dest(i), at: T0 + i })))).toEqual([1, 1]);
    expect(held(one)).toBe('inline');

    const two = new MemoryBehaviourTracker(DEFAULT_POLICY, { maxDestinationsPerCaller: 2 });
    const model = new ReferenceTracker(DEFAULT_POLICY, { maxDestinationsPerCaller: 2 });
    // dest(1) moved forward by its second call: dest(2) is the one to go.
    const calls = [dest(1), dest(2), dest(1), dest(3), dest(2)].map((to, i) => call({ to, at: T0 + i * 1000 }));
    for (const c of calls) expect(two.observeSync(c).distinctDestinations).toEqual(model.observe(c).distinctDestinations);
    expect(counts(two.observeSync(call({ to: '999', at: T0 + 63_500 })))).toEqual([1, 2]);
  });

  it('forgets the least recently seen caller past maxCallers; a call with no destination is a sighting only of a known caller', () => {
    const [a, b, c, d] = ['+442079460001', '+442079460002', '+442079460003', '+442079460004'];
    const t = new MemoryBehaviourTracker(DEFAULT_POLICY, { maxCallers: 2 });
    const model = new ReferenceTracker(DEFAULT_POLICY, { maxCallers: 2 });
    const calls = [
      call({ from: a, to: dest(1), at: T0 }),
      call({ from: b, to: dest(1), at: T0 + 1 }),
      call({ from: a, to: '999', at: T0 + 2 }), // a is now the more recent
      call({ from: d, to: '999', at: T0 + 3 }), // unknown, no destination: not tracked
      call({ from: c, to: dest(1), at: T0 + 4 }), // b goes
      call({ from: b, to: dest(2), at: T0 + 5 }), // b starts again; a goes
    ];
    const seen: string[][] = [];
    for (const x of calls) {
      expect(t.observeSync(x)).toEqual({ ...model.observe(x), reports: null });
      seen.push(t.trackedCallers());
      expect(t.trackedCallers()).toEqual(model.trackedCallers());
    }
    expect(seen).toEqual([[a], [a, b], [b, a], [b, a], [a, c], [c, b]]);
    expect(counts(t.observeSync(call({ from: b, to: '999', at: T0 + 6 })))).toEqual([1, 1]);
    expect(counts(t.observeSync(call({ from: a, to: '999', at: T0 + 7 })))).toEqual([0, 0]);
  });
});

describe('replay, in-process', () => {
  afterEach(() => jest.restoreAllMocks());

  it('forgets the least recently seen fingerprint past maxFingerprints', () => {
    const t = new MemoryBehaviourTracker(DEFAULT_POLICY, { maxFingerprints: 2 });
    const seen = (callId: string, fp: string, at = T0) => t.observeSync(call({ callId, fingerprints: [fp], at })).replayed;
    expect(seen('a', 'fpA')).toBe(false);
    expect(seen('b', 'fpB')).toBe(false);
    expect(seen('c', 'fpA')).toBe(true); // fpA is now the more recent
    expect(seen('d', 'fpC')).toBe(false); // fpB goes
    expect(seen('e', 'fpB')).toBe(false); // e owns fpB now; fpA goes
    expect(seen('f', 'fpA')).toBe(false);
    expect(seen('g', 'fpB')).toBe(true);
  });

  it('judges expiry on call times: a fingerprint presented exactly the TTL later is no replay', () => {
    const t = new MemoryBehaviourTracker(DEFAULT_POLICY, { replayTtlS: 120 });
    expect(t.observeSync(call({ callId: 'a', fingerprints: ['fp'], at: T0 })).replayed).toBe(false);
    expect(t.observeSync(call({ callId: 'b', fingerprints: ['fp'], at: T0 + 119_999 })).replayed).toBe(true);
    expect(t.observeSync(call({ callId: 'c', fingerprints: ['fp'], at: T0 + 120_000 })).replayed).toBe(false);
    // c owns it now.
    expect(t.observeSync(call({ callId: 'd', fingerprints: ['fp'], at: T0 + 120_001 })).replayed).toBe(true);
  });

  it('also forgets a fingerprint stored longer ago than the TTL on its own clock, as Redis would', () => {
    let now = 1_000_000;
    jest.spyOn(performance, 'now').mockImplementation(() => now);
    const t = new MemoryBehaviourTracker(DEFAULT_POLICY, { replayTtlS: 120 });
    // A pinned call time: only the process clock moves.
    expect(t.observeSync(call({ callId: 'a', fingerprints: ['fp'] })).replayed).toBe(false);
    now += 120_000;
    expect(t.observeSync(call({ callId: 'b', fingerprints: ['fp'] })).replayed).toBe(true);
    now += 1;
    expect(t.observeSync(call({ callId: 'c', fingerprints: ['fp'] })).replayed).toBe(false);
    expect(t.observeSync(call({ callId: 'd', fingerprints: ['fp'] })).replayed).toBe(true);
  });
});

describe('campaigns, in-process', () => {
  const policy: Policy = { ...DEFAULT_POLICY, campaign: { windowS: 600, minFailedCalls: 2 } };
  const failing = (callId: string, at: number, from = '+442079460123') => call({ from, callId, registry: BANK, at });
  const number = (i: number) => `+4420794600${String(i % 50).padStart(2, '0')}`;

  it('keeps a call scored again at the same time in its place, and moves it for a later time', async () => {
    for (const again of [T0, T0 + 2]) {
      const t = new MemoryBehaviourTracker(policy, { maxCallsPerBank: 2 });
      const model = new ReferenceTracker(policy, { maxCallsPerBank: 2 });
      const calls = [failing('x', T0, '+442079460001'), failing('y', T0 + 1, '+442079460002'), failing('x', again, '+442079460001'), failing('z', T0 + 3, '+442079460003')];
      for (const c of calls) {
        await t.record(c, FAILING);
        model.countFailure(c, FAILING);
      }
      const list = await t.listCampaigns(T0 + 10);
      expect(list).toEqual(model.listCampaigns(T0 + 10));
      // At the same time x stayed first and went when z came; later, y went instead.
      expect(list[0]!.numbers.map((n) => n.number)).toEqual(again === T0 ? ['+442079460002', '+442079460003'] : ['+442079460001', '+442079460003']);
    }
  });

  it('slides over a long campaign at a constant cost, with the count and start a Map would give', async () => {
    const t = new MemoryBehaviourTracker(policy);
    const model = new ReferenceTracker(policy);
    // Four calls a second for an hour, a sixth of them scored again a little later.
    for (let i = 0; i < 14_400; i++) {
      const c = failing(`k${i}`, T0 + i * 250, number(i));
      await t.record(c, FAILING);
      model.countFailure(c, FAILING);
      if (i % 6 === 3) {
        const again = failing(`k${i - 3}`, T0 + i * 250, number(i - 3));
        await t.record(again, FAILING);
        model.countFailure(again, FAILING);
      }
      if (i % 997 === 0) {
        const probe = call({ registry: BANK, at: T0 + i * 250 + 1 });
        expect(t.observeSync(probe).campaign).toEqual(model.observe(probe).campaign);
      }
    }
    const end = T0 + 14_400 * 250;
    expect(await t.listCampaigns(end)).toEqual(model.listCampaigns(end));
    const queue = (t.state as unknown as { campaigns: Map<string, { order: unknown[]; head: number; size: number }> }).campaigns.get(BANK.bankId)!;
    expect(queue.size).toBe(model.observe(call({ registry: BANK, at: end })).campaign!.failedCalls);
    expect(queue.size).toBeGreaterThanOrEqual(2400);
    // What it holds beyond the calls themselves stays bounded.
    expect(queue.order.length - queue.head).toBeLessThanOrEqual(2 * 2400 + 1024);
    expect(queue.order.length).toBeLessThanOrEqual(3 * 2400 + 2048);
  });
});

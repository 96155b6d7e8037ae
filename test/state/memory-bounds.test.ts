import { loadConfig } from '../../src/config';
import { MemoryDecisionStore, type DecisionRecord } from '../../src/state/decisions';
import { MemoryHistoryStore } from '../../src/state/history';
import { LruSlots } from '../../src/state/lru-slots';
import { DEFAULT_MEMORY_BOUNDS } from '../../src/state/memory-bounds';
import { MemoryCallState } from '../../src/state/memory/call-state';
import type { CallStateQuery } from '../../src/state/ports';
import { MemoryReportStore } from '../../src/state/reports';
import { T0 } from './support';

/**
 * Every in-process store holds at most its bound whatever it is sent: here each is sent more
 * distinct keys than its bound (at the defaults where that is quick), as a flood of spoofed
 * callers, numbers called, call ids and PASSporTs would send them. README.md, Performance,
 * states these bounds; bench/soak.ts shows what they add up to in a running server.
 */

const WINDOWS = [60_000, 3_600_000];
const caller = (i: number) => `+4474${String(i).padStart(8, '0')}`;
const callee = (i: number) => `+44207${String(i).padStart(7, '0')}`;

function query(over: Partial<CallStateQuery> & { from?: string; to?: string | null }): CallStateQuery {
  const { from, to, ...rest } = over;
  return {
    at: T0,
    velocity: from === undefined ? null : { caller: from, destination: to ?? null, windowsMs: WINDOWS, keepMs: 3_600_000 },
    fingerprints: [],
    token: 't',
    reportsOf: null,
    campaign: null,
    announcement: null,
    cacheKey: null,
    ...rest,
  };
}

/** The store's private counts, read as a diagnostic would. */
const inner = (s: MemoryCallState<object>) => s as unknown as { callers: LruSlots; presenters: LruSlots; verdicts: { size: number } };

describe('the in-process stores hold at most their bounds', () => {
  it('callers, at the default bound, however many distinct callers call', () => {
    const s = new MemoryCallState<object>();
    const n = DEFAULT_MEMORY_BOUNDS.callers + 50_000;
    for (let i = 0; i < n; i++) s.readSync(query({ from: caller(i), to: callee(i), at: T0 + i }));
    expect(inner(s).callers.size).toBe(DEFAULT_MEMORY_BOUNDS.callers);
    // The most recent are the ones kept.
    expect(s.readSync(query({ from: caller(n - 1), to: callee(n - 1), at: T0 + n })).destinations).toEqual([1, 1]);
    expect(s.readSync(query({ from: caller(0), to: callee(1), at: T0 + n })).destinations).toEqual([1, 1]);
  });

  it('destinations over all callers: many callers each calling many numbers forget the least recent callers whole', () => {
    const s = new MemoryCallState<object>({ maxCallers: 1000, maxDestinationsPerCaller: 100, maxDestinations: 500 });
    let at = T0;
    for (let c = 0; c < 200; c++) {
      for (let d = 0; d < 50; d++) {
        s.readSync(query({ from: caller(c), to: callee(d), at: at++ }));
        expect(s.destinationsHeld).toBeLessThanOrEqual(500);
      }
    }
    // 50 destinations each: the last ten callers are held whole, the caller at hand never dropped.
    expect(s.destinationsHeld).toBe(500);
    expect(s.trackedCallers()).toEqual(Array.from({ length: 10 }, (_, i) => caller(190 + i)));
    expect(s.readSync(query({ from: caller(199), to: callee(0), at })).destinations).toEqual([50, 50]);
    // A forgotten caller starts again from its new call, in a reused slot.
    expect(s.readSync(query({ from: caller(0), to: callee(0), at: at + 1 })).destinations).toEqual([1, 1]);
    expect(s.destinationsHeld).toBeLessThanOrEqual(500);
  });

  it('a caller alone may hold its own bound, even above the bound in all', () => {
    const s = new MemoryCallState<object>({ maxDestinationsPerCaller: 30, maxDestinations: 10 });
    for (let d = 0; d < 40; d++) s.readSync(query({ from: caller(1), to: callee(d), at: T0 + d }));
    expect(s.destinationsHeld).toBe(30);
    s.readSync(query({ from: caller(2), to: callee(0), at: T0 + 100 }));
    // The one too many goes with the older caller.
    expect(s.trackedCallers()).toEqual([caller(2)]);
    expect(s.destinationsHeld).toBe(1);
  });

  it('PASSporT fingerprints, at the default bound', () => {
    const s = new MemoryCallState<object>();
    const n = DEFAULT_MEMORY_BOUNDS.fingerprints + 20_000;
    for (let i = 0; i < n; i++) s.readSync(query({ fingerprints: [`fp-${i}`], token: `t-${i}`, at: T0 + i }));
    expect(inner(s).presenters.size).toBe(DEFAULT_MEMORY_BOUNDS.fingerprints);
    // Still owned by the call that presented it: the newest are remembered.
    expect(s.readSync(query({ fingerprints: [`fp-${n - 1}`], token: 'again', at: T0 + n })).presenters).toEqual([`t-${n - 1}`]);
  });

  it("the verdict cache, at the configuration's default size", () => {
    const size = loadConfig({}).verdictCache.size;
    const s = new MemoryCallState<object>({ verdictCacheSize: size });
    for (let i = 0; i < size + 5000; i++) s.setCached(`k${i}`, { i }, 60_000);
    expect(inner(s).verdicts.size).toBe(size);
    expect(s.peekCached('k0')).toBeUndefined();
    expect(s.peekCached(`k${size + 4999}`)).toEqual({ i: size + 4999 });
  });

  it('the verdict history, at the default bound', () => {
    const h = new MemoryHistoryStore();
    const n = DEFAULT_MEMORY_BOUNDS.historyEntries + 10_000;
    for (let i = 0; i < n; i++) {
      h.addRecord({ callId: `c${i}`, caller: caller(i), callee: callee(i), at: T0 + i, verdict: 'allow', score: 10, reasons: [{ code: 'SHAKEN_ABSENT' }] });
    }
    expect(h.size).toBe(DEFAULT_MEMORY_BOUNDS.historyEntries);
  });

  it('decision records, by call ids and by bytes, at the default bounds', () => {
    const d = new MemoryDecisionStore({ now: () => T0 });
    const base: DecisionRecord = {
      callId: 'c',
      at: T0,
      decidedAt: T0,
      from: '+442079460123',
      to: '+447700900001',
      verdict: 'allow',
      score: 10,
      presentation: 'allowed',
      reasons: [{ code: 'SHAKEN_ABSENT', weight: 5, message: 'no STIR/SHAKEN attestation on the call' }],
      cached: false,
      shaken: { source: 'none', verstat: 'No-TN-Validation', attestation: null, errors: [] },
      policyVersion: 'p1',
      registryVersion: 'r1',
    };
    for (let i = 0; i < DEFAULT_MEMORY_BOUNDS.decisionCalls + 10_000; i++) d.add({ ...base, callId: `c${i}` });
    expect(d.size).toBeLessThanOrEqual(DEFAULT_MEMORY_BOUNDS.decisionCalls);
    // Records of a kilobyte each: the bytes bind first.
    const heavy = new MemoryDecisionStore({ now: () => T0 });
    const note = 'x'.repeat(1000);
    for (let i = 0; i < 40_000; i++) heavy.add({ ...base, callId: `h${i}`, reasons: [{ ...base.reasons[0]!, message: note }] });
    expect(heavy.size).toBeLessThan(DEFAULT_MEMORY_BOUNDS.decisionBytes / 1000);
  });

  it('fraud reports in all: many numbers each reported many times forget the least recently reported numbers', async () => {
    const r = new MemoryReportStore({ maxAgeS: 86_400, maxNumbers: 1000, maxPerNumber: 100, maxReports: 250 });
    for (let n = 0; n < 40; n++) {
      for (let k = 0; k < 20; k++) {
        await r.addReport({ number: caller(n), category: 'spoof', reporter: 'fraud-team', at: T0 + n * 100 + k });
        expect(r.size).toBeLessThanOrEqual(250);
      }
    }
    expect(r.size).toBe(240);
    expect(await r.summary(caller(39), T0 + 10_000)).not.toBeNull();
    expect(await r.summary(caller(0), T0 + 10_000)).toBeNull();
    expect((await r.listAll({ limit: 1000 }, T0 + 10_000)).length).toBe(240);
  });

  it('fraud reports in all, at the default bound', async () => {
    const r = new MemoryReportStore({ maxAgeS: 86_400 });
    for (let i = 0; i < DEFAULT_MEMORY_BOUNDS.reports + 1000; i++) {
      await r.addReport({ number: caller(i % 1000), category: 'spoof', reporter: 'fraud-team', at: T0 + i });
    }
    expect(r.size).toBeLessThanOrEqual(DEFAULT_MEMORY_BOUNDS.reports);
  });
});

describe('LruSlots.dropOldest', () => {
  it('forgets the least recent key and hands its slot out again before a new one', () => {
    const s = new LruSlots(4);
    expect([s.add('a'), s.add('b'), s.add('c')]).toEqual([0, 1, 2]);
    s.use('a');
    expect(s.oldestSlot).toBe(1);
    expect(s.dropOldest()).toBe(1);
    expect(s.peek('b')).toBe(-1);
    expect(s.size).toBe(2);
    expect([...s.keysByAge()]).toEqual(['c', 'a']);
    expect(s.add('d')).toBe(1);
    expect(s.add('e')).toBe(3);
    expect(s.add('f')).toBe(2); // full: c, the least recent, goes
    expect([...s.keysByAge()]).toEqual(['a', 'd', 'e', 'f']);
    expect(new LruSlots(2).dropOldest()).toBe(-1);
  });
});

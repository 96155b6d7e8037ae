import fc from 'fast-check';
import { DEFAULT_POLICY, type Policy } from '../../src/scoring';
import type { MemoryCallStateOptions as MemoryBehaviourOptions } from '../../src/state/memory/call-state';
import { historyEntry, historyRecord } from '../../src/calls/behaviour';
import { MemoryHistoryStore, type HistoryQuery } from '../../src/state/history';
import { MemoryReportStore, normaliseReport, REPORT_CATEGORIES } from '../../src/state/reports';
import { ReferenceHistory, ReferenceReports, ReferenceTracker } from './reference-memory';
import { BANK, call, CLEAN, dest, FAILING, OTHER_BANK, T0, type CallSpec, MemoryBehaviourTracker } from './support';

/**
 * The compact in-process stores against the model of how they used to be (reference-memory.ts):
 * random call sequences, small bounds so that every eviction path runs, the same answers.
 */

const CALLERS = ['+442079460001', '+442079460002', '+442079460003', '+441614960004', 'anonymous', '12'];
// '999' is a short code: no destination for velocity, but a callee for the history.
const CALLEES = [dest(1), dest(2), dest(3), dest(4), '999', 'junk'];

/** Small windows, so that random times cross them. */
const policy: Policy = {
  ...DEFAULT_POLICY,
  velocity: {
    windows: [
      { seconds: 10, maxDistinct: 2 },
      { seconds: 60, maxDistinct: 3 },
    ],
  },
  campaign: { windowS: 30, minFailedCalls: 2 },
};

/** The clock's steps: mostly a little, at times none, at times past a window. */
const step = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 1, max: 3000 }) },
  { weight: 2, arbitrary: fc.constant(0) },
  { weight: 1, arbitrary: fc.integer({ min: 9000, max: 70_000 }) },
);

/** How late a call arrives (its time before the clock's): mostly not at all. */
const late = fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 15_000 }) });

/** Mostly a few of `all`, so that the same caller, destination or call comes back often. */
const fewOf = <T>(all: readonly T[]) =>
  fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...all.slice(0, 2)) }, { weight: 1, arbitrary: fc.constantFrom(...all) });

const callOp = fc.record({
  from: fewOf(CALLERS),
  to: fewOf(CALLEES),
  callId: fc.option(fewOf(['a', 'b', 'c', 'd']), { nil: undefined, freq: 4 }),
  fingerprints: fc.subarray(['fpA', 'fpB', 'fpC']),
  registry: fc.constantFrom(null, BANK, OTHER_BANK),
  failing: fc.boolean(),
  step,
  late,
});
type CallOp = typeof callOp extends fc.Arbitrary<infer T> ? T : never;

function toCall(op: CallOp, at: number) {
  const spec: CallSpec = { from: op.from, to: op.to, fingerprints: op.fingerprints, registry: op.registry, at };
  if (op.callId !== undefined) spec.callId = op.callId;
  return call(spec);
}

// The large bounds stand for "never reached": above any sequence's length.
const trackerOptions = fc.record({
  maxCallers: fc.constantFrom(1, 2, 3, 1000),
  maxDestinationsPerCaller: fc.constantFrom(1, 2, 3, 1000),
  maxFingerprints: fc.constantFrom(1, 2, 1000),
  maxCallsPerBank: fc.constantFrom(1, 3, 1000),
  replayTtlS: fc.constantFrom(5, 120),
}) as fc.Arbitrary<MemoryBehaviourOptions>;

describe('the in-process tracker against its model', () => {
  it('gives the same velocity, replay and campaign answers, and forgets the same callers', async () => {
    await fc.assert(
      fc.asyncProperty(trackerOptions, fc.array(callOp, { minLength: 1, maxLength: 80 }), async (opts, ops) => {
        const tracker = new MemoryBehaviourTracker(policy, opts);
        const model = new ReferenceTracker(policy, opts);
        let clock = T0;
        for (const op of ops) {
          clock += op.step;
          const c = toCall(op, clock - op.late);
          const got = tracker.observeSync(c);
          const want = model.observe(c);
          expect({ replayed: got.replayed, distinctDestinations: got.distinctDestinations, campaign: got.campaign }).toEqual(want);
          const d = op.failing ? FAILING : CLEAN;
          await tracker.record(c, d);
          model.countFailure(c, d);
          expect(tracker.trackedCallers()).toEqual(model.trackedCallers());
        }
        expect(await tracker.listCampaigns(clock)).toEqual(model.listCampaigns(clock));
        expect(await tracker.listCampaigns(clock + 20_000)).toEqual(model.listCampaigns(clock + 20_000));
      }),
      { numRuns: 400 },
    );
  });
});

const historyOptions = fc.record({ maxEntries: fc.integer({ min: 1, max: 9 }), retentionS: fc.constantFrom(5, 30, 3600) });

const queryOp = fc.record({
  caller: fc.constantFrom<string | null>('+442079460001', '+442079460002', '+441614960004', null),
  callee: fc.option(fc.constantFrom(...CALLEES.slice(0, 5)), { nil: undefined }),
  bankId: fc.option(fc.constantFrom(BANK.bankId, OTHER_BANK.bankId), { nil: undefined }),
  since: fc.option(fc.integer({ min: -20_000, max: 60_000 }), { nil: undefined }),
  limit: fc.option(fc.integer({ min: 0, max: 12 }), { nil: undefined }),
});

describe('the in-process history against its model', () => {
  it('holds and answers the same entries, whatever wraps, expires or shares a key', async () => {
    await fc.assert(
      fc.asyncProperty(historyOptions, fc.array(fc.tuple(callOp, queryOp), { minLength: 1, maxLength: 60 }), async (opts, ops) => {
        const store = new MemoryHistoryStore(opts);
        const model = new ReferenceHistory(opts);
        let clock = T0;
        for (const [op, q] of ops) {
          clock += op.step;
          const at = clock - op.late;
          // Same ids both sides: the entry is made once and given to both.
          const entry = historyEntry(toCall(op, at), op.failing ? FAILING : CLEAN);
          store.addSync(entry);
          model.addSync(entry);
          expect(store.size).toBe(model.size);
          const query: HistoryQuery = { caller: q.caller };
          if (q.callee !== undefined) query.callee = q.callee;
          if (q.bankId !== undefined) query.bankId = q.bankId;
          if (q.since !== undefined) query.since = at + q.since;
          if (q.limit !== undefined) query.limit = q.limit;
          expect(await store.query(query)).toEqual(model.query(query));
        }
        for (const caller of [...CALLERS, null]) {
          expect(await store.query({ caller, limit: 1000 })).toEqual(model.query({ caller, limit: 1000 }));
          for (const callee of CALLEES) expect(await store.query({ caller, callee, limit: 1000 })).toEqual(model.query({ caller, callee, limit: 1000 }));
        }
      }),
      { numRuns: 400 },
    );
  });

  it('keeps a call through addCall as historyEntry makes it', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(callOp, { minLength: 1, maxLength: 30 }), async (ops) => {
        const store = new MemoryHistoryStore({ maxEntries: 10 });
        const seen = new Set<string>();
        let clock = T0;
        for (const op of ops) {
          clock += op.step;
          const c = toCall(op, clock - op.late);
          const d = op.failing ? FAILING : CLEAN;
          const before = store.size;
          store.addRecord(historyRecord(c, d));
          const want = historyEntry(c, d);
          if (want.caller === null && want.callee === null) {
            expect(store.size).toBe(before);
            continue;
          }
          // The entry just kept is the one of its key not seen before.
          const found = await store.query({ caller: want.caller, ...(want.caller === null ? { callee: want.callee! } : {}), limit: 1000 });
          const fresh = found.filter((e) => !seen.has(e.id));
          expect(fresh).toHaveLength(1);
          expect(fresh[0]).toEqual({ ...want, id: fresh[0]!.id });
          expect(Object.keys(fresh[0]!)).toEqual(Object.keys(want));
          for (const e of found) seen.add(e.id);
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe('the in-process reports against their model', () => {
  const NUMBERS = ['+442079460001', '+442079460002', '+442079460003', '+442079460004'];
  const reportOp = fc.record({
    number: fc.constantFrom(...NUMBERS),
    category: fc.constantFrom(...REPORT_CATEGORIES),
    // A few ids, so that a report is sometimes kept again (the Redis store's local copy).
    id: fc.constantFrom('r1', 'r2', 'r3', 'r4', 'r5', 'r6'),
    step: fc.integer({ min: -3000, max: 40_000 }),
  });

  it('forgets the same numbers and answers the same summaries and lists', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({ maxAgeS: fc.constantFrom(30, 3600), maxNumbers: fc.integer({ min: 1, max: 5 }), maxPerNumber: fc.integer({ min: 1, max: 4 }) }),
        fc.array(reportOp, { minLength: 1, maxLength: 60 }),
        async (opts, ops) => {
          const store = new MemoryReportStore(opts);
          const model = new ReferenceReports(opts);
          let at = T0;
          for (const op of ops) {
            at += op.step;
            const report = normaliseReport({ number: op.number, category: op.category, reporter: 'x', at }, `${op.id}-${op.number}`);
            store.keep(report);
            model.keep(report);
            for (const n of NUMBERS) {
              expect(store.summarySync(n, at)).toEqual(model.summary(n, at));
              expect(store.summarySync(n, at + 20_000)).toEqual(model.summary(n, at + 20_000));
            }
          }
          for (const n of NUMBERS) expect(await store.list(n, at, 3)).toEqual(model.list(n, at, 3));
        },
      ),
      { numRuns: 400 },
    );
  });
});

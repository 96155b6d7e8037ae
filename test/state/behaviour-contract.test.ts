import type Redis from 'ioredis';
import { decide, DEFAULT_POLICY, type BehaviourSignals, type CallSignals, type Policy } from '../../src/scoring';
import { BANK, call, CLEAN, dest, FAILING, guardFor, NO_SHAKEN, OTHER_BANK, sharedRedis, T0, MemoryBehaviourTracker, RedisBehaviourTracker, type BehaviourTracker as BehaviourStore } from './support';

/**
 * One behaviour, two homes: every test here runs against the in-process tracker and against
 * the Redis tracker on a real Redis, and both must give the same answers.
 */

type Tracker = BehaviourStore;

const shared = sharedRedis('contract');
const base = shared.base;
let client: Redis;
let n = 0;
beforeAll(() => {
  client = shared.client();
});

const impls: [string, (policy?: Policy) => Tracker][] = [
  ['memory', (policy = DEFAULT_POLICY) => new MemoryBehaviourTracker(policy)],
  [
    'redis',
    (policy = DEFAULT_POLICY) =>
      new RedisBehaviourTracker(guardFor(client), policy, { prefix: `${base}${n++}:`, fallback: new MemoryBehaviourTracker(policy) }),
  ],
];

function decideWith(c: ReturnType<typeof call>, behaviour: BehaviourSignals) {
  const signals: CallSignals = { caller: c.caller, callee: c.callee, origin: {}, registry: c.registry, shaken: NO_SHAKEN, behaviour };
  return decide(signals, DEFAULT_POLICY).reasons.map((r) => r.code);
}

describe.each(impls)('%s tracker', (_name, make) => {
  describe('velocity', () => {
    it('counts distinct destinations per window, this call included', async () => {
      const t = make();
      for (let i = 0; i < 3; i++) await t.observe(call({ to: dest(i), callId: `v${i}`, at: T0 + i * 1000 }));
      const s = await t.observe(call({ to: dest(3), callId: 'v3', at: T0 + 3000 }));
      expect(s.distinctDestinations).toEqual([
        { seconds: 60, count: 4 },
        { seconds: 3600, count: 4 },
      ]);
    });

    it('a rescored callId, or a retry to the same number, is one destination', async () => {
      const t = make();
      await t.observe(call({ to: dest(1), callId: 'a', at: T0 }));
      await t.observe(call({ to: dest(1), callId: 'a', at: T0 + 10 }));
      await t.observe(call({ to: dest(1), callId: 'b', at: T0 + 20 }));
      const s = await t.observe(call({ to: dest(1), at: T0 + 30 }));
      expect(s.distinctDestinations?.map((d) => d.count)).toEqual([1, 1]);
    });

    it('the windows slide: destinations older than a window leave it', async () => {
      const t = make();
      await t.observe(call({ to: dest(1), at: T0 }));
      await t.observe(call({ to: dest(2), at: T0 + 1000 }));
      const later = await t.observe(call({ to: dest(3), at: T0 + 61_500 }));
      expect(later.distinctDestinations?.map((d) => d.count)).toEqual([1, 3]);
      const muchLater = await t.observe(call({ to: dest(4), at: T0 + 3_601_100 }));
      expect(muchLater.distinctDestinations?.map((d) => d.count)).toEqual([1, 2]);
      // A destination called again moves forward in time and counts in the short window again.
      const again = await t.observe(call({ to: dest(3), at: T0 + 3_601_200 }));
      expect(again.distinctDestinations?.map((d) => d.count)).toEqual([2, 2]);
    });

    it('a late call with an older time never moves a destination back', async () => {
      const t = make();
      await t.observe(call({ to: dest(1), at: T0 + 100_000 }));
      await t.observe(call({ to: dest(1), at: T0 }));
      const s = await t.observe(call({ to: dest(2), at: T0 + 100_000 + 59_000 }));
      expect(s.distinctDestinations?.map((d) => d.count)).toEqual([2, 2]);
    });

    it('withheld and invalid callers are not counted; callers are counted apart', async () => {
      const t = make();
      expect((await t.observe(call({ from: 'anonymous', to: dest(1) }))).distinctDestinations).toBeUndefined();
      expect((await t.observe(call({ from: '12', to: dest(1) }))).distinctDestinations).toBeUndefined();
      await t.observe(call({ from: '+442079460123', to: dest(1) }));
      const other = await t.observe(call({ from: '+441614960000', to: dest(2) }));
      expect(other.distinctDestinations?.map((d) => d.count)).toEqual([1, 1]);
    });

    it('past the per-minute limit the decision says VELOCITY_HIGH', async () => {
      const t = make();
      let s: BehaviourSignals = {};
      for (let i = 0; i <= 20; i++) s = await t.observe(call({ to: dest(i), at: T0 + i * 100 }));
      expect(s.distinctDestinations?.[0]).toEqual({ seconds: 60, count: 21 });
      expect(decideWith(call(), s)).toContain('VELOCITY_HIGH');
    });
  });

  describe('replay', () => {
    it('the same PASSporT on another call is a replay; the same call rescored is not', async () => {
      const t = make();
      expect((await t.observe(call({ callId: 'a', fingerprints: ['fpA'] }))).replayed).toBe(false);
      expect((await t.observe(call({ callId: 'a', fingerprints: ['fpA'] }))).replayed).toBe(false);
      const replay = await t.observe(call({ callId: 'b', fingerprints: ['fpA'] }));
      expect(replay.replayed).toBe(true);
      expect(decideWith(call(), replay)).toContain('PASSPORT_REPLAY');
      // The first presenter keeps the token: it is still not a replay of itself.
      expect((await t.observe(call({ callId: 'a', fingerprints: ['fpA'] }))).replayed).toBe(false);
    });

    it('without a callId, any second sighting is a replay', async () => {
      const t = make();
      expect((await t.observe(call({ fingerprints: ['fpB'] }))).replayed).toBe(false);
      expect((await t.observe(call({ fingerprints: ['fpB'] }))).replayed).toBe(true);
    });

    it('one replayed PASSporT among several is enough; no PASSporT is never a replay', async () => {
      const t = make();
      await t.observe(call({ callId: 'a', fingerprints: ['fp1'] }));
      expect((await t.observe(call({ callId: 'b', fingerprints: ['fp2', 'fp1'] }))).replayed).toBe(true);
      expect((await t.observe(call({ callId: 'c', fingerprints: [] }))).replayed).toBe(false);
    });
  });

  describe('fraud reports', () => {
    it('count, categories and age of the newest report against the caller', async () => {
      const t = make();
      expect((await t.observe(call())).reports).toBeNull();
      await t.reports.addReport({ number: '+442079460123', category: 'scam', reporter: 'bank-a', at: T0 - 7200_000 });
      await t.reports.addReport({ number: '+442079460123', category: 'spoof', reporter: 'bank-a', at: new Date(T0 - 3600_000).toISOString() });
      await t.reports.addReport({ number: '+442079460123', category: 'scam', reporter: 'bank-b', at: T0 - 5000_000 });
      await t.reports.addReport({ number: '+441614960000', category: 'nuisance', reporter: 'bank-b', at: T0 });
      const s = await t.observe(call({ at: T0 }));
      expect(s.reports).toEqual({ count: 3, newestAgeS: 3600, categories: ['scam', 'spoof'] });
      expect(decideWith(call(), s)).toContain('REPORTED_FRAUD');
    });

    it('reports older than the max age no longer count', async () => {
      const t = make();
      const maxAgeMs = DEFAULT_POLICY.reports.maxAgeS * 1000;
      await t.reports.addReport({ number: '+442079460123', category: 'scam', reporter: 'x', at: T0 - maxAgeMs - 1000 });
      expect((await t.observe(call({ at: T0 }))).reports).toBeNull();
      await t.reports.addReport({ number: '+442079460123', category: 'nuisance', reporter: 'x', at: T0 - 1000 });
      expect((await t.observe(call({ at: T0 }))).reports).toEqual({ count: 1, newestAgeS: 1, categories: ['nuisance'] });
    });

    it('lists reports newest first and refuses what is not a report', async () => {
      const t = make();
      const a = await t.reports.addReport({ number: '+442079460123', category: 'scam', reporter: 'x', note: 'said he was the bank', at: T0 - 2000 });
      const b = await t.reports.addReport({ number: '+442079460123', category: 'spoof', reporter: 'y', callId: 'k9', at: T0 - 1000 });
      expect(await t.reports.list('+442079460123', T0)).toEqual([b, a]);
      expect(a).toMatchObject({ id: expect.any(String), note: 'said he was the bank', at: new Date(T0 - 2000).toISOString() });
      await expect(t.reports.addReport({ number: '02079460123', category: 'scam', reporter: 'x', at: T0 })).rejects.toThrow(RangeError);
      await expect(
        t.reports.addReport({ number: '+442079460123', category: 'rude' as 'scam', reporter: 'x', at: T0 }),
      ).rejects.toThrow(RangeError);
    });
  });

  describe('campaigns', () => {
    const min = DEFAULT_POLICY.campaign.minFailedCalls;

    async function failing(t: Tracker, count: number, opts: { start?: number; bank?: typeof BANK; prefix?: string } = {}) {
      const start = opts.start ?? T0;
      for (let i = 0; i < count; i++) {
        const c = call({
          from: `+4420794600${String(i % 7).padStart(2, '0')}`,
          to: dest(i),
          callId: `${opts.prefix ?? 'f'}${i}`,
          registry: opts.bank ?? BANK,
          at: start + i * 1000,
        });
        await t.observe(c);
        await t.record(c, FAILING);
      }
    }

    it('starts at minFailedCalls failing calls presenting one bank, for that bank only', async () => {
      const t = make();
      await failing(t, min - 1);
      expect((await t.observe(call({ registry: BANK, at: T0 + 60_000 }))).campaign).toBeNull();
      await failing(t, 1, { start: T0 + 30_000, prefix: 'late' });
      const s = await t.observe(call({ registry: BANK, at: T0 + 60_000 }));
      expect(s.campaign).toEqual({ bankId: 'examplebank', bankName: 'Example Bank', failedCalls: min, since: new Date(T0).toISOString() });
      expect(decideWith(call({ registry: BANK }), s)).toContain('CAMPAIGN_ACTIVE');
      expect((await t.observe(call({ registry: OTHER_BANK, at: T0 + 60_000 }))).campaign).toBeNull();
      expect((await t.observe(call({ at: T0 + 60_000 }))).campaign).toBeNull();
    });

    it('counts calls, not scorings; ignores calls that pass and calls of no bank', async () => {
      const t = make();
      await failing(t, min - 1);
      await failing(t, min - 1); // the same callIds again
      const clean = call({ callId: 'ok', registry: BANK, at: T0 + 20_000 });
      await t.record(clean, CLEAN);
      await t.record(call({ callId: 'nobank', at: T0 + 20_000 }), FAILING);
      expect((await t.observe(call({ registry: BANK, at: T0 + 30_000 }))).campaign).toBeNull();
    });

    it('ends when the window passes without enough failing calls', async () => {
      const t = make();
      await failing(t, min);
      const windowMs = DEFAULT_POLICY.campaign.windowS * 1000;
      expect((await t.observe(call({ registry: BANK, at: T0 + windowMs - 1 }))).campaign?.failedCalls).toBe(min);
      // The first failing call has left the window.
      expect((await t.observe(call({ registry: BANK, at: T0 + windowMs + 1 }))).campaign).toBeNull();
    });

    it('lists running campaigns with the numbers they present', async () => {
      const t = make();
      await failing(t, min + 4);
      await failing(t, min - 1, { bank: OTHER_BANK, prefix: 'o' });
      const list = await t.listCampaigns(T0 + 60_000);
      expect(list).toHaveLength(1);
      const [c] = list;
      expect(c).toMatchObject({
        bankId: 'examplebank',
        bankName: 'Example Bank',
        failedCalls: min + 4,
        since: new Date(T0).toISOString(),
        lastSeen: new Date(T0 + (min + 3) * 1000).toISOString(),
      });
      expect(c!.numbers.reduce((sum, x) => sum + x.calls, 0)).toBe(min + 4);
      expect(c!.numbers[0]).toEqual({ number: '+442079460000', calls: 2 });
      expect(await t.listCampaigns(T0 + 3_600_000)).toEqual([]);
    });
  });

  describe('history', () => {
    it('keeps every scored call, newest first, by caller and by caller and callee', async () => {
      const t = make();
      await t.record(call({ callId: 'h1', to: dest(1), at: T0, registry: BANK }), FAILING);
      await t.record(call({ callId: 'h2', to: dest(2), at: T0 + 1000, registry: BANK }), CLEAN);
      await t.record(call({ callId: 'h2', to: dest(2), at: T0 + 1000, registry: BANK }), CLEAN); // rescored: kept twice
      await t.record(call({ callId: 'h3', to: dest(1), at: T0 + 2000 }), CLEAN);
      await t.record(call({ from: '+441614960000', callId: 'x', to: dest(1), at: T0 + 3000 }), CLEAN);

      const all = await t.history.query({ caller: '+442079460123', limit: 10 });
      expect(all.map((e) => e.callId)).toEqual(['h3', 'h2', 'h2', 'h1']);
      expect(new Set(all.map((e) => e.id)).size).toBe(4);
      expect(all[3]).toMatchObject({
        caller: '+442079460123',
        callee: dest(1),
        at: new Date(T0).toISOString(),
        verdict: 'block',
        score: FAILING.score,
        reasons: ['CLI_DOMESTIC_FROM_ABROAD', 'SHAKEN_ABSENT'],
        bankId: 'examplebank',
      });

      expect((await t.history.query({ caller: '+442079460123', callee: dest(1) })).map((e) => e.callId)).toEqual(['h3', 'h1']);
      expect((await t.history.query({ caller: '+442079460123', since: T0 + 500 })).map((e) => e.callId)).toEqual(['h3', 'h2', 'h2']);
      expect(
        (await t.history.query({ caller: '+442079460123', since: new Date(T0 + 1500).toISOString() })).map((e) => e.callId),
      ).toEqual(['h3']);
      expect((await t.history.query({ caller: '+442079460123', bankId: 'examplebank' })).map((e) => e.callId)).toEqual(['h2', 'h2', 'h1']);
      expect((await t.history.query({ caller: '+442079460123', limit: 1 })).map((e) => e.callId)).toEqual(['h3']);
      expect(await t.history.query({ caller: '+449999999999' })).toEqual([]);
    });

    it('withheld callers are found by the number they called', async () => {
      const t = make();
      await t.record(call({ from: 'anonymous', callId: 'w1', to: dest(5), at: T0 }), CLEAN);
      await t.record(call({ from: 'anonymous', callId: 'w2', to: dest(6), at: T0 }), CLEAN);
      const found = await t.history.query({ caller: null, callee: dest(5) });
      expect(found.map((e) => [e.callId, e.caller])).toEqual([['w1', null]]);
      expect(await t.history.query({ caller: null })).toEqual([]);
    });
  });
});

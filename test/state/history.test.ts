import type Redis from 'ioredis';
import { DEFAULT_POLICY } from '../../src/scoring';
import { historyEntry, historyRecord } from '../../src/calls/behaviour';
import { MemoryHistoryStore, RedisHistoryStore, type HistoryEntry } from '../../src/state/history';
import { BANK, call, CLEAN, connect, deleteByPrefix, absentRedis, dest, FAILING, guardFor, T0, uniquePrefix, MemoryBehaviourTracker } from './support';
import { until } from '../../scripts/lib/process';

const DAY = 86400_000;

function entry(i: number, over: { from?: string; to?: string; at?: number; bank?: boolean } = {}): HistoryEntry {
  const c = call({
    callId: `e${i}`,
    from: over.from ?? '+442079460123',
    to: over.to ?? dest(i % 3),
    at: over.at ?? T0 + i * 1000,
    registry: over.bank ? BANK : null,
  });
  return historyEntry(c, i % 2 ? FAILING : CLEAN);
}

describe('in-process history', () => {
  it('drops the oldest entries past its size, whoever made them', async () => {
    const h = new MemoryHistoryStore({ maxEntries: 1000 });
    for (let i = 0; i < 5000; i++) await h.add(entry(i, { from: i % 2 ? '+442079460123' : '+441614960000' }));
    expect(h.size).toBe(1000);
    const a = await h.query({ caller: '+442079460123', limit: 1000 });
    const b = await h.query({ caller: '+441614960000', limit: 1000 });
    expect(a.length + b.length).toBe(1000);
    expect(a[0]?.callId).toBe('e4999');
    expect(a.at(-1)?.callId).toBe('e4001');
    expect(b.at(-1)?.callId).toBe('e4000');
  });

  it('drops entries older than the retention', async () => {
    const h = new MemoryHistoryStore({ retentionS: 3600 });
    await h.add(entry(1, { at: T0 }));
    await h.add(entry(2, { at: T0 + 1000 }));
    await h.add(entry(3, { at: T0 + 3600_500 }));
    expect((await h.query({ caller: '+442079460123' })).map((e) => e.callId)).toEqual(['e3', 'e2']);
    expect(h.size).toBe(2);
  });

  it('caps the limit at 1000 and at least 1', async () => {
    const h = new MemoryHistoryStore();
    for (let i = 0; i < 1200; i++) await h.add(entry(i));
    expect(await h.query({ caller: '+442079460123', limit: 5000 })).toHaveLength(1000);
    expect(await h.query({ caller: '+442079460123', limit: 0 })).toHaveLength(1);
    expect(await h.query({ caller: '+442079460123' })).toHaveLength(100);
  });
});

describe('in-process history, stored compactly', () => {
  const ids = (list: HistoryEntry[]) => list.map((e) => e.callId);

  it('finds each key\'s entries while the ring wraps over other keys\' entries', async () => {
    const h = new MemoryHistoryStore({ maxEntries: 3 });
    const A = '+442079460001';
    const B = '+442079460002';
    const add = (callId: string, from: string, i: number) => h.addSync(historyEntry(call({ callId, from, at: T0 + i * 1000 }), CLEAN));
    add('a1', A, 1);
    add('b1', B, 2);
    add('a2', A, 3);
    add('b2', B, 4); // a1 goes
    add('a3', A, 5); // b1 goes
    expect(ids(await h.query({ caller: A }))).toEqual(['a3', 'a2']);
    expect(ids(await h.query({ caller: B }))).toEqual(['b2']);
    // a2's and a3's slots are taken by entries of B and of a withheld caller: A has none left.
    add('b3', B, 6);
    h.addSync(historyEntry(call({ callId: 'w1', from: 'anonymous', to: dest(1), at: T0 + 7000 }), CLEAN));
    add('b4', B, 8);
    expect(await h.query({ caller: A })).toEqual([]);
    expect(ids(await h.query({ caller: B }))).toEqual(['b4', 'b3']);
    expect(ids(await h.query({ caller: null, callee: dest(1) }))).toEqual(['w1']);
    expect(h.size).toBe(3);
  });

  it('keeps an entry exactly as old as the retention, and drops it a millisecond later', async () => {
    const h = new MemoryHistoryStore({ retentionS: 60 });
    h.addSync(entry(1, { at: T0 }));
    h.addSync(entry(2, { at: T0 + 60_000 }));
    expect(h.size).toBe(2);
    h.addSync(entry(3, { at: T0 + 60_001 }));
    expect(ids(await h.query({ caller: '+442079460123' }))).toEqual(['e3', 'e2']);
  });

  it('keeps a call as historyEntry makes it: short codes, withheld callers, banks and no callId', async () => {
    const h = new MemoryHistoryStore();
    const calls = [
      call({ callId: 'k1', registry: BANK, at: T0 }),
      call({ to: '999', at: T0 + 1 }),
      call({ from: 'anonymous', callId: 'k3', to: dest(7), at: T0 + 2 }),
      call({ from: '12', to: 'junk', at: T0 + 3 }),
    ];
    for (const [i, c] of calls.entries()) {
      const d = i % 2 ? FAILING : CLEAN;
      h.addRecord(historyRecord(c, d));
      const want = historyEntry(c, d);
      expect(want.caller !== null || want.callee !== null).toBe(true);
      const [got] = await h.query(want.caller === null ? { caller: null, callee: want.callee! } : { caller: want.caller, limit: 1 });
      expect(got).toEqual({ ...want, id: got!.id });
      expect(Object.keys(got!)).toEqual(Object.keys(want));
      expect(got!.id).not.toBe(want.id);
    }
    // Neither caller nor callee: nothing to find it by, so not kept.
    expect(historyEntry(call({ from: 'anonymous', to: 'junk' }), CLEAN)).toMatchObject({ caller: null, callee: null });
    h.addRecord(historyRecord(call({ from: 'anonymous', to: 'junk' }), CLEAN));
    expect(h.size).toBe(4);
  });

  it('refuses a time that is not one, as historyEntry does; the tracker then records nothing', async () => {
    const h = new MemoryHistoryStore();
    const bad = call({ at: Number.NaN });
    expect(() => historyEntry(bad, CLEAN)).toThrow(RangeError);
    expect(() => h.addRecord(historyRecord(bad, CLEAN))).toThrow(RangeError);
    expect(() => h.addRecord(historyRecord(call({ at: 8.64e15 + 1 }), CLEAN))).toThrow(RangeError);
    const t = new MemoryBehaviourTracker(DEFAULT_POLICY, { history: h });
    await expect(t.record(bad, CLEAN)).resolves.toBeUndefined();
    expect(h.size).toBe(0);
  });

  it('keeps a fractional time to the millisecond, as its ISO text has it', async () => {
    const h = new MemoryHistoryStore();
    h.addRecord(historyRecord(call({ callId: 'f', at: T0 + 0.7 }), CLEAN));
    const [got] = await h.query({ caller: '+442079460123' });
    expect(got!.at).toBe(new Date(T0).toISOString());
    expect(await h.query({ caller: '+442079460123', since: T0 + 0.5 })).toEqual([]);
  });

  it('returns an entry given with its time in another form as it was given', async () => {
    const h = new MemoryHistoryStore();
    const odd = { ...entry(1), at: '2025-06-02T09:00:00Z' };
    const junk = { ...entry(2), at: 'yesterday' };
    h.addSync(odd);
    h.addSync(junk);
    h.addSync(entry(3));
    const found = await h.query({ caller: '+442079460123' });
    expect(found).toHaveLength(2);
    expect(found[0]).toMatchObject({ callId: 'e3', at: new Date(T0 + 3000).toISOString() });
    expect(found[1]).toBe(odd);
    // As before: a time that does not parse is held (and counted) but never matches.
    expect(h.size).toBe(3);
  });

  it('answers with copies: changing an answer changes nothing held', async () => {
    const h = new MemoryHistoryStore();
    h.addRecord(historyRecord(call({ callId: 'c' }), FAILING));
    h.addRecord(historyRecord(call({ callId: 'd', from: '+441614960000' }), FAILING));
    const [first] = await h.query({ caller: '+442079460123' });
    first!.reasons.push('VELOCITY_HIGH');
    first!.verdict = 'allow';
    const [again] = await h.query({ caller: '+442079460123' });
    expect(again!.reasons).toEqual(['CLI_DOMESTIC_FROM_ABROAD', 'SHAKEN_ABSENT']);
    expect(again!.verdict).toBe('block');
    const [other] = await h.query({ caller: '+441614960000' });
    expect(other!.reasons).toEqual(['CLI_DOMESTIC_FROM_ABROAD', 'SHAKEN_ABSENT']);
  });
});

describe('history in Redis', () => {
  let client: Redis;
  const base = uniquePrefix('history');
  let n = 0;
  const store = (opts: { retentionS?: number; maxPerKey?: number } = {}) => {
    const prefix = `${base}${n++}:`;
    return Object.assign(new RedisHistoryStore(guardFor(client), { prefix, fallback: new MemoryHistoryStore(), ...opts }), { keyPrefix: prefix });
  };

  beforeAll(async () => {
    client = await connect();
  });
  afterAll(async () => {
    await deleteByPrefix(client, base);
    client.disconnect();
  });

  it('trims each key by time and by size on write, and expires it after the retention', async () => {
    const h = store({ retentionS: 7 * 86400, maxPerKey: 50 });
    await h.add(entry(0, { at: T0 - 8 * DAY }));
    await h.add(entry(1, { at: T0 }));
    const key = `${h.keyPrefix}h:{+442079460123}`;
    expect(await client.zcard(key)).toBe(1);
    for (let i = 2; i < 80; i++) await h.add(entry(i));
    expect(await client.zcard(key)).toBe(50);
    expect((await h.query({ caller: '+442079460123', limit: 1000 })).at(-1)?.callId).toBe('e30');
    const pttl = await client.pttl(key);
    expect(pttl).toBeGreaterThan(7 * DAY - 60_000);
    expect(pttl).toBeLessThanOrEqual(7 * DAY);
  });

  it('stores one compact member per call, distinct even for identical calls', async () => {
    const h = store();
    const e = entry(1, { bank: true });
    await h.add(e);
    await h.add({ ...e, id: 'other' });
    const members = await client.zrange(`${h.keyPrefix}h:{+442079460123}`, '0', '-1');
    expect(members).toHaveLength(2);
    expect(members[0]!.length).toBeLessThan(200);
    expect(await h.query({ caller: '+442079460123' })).toEqual([e, { ...e, id: 'other' }].sort((a, b) => (a.id < b.id ? 1 : -1)));
  });

  it('finds a bank filter match beyond the first page', async () => {
    const h = store();
    await h.add(entry(0, { bank: true, at: T0 }));
    for (let i = 1; i <= 250; i++) await h.add(entry(i, { at: T0 + i }));
    expect((await h.query({ caller: '+442079460123', bankId: 'examplebank', limit: 5 })).map((e) => e.callId)).toEqual(['e0']);
  });

  describe('while Redis is away', () => {
    const later = absentRedis();

    it('keeps entries in memory, answers from there, and writes them to Redis once it is back', async () => {
      // Nothing listens on the port yet: the client is never ready.
      const redis = later.client();
      const h = new RedisHistoryStore(guardFor(redis), { prefix: 'cg:', fallback: new MemoryHistoryStore() });
      await h.add(entry(1));
      await h.add(entry(2));
      expect(h.backlogSize).toBe(2);
      expect((await h.query({ caller: '+442079460123' })).map((e) => e.callId)).toEqual(['e2', 'e1']);

      await later.start();
      await until(() => redis.status === 'ready', 5000, 'the client to connect');
      await until(async () => (await h.flushBacklog(), h.backlogSize === 0), 2000, 'the backlog to flush');
      expect(await redis.zcard('cg:h:{+442079460123}')).toBe(2);
    });
  });
});

import type Redis from 'ioredis';
import { historyEntry } from '../../src/state/behaviour';
import { MemoryHistoryStore, RedisHistoryStore, type HistoryEntry } from '../../src/state/history';
import { BANK, call, CLEAN, connect, deleteByPrefix, absentRedis, dest, FAILING, guardFor, T0, uniquePrefix, until } from './support';

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

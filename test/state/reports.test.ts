import type Redis from 'ioredis';
import { execOps } from '../../src/state/redis/ops';
import { MemoryReportStore, normaliseReport, RedisReportStore, type NewFraudReport } from '../../src/state/reports';
import { absentRedis, connect, deleteByPrefix, guardFor, T0, uniquePrefix } from './support';
import { until } from '../../scripts/lib/process';

const MAX_AGE_S = 30 * 86400;
const report = (over: Partial<NewFraudReport> = {}): NewFraudReport => ({
  number: '+442079460123',
  category: 'scam',
  reporter: 'fraud-team',
  at: T0,
  ...over,
});

describe('a report', () => {
  it('is checked and completed', () => {
    expect(normaliseReport(report({ callId: 'k', note: 'x'.repeat(5000) }), 'id1')).toEqual({
      id: 'id1',
      number: '+442079460123',
      category: 'scam',
      callId: 'k',
      note: 'x'.repeat(1000),
      reporter: 'fraud-team',
      at: new Date(T0).toISOString(),
    });
    expect(() => normaliseReport(report({ number: '+44 20 7946 0123' }))).toThrow(RangeError);
    expect(() => normaliseReport(report({ at: 'yesterday' }))).toThrow(RangeError);
  });
});

describe('in-process reports', () => {
  it('a genuine report is kept and listed, never counted in the summary', async () => {
    const r = new MemoryReportStore({ maxAgeS: MAX_AGE_S });
    await r.addReport(report({ category: 'genuine' }));
    expect(await r.summary('+442079460123', T0)).toBeNull();
    await r.addReport(report({ at: T0 + 1, category: 'nuisance' }));
    expect(await r.summary('+442079460123', T0 + 1)).toEqual({ count: 1, newestAt: T0 + 1, categories: ['nuisance'] });
    expect((await r.listAll({ limit: 10 }, T0 + 1)).map((x) => x.category)).toEqual(['nuisance', 'genuine']);
  });

  it('keeps the newest reports per number, and summarises only those within the max age', async () => {
    const r = new MemoryReportStore({ maxAgeS: MAX_AGE_S, maxPerNumber: 3 });
    for (let i = 0; i < 5; i++) await r.addReport(report({ at: T0 + i * 1000, category: i === 4 ? 'spoof' : 'scam' }));
    expect(await r.summary('+442079460123', T0 + 10_000)).toEqual({ count: 3, newestAt: T0 + 4000, categories: ['scam', 'spoof'] });
    expect(await r.summary('+442079460123', T0 + MAX_AGE_S * 1000 + 3500)).toEqual({ count: 1, newestAt: T0 + 4000, categories: ['spoof'] });
    expect(await r.summary('+441614960000', T0)).toBeNull();
    expect((await r.list('+442079460123', T0 + 10_000, 2)).map((x) => x.at)).toEqual([new Date(T0 + 4000).toISOString(), new Date(T0 + 3000).toISOString()]);
  });

  it('forgets the least recently reported numbers past its size', async () => {
    const r = new MemoryReportStore({ maxAgeS: MAX_AGE_S, maxNumbers: 2 });
    await r.addReport(report({ number: '+442079460001' }));
    await r.addReport(report({ number: '+442079460002' }));
    await r.addReport(report({ number: '+442079460003' }));
    expect(await r.summary('+442079460001', T0)).toBeNull();
    expect(await r.summary('+442079460003', T0)).not.toBeNull();
  });
});

describe('in-process reports, least recently reported forgotten first', () => {
  it('counts a report it already holds as a sighting of the number', async () => {
    const r = new MemoryReportStore({ maxAgeS: MAX_AGE_S, maxNumbers: 2 });
    const first = normaliseReport(report({ number: '+442079460001' }), 'r1');
    r.keep(first);
    await r.addReport(report({ number: '+442079460002' }));
    r.keep(first); // already held: still makes +442079460001 the most recent
    await r.addReport(report({ number: '+442079460003' }));
    expect(await r.summary('+442079460001', T0)).not.toBeNull();
    expect(await r.summary('+442079460002', T0)).toBeNull();
    expect(await r.list('+442079460001', T0)).toEqual([first]);
  });

  it('goes on forgetting in order through many numbers', async () => {
    const r = new MemoryReportStore({ maxAgeS: MAX_AGE_S, maxNumbers: 50 });
    const number = (i: number) => `+4420794${String(i).padStart(5, '0')}`;
    for (let i = 0; i < 20_000; i++) {
      await r.addReport(report({ number: number(i % 3 === 0 ? i % 30 : i) }));
    }
    // The ten reported every third report are held, with the 40 most recent of the rest.
    const held: number[] = [];
    for (let i = 0; i < 20_000; i++) if ((await r.summary(number(i), T0)) !== null) held.push(i);
    expect(held).toHaveLength(50);
    expect(held.filter((i) => i < 30 && i % 3 === 0)).toEqual([0, 3, 6, 9, 12, 15, 18, 21, 24, 27]);
    expect(held.filter((i) => i >= 30)).toEqual([...Array(60).keys()].map((k) => 19_940 + k).filter((i) => i % 3 !== 0).slice(-40));
  });
});

describe('reports in Redis', () => {
  let client: Redis;
  const base = uniquePrefix('reports');
  let n = 0;
  const store = (maxPerNumber?: number) => {
    const prefix = `${base}${n++}:`;
    const s = new RedisReportStore(guardFor(client), {
      prefix,
      maxAgeS: MAX_AGE_S,
      fallback: new MemoryReportStore({ maxAgeS: MAX_AGE_S }),
      ...(maxPerNumber !== undefined ? { maxPerNumber } : {}),
    });
    return Object.assign(s, { keyPrefix: prefix });
  };

  beforeAll(async () => {
    client = await connect();
  });
  afterAll(async () => {
    await deleteByPrefix(client, base);
    client.disconnect();
  });

  it('summarises many reports from two small replies', async () => {
    const r = store(500);
    for (let i = 0; i < 600; i++) await r.addReport(report({ at: T0 + i, category: i % 10 === 0 ? 'nuisance' : 'scam' }));
    const replies = await execOps(client, [r.summaryOp('+442079460123', T0 + 1000)]);
    expect(replies[0]).toBe(500);
    expect(replies[1]).toHaveLength(4); // two categories, with their newest times
    expect(r.parseSummary(replies)).toEqual({ count: 500, newestAt: T0 + 599, categories: ['nuisance', 'scam'] });
    expect(await client.zcard(`${r.keyPrefix}rep:{+442079460123}`)).toBe(500);
  });

  it('drops reports past the max age on write and expires the keys', async () => {
    const r = store();
    await r.addReport(report({ at: T0 - MAX_AGE_S * 1000 - 1 }));
    await r.addReport(report({ at: T0, category: 'spoof' }));
    expect(await client.zcard(`${r.keyPrefix}rep:{+442079460123}`)).toBe(1);
    expect(await r.summary('+442079460123', T0)).toEqual({ count: 1, newestAt: T0, categories: ['spoof'] });
    expect(await client.pttl(`${r.keyPrefix}repc:{+442079460123}`)).toBeGreaterThan(MAX_AGE_S * 1000 - 60_000);
  });

  it("genuine reports stay out of the number's keys and its summary, and are listed for review from the index", async () => {
    const writer = store();
    await writer.addReport(report({ at: T0, category: 'genuine' }));
    expect(await client.exists(`${writer.keyPrefix}rep:{+442079460123}`, `${writer.keyPrefix}repc:{+442079460123}`)).toBe(0);
    await writer.addReport(report({ at: T0 + 1, category: 'spoof' }));
    await writer.addReport(report({ at: T0 + 2, number: '+442079460124', category: 'genuine' }));
    // Another instance (a fresh local copy) reads what Redis holds.
    const reader = new RedisReportStore(guardFor(client), { prefix: writer.keyPrefix, maxAgeS: MAX_AGE_S, fallback: new MemoryReportStore({ maxAgeS: MAX_AGE_S }) });
    expect(await reader.summary('+442079460123', T0 + 10)).toEqual({ count: 1, newestAt: T0 + 1, categories: ['spoof'] });
    expect(await reader.summary('+442079460124', T0 + 10)).toBeNull();
    const all = await reader.listAll({ limit: 10 }, T0 + 10);
    expect(all.map((r) => [r.number, r.category])).toEqual([['+442079460124', 'genuine'], ['+442079460123', 'spoof'], ['+442079460123', 'genuine']]);
    expect((await reader.listAll({ limit: 10, category: 'genuine', about: (n) => n === '+442079460123' }, T0 + 10)).map((r) => r.at)).toEqual([new Date(T0).toISOString()]);
    expect((await reader.listAll({ limit: 10, since: T0 + 1 }, T0 + 10)).length).toBe(2);
    expect(await reader.listAll({ limit: 10 }, T0 + MAX_AGE_S * 1000 + 10)).toEqual([]);
    expect(await client.pttl(`${writer.keyPrefix}repall:{reports}`)).toBeGreaterThan(MAX_AGE_S * 1000 - 60_000);
  });

  it('the review index pages past reports a query does not want', async () => {
    const writer = store();
    for (let i = 0; i < 300; i++) await writer.addReport(report({ at: T0 + i, number: i === 0 ? '+442079460999' : '+442079460123' }));
    const reader = new RedisReportStore(guardFor(client), { prefix: writer.keyPrefix, maxAgeS: MAX_AGE_S, fallback: new MemoryReportStore({ maxAgeS: MAX_AGE_S }) });
    expect((await reader.listAll({ limit: 1, about: (n) => n === '+442079460999' }, T0 + 1000)).map((r) => r.number)).toEqual(['+442079460999']);
  });

  describe('while Redis is away', () => {
    const later = absentRedis();

    it('keeps reports locally, scores with them, and writes them to Redis once it is back', async () => {
      const redis = later.client();
      const r = new RedisReportStore(guardFor(redis), { prefix: 'cg:', maxAgeS: MAX_AGE_S, fallback: new MemoryReportStore({ maxAgeS: MAX_AGE_S }) });
      const made = await r.addReport(report());
      expect(r.backlogSize).toBe(1);
      expect(await r.summary('+442079460123', T0)).toEqual({ count: 1, newestAt: T0, categories: ['scam'] });
      expect(await r.list('+442079460123', T0)).toEqual([made]);

      await later.start();
      await until(() => redis.status === 'ready', 5000, 'the client to connect');
      await until(async () => (await r.flushBacklog(), r.backlogSize === 0), 2000, 'the backlog to flush');
      expect(await redis.zcard('cg:rep:{+442079460123}')).toBe(1);
      // Now in both views, counted once.
      expect(await r.summary('+442079460123', T0)).toEqual({ count: 1, newestAt: T0, categories: ['scam'] });
      expect(await r.list('+442079460123', T0)).toEqual([made]);
    });
  });
});

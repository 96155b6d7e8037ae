import type Redis from 'ioredis';
import { until } from '../../scripts/lib/process';
import {
  decisionEntry,
  decodeDecision,
  encodeDecision,
  MemoryDecisionStore,
  RECENT_DECISIONS_KEPT,
  RedisDecisionStore,
  type DecisionEntry,
  type DecisionRecord,
} from '../../src/state/decisions';
import type { Evidence } from '../../src/calls/evidence';
import { historyRecord } from '../../src/calls/behaviour';
import { MemoryCallState } from '../../src/state/memory/call-state';
import { RedisCallState } from '../../src/state/redis/call-state';
import { absentRedis, call, connect, deleteByPrefix, FAILING, guardFor, T0, uniquePrefix } from './support';

const DAY = 86400_000;

function record(over: Partial<DecisionRecord> = {}): DecisionRecord {
  return {
    callId: 'c-1',
    at: T0,
    decidedAt: T0,
    from: '+442079460123',
    to: '+447700900001',
    bankId: 'examplebank',
    verdict: 'block',
    score: 90,
    presentation: 'allowed',
    reasons: [
      { code: 'CLI_DOMESTIC_FROM_ABROAD', weight: 75, message: 'UK number +442079460123 presented on a call arriving from abroad (from NG)' },
      { code: 'SHAKEN_ABSENT', weight: 5, message: 'no STIR/SHAKEN attestation on the call' },
    ],
    cached: false,
    shaken: { source: 'none', verstat: 'No-TN-Validation', attestation: null, errors: [] },
    origin: { trunk: 't1', country: 'NG', international: true },
    policyVersion: 'p1',
    registryVersion: 'r1',
    ...over,
  };
}

describe('a decision as kept', () => {
  it('comes back from its text as it went in', () => {
    const full = decisionEntry(
      record({
        shaken: { source: 'passport', verstat: 'TN-Validation-Passed', attestation: 'A', spc: '5678', origid: 'o-1', x5u: 'https://c.example/x.pem', errors: [] },
        origin: { trunk: 't', carrier: '5678', country: 'FR', international: true, roamingVerified: false },
        cached: true,
      }),
      'id-1',
    );
    expect(decodeDecision(encodeDecision(full))).toEqual(full);
    const bare = decisionEntry(record({ from: null, to: null, bankId: undefined, origin: undefined }), 'id-2');
    delete (bare as Partial<DecisionEntry>).bankId;
    expect(decodeDecision(encodeDecision(bare))).toEqual(bare);
    expect(decodeDecision(encodeDecision(bare))).not.toHaveProperty('origin');
  });

  it('is bounded: texts from outside are cut, whatever the Identity header carried', () => {
    const huge = 'x'.repeat(80_000);
    const e = decisionEntry(
      record({
        callId: 'c'.repeat(1000),
        shaken: { source: 'passport', verstat: 'TN-Validation-Failed', attestation: null, origid: huge, x5u: `https://${huge}`, spc: huge, errors: ['BAD_SIGNATURE'] },
        origin: { trunk: huge, carrier: huge },
        reasons: Array.from({ length: 500 }, () => ({ code: 'X', weight: 1, message: huge })),
      }),
    );
    expect(encodeDecision(e).length).toBeLessThan(40_000);
    expect(e.callId).toHaveLength(256);
    expect(e.shaken.origid).toHaveLength(512);
    expect(e.shaken.origid!.endsWith('…')).toBe(true);
  });

  it('text that is not a decision is left out, never answered half-made', () => {
    const good = JSON.parse(encodeDecision(decisionEntry(record(), 'id'))) as Record<string, unknown>;
    for (const bad of ['', 'null', '[]', '{', JSON.stringify({ ...good, v: 'maybe' }), JSON.stringify({ ...good, h: null }), JSON.stringify({ ...good, r: [['X', 'one', 'm']] }), JSON.stringify({ ...good, o: { trunk: 1 } })])
      expect(decodeDecision(bad)).toBeNull();
  });
});

describe('decisions in process', () => {
  let now = T0;
  const clock = () => now;
  beforeEach(() => (now = T0));

  it('answers a call id newest first, keeping its newest 20', async () => {
    const s = new MemoryDecisionStore({ now: clock });
    for (let i = 0; i < 25; i++) s.add(record({ decidedAt: T0 + i, score: i }));
    const got = await s.forCall('c-1');
    expect(got.map((d) => d.score)).toEqual(Array.from({ length: 20 }, (_, i) => 24 - i));
    expect(await s.forCall('c-2')).toEqual([]);
  });

  it('decisions of one millisecond come back in the order they were made, newest first', async () => {
    const s = new MemoryDecisionStore({ now: clock });
    for (let i = 0; i < 3; i++) s.add(record({ score: i }));
    expect((await s.forCall('c-1')).map((d) => d.score)).toEqual([2, 1, 0]);
  });

  it('lists the latest decisions of any call id, newest first, the newest 200 at most, with the ids forCall answers', async () => {
    const s = new MemoryDecisionStore({ now: clock });
    for (let i = 0; i < RECENT_DECISIONS_KEPT + 5; i++) s.add(record({ callId: `c-${i % 7}`, decidedAt: T0 + i, score: i % 100 }));
    const latest = await s.recent(3);
    expect(latest.map((d) => d.decidedAt)).toEqual([T0 + 204, T0 + 203, T0 + 202]);
    expect(latest.map((d) => d.callId)).toEqual(['c-1', 'c-0', 'c-6']);
    const all = await s.recent(1000);
    expect(all).toHaveLength(RECENT_DECISIONS_KEPT);
    expect(all.at(-1)?.decidedAt).toBe(T0 + 5);
    // The same decision has the same id in either answer.
    expect((await s.forCall('c-1'))[0]?.id).toBe(latest[0]?.id);
    now = T0 + 31 * DAY;
    expect(await s.recent(10)).toEqual([]);
    expect(await new MemoryDecisionStore().recent(10)).toEqual([]);
  });

  it('drops a decision once older than the retention', async () => {
    const s = new MemoryDecisionStore({ now: clock, retentionS: 86400 });
    s.add(record({ decidedAt: T0, score: 1 }));
    now = T0 + DAY / 2;
    s.add(record({ decidedAt: now, score: 2 }));
    // Exactly as old as the retention is kept; a millisecond more is not.
    now = T0 + DAY;
    expect((await s.forCall('c-1')).map((d) => d.score)).toEqual([2, 1]);
    now = T0 + DAY + 1;
    expect((await s.forCall('c-1')).map((d) => d.score)).toEqual([2]);
    now = T0 + 2 * DAY;
    expect(await s.forCall('c-1')).toEqual([]);
  });

  it('is bounded by call ids and by characters held, the least recently decided going first', async () => {
    const byCalls = new MemoryDecisionStore({ now: clock, maxCalls: 3 });
    for (const id of ['a', 'b', 'c', 'a', 'd']) byCalls.add(record({ callId: id }));
    expect(byCalls.size).toBe(3);
    expect(await byCalls.forCall('b')).toEqual([]);
    expect(await byCalls.forCall('a')).toHaveLength(2);

    // A record of this size weighs about a kilobyte.
    const byBytes = new MemoryDecisionStore({ now: clock, maxBytes: 10_000 });
    for (let i = 0; i < 50; i++) byBytes.add(record({ callId: `c-${i}` }));
    expect(byBytes.size).toBeGreaterThan(3);
    expect(byBytes.size).toBeLessThanOrEqual(10);
    expect(await byBytes.forCall('c-49')).toHaveLength(1);
    expect(await byBytes.forCall('c-0')).toEqual([]);
    // Long texts weigh what they are: a record with a 6 KB origid pushes out several others.
    const before = byBytes.size;
    byBytes.add(record({ callId: 'big', shaken: { source: 'passport', verstat: 'TN-Validation-Failed', attestation: null, origid: 'x'.repeat(6000), errors: [] } }));
    expect(await byBytes.forCall('big')).toHaveLength(1);
    expect(byBytes.size).toBeLessThanOrEqual(before - 4);
  });

  it('answers copies, cut to the bounds, of the records it holds', async () => {
    const s = new MemoryDecisionStore({ now: clock });
    const r = record({ shaken: { source: 'passport', verstat: 'TN-Validation-Failed', attestation: null, origid: 'o'.repeat(5000), errors: ['STALE'] } });
    s.add(r);
    const [got] = await s.forCall('c-1');
    expect(got!.shaken.origid).toHaveLength(512);
    (got!.reasons[0] as { code: string }).code = 'CHANGED';
    expect((await s.forCall('c-1'))[0]!.reasons[0]!.code).toBe('CLI_DOMESTIC_FROM_ABROAD');
  });
});

describe('decisions in Redis', () => {
  let client: Redis;
  const base = uniquePrefix('decisions');
  let n = 0;
  const store = (opts: { retentionS?: number; maxPerCall?: number } = {}) => {
    const prefix = `${base}${n++}:`;
    return Object.assign(new RedisDecisionStore(guardFor(client), { prefix, fallback: new MemoryDecisionStore(), ...opts }), { keyPrefix: prefix });
  };
  const write = async (s: RedisDecisionStore, e: DecisionEntry) => {
    const { execOps } = await import('../../src/state/redis/ops');
    await execOps(client, s.writeOps(e));
  };

  beforeAll(async () => {
    client = await connect();
  });
  afterAll(async () => {
    await deleteByPrefix(client, base);
    client.disconnect();
  });

  it('keeps a list per call id, newest first, cut to the newest N, expiring a retention after its latest decision', async () => {
    const s = store({ maxPerCall: 5, retentionS: 7 * 86400 });
    const now = Date.now();
    for (let i = 0; i < 8; i++) await write(s, decisionEntry(record({ decidedAt: now + i, score: i })));
    const key = `${s.keyPrefix}d:{c-1}`;
    expect(await client.llen(key)).toBe(5);
    expect((await s.forCall('c-1')).map((d) => d.score)).toEqual([7, 6, 5, 4, 3]);
    const pttl = await client.pttl(key);
    expect(pttl).toBeGreaterThan(7 * DAY - 60_000);
    expect(pttl).toBeLessThanOrEqual(7 * DAY);
  });

  it("lists the latest decisions this instance made, whether or not their write reached Redis", async () => {
    const s = store();
    expect(await s.recent(10)).toEqual([]);
    const made = [0, 1, 2].map((i) => decisionEntry(record({ callId: `r-${i}`, decidedAt: Date.now() + i })));
    for (const e of made) s.noteMade(e);
    expect((await s.recent(2)).map((d) => d.callId)).toEqual(['r-2', 'r-1']);
    // Another instance's store, on the same keys, has made none of them.
    const other = new RedisDecisionStore(guardFor(client), { prefix: s.keyPrefix, fallback: new MemoryDecisionStore() });
    expect(await other.recent(10)).toEqual([]);
  });

  it('escapes the call id in its hash tag: braces cannot move the key', async () => {
    const s = store();
    await write(s, decisionEntry(record({ callId: 'x}{y', decidedAt: Date.now() })));
    expect(await client.exists(`${s.keyPrefix}d:{x%7D%7By}`)).toBe(1);
    expect(await s.forCall('x}{y')).toHaveLength(1);
  });

  it('answers nothing older than the retention, even while its list lives on', async () => {
    const s = store({ retentionS: 86400 });
    await write(s, decisionEntry(record({ decidedAt: Date.now() - 2 * DAY, score: 1 })));
    await write(s, decisionEntry(record({ decidedAt: Date.now(), score: 2 })));
    expect((await s.forCall('c-1')).map((d) => d.score)).toEqual([2]);
  });

  describe('while Redis is away', () => {
    const later = absentRedis();

    it('keeps decisions in memory, answers from there, and writes them to Redis once it is back', async () => {
      const redis = later.client();
      const s = new RedisDecisionStore(guardFor(redis), { prefix: 'cg:', fallback: new MemoryDecisionStore() });
      const now = Date.now();
      s.keepWhileDegraded(decisionEntry(record({ decidedAt: now, score: 1 })));
      s.keepWhileDegraded(decisionEntry(record({ decidedAt: now + 1, score: 2 })));
      expect(s.backlogSize).toBe(2);
      expect((await s.forCall('c-1')).map((d) => d.score)).toEqual([2, 1]);

      await later.start();
      await until(() => redis.status === 'ready', 5000, 'the client to connect');
      await until(async () => (await s.flushBacklog(), s.backlogSize === 0), 2000, 'the backlog to flush');
      expect(await redis.llen('cg:d:{c-1}')).toBe(2);
      // Read from both, answered once each.
      expect((await s.forCall('c-1')).map((d) => d.score)).toEqual([2, 1]);
    });
  });

  describe("a call's write while Redis is away", () => {
    const later = absentRedis();

    it('keeps the decision with the history, and sends it once Redis answers a call again', async () => {
      const redis = later.client();
      const state = new RedisCallState<Evidence>(guardFor(redis), { prefix: 'cg:', fallback: new MemoryCallState<Evidence>() });
      const c = call({ callId: 'c-1', at: Date.now() });
      await state.write({ history: historyRecord(c, FAILING), campaign: null, cache: null, decision: record({ decidedAt: Date.now() }) });
      expect(state.decisions.backlogSize).toBe(1);
      expect(await state.decisions.forCall('c-1')).toHaveLength(1);

      await later.start();
      await until(() => redis.status === 'ready', 5000, 'the client to connect');
      // A call's read that reaches Redis sends the backlog after it.
      const query = { at: Date.now(), velocity: null, fingerprints: [], token: 't', reportsOf: '+442079460123', campaign: null, announcement: null, cacheKey: null };
      await until(async () => (await state.read(query), state.decisions.backlogSize === 0 && (await redis.llen('cg:d:{c-1}')) === 1), 3000, 'the backlog to be sent');
      expect(await state.decisions.forCall('c-1')).toHaveLength(1);
    });
  });
});

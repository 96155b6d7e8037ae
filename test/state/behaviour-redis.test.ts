import type Redis from 'ioredis';
import { DEFAULT_POLICY } from '../../src/scoring';
import type { Evidence } from '../../src/calls/evidence';
import { callToken } from '../../src/scoring';
import { OPS_SCRIPT } from '../../src/state/redis/ops';
import { BANK, call, CLEAN, connect, dest, FAILING, guardFor, sharedRedis, T0, MemoryBehaviourTracker, RedisBehaviourTracker } from './support';
import { type Child, freePort, sleep, startRedisServer, until } from '../../scripts/lib/process';

/** What only the Redis tracker has: shared state, its key layout, its round trips, and outages. */

const shared = sharedRedis('redis');
const base = shared.base;
let client: Redis;
let n = 0;
beforeAll(() => {
  client = shared.client();
});

function tracker(opts: { prefix?: string; replayTtlS?: number; on?: Redis } = {}) {
  const prefix = opts.prefix ?? `${base}${n++}:`;
  const t = new RedisBehaviourTracker(guardFor(opts.on ?? client), DEFAULT_POLICY, {
    prefix,
    verdictPrefix: `${prefix}verdict:`,
    fallback: new MemoryBehaviourTracker(DEFAULT_POLICY),
    ...(opts.replayTtlS !== undefined ? { replayTtlS: opts.replayTtlS } : {}),
  });
  return Object.assign(t, { keyPrefix: prefix });
}

/** A call with everything to look up: caller, destination, two PASSporTs, a bank. */
const busyCall = (i = 0) =>
  call({ callId: `busy${i}`, to: dest(i), fingerprints: [`fpX${i}`, `fpY${i}`], registry: BANK, at: T0 + i * 1000 });

describe('shared between instances', () => {
  it('two instances on one Redis count one caller, one PASSporT and one bank together', async () => {
    const prefix = `${base}${n++}:`;
    const a = tracker({ prefix });
    const b = tracker({ prefix });
    await a.observe(call({ to: dest(1), at: T0 }));
    await a.observe(call({ to: dest(2), at: T0 + 1 }));
    const s = await b.observe(call({ to: dest(3), at: T0 + 2 }));
    expect(s.distinctDestinations?.map((d) => d.count)).toEqual([3, 3]);

    await a.observe(call({ callId: 'first', fingerprints: ['shared-fp'], at: T0 }));
    expect((await b.observe(call({ callId: 'second', fingerprints: ['shared-fp'], at: T0 }))).replayed).toBe(true);

    for (let i = 0; i < DEFAULT_POLICY.campaign.minFailedCalls; i++) {
      const c = call({ callId: `c${i}`, registry: BANK, at: T0 + i });
      await (i % 2 === 0 ? a : b).record(c, FAILING);
    }
    expect((await a.observe(call({ registry: BANK, at: T0 + 100 }))).campaign?.failedCalls).toBe(DEFAULT_POLICY.campaign.minFailedCalls);
    expect(await b.listCampaigns(T0 + 100)).toHaveLength(1);

    await a.reports.addReport({ number: '+442079460123', category: 'spoof', reporter: 'x', at: T0 });
    expect((await b.observe(call({ at: T0 + 1000 }))).reports).toEqual({ count: 1, newestAgeS: 1, categories: ['spoof'] });
    await b.record(call({ callId: 'hist', at: T0 }), CLEAN);
    const seen = (await a.history.query({ caller: '+442079460123' })).map((e) => e.callId);
    expect(seen).toHaveLength(DEFAULT_POLICY.campaign.minFailedCalls + 1);
    expect(seen).toContain('hist');
  });
});

describe('round trips', () => {
  it('observe is one command and record is one command, whatever the call carries', async () => {
    const t = tracker();
    await t.reports.addReport({ number: '+442079460123', category: 'scam', reporter: 'x', at: T0 });
    const writes = jest.spyOn(client.stream, 'write');
    const sent = jest.spyOn(client, 'sendCommand');
    const perCall: { observe: [number, number]; record: [number, number] }[] = [];
    const names = new Set<string>();
    try {
      for (let i = 0; i < 5; i++) {
        const c = busyCall(i);
        writes.mockClear();
        sent.mockClear();
        const s = await t.observe(c);
        const observe: [number, number] = [writes.mock.calls.length, sent.mock.calls.length];
        sent.mock.calls.forEach(([cmd]) => names.add(cmd.name));
        writes.mockClear();
        sent.mockClear();
        await t.record(c, FAILING);
        perCall.push({ observe, record: [writes.mock.calls.length, sent.mock.calls.length] });
        sent.mock.calls.forEach(([cmd]) => names.add(cmd.name));
        expect(s.reports?.count).toBe(1);
        expect(s.replayed).toBe(false);
      }
      // A call with nothing to look up (withheld, no PASSporT, no bank) costs no round trip to
      // observe, and one command to keep in the history.
      writes.mockClear();
      sent.mockClear();
      await t.observe(call({ from: 'anonymous' }));
      expect(writes.mock.calls.length).toBe(0);
      await t.record(call({ from: 'anonymous' }), CLEAN);
      expect([writes.mock.calls.length, sent.mock.calls.length]).toEqual([1, 1]);
    } finally {
      writes.mockRestore();
      sent.mockRestore();
    }
    // [socket writes, commands]: one of each, for a call with a caller, a destination, two
    // PASSporTs, a bank, reports, and a failing verdict (campaign and history writes).
    expect(perCall).toEqual(Array(5).fill({ observe: [1, 1], record: [1, 1] }));
    expect([...names].every((n) => n === 'evalsha' || n === 'eval')).toBe(true);
  });

  it('the verdict cache entry rides in the same commands: its GET in the read, its SET in the write', async () => {
    const t = tracker();
    const c = busyCall(1);
    const evidence = { v: 42 } as unknown as Evidence;
    const sent = jest.spyOn(client, 'sendCommand');
    try {
      // One command each way, and the entry is there for the next call.
      const miss = busyCall(2);
      expect((await t.state.read(t.readOf(miss, callToken(miss), 'k2'))).cached).toBeUndefined();
      expect(sent).toHaveBeenCalledTimes(1);
      sent.mockClear();
      void t.state.write(t.writeOf(c, callToken(c), FAILING, { key: 'k2', value: evidence, ttlMs: 60_000 }));
      await until(() => sent.mock.calls.length === 1, 1000, 'the write command');
      await until(async () => (await client.pttl(t.state.verdictKey('k2'))) > 0, 1000, 'the verdict entry');
      expect(await client.pttl(t.state.verdictKey('k2'))).toBeLessThanOrEqual(60_000);
      // Another instance (empty in-process level) finds it in the same command as its counters.
      const other = tracker({ prefix: t.keyPrefix });
      sent.mockClear();
      const next = busyCall(3);
      const reading = await other.state.read(other.readOf(next, callToken(next), 'k2'));
      expect(reading.cached).toEqual({ v: 42 });
      expect(other.state.peekCached('k2')).toEqual({ v: 42 });
      expect(reading.destinations?.[0]).toBeGreaterThan(0);
      expect(sent).toHaveBeenCalledTimes(1);
    } finally {
      sent.mockRestore();
    }
  });
});

describe('key layout', () => {
  it('every key is prefixed and tagged, and every script call a Cluster would get touches one hash tag', async () => {
    // A client that says it is a Cluster, so the tracker splits its ops by hash tag: each script
    // call it makes must then name keys of one tag only (one slot), which is checked here before
    // the call goes on to the real Redis.
    client.defineCommand('callguardOps', { lua: OPS_SCRIPT });
    const real = client as unknown as { callguardOps: (n: number, keys: string[], args: unknown[]) => Promise<unknown> };
    const calls: string[][] = [];
    const piped: unknown[][][] = [];
    const fakeCluster = {
      isCluster: true,
      status: 'ready',
      callguardOps: (n: number, keys: string[], args: unknown[]) => {
        calls.push(keys);
        return real.callguardOps(n, keys, args);
      },
      pipeline: (commands: unknown[][]) => {
        piped.push(commands);
        return client.pipeline(commands as never);
      },
    } as unknown as Redis;
    const t = tracker({ on: fakeCluster });
    await t.reports.addReport({ number: '+442079460123', category: 'scam', reporter: 'x', at: T0 });
    for (let i = 0; i < DEFAULT_POLICY.campaign.minFailedCalls + 1; i++) {
      const c = busyCall(i);
      const token = callToken(c);
      await t.state.read(t.readOf(c, token, `k${i}`));
      void t.state.write(t.writeOf(c, token, FAILING, { key: `k${i}`, value: { i } as unknown as Evidence, ttlMs: 10_000 }));
    }
    await sleep(50);
    await t.record(call({ from: 'anonymous', to: dest(1) }), CLEAN);
    expect(await t.listCampaigns(T0 + 60_000)).toHaveLength(1);

    expect(calls.length).toBeGreaterThan(50);
    const tagOf = (key: string) => {
      const open = key.indexOf('{');
      const close = open === -1 ? -1 : key.indexOf('}', open + 1);
      return close > open + 1 ? key.slice(open + 1, close) : key;
    };
    for (const keys of calls) {
      expect(new Set(keys.map(tagOf)).size).toBe(1);
      for (const key of keys) {
        expect(key.startsWith(t.keyPrefix)).toBe(true);
        if (!key.startsWith(`${t.keyPrefix}verdict:`)) expect(key).toMatch(/\{[^{}]+\}/);
      }
    }
    // The campaign list's reads, the only pipelines left: one key each, tagged.
    for (const cmd of piped.flat()) {
      const keys = (await client.call('COMMAND', 'GETKEYS', ...(cmd as (string | number)[]))) as string[];
      expect(keys).toHaveLength(1);
      expect(keys[0]).toMatch(/\{[^{}]+\}/);
      expect(keys[0]!.startsWith(t.keyPrefix)).toBe(true);
    }
  });

  it('keys are the documented ones, and every key expires', async () => {
    const t = tracker({ replayTtlS: 30 });
    await t.reports.addReport({ number: '+442079460123', category: 'scam', reporter: 'x', at: T0 });
    const c = busyCall(1);
    await t.observe(c);
    await t.record(c, FAILING);
    await t.record(call({ from: 'anonymous', to: dest(1) }), CLEAN);
    const keys = (await client.keys(`${t.keyPrefix}*`)).map((k) => k.slice(t.keyPrefix.length)).sort();
    expect(keys).toEqual(
      [
        'c:{b:examplebank}',
        'cidx:{campaigns}',
        'cname:{campaigns}',
        'h:{+442079460123}',
        `h:{+442079460123}:${dest(1)}`,
        `hw:{${dest(1)}}`,
        'r:{fpX1}',
        'r:{fpY1}',
        'rep:{+442079460123}',
        'repall:{reports}',
        'repc:{+442079460123}',
        'v:{+442079460123}',
      ].sort(),
    );
    for (const k of keys) expect(await client.pttl(t.keyPrefix + k)).toBeGreaterThan(0);
    const ttl = await client.ttl(`${t.keyPrefix}r:{fpX1}`);
    expect(ttl).toBeGreaterThan(25);
    expect(ttl).toBeLessThanOrEqual(30);
    expect(await client.pttl(`${t.keyPrefix}v:{+442079460123}`)).toBeLessThanOrEqual(3600_000);
    expect(await client.pttl(`${t.keyPrefix}h:{+442079460123}`)).toBeGreaterThan(29 * 86400_000);
  });

  it('a reply it cannot use falls back to this instance instead of failing the call', async () => {
    const t = tracker();
    await client.set(`${t.keyPrefix}v:{+442079460123}`, 'not a sorted set');
    await t.observe(call({ to: dest(1), at: T0 }));
    const s = await t.observe(call({ to: dest(2), at: T0 + 1 }));
    expect(s.distinctDestinations?.map((d) => d.count)).toEqual([2, 2]);
    await expect(t.record(call(), FAILING)).resolves.toBeUndefined();
  });
});

describe('when Redis goes away and comes back', () => {
  let port: number;
  let server: Child | undefined;
  let own: Redis;
  /** The test's own writes to Redis, on a patient connection: a busy machine must not time them out at the tracker's 50 ms. */
  let setup: Redis;

  beforeAll(async () => {
    port = await freePort();
    server = await startRedisServer(port);
    own = await connect(`redis://127.0.0.1:${port}`, 50);
    setup = await connect(`redis://127.0.0.1:${port}`, 5000);
  });
  afterAll(async () => {
    own.disconnect();
    setup.disconnect();
    await server?.kill();
  });

  it('carries on from Redis when the server has forgotten the script (SCRIPT FLUSH; a restart is a new connection)', async () => {
    const t = tracker({ on: own });
    const vkey = `${t.keyPrefix}v:{+442079460123}`;
    await t.observe(call({ to: dest(1), at: T0 }));
    // Another instance's call, only in Redis: tells Redis's answer from this instance's own.
    await setup.zadd(vkey, T0, dest(100));
    await setup.script('FLUSH');
    const sent = jest.spyOn(own, 'sendCommand');
    try {
      const s = await t.observe(call({ to: dest(2), at: T0 + 1 }));
      expect(s.distinctDestinations?.map((d) => d.count)).toEqual([3, 3]);
      // EVALSHA refused with NOSCRIPT, then the same call sent as EVAL: one extra round trip, once.
      expect(sent).toHaveBeenCalledTimes(2);
      sent.mockClear();
      await t.observe(call({ to: dest(3), at: T0 + 2 }));
      expect(sent).toHaveBeenCalledTimes(1);
    } finally {
      sent.mockRestore();
    }
    expect((await t.observe(call({ to: dest(3), at: T0 + 3 }))).distinctDestinations?.[0]?.count).toBe(4);
  });

  it('scores from memory while it is down, within a few ms, and from Redis again once it is back', async () => {
    const t = tracker({ on: own });
    const caller = '+442079460123';
    const vkey = `${t.keyPrefix}v:{${caller}}`;

    // Another instance's calls, visible only through Redis.
    await setup.zadd(vkey, T0, dest(100), T0, dest(101), T0, dest(102));
    expect((await t.observe(call({ callId: 'u1', to: dest(1), at: T0 + 1000 }))).distinctDestinations?.[0]?.count).toBe(4);
    await t.record(call({ callId: 'u1', to: dest(1), at: T0 + 1000 }), CLEAN);

    await server?.kill();
    await until(() => own.status !== 'ready', 2000, 'the client to see Redis gone');

    // Served from memory: each answered before the event loop takes another turn, so without
    // waiting on a socket, a timeout or a timer. A bound in ms could not tell that on a busy
    // machine, where a GC pause or the machine's other work holds one call for tens of ms.
    let waited = 0;
    const timed = async <T>(f: () => Promise<T>): Promise<T> => {
      let turned = false;
      const turn = setImmediate(() => (turned = true));
      const out = await f();
      clearImmediate(turn);
      if (turned) waited++;
      return out;
    };
    const down1 = await timed(() => t.observe(call({ callId: 'd1', to: dest(2), at: T0 + 2000, fingerprints: ['fp-down'] })));
    await timed(() => t.record(call({ callId: 'd1', to: dest(2), at: T0 + 2000 }), FAILING));
    const down2 = await timed(() => t.observe(call({ callId: 'd2', to: dest(3), at: T0 + 3000, fingerprints: ['fp-down'] })));
    await timed(() => t.record(call({ callId: 'd2', to: dest(3), at: T0 + 3000 }), CLEAN));
    for (let i = 0; i < 20; i++) await timed(() => t.observe(call({ to: dest(1), at: T0 + 3000 })));
    // This instance's own view: dest 1, 2, 3; the other instance's calls are not in it.
    expect(down1.distinctDestinations?.[0]?.count).toBe(2);
    expect(down2.distinctDestinations?.[0]?.count).toBe(3);
    expect(down2.replayed).toBe(true);
    expect((await t.history.query({ caller })).map((e) => e.callId)).toEqual(['d2', 'd1']);
    expect(t.history.backlogSize).toBe(2);
    expect(waited).toBe(0);

    server = await startRedisServer(port);
    await until(() => own.status === 'ready', 5000, 'the client to reconnect');
    await sleep(150); // past the breaker's open interval

    // An empty Redis after the restart, plus two calls of another instance.
    await setup.zadd(vkey, T0 + 3500, dest(200), T0 + 3500, dest(201));
    const back = await t.observe(call({ callId: 'b1', to: dest(4), at: T0 + 4000 }));
    expect(back.distinctDestinations?.[0]?.count).toBe(3);
    // What was recorded while down goes to Redis by itself.
    await until(async () => (await own.zcard(`${t.keyPrefix}h:{${caller}}`)) === 2, 2000, 'the history backlog to flush');
    expect(t.history.backlogSize).toBe(0);
    expect((await t.history.query({ caller })).map((e) => e.callId)).toEqual(['d2', 'd1']);
  });
});

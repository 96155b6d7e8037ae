import type Redis from 'ioredis';
import RedisClient, { type Cluster } from 'ioredis';
import { randomUUID } from 'node:crypto';
import { parseRegistryDocument } from '../../src/registry/format';
import type { AuditRecord, Bank, RegistryEntry } from '../../src/registry/model';
import { RedisRegistryBackend } from '../../src/registry/redis-backend';
import { RegistryStore, type Mutation } from '../../src/registry/store';
import { createRedisClient } from '../../src/state/redis/client';
import { until, type Child } from '../../scripts/lib/process';
import { startRegistryRedis } from '../helpers/redis';
import { startCluster, type LocalCluster } from '../state/support';
import { calmestStallWithin } from '../helpers/stall';

/**
 * A large change (an import) committed to Redis: its payload is staged in pieces of about a
 * megabyte, one command at a time, and applied by one small script call, all or nothing. Runs
 * on a redis-server of its own: one test drops every client connection of that server.
 */
const seed = () => ({
  data: parseRegistryDocument({ banks: [{ id: 'b', name: 'Bank B' }], numbers: [{ number: '+443450000000', bankId: 'b', inboundOnly: true }] }, 'GB').data,
  version: 'seed-v1',
});

let server: Child;
let port: number;
/** The test's own connection: reads what Redis holds, and drops the backend's connection. */
let admin: Redis;
/** The registry's client, as the app makes it: fails fast while disconnected, reconnects by itself. */
let client: Redis;
let prefix: string;
const key = (name: string) => `${prefix}{registry}:${name}`;

beforeAll(async () => {
  ({ port, server, client } = await startRegistryRedis());
  admin = new RedisClient({ port, host: '127.0.0.1' });
});
beforeEach(() => {
  prefix = `test:${randomUUID()}:`;
});
afterEach(() => jest.restoreAllMocks());
afterAll(async () => {
  client.disconnect();
  admin.disconnect();
  await server.kill();
});

/** An import's mutations and audit records: `n` numbers, each with its record, as the import makes them. */
function importOf(n: number): { mutations: Mutation[]; audit: AuditRecord[] } {
  const at = new Date().toISOString();
  const mutations: Mutation[] = [];
  const audit: AuditRecord[] = [];
  for (let i = 0; i < n; i++) {
    const number = `+44113${2_000_000 + i * 7}`;
    const value: RegistryEntry = { kind: 'number', key: number, bankId: 'b', inboundOnly: i % 3 === 0, ...(i % 2 ? { authorisedSpcs: ['1234', '5678'] } : {}) };
    mutations.push({ type: 'entry', kind: 'number', key: number, value });
    audit.push({ at, actor: 'admin', action: 'number.create', bankId: 'b', target: `number:${number}`, before: null, after: value });
  }
  return { mutations, audit };
}

/**
 * Bytes of the arguments of every script call the client makes (EVALSHA, and EVAL with the
 * script's text when Redis does not hold it yet).
 */
function scriptCallSizes(redis: Redis | Cluster): number[] {
  const sizes: number[] = [];
  for (const name of ['eval', 'evalsha'] as const) {
    const real = redis[name].bind(redis) as (...args: unknown[]) => Promise<unknown>;
    jest.spyOn(redis, name).mockImplementation(((...args: unknown[]) => {
      sizes.push(args.flat().reduce<number>((sum, a) => sum + (Buffer.isBuffer(a) ? a.length : typeof a === 'string' ? Buffer.byteLength(a) : 8), 0));
      return real(...args);
    }) as never);
  }
  return sizes;
}

async function stagingKeys(redis: Redis = admin): Promise<string[]> {
  return redis.keys(`${prefix}{registry}:stage:*`);
}

/** What Redis holds of the registry, besides the entries themselves. */
async function heads() {
  return { version: await admin.get(key('version')), seq: await admin.get(key('seq')), log: await admin.xlen(key('log')), audit: await admin.xlen(key('audit')), entries: await admin.hlen(key('entries')) };
}

describe('a large change committed to Redis', () => {
  it('is staged in pieces and applied by one small script call, the event loop never held more than 50 ms (5 % of its CPU time on a slow machine)', async () => {
    // An import of some 230,000 numbers, 80 MB with the audit records.
    const { mutations, audit } = importOf(230_000);
    const sizes = scriptCallSizes(client);
    let store!: RegistryStore;
    const { stall, bound } = await calmestStallWithin(50, 0.05, 2, async (run) => {
      // A second run, if the first stalled, commits the same change to a registry of its own.
      if (run > 0) {
        await store.close();
        prefix = `test:${randomUUID()}:`;
      }
      store = await RegistryStore.open(new RedisRegistryBackend(client, { prefix, pollMs: 60_000 }), seed);
      await store.backend.commit(mutations, audit, 'v2', () => store.index);
    });
    // Written as one script call, the payload held the event loop 140 ms and more while the client
    // encoded and wrote it. Staged, each command is about a megabyte: a few ms.
    expect(stall).toBeLessThan(bound);
    expect(sizes.length).toBeGreaterThan(0);
    expect(Math.max(...sizes)).toBeLessThan(64 * 1024);
    // All of it applied: every entry, the version, the log entry, the audit records; and the
    // staged pieces are gone.
    expect(await heads()).toEqual({ version: 'v2', seq: '1', log: 1, audit: Math.ceil(230_000 / 500), entries: 230_001 });
    expect(await admin.hget(key('entries'), 'number:+441132000007')).toBe(JSON.stringify(mutations[1]!.type === 'entry' && mutations[1]!.value));
    const page = await store.readAuditPage({ limit: 2 });
    expect(page.records.map((r) => r.target)).toEqual([`number:+44113${2_000_000 + 229_999 * 7}`, `number:+44113${2_000_000 + 229_998 * 7}`]);
    expect(await stagingKeys()).toEqual([]);
    await store.close();
  }, 120_000);

  it('carries every kind of change whole when staged, names outside ASCII included', async () => {
    const store = await RegistryStore.open(new RedisRegistryBackend(client, { prefix, pollMs: 60_000 }), seed);
    const bank: Bank = { id: 'g', name: 'Banque Générale ✓ «:» 12:3', callbackNumbers: [] };
    const entry: RegistryEntry = { kind: 'number', key: '+442079460001', bankId: 'g', inboundOnly: false, authorisedSpcs: ['12:34'] };
    const prefixEntry: RegistryEntry = { kind: 'prefix', key: '+44161496', bankId: 'g', inboundOnly: true };
    // Enough numbers before and after the other kinds that the change is staged in several pieces.
    const filler = importOf(20_000).mutations;
    const mutations: Mutation[] = [
      ...filler.slice(0, 10_000),
      { type: 'reset' },
      { type: 'bank', id: 'b', value: { id: 'b', name: 'Bank B', callbackNumbers: [] } },
      { type: 'bank', id: 'g', value: bank },
      { type: 'entry', kind: 'number', key: entry.key, value: entry },
      { type: 'entry', kind: 'prefix', key: prefixEntry.key, value: prefixEntry },
      ...filler.slice(10_000),
      { type: 'entry', kind: 'number', key: '+441132070007', value: null },
      { type: 'bank', id: 'b', value: null },
    ];
    const sizes = scriptCallSizes(client);
    await store.backend.commit(mutations, [], 'v2', () => store.index);
    expect(sizes.length).toBeGreaterThan(0);
    expect(Math.max(...sizes)).toBeLessThan(64 * 1024);
    const loaded = await new RedisRegistryBackend(client, { prefix, pollMs: 60_000 }).load();
    expect(loaded?.version).toBe('v2');
    expect(loaded?.data.banks).toEqual([bank]);
    const held = await admin.hgetall(key('entries'));
    // Set before the reset: gone. After it: there, but the one deleted at the end.
    expect(Object.keys(held)).toHaveLength(2 + 10_000 - 1);
    expect(held['number:+442079460001']).toBe(JSON.stringify(entry));
    expect(held['prefix:+44161496']).toBe(JSON.stringify(prefixEntry));
    expect(held['number:+441132000000']).toBeUndefined();
    expect(held['number:+441132070007']).toBeUndefined();
    expect(held['number:+441132070000']).toBe(JSON.stringify((filler[10_000] as { value: RegistryEntry }).value));
    await store.close();
  }, 60_000);

  it('carries a small change in the script call itself, as before', async () => {
    const store = await RegistryStore.open(new RedisRegistryBackend(client, { prefix, pollMs: 60_000 }), seed);
    const bank: Bank = { id: 'g', name: 'Banque Générale ✓ «:»', callbackNumbers: [] };
    const entry: RegistryEntry = { kind: 'number', key: '+442079460001', bankId: 'g', inboundOnly: false, authorisedSpcs: ['12:34'] };
    const mutations: Mutation[] = [
      { type: 'bank', id: 'g', value: bank },
      { type: 'entry', kind: 'number', key: entry.key, value: entry },
      { type: 'entry', kind: 'number', key: '+443450000000', value: null },
      { type: 'bank', id: 'b', value: null },
    ];
    const rpush = jest.spyOn(client, 'multi');
    await store.backend.commit(mutations, [], 'v2', () => store.index);
    expect(rpush).not.toHaveBeenCalled();
    const loaded = await new RedisRegistryBackend(client, { prefix, pollMs: 60_000 }).load();
    expect(loaded?.version).toBe('v2');
    expect(loaded?.data.banks).toEqual([bank]);
    expect(await admin.hgetall(key('entries'))).toEqual({ 'number:+442079460001': JSON.stringify(entry) });
    await store.close();
  });

  it('whose staging is cut off (the connection dropped) applies nothing and audits nothing; what it staged expires', async () => {
    const store = await RegistryStore.open(new RedisRegistryBackend(client, { prefix, pollMs: 60_000 }), seed);
    const before = await heads();
    const { mutations, audit } = importOf(100_000);
    const commit = store.backend.commit(mutations, audit, 'v2', () => store.index);
    const outcome = commit.then(
      () => 'committed',
      (err: Error) => err,
    );
    // Once Redis holds a few pieces of it, every connection but the test's own is dropped.
    await until(async () => {
      const [staged] = await stagingKeys();
      return staged !== undefined && (await admin.llen(staged)) >= 3;
    }, 30_000, 'the change to be partly staged', 2);
    await admin.call('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
    expect(await outcome).toBeInstanceOf(Error);
    // Nothing of the change: not an entry, not the version, not a log entry, not an audit record.
    expect(await heads()).toEqual(before);
    expect(await admin.hget(key('entries'), 'number:+441132000000')).toBeNull();
    // What was staged is gone (the client unlinks it when it can) or goes by itself.
    for (const staged of await stagingKeys()) {
      const ttl = await admin.pttl(staged);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(10 * 60 * 1000);
    }
    // The next change, once the client is back, is made and audited alone.
    await until(() => client.status === 'ready', 5000, 'the client to reconnect');
    const at = new Date().toISOString();
    const one: RegistryEntry = { kind: 'number', key: '+442079460002', bankId: 'b', inboundOnly: true };
    await store.backend.commit([{ type: 'entry', kind: 'number', key: one.key, value: one }], [{ at, actor: 'admin', action: 'number.create', bankId: 'b', target: `number:${one.key}`, before: null, after: one }], 'v3', () => store.index);
    expect(await heads()).toEqual({ ...before, version: 'v3', seq: String(Number(before.seq ?? 0) + 1), log: before.log + 1, audit: before.audit + 1, entries: before.entries + 1 });
    expect((await store.readAudit({ limit: 10 })).map((r) => r.target)).toEqual([`number:${one.key}`]);
    await store.close();
  }, 60_000);

  it('whose staged pieces are not all there when the script runs (expired, evicted) is refused whole', async () => {
    const store = await RegistryStore.open(new RedisRegistryBackend(client, { prefix, pollMs: 60_000 }), seed);
    const before = await heads();
    const { mutations, audit } = importOf(20_000);
    // Just before the script runs, the staging list loses its last piece.
    const real = client.evalsha.bind(client) as (...args: unknown[]) => Promise<unknown>;
    let cut = false;
    jest.spyOn(client, 'evalsha').mockImplementation((async (...args: unknown[]) => {
      const [staged] = await stagingKeys();
      if (staged) cut = (await admin.rpop(staged)) !== null;
      return real(...args);
    }) as never);
    await expect(store.backend.commit(mutations, audit, 'v2', () => store.index)).rejects.toThrow(/not stored in Redis: STAGING/);
    expect(cut).toBe(true);
    expect(await heads()).toEqual(before);
    await until(async () => (await stagingKeys()).length === 0, 2000, 'the refused change\'s pieces to be unlinked');
    await store.close();
  }, 60_000);
});

describe('a large change committed to a Redis Cluster', () => {
  let cluster: LocalCluster;
  let redis: Cluster;
  beforeAll(async () => {
    cluster = await startCluster();
    redis = createRedisClient(cluster.ports.map((p) => `redis://127.0.0.1:${p}`).join(','), { commandTimeoutMs: 10_000, cluster: true }) as unknown as Cluster;
    redis.on('error', () => undefined);
    await until(() => redis.status === 'ready', 10_000, 'the cluster client');
  }, 30_000);
  afterAll(async () => {
    redis?.disconnect();
    await cluster?.stop();
  });

  it('is staged on the node holding the registry and applied whole', async () => {
    const store = await RegistryStore.open(new RedisRegistryBackend(redis as unknown as Redis, { prefix, pollMs: 60_000 }), seed);
    const { mutations, audit } = importOf(20_000);
    const sizes = scriptCallSizes(redis);
    await store.backend.commit(mutations, audit, 'v2', () => store.index);
    expect(sizes.length).toBeGreaterThan(0);
    expect(Math.max(...sizes)).toBeLessThan(64 * 1024);
    const r = redis as unknown as Redis;
    expect(await r.hlen(key('entries'))).toBe(20_001);
    expect(await r.xlen(key('audit'))).toBe(20_000 / 500);
    expect(await r.get(key('version'))).toBe('v2');
    const loaded = await new RedisRegistryBackend(redis as unknown as Redis, { prefix, pollMs: 60_000 }).load();
    expect(loaded?.version).toBe('v2');
    expect((loaded!.data as { numbers: { keys: ArrayLike<number> } }).numbers.keys.length).toBe(20_001);
    await store.close();
  }, 60_000);
});

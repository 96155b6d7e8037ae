import Redis from 'ioredis';
import { randomUUID } from 'node:crypto';
import { requireRedis, TEST_REDIS_URL } from '../helpers/redis';
import { until } from '../../scripts/lib/process';
import { planImport, planPutBank, planPutEntry, readCsvRows, type Actor } from '../../src/registry/admin';
import { parseRegistryDocument } from '../../src/registry/format';
import { RedisRegistryBackend } from '../../src/registry/redis-backend';
import { RegistryStore } from '../../src/registry/store';

const ADMIN: Actor = { name: 'admin', bankId: null };
const seed = () => ({
  data: parseRegistryDocument({ banks: [{ id: 'b', name: 'Bank B' }], numbers: [{ number: '+443450000000', bankId: 'b', inboundOnly: true }] }, 'GB').data,
  version: 'seed-v1',
});

let redis: Redis;
let prefix: string;
beforeAll(async () => {
  await requireRedis();
  redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
});
beforeEach(() => {
  prefix = `test:${randomUUID()}:`;
});
afterEach(async () => {
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length) await redis.del(...keys);
});
afterAll(() => redis.quit());

const openStore = () => RegistryStore.open(new RedisRegistryBackend(redis, { prefix, pollMs: 50 }), seed);

describe('registry shared through Redis', () => {
  it('seeds an empty Redis once, even when two instances start together', async () => {
    const [a, b] = await Promise.all([openStore(), openStore()]);
    expect(a.version).toBe('seed-v1');
    expect(b.version).toBe('seed-v1');
    expect(b.index.lookup('+443450000000')?.bankId).toBe('b');
    await Promise.all([a.close(), b.close()]);
  });

  it('a change made on one instance is seen by the other within a second, version included', async () => {
    const a = await openStore();
    const b = await openStore();
    await a.change((i) => planPutEntry(i, ADMIN, 'number', '+442079460000', { bankId: 'b', inboundOnly: false, authorisedSpcs: ['1234'] }, 'GB'));
    const took = await until(() => b.index.lookup('+442079460000') !== null, 1000, 'b to see the change');
    expect(took).toBeLessThan(1000);
    expect(b.version).toBe(a.version);
    expect(b.index.lookup('+442079460000')?.authorisedSpcs).toEqual(['1234']);
    await Promise.all([a.close(), b.close()]);
  });

  it('an instance that changes the registry right after another still gets the other change', async () => {
    const a = await openStore();
    const b = await openStore();
    // b's own change lands after a's: Redis's version is then b's, and only the log tells b of a's.
    await a.change((i) => planPutEntry(i, ADMIN, 'number', '+442079460001', { bankId: 'b', inboundOnly: true }, 'GB'));
    await b.change((i) => planPutEntry(i, ADMIN, 'number', '+442079460002', { bankId: 'b', inboundOnly: true }, 'GB'));
    await until(() => b.index.lookup('+442079460001') !== null && a.index.lookup('+442079460002') !== null, 1000, "each to see the other's change");
    expect(b.version).toBe(a.version);
    await Promise.all([a.close(), b.close()]);
  });

  it('plans a change against the latest registry: a number added on one instance can be deleted on another at once', async () => {
    const a = await openStore();
    const b = await openStore();
    await a.change((i) => planPutEntry(i, ADMIN, 'number', '+442079460003', { bankId: 'b', inboundOnly: true }, 'GB'));
    // No wait for b's poll: the change itself reads the log first.
    expect(await b.change((i) => ({ mutations: [], audit: [], result: i.lookup('+442079460003')?.bankId ?? null }))).toBe('b');
    await Promise.all([a.close(), b.close()]);
  });

  it('refuses a change while Redis holds no registry, and seeds it again from memory when it lost it', async () => {
    const a = await openStore();
    await a.change((i) => planPutEntry(i, ADMIN, 'number', '+442079460004', { bankId: 'b', inboundOnly: true }, 'GB'));
    // A Redis with no registry takes no change: it would become the whole registry for whoever loads it.
    const empty = new RedisRegistryBackend(redis, { prefix: `${prefix}empty:` });
    await expect(empty.commit([{ type: 'bank', id: 'x', value: { id: 'x', name: 'X', callbackNumbers: [] } }], [], 'v-x')).rejects.toThrow(/not in Redis yet/);
    const keys = await redis.keys(`${prefix}*`);
    await redis.del(...keys); // Redis restarted without persistence
    await until(async () => (await redis.get(`${prefix}{registry}:version`)) === a.version, 3000, 'the registry seeded again from memory');
    const b = await openStore();
    expect(b.index.lookup('+442079460004')?.bankId).toBe('b');
    expect(b.index.lookup('+443450000000')?.bankId).toBe('b');
    await Promise.all([a.close(), b.close()]);
  });

  it('an instance that started while Redis was unreachable seeds it once it answers, or takes what it holds', async () => {
    // Redis "down" for the first load only: the store serves the seed, and its follower catches up.
    const unreachableOnce = () => {
      const backend = new RedisRegistryBackend(redis, { prefix, pollMs: 50 });
      const load = backend.load.bind(backend);
      let calls = 0;
      backend.load = () => (calls++ === 0 ? Promise.reject(new Error('Stream isn\'t writeable')) : load());
      return backend;
    };
    const a = await RegistryStore.open(unreachableOnce(), seed);
    expect(a.version).toBe('seed-v1');
    await until(async () => (await redis.get(`${prefix}{registry}:version`)) === 'seed-v1', 3000, 'Redis seeded once it answers');
    await a.change((i) => planPutEntry(i, ADMIN, 'number', '+442079460005', { bankId: 'b', inboundOnly: true }, 'GB'));
    const b = await RegistryStore.open(unreachableOnce(), seed);
    await until(() => b.index.lookup('+442079460005') !== null && b.version === a.version, 3000, 'b to take what Redis holds');
    expect(b.index.lookup('+443450000000')?.bankId).toBe('b');
    await Promise.all([a.close(), b.close()]);
  });

  it('large imports reach followers as a reload', async () => {
    const a = await openStore();
    const b = await openStore();
    const lines = ['number,bankId,inboundOnly'];
    for (let n = 0; n < 3000; n++) lines.push(`+44161496${String(n).padStart(4, '0')},b,true`);
    const result = await a.change((i) => planImport(i, ADMIN, readCsvRows(lines.join('\n')), 'merge', 'GB'));
    expect(result.added).toBe(3000);
    await until(() => b.index.size.numbers === 3001, 2000, 'the import to reach b');
    expect(b.version).toBe(a.version);
    await Promise.all([a.close(), b.close()]);
  });

  it('a restarted instance reads what was acknowledged, and the audit log', async () => {
    const a = await openStore();
    await a.change((i) => planPutEntry(i, ADMIN, 'prefix', '+4420794601', { bankId: 'b', inboundOnly: true }, 'GB'));
    const version = a.version;
    await a.close();
    const again = await openStore();
    expect(again.version).toBe(version);
    expect(again.index.lookup('+442079460123')?.match).toBe('prefix');
    const audit = await again.readAudit({ limit: 5 });
    expect(audit[0]).toMatchObject({ actor: 'admin', action: 'prefix.create', target: 'prefix:+4420794601', bankId: 'b' });
    await again.close();
  });

  it("an organisation's kind and an entry's overseas origins reach the other instance, and a restarted one", async () => {
    const a = await openStore();
    const b = await openStore();
    await a.change((i) => planPutBank(i, ADMIN, 'b', { name: 'Bank B', kind: 'government', announcesCalls: true }, 'GB'));
    await a.change((i) => planPutEntry(i, ADMIN, 'number', '+442079460006', { bankId: 'b', inboundOnly: false, authorisedSpcs: ['1234'], overseasOrigins: ['trunk-offshore-in', '1234'] }, 'GB'));
    await a.change((i) => planPutEntry(i, ADMIN, 'prefix', '+4420794607', { bankId: 'b', inboundOnly: false, overseasOrigins: ['trunk-offshore-in'] }, 'GB'));
    const expected = { bankKind: 'government', announcesCalls: true, authorisedSpcs: ['1234'], overseasOrigins: ['trunk-offshore-in', '1234'] };
    await until(() => b.index.lookup('+442079460006') !== null && b.index.lookup('+442079460712') !== null, 1000, 'b to see the changes');
    expect(b.index.lookup('+442079460006')).toMatchObject(expected);
    expect(b.index.lookup('+442079460712')).toMatchObject({ match: 'prefix', overseasOrigins: ['trunk-offshore-in'] });
    await Promise.all([a.close(), b.close()]);
    // Read back from the hashes, into the compact table.
    const again = await openStore();
    expect(again.index.lookup('+442079460006')).toMatchObject(expected);
    expect(again.index.lookup('+442079460712')).toMatchObject({ overseasOrigins: ['trunk-offshore-in'] });
    expect(again.index.bank('b')).toMatchObject({ kind: 'government', announcesCalls: true });
    await again.close();
  });

  it('refuses a change it cannot make durable', async () => {
    const broken = new Redis('redis://127.0.0.1:1', { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
    const store = await RegistryStore.open(new RedisRegistryBackend(broken, { prefix, pollMs: 50 }), seed);
    // Redis was down at start: the seed registry still answers lookups.
    expect(store.index.lookup('+443450000000')?.bankId).toBe('b');
    await expect(store.change((i) => planPutEntry(i, ADMIN, 'number', '+442079460000', { bankId: 'b', inboundOnly: true }, 'GB'))).rejects.toThrow();
    expect(store.index.lookup('+442079460000')).toBeNull();
    await store.close();
    broken.disconnect();
  });
});

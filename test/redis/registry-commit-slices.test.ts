import Redis from 'ioredis';
import { randomUUID } from 'node:crypto';
import { requireRedis, TEST_REDIS_URL } from '../helpers/redis';
import { parseRegistryDocument } from '../../src/registry/format';
import type { AuditRecord } from '../../src/registry/model';
import { RedisRegistryBackend } from '../../src/registry/redis-backend';
import { RegistryStore, type Mutation } from '../../src/registry/store';

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

describe('an import committed to Redis', () => {
  it('has its script arguments made in slices, and is still one script call, all applied', async () => {
    const store = await RegistryStore.open(new RedisRegistryBackend(redis, { prefix, pollMs: 60_000 }), seed);
    const at = new Date().toISOString();
    const mutations: Mutation[] = [];
    const audit: AuditRecord[] = [];
    for (let i = 0; i < 80_000; i++) {
      const key = `+44113${2_000_000 + i * 7}`;
      const value = { kind: 'number' as const, key, bankId: 'b', inboundOnly: i % 2 === 0, ...(i % 3 ? { authorisedSpcs: ['1234', '5678'] } : {}) };
      mutations.push({ type: 'entry', kind: 'number', key, value });
      audit.push({ at, actor: 'admin', action: 'number.create', bankId: 'b', target: `number:${key}`, before: null, after: value });
    }
    // The longest the event loop goes without a turn from the start of the commit until the
    // script is sent: the making of its arguments.
    let longest = 0;
    let last = performance.now();
    let sent = false;
    const timer = setInterval(() => {
      const now = performance.now();
      if (!sent) longest = Math.max(longest, now - last);
      last = now;
    }, 1);
    const evalSpy = jest.spyOn(redis, 'eval');
    evalSpy.mockImplementationOnce(function (this: Redis, ...args: unknown[]) {
      longest = Math.max(longest, performance.now() - last);
      sent = true;
      evalSpy.mockRestore();
      return (redis.eval as (...a: unknown[]) => Promise<unknown>).apply(this, args);
    } as never);
    await store.backend.commit(mutations, audit, 'v2', () => store.index);
    clearInterval(timer);
    expect(sent).toBe(true);
    // In one piece the arguments take 300 ms and more to make; a slice is a few ms. The bound
    // leaves room for a loaded test machine and the garbage collector's pauses.
    expect(longest).toBeLessThan(100);
    // One script call made all of it: every entry, the version, and the audit records.
    expect(await redis.hlen(`${prefix}{registry}:entries`)).toBe(80_001);
    expect(await redis.get(`${prefix}{registry}:version`)).toBe('v2');
    expect(await redis.xlen(`${prefix}{registry}:audit`)).toBe(80_000 / 500);
    await store.close();
  }, 60_000);

  it('carries every kind of change whole, names outside ASCII included', async () => {
    const store = await RegistryStore.open(new RedisRegistryBackend(redis, { prefix, pollMs: 60_000 }), seed);
    const bank = { id: 'g', name: 'Banque Générale ✓ «:»', callbackNumbers: [] };
    const entry = { kind: 'number' as const, key: '+442079460001', bankId: 'g', inboundOnly: false, authorisedSpcs: ['12:34'] };
    const mutations: Mutation[] = [
      { type: 'bank', id: 'g', value: bank },
      { type: 'entry', kind: 'number', key: entry.key, value: entry },
      { type: 'entry', kind: 'number', key: '+443450000000', value: null },
      { type: 'bank', id: 'b', value: null },
    ];
    await store.backend.commit(mutations, [], 'v2', () => store.index);
    const loaded = await new RedisRegistryBackend(redis, { prefix, pollMs: 60_000 }).load();
    expect(loaded?.version).toBe('v2');
    expect(loaded?.data.banks).toEqual([bank]);
    expect(await redis.hgetall(`${prefix}{registry}:entries`)).toEqual({ 'number:+442079460001': JSON.stringify(entry) });
    await store.close();
  });
});

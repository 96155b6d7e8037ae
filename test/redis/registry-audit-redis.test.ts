import Redis from 'ioredis';
import { randomUUID } from 'node:crypto';
import { planPutEntry, type Actor } from '../../src/registry/admin';
import { parseRegistryDocument } from '../../src/registry/format';
import { RedisRegistryBackend } from '../../src/registry/redis-backend';
import { RegistryStore } from '../../src/registry/store';
import { answered } from '../helpers/answered';

const ADMIN: Actor = { name: 'admin', bankId: null };
const seed = () => ({
  data: parseRegistryDocument({ banks: [{ id: 'b', name: 'Bank B' }, { id: 'c', name: 'Bank C' }], numbers: [] }, 'GB').data,
  version: 'seed-v1',
});

let redis: Redis;
let prefix: string;
beforeAll(() => {
  redis = new Redis(process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
});
beforeEach(() => {
  prefix = `test:${randomUUID()}:`;
});
afterEach(async () => {
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length) await redis.del(...keys);
});
afterAll(() => redis.quit());

describe('the audit stream in Redis, a page at a time', () => {
  it('pages back through the stream by cursor, within and across batches, filtered by bank', async () => {
    const store = await RegistryStore.open(new RedisRegistryBackend(redis, { prefix, pollMs: 50 }), seed);
    for (let n = 0; n < 7; n++) {
      const bankId = n % 2 === 0 ? 'b' : 'c';
      await store.change((i) => planPutEntry(i, ADMIN, 'number', `+44207946070${n}`, { bankId, inboundOnly: true }, 'GB'));
    }
    const targets: string[] = [];
    let before: string | undefined;
    for (;;) {
      const page = await store.readAuditPage({ limit: 3, ...(before ? { before } : {}) });
      targets.push(...page.records.map((r) => r.target));
      if (page.next === null) break;
      expect(page.next).toBe(page.records[page.records.length - 1]!.id);
      before = page.next;
    }
    expect(targets).toEqual([6, 5, 4, 3, 2, 1, 0].map((n) => `number:+44207946070${n}`));

    const ofB = await store.readAuditPage({ limit: 2, bankId: 'b' });
    expect(ofB.records.map((r) => r.target)).toEqual(['number:+442079460706', 'number:+442079460704']);
    const moreOfB = await store.readAuditPage({ limit: 5, bankId: 'b', before: ofB.next! });
    expect(moreOfB).toMatchObject({ next: null, records: [{ target: 'number:+442079460702' }, { target: 'number:+442079460700' }] });
    await expect(answered(store.readAuditPage({ limit: 5, before: '12345' }))).resolves.toMatchObject({ status: 400 });
    await store.close();
  });

  it('continues inside one stream entry: an import writes its records in batches', async () => {
    const backend = new RedisRegistryBackend(redis, { prefix, pollMs: 50 });
    const store = await RegistryStore.open(backend, seed);
    const at = new Date().toISOString();
    // One change, 1,200 records: three stream entries of up to 500.
    const audit = Array.from({ length: 1200 }, (_, n) => ({ at, actor: 'a', action: 'number.create', bankId: 'b', target: `t${n}`, before: null, after: null }));
    await store.change(() => ({ mutations: [{ type: 'bank', id: 'b', value: { id: 'b', name: 'Bank B', callbackNumbers: [] } }], audit, result: null }));
    const seen: string[] = [];
    let before: string | undefined;
    do {
      const page = await store.readAuditPage({ limit: 170, ...(before ? { before } : {}) });
      seen.push(...page.records.map((r) => r.target));
      before = page.next ?? undefined;
    } while (before);
    expect(seen).toEqual(audit.map((a) => a.target).reverse());
    await store.close();
  });
});

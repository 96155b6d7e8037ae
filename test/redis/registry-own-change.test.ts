import type Redis from 'ioredis';
import { randomUUID } from 'node:crypto';
import { parseRegistryDocument } from '../../src/registry/format';
import type { AuditRecord, RegistryEntry } from '../../src/registry/model';
import { RedisRegistryBackend } from '../../src/registry/redis-backend';
import { RegistryStore, type Mutation } from '../../src/registry/store';
import { type Child } from '../../scripts/lib/process';
import { startRegistryRedis } from '../helpers/redis';
import { calmestStallWithin } from '../helpers/stall';

/**
 * An instance's own change, read back from the change log, is no news to it: after an import
 * (logged as "reload") it does not read the whole registry from Redis again. Other instances
 * still converge, reading it in slices.
 */
const seed = () => ({
  data: parseRegistryDocument({ banks: [{ id: 'b', name: 'Bank B' }], numbers: [{ number: '+443450000000', bankId: 'b', inboundOnly: true }] }, 'GB').data,
  version: 'seed-v1',
});

let server: Child;
let client: Redis;
let prefix: string;

beforeAll(async () => {
  ({ server, client } = await startRegistryRedis());
});
beforeEach(() => {
  prefix = `test:${randomUUID()}:`;
});
afterEach(() => jest.restoreAllMocks());
afterAll(async () => {
  client.disconnect();
  await server.kill();
});

function importOf(n: number, from = 0): { mutations: Mutation[]; audit: AuditRecord[]; result: null } {
  const at = new Date().toISOString();
  const mutations: Mutation[] = [];
  const audit: AuditRecord[] = [];
  for (let i = from; i < from + n; i++) {
    const number = `+44113${2_000_000 + i * 7}`;
    const value: RegistryEntry = { kind: 'number', key: number, bankId: 'b', inboundOnly: i % 3 === 0, ...(i % 2 ? { authorisedSpcs: ['1234', '5678'] } : {}) };
    mutations.push({ type: 'entry', kind: 'number', key: number, value });
    audit.push({ at, actor: 'admin', action: 'number.create', bankId: 'b', target: `number:${number}`, before: null, after: value });
  }
  return { mutations, audit, result: null };
}

const open = () => RegistryStore.open(new RedisRegistryBackend(client, { prefix, pollMs: 60_000 }), seed);
/** Runs one poll of the store's change log, through its queue (a change with nothing to change). */
const sync = (store: RegistryStore) => store.change(() => ({ mutations: [], audit: [], result: null }));

describe("an instance's own large change", () => {
  it('is not reloaded by the instance that made it; another instance converges on it', async () => {
    const a = await open();
    const b = await open();
    const hscan = jest.spyOn(client, 'hscan');
    const loadA = jest.spyOn(a.backend, 'load');
    await a.change(() => importOf(5000));
    await sync(a);
    await sync(a);
    expect(loadA).not.toHaveBeenCalled();
    expect(hscan).not.toHaveBeenCalled();
    expect(a.index.size.numbers).toBe(5001);

    await sync(b);
    expect(b.version).toBe(a.version);
    expect(b.index.size).toEqual(a.index.size);
    expect(b.index.view()).toEqual(a.index.view());
    await a.close();
    await b.close();
  });

  it("still reads the log when another instance's change landed between its poll and its commit", async () => {
    const a = await open();
    const b = await open();
    // A polls (its place in the log is now the head), B changes, then A commits on top.
    await a.backend.poll!(() => a.version);
    await b.change(() => importOf(10, 100_000));
    const { mutations, audit } = importOf(3000);
    await a.backend.commit(mutations, audit, 'a-v2', () => a.index);
    const changes = await a.backend.poll!(() => a.version);
    // B's change, then A's own (a reload, as it follows one A had not seen).
    expect(changes).toHaveLength(2);
    expect(changes[0]).toMatchObject({ version: b.version });
    expect(changes[1]).toEqual({ reload: true });
    await a.close();
    await b.close();
  });

  it('is read back by an instance whose commit was not confirmed, which never applied it', async () => {
    const a = await open();
    const backend = a.backend as RedisRegistryBackend;
    // Durable mode, and a WAITAOF that fails: made in Redis, not confirmed.
    (backend as unknown as { durabilityState: { mode: string } }).durabilityState = { mode: 'waitaof' } as never;
    const confirm = jest.spyOn(backend as unknown as { confirmDurable: () => Promise<void> }, 'confirmDurable').mockRejectedValueOnce(new Error('not confirmed'));
    await expect(a.change(() => importOf(10))).rejects.toThrow('not confirmed');
    confirm.mockRestore();
    expect(a.index.size.numbers).toBe(1);
    await sync(a);
    expect(a.index.size.numbers).toBe(11);
    await a.close();
  });

  it("is reloaded by another instance in slices, its event loop never held more than 50 ms (5 % of the reload's CPU time on a slow machine)", async () => {
    const a = await open();
    const others = [await open(), await open()];
    await a.change(() => importOf(200_000));
    const { stall, bound } = await calmestStallWithin(50, 0.05, others.length, async (run) => {
      await sync(others[run]!);
    });
    for (const b of others) {
      await sync(b);
      expect(b.version).toBe(a.version);
      expect(b.index.size.numbers).toBe(200_001);
    }
    expect(stall).toBeLessThan(bound);
    await a.close();
    for (const b of others) await b.close();
  }, 120_000);
});

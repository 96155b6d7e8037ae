import type Redis from 'ioredis';
import { randomUUID } from 'node:crypto';
import { parseRegistryDocument } from '../../src/registry/format';
import type { AuditRecord, RegistryEntry } from '../../src/registry/model';
import { RedisRegistryBackend } from '../../src/registry/redis-backend';
import { RegistryStore, type Mutation } from '../../src/registry/store';
import { type Child } from '../../scripts/lib/process';
import { startRegistryRedis } from '../helpers/redis';

/** A large change tells the app (whileBusy) for as long as its script holds Redis, and only then. */
const seed = () => ({
  data: parseRegistryDocument({ banks: [{ id: 'b', name: 'Bank B' }], numbers: [{ number: '+443450000000', bankId: 'b', inboundOnly: true }] }, 'GB').data,
  version: 'seed-v1',
});

let server: Child;
let client: Redis;

beforeAll(async () => {
  ({ server, client } = await startRegistryRedis());
});
afterEach(() => jest.restoreAllMocks());
afterAll(async () => {
  client.disconnect();
  await server.kill();
});

function importOf(n: number): { mutations: Mutation[]; audit: AuditRecord[]; result: null } {
  const at = new Date().toISOString();
  const mutations: Mutation[] = [];
  const audit: AuditRecord[] = [];
  for (let i = 0; i < n; i++) {
    const number = `+44113${2_000_000 + i * 7}`;
    const value: RegistryEntry = { kind: 'number', key: number, bankId: 'b', inboundOnly: false };
    mutations.push({ type: 'entry', kind: 'number', key: number, value });
    audit.push({ at, actor: 'admin', action: 'number.create', bankId: 'b', target: `number:${number}`, before: null, after: value });
  }
  return { mutations, audit, result: null };
}

describe('a change whose script keeps Redis busy', () => {
  it('holds whileBusy from just before its script is sent until the script has answered', async () => {
    const events: string[] = [];
    const whileBusy = jest.fn(() => {
      events.push('busy');
      return () => events.push('released');
    });
    const store = await RegistryStore.open(new RedisRegistryBackend(client, { prefix: `test:${randomUUID()}:`, pollMs: 60_000, whileBusy }), seed);
    for (const name of ['eval', 'evalsha'] as const) {
      const real = client[name].bind(client) as (...args: unknown[]) => Promise<unknown>;
      jest.spyOn(client, name).mockImplementation(((...args: unknown[]) => {
        events.push(`${name} sent`);
        return real(...args).finally(() => events.push(`${name} answered`));
      }) as never);
    }
    await store.change(() => importOf(5000));
    expect(whileBusy).toHaveBeenCalledTimes(1);
    expect(events[0]).toBe('busy');
    expect(events.at(-1)).toBe('released');
    expect(events.filter((e) => e.endsWith('answered')).length).toBeGreaterThan(0);
    expect(store.index.size.numbers).toBe(5001);

    // A small change goes in the script call itself, over in a moment: Redis is not held.
    await store.change(() => importOf(3));
    expect(whileBusy).toHaveBeenCalledTimes(1);
    await store.close();
  });

  it('releases it when the script fails', async () => {
    const release = jest.fn();
    const store = await RegistryStore.open(new RedisRegistryBackend(client, { prefix: `test:${randomUUID()}:`, pollMs: 60_000, whileBusy: () => release }), seed);
    jest.spyOn(client, 'evalsha').mockRejectedValue(new Error('Command timed out'));
    await expect(store.change(() => importOf(5000))).rejects.toThrow('timed out');
    expect(release).toHaveBeenCalledTimes(1);
    await store.close();
  });
});

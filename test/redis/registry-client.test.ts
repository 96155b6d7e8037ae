import type Redis from 'ioredis';
import type { FastifyInstance } from 'fastify';
import { createRedisClient } from '../../src/state/redis/client';
import { build } from '../helpers/build';
import { type Child, freePort, startRedisServer, until } from '../../scripts/lib/process';

/**
 * The registry's writes never run on the hot path's 50 ms client, even when a caller hands in
 * that client: the registry gets a connection of its own with a patient timeout, unless a
 * registry client is handed in explicitly. A redis-server of this file's own, since one test
 * pauses its writes.
 */
let server: Child;
let url: string;
const clients: Redis[] = [];

beforeAll(async () => {
  const port = await freePort();
  server = await startRedisServer(port);
  url = `redis://127.0.0.1:${port}`;
});
afterAll(async () => {
  for (const c of clients) c.disconnect();
  await server.kill();
});

async function client(commandTimeoutMs: number): Promise<Redis> {
  const c = createRedisClient(url, { commandTimeoutMs });
  c.on('error', () => undefined);
  clients.push(c);
  await until(() => c.status === 'ready', 5000, 'redis client');
  return c;
}

/** The client the app's registry backend writes with. */
const registryClientOf = (app: FastifyInstance) => (app.services.registryStore.backend as unknown as { redis: Redis }).redis;

it('a hot-path client handed in: the registry writes on a patient copy of it, which the app closes, and not on it', async () => {
  const hot = await client(50);
  const app = await build({ REDIS_URL: url }, { redis: hot });
  const registry = registryClientOf(app);
  try {
    expect(app.services.redisGuard!.client).toBe(hot);
    expect(registry).not.toBe(hot);
    expect(registry.options).toMatchObject({ commandTimeout: 5000, port: hot.options.port, host: hot.options.host });
    // A write Redis holds for longer than the hot path's 50 ms is still made and acknowledged.
    const pauser = await client(1000);
    await pauser.call('CLIENT', 'PAUSE', '300', 'WRITE');
    const res = await app.inject({ method: 'PUT', url: '/v1/registry/numbers/+441174960700', payload: { bankId: 'harbour', inboundOnly: true } });
    expect(res.statusCode).toBe(201);
    expect(await hot.hget('callguard:{registry}:entries', 'number:+441174960700')).not.toBeNull();
  } finally {
    await app.close();
  }
  await until(() => registry.status === 'end', 2000, 'the copy closed');
  expect(hot.status).toBe('ready');
});

it('a registry client handed in is the one the registry uses, and stays open', async () => {
  const mine = await client(5000);
  const app = await build({ REDIS_URL: url }, { registryRedis: mine });
  try {
    expect(registryClientOf(app)).toBe(mine);
    expect(app.services.redisGuard!.client).not.toBe(mine);
  } finally {
    await app.close();
  }
  expect(mine.status).toBe('ready');
});

it('nothing handed in: two clients from REDIS_URL, the hot path fast and the registry patient', async () => {
  const app = await build({ REDIS_URL: url, REDIS_COMMAND_TIMEOUT_MS: '50' });
  const hot = app.services.redisGuard!.client;
  const registry = registryClientOf(app);
  try {
    expect(registry).not.toBe(hot);
    expect(hot.options.commandTimeout).toBe(50);
    expect(registry.options.commandTimeout).toBe(5000);
  } finally {
    await app.close();
  }
  await until(() => hot.status === 'end' && registry.status === 'end', 2000, 'both clients closed');
});

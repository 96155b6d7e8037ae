import type { FastifyInstance } from 'fastify';
import type Redis from 'ioredis';
import { until } from '../../scripts/lib/process';
import { DEFAULT_HISTORY_RETENTION_S } from '../../src/state/history';
import { build } from '../helpers/build';
import { requireRedis, TEST_REDIS_URL } from '../helpers/redis';
import { connect, deleteByPrefix } from '../state/support';

/** Two instances of one deployment: they share a key prefix, and with it the decision records. */
const PREFIX = `test:callguard:decisions-${process.pid}-${Date.now().toString(36)}:`;
const CUSTOMER = '+447400123456';

let a: FastifyInstance;
let b: FastifyInstance;
let client: Redis;

beforeAll(async () => {
  await requireRedis();
  a = await build({ REDIS_URL: TEST_REDIS_URL, REDIS_KEY_PREFIX: PREFIX });
  b = await build({ REDIS_URL: TEST_REDIS_URL, REDIS_KEY_PREFIX: PREFIX });
  for (const app of [a, b]) await until(() => app.services.redisGuard!.client.status === 'ready', 5000, 'redis');
  client = await connect();
});
afterAll(async () => {
  await a?.close();
  await b?.close();
  await deleteByPrefix(client, PREFIX);
  client.disconnect();
});

const score = async (app: FastifyInstance, body: object) => {
  const res = await app.inject({ method: 'POST', url: '/v1/calls/score', payload: body });
  expect(res.statusCode).toBe(200);
};
const read = (app: FastifyInstance, callId: string) => app.inject({ method: 'GET', url: `/v1/calls/${encodeURIComponent(callId)}` });
const key = (callId: string) => `${PREFIX}d:{${callId}}`;

describe('decision records on Redis', () => {
  it('a call scored on one instance is read on the other, kept for the history retention', async () => {
    const callId = `shared-${Date.now()}`;
    await score(a, { from: '+442079460000', to: CUSTOMER, callId, origin: { trunk: 'lagos-1', country: 'NG' } });
    // The write goes after the answer; the other instance has no copy of its own.
    await until(async () => (await client.exists(key(callId))) === 1, 2000, 'the record to be written');
    const res = await read(b, callId);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({
      callId,
      decisions: [{ from: '+442079460000', verdict: 'block', bankId: 'examplebank', origin: { trunk: 'lagos-1', country: 'NG', international: true } }],
    });
    const pttl = await client.pttl(key(callId));
    expect(pttl).toBeGreaterThan(DEFAULT_HISTORY_RETENTION_S * 1000 - 60_000);
    expect(pttl).toBeLessThanOrEqual(DEFAULT_HISTORY_RETENTION_S * 1000);
  });

  it('a call id scored again and again keeps its newest 20 decisions', async () => {
    const callId = `reused-${Date.now()}`;
    for (let i = 0; i < 25; i++) await score(i % 2 === 0 ? a : b, { from: `+4474009990${String(i).padStart(2, '0')}`, to: CUSTOMER, callId });
    await until(async () => (await client.lindex(key(callId), 0))?.includes('+447400999024') === true, 2000, 'the last record to be written');
    expect(await client.llen(key(callId))).toBe(20);
    const res = await read(a, callId);
    const froms = (res.json() as { decisions: { from: string }[] }).decisions.map((d) => d.from);
    expect(froms).toEqual(Array.from({ length: 20 }, (_, i) => `+4474009990${String(24 - i).padStart(2, '0')}`));
  });

  it('GET /v1/calls lists the calls the answering instance decided', async () => {
    const callId = `latest-${Date.now()}`;
    await score(a, { from: '+442079460000', to: CUSTOMER, callId });
    const latest = async (app: FastifyInstance) => ((await app.inject({ url: '/v1/calls?limit=200' })).json() as { decisions: { callId: string }[] }).decisions.map((d) => d.callId);
    await until(async () => (await latest(a))[0] === callId, 2000, 'the decision to be listed');
    expect(await latest(b)).not.toContain(callId);
  });

  it('an unknown call id is 404 here too', async () => {
    expect((await read(b, 'never-scored-on-redis')).statusCode).toBe(404);
  });
});

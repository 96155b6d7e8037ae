import type { FastifyInstance } from 'fastify';
import { ConfigError, loadConfig } from '../../src/config';
import { build } from '../helpers/build';
import { bearer, KEYS_FILE } from '../helpers/keys';
import { type Child, freePort, startRedisServer, until } from '../../scripts/lib/process';

type Who = 'switch' | 'examplebank' | 'northwind' | 'admin';
const campaigns = (app: FastifyInstance, who?: Who) => app.inject({ method: 'GET', url: '/v1/campaigns', headers: who ? bearer(who) : {} });
const times = async <T>(n: number, fn: (i: number) => Promise<T>): Promise<T[]> => {
  const out: T[] = [];
  for (let i = 0; i < n; i++) out.push(await fn(i));
  return out;
};

describe('rate limits per API key (in-process counts)', () => {
  let app: FastifyInstance;
  beforeEach(async () => {
    app = await build({ API_KEYS_FILE: KEYS_FILE, RATE_LIMIT_BANK_PER_MIN: '3', RATE_LIMIT_ADMIN_PER_MIN: '5' });
  });
  afterEach(() => app.close());

  it('a bank key over its limit gets 429 with Retry-After and the JSON error body', async () => {
    const ok = await times(3, () => campaigns(app, 'examplebank'));
    expect(ok.map((r) => r.statusCode)).toEqual([200, 200, 200]);
    expect(ok.map((r) => r.headers['x-ratelimit-remaining'])).toEqual(['2', '1', '0']);
    const limited = await campaigns(app, 'examplebank');
    expect(limited.statusCode).toBe(429);
    const retryAfter = Number(limited.headers['retry-after']);
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(limited.headers['content-type']).toMatch(/application\/json/);
    expect(limited.json()).toEqual({ error: 'rate_limited', message: expect.stringMatching(/3 requests a minute; retry in \d+ (second|minute)/) });
  });

  it('counts per key, across routes', async () => {
    await campaigns(app, 'examplebank');
    await app.inject({ method: 'POST', url: '/v1/callbacks/verify', headers: bearer('examplebank'), payload: { number: '+442079460000' } });
    await app.inject({ method: 'GET', url: '/v1/registry/banks', headers: bearer('examplebank') });
    expect((await app.inject({ method: 'POST', url: '/v1/reports', headers: bearer('examplebank'), payload: { number: '+447400123456', category: 'scam' } })).statusCode).toBe(429);
    // Another bank's key has a budget of its own.
    expect((await campaigns(app, 'northwind')).statusCode).toBe(200);
  });

  it('an admin key has its own, larger limit', async () => {
    const res = await times(6, () => campaigns(app, 'admin'));
    expect(res.map((r) => r.statusCode)).toEqual([200, 200, 200, 200, 200, 429]);
    expect(res[5]!.json().message).toMatch(/5 requests a minute/);
  });

  it('a switch key is never limited, and never counted', async () => {
    const res = await times(40, (i) =>
      app.inject({ method: 'POST', url: '/v1/calls/score', headers: bearer('switch'), payload: { from: '+447400123456', to: `+4474009${String(i).padStart(5, '0')}`, callId: `s${i}` } }),
    );
    expect(res.every((r) => r.statusCode === 200)).toBe(true);
    expect(res.some((r) => r.headers['x-ratelimit-limit'] !== undefined)).toBe(false);
    expect((await app.inject({ method: 'POST', url: '/v1/callbacks/verify', headers: bearer('switch'), payload: { number: '+442079460000' } })).headers['x-ratelimit-limit']).toBeUndefined();
  });

  it('a refused key (401) costs the real key nothing', async () => {
    await times(5, () => app.inject({ method: 'GET', url: '/v1/campaigns', headers: { authorization: 'Bearer nope' } }));
    expect((await campaigns(app, 'examplebank')).statusCode).toBe(200);
  });
});

describe('rate limits: exemptions and configuration', () => {
  it('the open local mode is never limited', async () => {
    const app = await build({ RATE_LIMIT_BANK_PER_MIN: '1', RATE_LIMIT_ADMIN_PER_MIN: '1' });
    try {
      const res = await times(10, () => campaigns(app));
      expect(res.every((r) => r.statusCode === 200)).toBe(true);
      expect(res[0]!.headers['x-ratelimit-limit']).toBeUndefined();
    } finally {
      await app.close();
    }
  });

  it('0 turns a limit off', async () => {
    const app = await build({ API_KEYS_FILE: KEYS_FILE, RATE_LIMIT_BANK_PER_MIN: '0', RATE_LIMIT_ADMIN_PER_MIN: '1' });
    try {
      expect((await times(10, () => campaigns(app, 'examplebank'))).every((r) => r.statusCode === 200)).toBe(true);
      expect((await times(2, () => campaigns(app, 'admin'))).map((r) => r.statusCode)).toEqual([200, 429]);
    } finally {
      await app.close();
    }
  });

  it('defaults to 600 a minute for a bank key and 3000 for an admin key; bad values stop the start', () => {
    expect(loadConfig({}).rateLimit).toEqual({ bankPerMin: 600, adminPerMin: 3000 });
    expect(() => loadConfig({ RATE_LIMIT_BANK_PER_MIN: 'lots' })).toThrow(ConfigError);
    expect(() => loadConfig({ RATE_LIMIT_BANK_PER_MIN: 'lots' })).toThrow(/RATE_LIMIT_BANK_PER_MIN must be a whole number/);
    expect(() => loadConfig({ RATE_LIMIT_ADMIN_PER_MIN: '-1' })).toThrow(/RATE_LIMIT_ADMIN_PER_MIN must be at least 0/);
  });
});

describe('rate limits shared through Redis', () => {
  let redis: Child | undefined;
  let port: number;
  let a: FastifyInstance;
  let b: FastifyInstance;

  beforeAll(async () => {
    port = await freePort();
    redis = await startRedisServer(port);
    const env = { API_KEYS_FILE: KEYS_FILE, REDIS_URL: `redis://127.0.0.1:${port}`, REDIS_COMMAND_TIMEOUT_MS: '500', RATE_LIMIT_BANK_PER_MIN: '4' };
    a = await build(env);
    b = await build(env);
    await until(() => a.services.redisGuard?.client.status === 'ready' && b.services.redisGuard?.client.status === 'ready', 5000, 'both instances to reach Redis');
  }, 20_000);
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await redis?.kill();
  });

  it('two instances share one budget per key', async () => {
    const res = await times(5, (i) => campaigns(i % 2 ? a : b, 'northwind'));
    expect(res.map((r) => r.statusCode)).toEqual([200, 200, 200, 200, 429]);
    expect(res[4]!.headers['retry-after']).toBeDefined();
    const client = a.services.redisGuard!.client;
    expect(Number(await client.get('callguard:rl:key:test-northwind'))).toBe(5);
  });

  it('a switch costs no Redis round trip for the limiter', async () => {
    const client = a.services.redisGuard!.client as unknown as { rateLimit: (...args: unknown[]) => unknown };
    const spy = jest.spyOn(client, 'rateLimit');
    try {
      await times(5, (i) => a.inject({ method: 'POST', url: '/v1/calls/score', headers: bearer('switch'), payload: { from: '+447400123456', to: '+442079460999', callId: `rt${i}` } }));
      expect(spy).not.toHaveBeenCalled();
      await campaigns(a, 'admin');
      expect(spy).toHaveBeenCalledTimes(1);
    } finally {
      spy.mockRestore();
    }
  });

  it('a Redis outage never fails a request: the limit is skipped', async () => {
    await redis?.kill();
    redis = undefined;
    await until(() => a.services.redisGuard?.client.status !== 'ready', 5000, 'the client to see Redis gone');
    const res = await times(8, () => campaigns(a, 'examplebank'));
    expect(res.map((r) => r.statusCode)).toEqual(Array(8).fill(200));
    // Back, so the instances close as they would in service (and leave no reconnect pending).
    redis = await startRedisServer(port);
    await until(() => a.services.redisGuard?.client.status === 'ready', 5000, 'the client to reconnect');
  });
});

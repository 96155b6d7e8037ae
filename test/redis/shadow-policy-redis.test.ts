import type { FastifyInstance } from 'fastify';
import { until } from '../../scripts/lib/process';
import { twoInstances, type TwoInstances } from '../helpers/deployment';

/** The shadow policy across instances: two apps of one deployment (one REDIS_KEY_PREFIX) on one Redis. */

let a: FastifyInstance;
let b: FastifyInstance;
let deployment: TwoInstances | undefined;

beforeAll(async () => {
  deployment = await twoInstances('shadow');
  ({ a, b } = deployment);
});
afterAll(() => deployment?.close());

const score = (app: FastifyInstance, body: object) => app.inject({ method: 'POST', url: '/v1/calls/score', payload: body }).then((r) => r.json() as { verdict: string });
const report = (app: FastifyInstance) => app.inject('/v1/policy/shadow/report');
const CALL = { from: '+447400123456', to: '+442079460123' };

describe('a shadow policy on two instances', () => {
  it('set through one is decided on both (within a sync), and either reports every call', async () => {
    const set = await a.inject({ method: 'PUT', url: '/v1/policy/shadow', payload: { baseScore: 70 } });
    expect(set.statusCode).toBe(200);
    // b learns of it on its next sync (every second; forced here).
    await until(async () => (await b.services.shadowPolicy.sync(), b.services.shadowPolicy.candidate() !== null), 3000, 'b to adopt the candidate');
    expect(b.services.shadowPolicy.candidate()!.version).toBe(set.json().version);

    for (let i = 0; i < 3; i++) expect((await score(a, { ...CALL, callId: `a${i}` })).verdict).toBe('allow');
    for (let i = 0; i < 2; i++) expect((await score(b, { ...CALL, callId: `b${i}` })).verdict).toBe('allow');
    // b's tally reaches Redis on its sync; a's own goes with the report.
    await b.services.shadowPolicy.sync();
    const r = (await report(a)).json();
    expect(r).toMatchObject({ version: set.json().version, calls: 5, changed: [{ live: 'allow', shadow: 'block', count: 5 }] });
    expect(r.examples.map((e: { callId: string }) => e.callId).sort()).toEqual(['a0', 'a1', 'a2', 'b0', 'b1']);
    expect((await report(b)).json()).toEqual(r);
  });

  it('replaced through one, the other drops what it counted under the old candidate', async () => {
    await a.inject({ method: 'PUT', url: '/v1/policy/shadow', payload: { baseScore: 70 } });
    await b.services.shadowPolicy.sync();
    await score(b, CALL); // counted under the old candidate, not yet sent
    const replaced = await a.inject({ method: 'PUT', url: '/v1/policy/shadow', payload: { baseScore: 60 } });
    await b.services.shadowPolicy.sync();
    expect(b.services.shadowPolicy.candidate()!.version).toBe(replaced.json().version);
    expect((await report(b)).json()).toMatchObject({ calls: 0, changed: [] });
  });

  it('ended through one, ends on the other at its next sync', async () => {
    await a.inject({ method: 'PUT', url: '/v1/policy/shadow', payload: { baseScore: 70 } });
    await b.services.shadowPolicy.sync();
    expect(b.services.shadowPolicy.candidate()).not.toBeNull();
    expect((await a.inject({ method: 'DELETE', url: '/v1/policy/shadow' })).statusCode).toBe(204);
    await b.services.shadowPolicy.sync();
    expect(b.services.shadowPolicy.candidate()).toBeNull();
    expect((await report(b)).statusCode).toBe(404);
  });

  it('keeps what it counted while Redis is away, and sends it once Redis is back', async () => {
    await a.inject({ method: 'PUT', url: '/v1/policy/shadow', payload: { baseScore: 70 } });
    const { shadowPolicy } = a.services;
    const store = (shadowPolicy as unknown as { opts: { store: { sync: (...args: unknown[]) => Promise<unknown> } } }).opts.store;
    const real = store.sync.bind(store);
    const away = jest.spyOn(store, 'sync').mockResolvedValue('unknown');
    for (let i = 0; i < 2; i++) expect((await score(a, CALL)).verdict).toBe('allow');
    await shadowPolicy.sync();
    expect(shadowPolicy.candidate()).not.toBeNull();
    away.mockImplementation(real);
    const r = (await report(a)).json();
    expect(r).toMatchObject({ calls: 2, changed: [{ live: 'allow', shadow: 'block', count: 2 }] });
    away.mockRestore();
  });

  it("talks to Redis on the registry's patient connection, not the calls' (its sync never counts against the calls' breaker)", () => {
    const store = (a.services.shadowPolicy as unknown as { opts: { store: { redis: unknown } } }).opts.store;
    expect(store.redis).toBeDefined();
    expect(store.redis).not.toBe(a.services.redisGuard!.client);
    expect((store.redis as { options: { commandTimeout?: number } }).options.commandTimeout).toBeGreaterThan(a.services.config.redisCommandTimeoutMs);
  });
});

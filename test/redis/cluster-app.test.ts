import type { FastifyInstance } from 'fastify';
import { build } from '../helpers/build';
import { startCluster, type LocalCluster } from '../state/support';
import { until } from '../../scripts/lib/process';

/** The whole service against a real three-master Redis Cluster, configured as an operator would. */
let local: LocalCluster;
let a: FastifyInstance;
let b: FastifyInstance;

beforeAll(async () => {
  local = await startCluster();
  const env = { REDIS_URL: local.ports.map((p) => `redis://127.0.0.1:${p}`).join(','), REDIS_CLUSTER: 'true', REDIS_COMMAND_TIMEOUT_MS: '500' };
  a = await build(env);
  await until(() => a.services.redisGuard?.client.status === 'ready', 10_000, 'instance a to reach the cluster');
  b = await build(env);
  await until(() => b.services.redisGuard?.client.status === 'ready', 10_000, 'instance b to reach the cluster');
}, 40_000);

afterAll(async () => {
  await a?.close();
  await b?.close();
  await local?.stop();
});

const score = (app: FastifyInstance, body: object) => app.inject({ method: 'POST', url: '/v1/calls/score', payload: body }).then((r) => r.json());

describe('two instances on a Redis Cluster', () => {
  it('share the registry: a change on one is seen by the other within a second', async () => {
    const res = await a.inject({ method: 'PUT', url: '/v1/registry/numbers/+441614960777', payload: { bankId: 'northwind', inboundOnly: true } });
    expect(res.statusCode).toBe(201);
    await until(() => b.services.registryStore.index.lookup('+441614960777') !== null, 1000, 'the change to reach b');
    expect((await score(b, { from: '+441614960777', to: '+447400123456' })).verdict).toBe('block');
  });

  it('share the verdict cache and count velocity across both', async () => {
    const body = { from: '+447400555111', to: '+442079460321' };
    expect((await score(a, { ...body, callId: 'x1' })).cached).toBe(false);
    expect((await score(b, { ...body, callId: 'x2' })).cached).toBe(true);
    const limit = a.services.policy.velocity.windows[0]!.maxDistinct;
    let last: { reasons: { code: string }[] } = { reasons: [] };
    for (let i = 0; i <= limit; i++) {
      last = await score(i % 2 ? a : b, { from: '+447400555222', to: `+4474009${String(i).padStart(5, '0')}`, callId: `v${i}` });
    }
    expect(last.reasons.map((r) => r.code)).toContain('VELOCITY_HIGH');
  });

  it('share announced calls: announced on one, matched on the other; withdrawn on the other, unexpected on both', async () => {
    const put = (path: string, payload: object) => a.inject({ method: 'PUT', url: path, payload }).then((r) => r.statusCode);
    expect(await put('/v1/registry/banks/announcer', { name: 'Announcer Bank', announcesCalls: true })).toBe(201);
    expect(await put('/v1/registry/numbers/+441134960570', { bankId: 'announcer', inboundOnly: false })).toBe(201);
    await until(() => b.services.registryStore.index.lookup('+441134960570')?.announcesCalls === true, 1000, 'the bank to reach b');
    const call = { from: '+441134960570', to: '+447400123456' };
    const made = await a.inject({ method: 'POST', url: '/v1/calls/expected', payload: call });
    expect(made.statusCode).toBe(201);
    expect((await score(b, call)).reasons.map((r: { code: string }) => r.code)).toContain('BANK_CALL_EXPECTED');
    expect((await b.inject('/v1/calls/expected')).json().announcements).toEqual([made.json()]);
    expect((await b.inject({ method: 'DELETE', url: `/v1/calls/expected/${made.json().id}` })).statusCode).toBe(204);
    for (const app of [a, b]) expect((await score(app, call)).reasons.map((r: { code: string }) => r.code)).toContain('BANK_CALL_UNEXPECTED');
  });

  it('share a shadow policy: set on one, decided on both, reported on either', async () => {
    expect((await a.inject({ method: 'PUT', url: '/v1/policy/shadow', payload: { baseScore: 70 } })).statusCode).toBe(200);
    await b.services.shadowPolicy.sync();
    // Callers of their own: the velocity test before this one made +447400555222 a busy caller.
    await score(a, { from: '+447400555301', to: '+442079460654' });
    await score(b, { from: '+447400555302', to: '+442079460654' });
    await a.services.shadowPolicy.sync();
    const report = (await b.inject('/v1/policy/shadow/report')).json();
    expect(report).toMatchObject({ calls: 2, changed: [{ live: 'allow', shadow: 'block', count: 2 }] });
    expect((await b.inject({ method: 'DELETE', url: '/v1/policy/shadow' })).statusCode).toBe(204);
  });

  it('say ready, not degraded', async () => {
    expect((await a.inject('/readyz')).json()).toMatchObject({ status: 'ready', redis: { connected: true, degraded: false } });
  });
});

import type { FastifyInstance } from 'fastify';
import Redis, { Cluster } from 'ioredis';
import { build } from '../helpers/build';
import { startCluster, type LocalCluster } from '../state/support';
import { sleep, until } from '../../scripts/lib/process';

/**
 * Two instances on a real Redis Cluster of three masters with a replica each, as an operator
 * would run it: a registry change is acknowledged only once a replica has it, and a master
 * killed under load is failed over to its replica with no call failing, no acknowledged change
 * lost, and the instances back on the cluster by themselves.
 */
let local: LocalCluster;
let a: FastifyInstance;
let b: FastifyInstance;
let admin: Cluster;
/** The master holding the registry's hash slot, and its replica. */
let registryMaster: number;
let registryReplica: number;

const ENTRIES = 'callguard:{registry}:entries';

beforeAll(async () => {
  // A node that does not answer for a second is failed over (Redis's default waits 15 s).
  local = await startCluster({ replicas: 1, nodeTimeoutMs: 1000 });
  const env = { REDIS_URL: local.ports.map((p) => `redis://127.0.0.1:${p}`).join(','), REDIS_CLUSTER: 'true', REDIS_COMMAND_TIMEOUT_MS: '200' };
  a = await build(env);
  await until(() => a.services.redisGuard?.client.status === 'ready', 10_000, 'instance a to reach the cluster');
  b = await build(env);
  await until(() => b.services.redisGuard?.client.status === 'ready', 10_000, 'instance b to reach the cluster');
  admin = new Cluster(local.ports.map((port) => ({ host: '127.0.0.1', port })));
  const slot = Number(await admin.call('CLUSTER', 'KEYSLOT', ENTRIES));
  const owner = (await admin.call('CLUSTER', 'SLOTS')) as [number, number, [string, number]][];
  registryMaster = owner.find(([from, to]) => slot >= from && slot <= to)![2][1];
  registryReplica = local.replicas.get(registryMaster)!.port;
}, 40_000);

afterAll(async () => {
  admin?.disconnect();
  await a?.close();
  await b?.close();
  await local?.stop();
});

const put = (app: FastifyInstance, number: string) =>
  app.inject({ method: 'PUT', url: `/v1/registry/numbers/${number}`, payload: { bankId: 'northwind', inboundOnly: true } });

/** What a replica holds, read on the replica itself. */
async function onReplica(port: number, number: string): Promise<string | null> {
  const replica = new Redis({ port, host: '127.0.0.1' });
  try {
    await replica.call('READONLY');
    return await replica.hget(ENTRIES, `number:${number}`);
  } finally {
    replica.disconnect();
  }
}

const ready = async (app: FastifyInstance) => {
  const body = (await app.inject('/readyz')).json() as { status: string; redis: { connected: boolean; degraded: boolean } };
  return body.status === 'ready' && body.redis.connected && !body.redis.degraded;
};

describe('registry changes on a cluster with replicas', () => {
  it('are acknowledged with the replica holding them; a replica that does not answer makes a change 503 registry_unconfirmed', async () => {
    const made = await put(a, '+441614960801');
    expect(made.statusCode).toBe(201);
    // Read at once: acknowledged means already on the replica, not on its way there.
    expect(await onReplica(registryReplica, '+441614960801')).not.toBeNull();

    // The master still counts the replica as connected, but it acknowledges nothing.
    const replica = local.replicas.get(registryMaster)!.server;
    replica.proc.kill('SIGSTOP');
    let res;
    try {
      res = await put(b, '+441614960802');
    } finally {
      replica.proc.kill('SIGCONT');
    }
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ error: 'registry_unconfirmed' });
    // Made on the master all the same: both instances follow it, and the replica catches up.
    await until(() => a.services.registryStore.index.lookup('+441614960802') !== null, 3000, 'the unconfirmed change to be followed');
    await until(async () => (await onReplica(registryReplica, '+441614960802')) !== null, 5000, 'the replica to catch up');
  }, 20_000);
});

describe('a master killed under load', () => {
  it('is failed over to its replica: no call fails, no acknowledged registry change is lost, the instances are back on the cluster', async () => {
    const failures: string[] = [];
    let calls = 0;
    let stop = false;
    // Calls are counted by when they were made: before the kill, while the master is down (until
    // its replica is promoted), while the instances find the new master, and once they are back.
    // What is required is calls in each phase, however fast this machine makes them.
    type Phase = 'before' | 'down' | 'recovering' | 'after';
    let phase: Phase = 'before';
    const answered: Record<Phase, number> = { before: 0, down: 0, recovering: 0, after: 0 };
    const inFlight = new Set<Promise<void>>();
    // Up to 200 calls a second, spread over both instances and over callers (so over every master's slots).
    const load = (async () => {
      for (let i = 0; !stop; i++) {
        const app = i % 2 ? a : b;
        const madeIn = phase;
        const p = app
          .inject({ method: 'POST', url: '/v1/calls/score', payload: { from: `+4474001${String(i % 50_000).padStart(5, '0')}`, to: '+442079460999', callId: `f${i}` } })
          .then((r) => {
            calls++;
            if (r.statusCode !== 200) failures.push(`HTTP ${r.statusCode}: ${r.body.slice(0, 200)}`);
            else answered[madeIn]++;
          }, (err: Error) => void failures.push(err.message));
        inFlight.add(p);
        void p.finally(() => inFlight.delete(p));
        await sleep(5);
      }
    })();
    // Registry changes all along, one at a time; each acknowledged one must survive.
    const acknowledged: string[] = [];
    const answers = new Map<string, number>();
    const writes = (async () => {
      for (let i = 0; !stop; i++) {
        const number = `+44161496${String(1000 + i)}`;
        const res = await put(i % 2 ? a : b, number);
        const answer = res.statusCode === 201 ? '201' : `${res.statusCode} ${(res.json() as { error?: string }).error}`;
        answers.set(answer, (answers.get(answer) ?? 0) + 1);
        if (res.statusCode === 201) acknowledged.push(number);
        await sleep(50);
      }
    })();

    await until(() => answered.before >= 100 && acknowledged.length >= 5, 15_000, 'calls and registry changes before the kill', 20);
    phase = 'down';
    const killedAt = performance.now();
    await local.servers.get(registryMaster)!.kill();
    const promoted = new Redis({ port: registryReplica, host: '127.0.0.1' });
    try {
      await until(async () => ((await promoted.call('ROLE')) as [string])[0] === 'master', 15_000, 'the replica to be promoted', 50);
    } finally {
      promoted.disconnect();
    }
    phase = 'recovering';
    const promotedMs = performance.now() - killedAt;
    const writtenBefore = acknowledged.length;
    // Back on the cluster: both ready and not degraded, and a registry change acknowledged on the new master.
    await until(async () => (await ready(a)) && (await ready(b)) && acknowledged.length > writtenBefore + 1, 15_000, 'both instances back on the cluster', 100);
    phase = 'after';
    const backMs = performance.now() - killedAt;
    const writtenBack = acknowledged.length;
    await until(() => answered.after >= 100 && acknowledged.length >= writtenBack + 5, 15_000, 'calls and registry changes after the instances are back', 20);
    stop = true;
    await Promise.all([load, writes]);
    await Promise.all([...inFlight]);

    expect(failures).toEqual([]);
    // The master is down for a second at least (the node timeout) before its replica is promoted:
    // calls made then are the ones that count, and must be answered like the rest.
    expect(answered.down).toBeGreaterThanOrEqual(20);
    expect(answered.after).toBeGreaterThanOrEqual(100);
    expect(acknowledged.length).toBeGreaterThan(10);
    const held = await Promise.all(acknowledged.map((n) => admin.hget(ENTRIES, `number:${n}`)));
    expect(acknowledged.filter((_, i) => held[i] === null)).toEqual([]);
    for (const app of [a, b]) {
      await until(() => acknowledged.every((n) => app.services.registryStore.index.lookup(n) !== null), 3000, 'every acknowledged change on both instances');
    }
    for (const app of [a, b]) expect((await app.inject('/readyz')).json()).toMatchObject({ status: 'ready', redis: { connected: true, degraded: false } });
    if (process.env.FAILOVER_FIGURES) {
      const degradedMs = [a, b].map((app) => app.services.redisGuard!.degradedMsTotal);
      process.stdout.write(`${JSON.stringify({ promotedMs: Math.round(promotedMs), backMs: Math.round(backMs), calls, answered, failures: failures.length, degradedMs, registryAnswers: Object.fromEntries(answers) })}\n`);
    }
  }, 60_000);
});

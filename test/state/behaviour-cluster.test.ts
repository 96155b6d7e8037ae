import type Redis from 'ioredis';
import { Cluster } from 'ioredis';
import { DEFAULT_POLICY } from '../../src/scoring';
import { OPS_SCRIPT } from '../../src/state/redis/ops';
import { BANK, call, CLEAN, dest, FAILING, SILENT, startCluster, T0, type LocalCluster, MemoryBehaviourTracker, RedisBehaviourTracker } from './support';
import { until } from '../../scripts/lib/process';
import { RedisGuard } from '../../src/state/redis/client';

/**
 * The key layout on a real three-node Redis Cluster: ioredis refuses a pipeline whose keys
 * live on different nodes, and Redis a script whose keys live in different slots, so this
 * proves the tracker splits its ops by hash tag (one script call per tag) and that every
 * script call stays within one slot.
 */

let local: LocalCluster;
let cluster: Cluster;

beforeAll(async () => {
  local = await startCluster();
  cluster = new Cluster(
    local.ports.map((port) => ({ host: '127.0.0.1', port })),
    { enableOfflineQueue: false, redisOptions: { commandTimeout: 500, maxRetriesPerRequest: 0 } },
  );
  cluster.on('error', () => undefined);
  await until(() => cluster.status === 'ready', 10_000, 'the cluster client');
}, 30_000);

afterAll(async () => {
  cluster?.disconnect();
  await local?.stop();
});

function tracker() {
  // The guard is typed for a single node; a Cluster answers the same commands.
  const guard = new RedisGuard(cluster as unknown as Redis, SILENT, { threshold: 1, openMs: 100, now: Date.now });
  return new RedisBehaviourTracker(guard, DEFAULT_POLICY, { prefix: 'cg:', fallback: new MemoryBehaviourTracker(DEFAULT_POLICY) });
}

it('a naive single pipeline across the entities of one call is refused by the cluster', async () => {
  await expect(cluster.pipeline([['get', 'cg:v:{+442079460123}'], ['get', 'cg:c:{b:examplebank}'], ['get', 'cg:r:{fp}']]).exec()).rejects.toThrow(
    /same slots allocation group/,
  );
});

it('so is a naive single script call across them: the ops go out one script call per hash tag', async () => {
  cluster.defineCommand('callguardOps', { lua: OPS_SCRIPT });
  const script = (cluster as unknown as { callguardOps: (n: number, keys: string[], args: unknown[]) => Promise<unknown> }).callguardOps.bind(cluster);
  await expect(script(2, ['cg:x:{+442079460123}', 'cg:x:{b:examplebank}'], ['G', 'G'])).rejects.toThrow(/CROSSSLOT/);
  expect(await script(2, ['cg:x:{+442079460123}', 'cg:y:{+442079460123}'], ['G', 'G'])).toEqual([0, 0]);
});

it('observes, records, lists and answers from Redis across nodes, never from the fallback', async () => {
  const t = tracker();
  const fallbackObserve = jest.spyOn(t.fallback, 'readSync');
  await t.reports.addReport({ number: '+442079460123', category: 'scam', reporter: 'x', at: T0 });
  let last = await t.observe(call());
  for (let i = 0; i < DEFAULT_POLICY.campaign.minFailedCalls; i++) {
    const c = call({ callId: `k${i}`, to: dest(i), fingerprints: [`fp${i}`, 'shared'], registry: BANK, at: T0 + i * 1000 });
    last = await t.observe(c);
    await t.record(c, FAILING);
  }
  await t.record(call({ from: 'anonymous', to: dest(1) }), CLEAN);
  expect(last.replayed).toBe(true);
  expect(last.reports?.count).toBe(1);

  // The shared view must differ from this instance's own to prove where answers came from:
  // another instance's calls go straight into the cluster.
  await cluster.zadd('cg:v:{+442079460123}', T0 + 9000, dest(500), T0 + 9000, dest(501));
  const s = await t.observe(call({ to: dest(99), registry: BANK, at: T0 + 10_000 }));
  expect(s.distinctDestinations?.map((d) => d.count)).toEqual([13, 13]);
  expect(s.campaign).toMatchObject({ bankId: 'examplebank', failedCalls: DEFAULT_POLICY.campaign.minFailedCalls });
  // The fallback is shadowed on every call; its answer (11 destinations) was not the one used.
  expect(fallbackObserve.mock.results.at(-1)?.value.destinations?.[0]).toBe(11);

  const campaigns = await t.listCampaigns(T0 + 20_000);
  expect(campaigns.map((c) => [c.bankId, c.failedCalls])).toEqual([['examplebank', DEFAULT_POLICY.campaign.minFailedCalls]]);
  expect((await t.history.query({ caller: '+442079460123', limit: 3 })).map((e) => e.callId)).toEqual(['k9', 'k8', 'k7']);
  expect(await t.history.query({ caller: null, callee: dest(1) })).toHaveLength(1);
  expect(await t.reports.list('+442079460123', T0)).toHaveLength(1);

  // The keys really are spread over the nodes.
  const perNode = await Promise.all(cluster.nodes('master').map((node) => node.keys('cg:*')));
  expect(perNode.filter((keys) => keys.length > 0).length).toBeGreaterThanOrEqual(2);
});

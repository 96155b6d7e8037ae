/**
 * The drill, start to end: instances up (or the operator's), the drill's bank on every one,
 * load from switch-like clients and registry writers, the faults placed inside the load, then
 * every acknowledged write checked on every instance, and the report.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, sleep } from '../lib/process';
import { keyspace } from '../../src/state/redis/keyspace';
import { keySlot, startCluster, type LocalCluster } from '../lib/redis-cluster';
import { masterOutage, operatorCommands, redisOutage, sigtermUnderLoad, type RedisOutage, type StoppedInstance } from './faults';
import { target, type Target } from './http';
import { DEFAULT_OPTIONS, type DrillOptions } from './options';
import { Instance, instanceEnv, readiness, RedisProcess, watchReadiness } from './processes';
import { buildReport, type DrillReport } from './report';
import { Switches } from './switches';
import { Timeline } from './timeline';
import { verifyWrites } from './verify';
import { addDrillBank, RegistryWriters, removeDrillBank } from './writers';

export async function runDrill(partial: Partial<DrillOptions> = {}): Promise<DrillReport> {
  const o: DrillOptions = { ...DEFAULT_OPTIONS, ...partial };
  const selfContained = !o.targets;
  if (selfContained && o.instances < 2) throw new Error('the drill needs at least 2 instances: one is stopped');
  const workDir = selfContained ? mkdtempSync(join(tmpdir(), 'callguard-drill-')) : null;
  const timeline = new Timeline(o.log);
  const { mark } = timeline;

  let redis: RedisProcess | null = null;
  let cluster: LocalCluster | null = null;
  /** Cluster mode: the registry's hash slot, whose master is the one killed. */
  let registrySlot = -1;
  const instances: Instance[] = [];
  let switches: Switches | null = null;
  let monitor: { stop(): Promise<void> } | null = null;
  let ok = false;
  try {
    // Set up: a private Redis and instances of this checkout, or the operator's instances.
    let targets: Target[];
    if (selfContained) {
      let redisUrl: string;
      let redisEnv: Record<string, string> = {};
      if (o.cluster) {
        cluster = await startCluster({ replicas: 1, nodeTimeoutMs: o.clusterNodeTimeoutMs, dir: mkdtempSync(join(workDir!, 'cluster-')) });
        redisUrl = cluster.url;
        redisEnv = { REDIS_CLUSTER: 'true' };
        const prefix = o.env.REDIS_KEY_PREFIX ?? process.env.REDIS_KEY_PREFIX;
        registrySlot = await keySlot(cluster.ports[0]!, keyspace(prefix || undefined).registry.entries);
      } else {
        redis = new RedisProcess(await freePort(), workDir!);
        await redis.up();
        redisUrl = `redis://127.0.0.1:${redis.port}`;
      }
      for (let i = 0; i < o.instances; i++) {
        const port = await freePort();
        instances.push(new Instance(i, port, { ...instanceEnv(port, redisUrl, workDir!, i), ...redisEnv, ...o.env }, o.dist, workDir!));
      }
      // One at a time: the first seeds the registry in Redis, and two cores compile less at once.
      for (const inst of instances) {
        inst.up();
        await inst.ready();
      }
      targets = instances.map((i) => target(i.url));
      const redisSaid = cluster
        ? `a Redis Cluster of masters ${cluster.ports.join(', ')} with replicas ${[...cluster.replicas.values()].map((r) => r.port).join(', ')} (cluster-node-timeout ${o.clusterNodeTimeoutMs} ms)`
        : `redis-server on ${redis!.port} (AOF, fsync always)`;
      o.log(`${redisSaid}, ${instances.length} instances on ${instances.map((i) => i.port).join(', ')}; logs in ${workDir}`);
    } else {
      targets = o.targets!.map(target);
      for (const t of targets) if ((await readiness(t.url)) === null) throw new Error(`${t.url}/readyz does not answer`);
    }
    await addDrillBank(targets, o, selfContained);

    // Load. In self-contained mode the last instance is the one stopped.
    const victim = selfContained ? instances.length - 1 : -1;
    // Example Bank's inbound-only number in the sample registry the self-contained instances load.
    const dnoNumber = o.dnoNumber ?? (selfContained ? '+443450000000' : undefined);
    switches = new Switches(targets, { ...o, dnoNumber });
    const writers = new RegistryWriters(targets, o, timeline);
    timeline.start();
    mark(`load: ${o.rate} calls/s from ${o.switches} switches x ${o.channels} channels over ${targets.length} instances; ${o.writeRate} registry writes/s`);
    monitor = watchReadiness(
      targets.map((t) => t.url),
      mark,
    );
    switches.start();
    writers.start();

    // Faults, inside the load.
    let outage: RedisOutage | null = null;
    let stopped: StoppedInstance | null = null;
    try {
      if (selfContained) {
        await timeline.reach(o.redisKillAtS);
        outage = cluster
          ? await masterOutage(cluster, registrySlot, targets, timeline, o.redisKillAtS + o.redisDownS)
          : await redisOutage(redis!, targets, timeline, o.redisKillAtS + o.redisDownS);
        await timeline.reach(o.sigtermAtS);
        stopped = await sigtermUnderLoad({ instance: instances[victim]!, index: victim, target: targets[victim]!, switches, writers }, o, timeline);
        await sleep(Math.max(2000, o.durationS * 1000 - timeline.at()));
      } else {
        await operatorCommands(o.at, timeline);
        await timeline.reach(o.durationS);
      }
    } finally {
      await Promise.all([switches.stop(), writers.stop()]);
    }
    const loadMs = timeline.at();
    mark(`load stopped after ${(loadMs / 1000).toFixed(1)} s`);

    // Every acknowledged write, on every instance still running.
    const live = targets.filter((_, i) => !selfContained || i !== victim || instances[victim]!.running);
    const verification = await verifyWrites(live, writers.state, o);
    mark(`writes checked on ${live.map((t) => t.url).join(', ')}`);
    if (!selfContained && o.bankId) mark(`drill bank deleted: ${await removeDrillBank(targets[0]!, o)}`);
    await monitor.stop();

    const report = buildReport({ o, workDir, targets, timeline, loadMs, calls: switches.calls, stopped, redisOutage: outage, writes: writers.state, live, verification });
    ok = report.ok;
    return report;
  } finally {
    await monitor?.stop();
    switches?.destroy();
    // Each resource stopped whatever another's stop did: a failed stop must not leave Redis running.
    await Promise.allSettled(instances.map((i) => i.stop('SIGTERM')));
    await Promise.allSettled([redis?.stop('SIGKILL'), cluster?.stop()]);
    // Kept when the drill failed: the instances' logs and Redis's AOF are the evidence.
    if (workDir && !o.keep && ok) rmSync(workDir, { recursive: true, force: true });
  }
}

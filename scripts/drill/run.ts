/**
 * The drill, start to end: instances up (or the operator's), the drill's bank on every one,
 * load from switch-like clients and registry writers, the faults placed inside the load, then
 * every acknowledged write checked on every instance, and the report.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, sleep } from '../lib/process';
import { operatorCommands, redisOutage, sigtermUnderLoad, type RedisOutage, type StoppedInstance } from './faults';
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
  const instances: Instance[] = [];
  let switches: Switches | null = null;
  let monitor: { stop(): Promise<void> } | null = null;
  let ok = false;
  try {
    // Set up: a private Redis and instances of this checkout, or the operator's instances.
    let targets: Target[];
    if (selfContained) {
      redis = new RedisProcess(await freePort(), workDir!);
      await redis.up();
      const redisUrl = `redis://127.0.0.1:${redis.port}`;
      for (let i = 0; i < o.instances; i++) {
        const port = await freePort();
        instances.push(new Instance(i, port, { ...instanceEnv(port, redisUrl, workDir!, i), ...o.env }, o.dist, workDir!));
      }
      // One at a time: the first seeds the registry in Redis, and two cores compile less at once.
      for (const inst of instances) {
        inst.up();
        await inst.ready();
      }
      targets = instances.map((i) => target(i.url));
      o.log(`redis-server on ${redis.port} (AOF, fsync always), ${instances.length} instances on ${instances.map((i) => i.port).join(', ')}; logs in ${workDir}`);
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
        outage = await redisOutage(redis!, targets, timeline, o.redisKillAtS + o.redisDownS);
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
    await Promise.all(instances.map((i) => i.stop('SIGTERM')));
    await redis?.stop('SIGKILL');
    // Kept when the drill failed: the instances' logs and Redis's AOF are the evidence.
    if (workDir && !o.keep && ok) rmSync(workDir, { recursive: true, force: true });
  }
}

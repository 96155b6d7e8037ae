/**
 * The faults a self-contained drill causes, under load: Redis killed and brought back from its
 * AOF (or, on a Redis Cluster, a master killed, its replica promoted, and the node started again),
 * and one instance stopped with SIGTERM while calls and a registry write are on the wire to
 * it (then started again). In target mode the faults are the operator's shell commands.
 */
import { spawn } from 'node:child_process';
import { sleep, until } from '../lib/process';
import { clusterNodes, servesSlot, type LocalCluster } from '../lib/redis-cluster';
import { halfSent, jsonOf, type Target } from './http';
import type { DrillOptions } from './options';
import { readiness, type Instance, type RedisProcess } from './processes';
import type { Switches } from './switches';
import type { Timeline } from './timeline';
import { PROBE_NUMBER, type RegistryWriters } from './writers';

/** When Redis was away, in performance.now() time. */
export interface RedisOutage {
  downFrom: number;
  /** When it served again: restarted and answering (single Redis), or the killed master's replica promoted (cluster). */
  upAt: number;
  /** When every instance said ready (not degraded) again, after upAt; null when one did not within 20 s. */
  readyAt: number | null;
  /** Cluster mode: the master killed and its replica. */
  failover: MasterFailover | null;
}

export interface MasterFailover {
  killed: number;
  replica: number;
  /** The registry's hash slot, which the killed master served. */
  slot: number;
  /** The replica was promoted: CLUSTER NODES names it master of the slot. */
  promoted: boolean;
  /** The killed node, started again, rejoined as the promoted node's replica (connected, not failing). */
  rejoined: boolean;
  /** The cluster afterwards as the promoted node saw it: `port role` for each node. */
  nodes: string;
}

/**
 * Resolves when an instance reports degraded, or after 10 s, marking that none did (the
 * readiness watch marks each change): in a cluster, an instance may ride a failover out.
 */
function noticeDegraded(targets: Target[], timeline: Timeline): Promise<void> {
  return until(async () => (await Promise.all(targets.map((t) => readiness(t.url)))).includes('degraded'), 10_000, 'an instance to report degraded', 50).then(
    () => undefined,
    () => timeline.mark('no instance reported degraded'),
  );
}

/** Resolves when every instance says ready (not degraded), marked on the timeline: when, or null after 20 s. */
function everyReady(targets: Target[], timeline: Timeline): Promise<number | null> {
  return until(async () => (await Promise.all(targets.map((t) => readiness(t.url)))).every((s) => s === 'ready'), 20_000, 'every instance to be ready (not degraded) again', 100).then(
    () => {
      timeline.mark('every instance ready again');
      return performance.now();
    },
    () => {
      timeline.mark('not every instance ready (not degraded) again after 20 s');
      return null;
    },
  );
}

/**
 * SIGKILL to Redis now; back on the same port from its AOF `downUntilS` into the load. Marks on
 * the timeline when the instances noticed, and when every one was ready (not degraded) again.
 */
export async function redisOutage(redis: RedisProcess, targets: Target[], timeline: Timeline, downUntilS: number): Promise<RedisOutage> {
  const { mark } = timeline;
  const downFrom = performance.now();
  await redis.stop('SIGKILL');
  mark(`redis killed (SIGKILL)`);
  await noticeDegraded(targets, timeline);
  await timeline.reach(downUntilS);
  await redis.up();
  const upAt = performance.now();
  mark(`redis restarted (AOF replayed, answering PING)`);
  const readyAt = await everyReady(targets, timeline);
  return { downFrom, upAt, readyAt, failover: null };
}

/**
 * Cluster mode: SIGKILL now to the master serving `slot` (the registry's, so that registry
 * writes wait on the failover); marks when its replica is promoted (CLUSTER NODES) and when every
 * instance is ready again, with no instance restarted. The killed node is started again
 * `downUntilS` into the load, but not before the promotion (an empty master rejoining first would
 * take its slots back empty), and must rejoin as the promoted node's replica.
 */
export async function masterOutage(cluster: LocalCluster, slot: number, targets: Target[], timeline: Timeline, downUntilS: number): Promise<RedisOutage> {
  const { mark } = timeline;
  const before = (await clusterNodes(cluster.ports[0]!)) ?? [];
  const killed = before.find((n) => n.role === 'master' && servesSlot(n, slot))?.port;
  const replica = killed === undefined ? undefined : cluster.replicas.get(killed)?.port;
  if (killed === undefined || replica === undefined) throw new Error(`no master with a replica serves slot ${slot}: ${before.map((n) => `${n.port} ${n.role} ${n.slots.join(',')}`).join('; ')}`);
  const seenBy = async (port: number) => (await clusterNodes(port)) ?? [];

  const downFrom = performance.now();
  await cluster.servers.get(killed)!.kill();
  mark(`master 127.0.0.1:${killed} (the registry's slot ${slot}) killed (SIGKILL)`);
  const degraded = noticeDegraded(targets, timeline);
  const promoted = await until(
    async () => {
      const me = (await seenBy(replica)).find((n) => n.port === replica);
      return me?.role === 'master' && servesSlot(me, slot);
    },
    20_000,
    'the replica to be promoted',
    50,
  ).then(
    () => true,
    () => false,
  );
  const upAt = performance.now();
  mark(promoted ? `replica 127.0.0.1:${replica} promoted to master of slot ${slot} (CLUSTER NODES)` : `replica 127.0.0.1:${replica} not promoted after 20 s`);
  const ready = everyReady(targets, timeline);

  await timeline.reach(downUntilS);
  await cluster.restart(killed);
  mark(`127.0.0.1:${killed} started again`);
  const rejoined = await until(
    async () => {
      const view = await seenBy(replica);
      const me = view.find((n) => n.port === replica);
      const old = view.find((n) => n.port === killed);
      return me !== undefined && old !== undefined && old.role === 'replica' && old.masterId === me.id && old.connected && !old.failing;
    },
    20_000,
    'the killed node to rejoin as a replica',
    100,
  ).then(
    () => true,
    () => false,
  );
  mark(rejoined ? `127.0.0.1:${killed} rejoined as the replica of 127.0.0.1:${replica}` : `127.0.0.1:${killed} not a connected replica of 127.0.0.1:${replica} after 20 s`);
  const [readyAt] = await Promise.all([ready, degraded]);
  const nodes = (await seenBy(replica))
    .sort((a, b) => a.port - b.port)
    .map((n) => `${n.port} ${n.role}${n.failing ? ' failing' : ''}`)
    .join(', ');
  return { downFrom, upAt, readyAt, failover: { killed, replica, slot, promoted, rejoined, nodes } };
}

export interface Probe {
  name: string;
  status: number | string;
  ok: boolean;
}

/** What happened to the instance stopped with SIGTERM; times are performance.now(). */
export interface StoppedInstance {
  /** Its index among the targets. */
  index: number;
  sigtermAt: number;
  /** When it answered /readyz again after its restart (Infinity when not restarted). */
  backAt: number;
  exitCode: number | null;
  /** The call and the registry write that were half-sent when the signal came. */
  probes: Probe[];
}

export interface SigtermParts {
  instance: Instance;
  index: number;
  target: Target;
  switches: Switches;
  writers: RegistryWriters;
}

/**
 * SIGTERM to one instance under load, with a call and a registry write half-sent to it and a
 * burst of calls on the switches' kept-alive connections when the signal comes; the halves are
 * finished after it. Then waits for the exit (SIGKILL after 15 s) and, unless
 * `restartAfterS` is negative, starts the instance again and waits until it answers.
 */
export async function sigtermUnderLoad({ instance: inst, index, target, switches, writers }: SigtermParts, o: DrillOptions, timeline: Timeline): Promise<StoppedInstance> {
  const { mark } = timeline;
  const switchAuth = { authorization: `Bearer ${o.switchKey}` };
  const adminAuth = { authorization: `Bearer ${o.adminKey}` };
  const half = [
    halfSent(target, 'POST', '/v1/calls/score', JSON.stringify({ from: '+443450000000', to: '+447700900123', callId: 'in-flight-probe' }), switchAuth),
    halfSent(target, 'PUT', `/v1/registry/numbers/${encodeURIComponent(PROBE_NUMBER)}`, JSON.stringify({ bankId: o.bankId, inboundOnly: true, authorisedSpcs: ['inflight'] }), adminAuth),
  ];
  await Promise.all(half.map((h) => h.headersSent));
  await sleep(150); // let the server read the headers and the first half of the body
  switches.burst(index, o.burstAtSigterm);
  await sleep(2);
  const sigtermAt = performance.now();
  inst.proc!.kill('SIGTERM');
  mark(`SIGTERM to ${inst.url}`);
  await sleep(300);
  half.forEach((h) => h.rest());
  const [callProbe, writeProbe] = await Promise.all(half.map((h) => h.result));
  // The call must be answered; the write answered, or refused cleanly (503: Redis too slow for it).
  const callOk = callProbe!.kind === 'response' && callProbe!.status === 200;
  const writeAcked = writeProbe!.kind === 'response' && writeProbe!.status >= 200 && writeProbe!.status < 300;
  const writeRefused = writeProbe!.kind === 'response' && writeProbe!.status === 503 && jsonOf(writeProbe!.body)?.error === 'registry_unavailable';
  const probes: Probe[] = [
    { name: 'score request half-sent at SIGTERM', status: callProbe!.kind === 'response' ? callProbe!.status : callProbe!.code, ok: callOk },
    { name: 'registry PUT half-sent at SIGTERM', status: writeProbe!.kind === 'response' ? writeProbe!.status : writeProbe!.code, ok: writeAcked || writeRefused },
  ];
  writers.recordProbe(writeAcked, writeRefused);

  const exitTimer = setTimeout(() => inst.proc?.kill('SIGKILL'), 15_000);
  const exitCode = await inst.exited;
  clearTimeout(exitTimer);
  mark(`${inst.url} exited with code ${exitCode}`);
  let backAt = Infinity;
  if (o.restartAfterS >= 0) {
    await sleep(o.restartAfterS * 1000);
    inst.up();
    mark(`${inst.url} starting again`);
    await inst.ready();
    backAt = performance.now();
    mark(`${inst.url} answering again`);
  }
  return { index, sigtermAt, backAt, exitCode, probes };
}

/** Target mode: each of the operator's commands at its second into the load, through sh. */
export async function operatorCommands(at: DrillOptions['at'], timeline: Timeline): Promise<void> {
  const { mark } = timeline;
  const runs = [...at]
    .sort((a, b) => a.atS - b.atS)
    .map(async ({ atS, command }) => {
      await timeline.reach(atS);
      mark(`run: ${command}`);
      const code = await new Promise<number | null>((r) => spawn('sh', ['-c', command], { stdio: 'ignore' }).on('exit', (c) => r(c)));
      mark(`exit ${code}: ${command}`);
    });
  await Promise.all(runs);
}

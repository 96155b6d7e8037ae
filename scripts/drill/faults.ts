/**
 * The faults a self-contained drill causes, under load: Redis killed and brought back from its
 * AOF, and one instance stopped with SIGTERM while calls and a registry write are on the wire to
 * it (then started again). In target mode the faults are the operator's shell commands.
 */
import { spawn } from 'node:child_process';
import { sleep, until } from '../lib/process';
import { halfSent, jsonOf, type Target } from './http';
import type { DrillOptions } from './options';
import { readiness, type Instance, type RedisProcess } from './processes';
import type { Switches } from './switches';
import type { Timeline } from './timeline';
import { PROBE_NUMBER, type RegistryWriters } from './writers';

/** When Redis was away, in performance.now() time. */
export interface RedisOutage {
  downFrom: number;
  upAt: number;
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
  await until(async () => (await readiness(targets[0]!.url)) === 'degraded', 10_000, 'an instance to report degraded', 50).catch(() => mark('no instance reported degraded'));
  await timeline.reach(downUntilS);
  await redis.up();
  const upAt = performance.now();
  mark(`redis restarted (AOF replayed, answering PING)`);
  await until(async () => (await Promise.all(targets.map((t) => readiness(t.url)))).every((s) => s === 'ready'), 20_000, 'every instance to be ready (not degraded) again', 100).then(
    () => mark('every instance ready again'),
    () => mark('not every instance ready (not degraded) again after 20 s'),
  );
  return { downFrom, upAt };
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

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Socket } from 'node:net';
import { Instance, instanceEnv, RedisProcess } from '../../scripts/drill/processes';
import { formatReport } from '../../scripts/drill/report';
import { runDrill } from '../../scripts/drill/run';
import { freePort, sleep, until } from '../../scripts/lib/process';
import { bearer } from '../helpers/keys';

/**
 * Issue 6's fault drill, as CI runs it (`npm run fault:drill` is the same run for an operator,
 * scripts/fault-drill.ts, its parts in scripts/drill/): a private redis-server (AOF, fsync always) and three real server
 * processes; switch-like clients on kept-alive connections that fail over between instances, and
 * a registry writer; Redis SIGKILLed and restarted under the load, then one instance stopped with
 * SIGTERM while calls and a registry write are on the wire to it.
 */
describe('fault drill', () => {
  it('loses no call on the survivors and no acknowledged registry write while Redis dies and an instance stops', async () => {
    const report = await runDrill({
      instances: 3,
      durationS: 15,
      rate: 150,
      writeRate: 20,
      redisKillAtS: 3,
      redisDownS: 3,
      sigtermAtS: 9,
      // The CI machine is shared: a process starved of CPU by others sheds load (503 + Retry-After,
      // test/routes/load-shedding.test.ts), which is not what this test is about. Same reason for
      // the p99 bound: generous, a bound no hang or Redis wait could meet (150 calls/s is far below capacity).
      env: { LOAD_SHED_EVENT_LOOP_DELAY_MS: '5000' },
      p99LimitMs: 1500,
    });
    console.log(formatReport(report));

    expect(report.checks.filter((c) => !c.ok && c.severity === 'fail')).toEqual([]);
    // The same, spelt out.
    expect(report.calls.failed).toBe(0);
    expect(report.failures).toEqual([]); // every request to a survivor answered 200 with a verdict
    expect(report.stopped).toMatchObject({ exitCode: 0, inFlightReset: 0 });
    expect(report.stopped!.inFlightAtSigterm).toBeGreaterThan(0);
    // Half-sent at SIGTERM, finished after: the call answered, the write acknowledged (or refused with a clean 503).
    expect(report.stopped!.probes.map((p) => p.ok)).toEqual([true, true]);
    expect(report.stopped!.probes[0]!.status).toBe(200);
    expect(report.writes.lost).toEqual([]);
    expect(report.writes.badRefusals).toEqual([]);
    expect(report.writes.acknowledged).toBeGreaterThan(10); // fewer when Redis is slow: a write refused with 503 is not retried
    // The faults took effect: writes refused (cleanly) while Redis was down, calls failed over.
    expect(report.writes.refused['503 registry_unavailable']).toBeGreaterThan(0);
    expect(report.calls.failedOver).toBeGreaterThan(0);
    expect(report.survivorLatency.p99).toBeLessThan(1500);
  }, 120_000);
});

/** Registry bugs the drill found, each reproduced in a few seconds, now fixed: kept as regressions. */
describe('registry bugs found by the fault drill', () => {
  let dir: string;
  let redis: RedisProcess;
  const instances: Instance[] = [];
  const admin = { 'content-type': 'application/json', ...bearer('admin') };

  async function start(i: number): Promise<Instance> {
    const port = await freePort();
    const inst = new Instance(i, port, instanceEnv(port, `redis://127.0.0.1:${redis.port}`, dir, i), false, dir);
    instances.push(inst);
    inst.up();
    await inst.ready();
    return inst;
  }
  /** A write, repeated while Redis is too slow for it (503), so that a test fails for its bug and no other. */
  const put = async (inst: Instance, number: string) => {
    for (let i = 0; ; i++) {
      const res = await fetch(`${inst.url}/v1/registry/numbers/${number}`, { method: 'PUT', headers: admin, body: JSON.stringify({ bankId: 'harbour', inboundOnly: true }) });
      if (res.status !== 503 || i === 10) return res;
      await sleep(200);
    }
  };
  const status = async (inst: Instance, number: string) => (await fetch(`${inst.url}/v1/registry/numbers/${number}`, { headers: admin })).status;

  let a: Instance;
  let b: Instance;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'callguard-known-'));
    redis = new RedisProcess(await freePort(), dir);
    await redis.up();
    [a, b] = await Promise.all([start(0), start(1)]);
    await sleep(1000); // past both change-log followers' first poll
  }, 60_000);
  afterAll(async () => {
    await Promise.all(instances.map((i) => i.stop('SIGTERM')));
    await redis?.stop('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  /**
   * The follower used to skip the change log when Redis's registry version equalled the instance's
   * own, which after its own change it always does, though another instance's change may have gone
   * into the log just before: that change was then missed until a third came from elsewhere.
   */
  it('an instance that changes the registry right after another did still gets the other change', async () => {
    for (let i = 0; i < 3; i++) {
      expect([200, 201]).toContain((await put(a, `+44117496010${i}`)).status);
      expect([200, 201]).toContain((await put(b, `+44117496020${i}`)).status); // before b's follower polls again
      // Followed from the log at b's next poll (250 ms), however late a busy machine runs it; with
      // the bug, never (no third change comes from elsewhere meanwhile).
      await until(async () => (await status(b, `+44117496010${i}`)) === 200, 10_000, `b to follow a's change ${i}`, 100);
    }
  }, 45_000);

  /**
   * Commits used to run on the hot path's client, whose commands time out after 50 ms: a MULTI/EXEC
   * that Redis was merely slow to run timed out here, was answered 503 "nothing was changed", and
   * was applied there. They now have a client of their own with a patient timeout, and a timeout
   * is answered as "not confirmed", never as "nothing was changed".
   */
  it('a registry write answered 503 "nothing was changed" is not made', async () => {
    const pause = new Socket();
    await new Promise<void>((resolve) => pause.connect(redis.port, '127.0.0.1', resolve));
    pause.write('CLIENT PAUSE 400 WRITE\r\n'); // Redis slow for 400 ms, as under a burst of load
    await sleep(50);
    const res = await fetch(`${a.url}/v1/registry/numbers/+441174960300`, { method: 'PUT', headers: admin, body: JSON.stringify({ bankId: 'harbour', inboundOnly: true }) });
    pause.destroy();
    await sleep(1500);
    const after = await status(a, '+441174960300');
    expect({ put: res.status, after }).toEqual(res.status === 503 ? { put: 503, after: 404 } : { put: 201, after: 200 });
  }, 30_000);

  /**
   * The registry's first load used to run before the client had connected (no offline queue), so
   * every instance served REGISTRY_FILE and none wrote it to Redis; an instance that later loaded
   * from Redis held only what had been changed through the API, and let the seed banks'
   * inbound-only numbers through. The start now waits for the connection, and an instance that
   * started without Redis seeds it (or takes what it holds) as soon as it answers.
   */
  it('an instance started after a registry change still holds the seed registry', async () => {
    expect([200, 201]).toContain((await put(a, '+441174960400')).status);
    const c = await start(2);
    const banks = async () => ((await (await fetch(`${c.url}/v1/registry/banks`, { headers: admin })).json()) as { banks: { id: string }[] }).banks.map((x) => x.id).sort();
    const deadline = Date.now() + 10_000;
    while ((await status(c, '+441174960400')) !== 200 && Date.now() < deadline) await sleep(100);
    expect(await status(c, '+441174960400')).toBe(200); // c has caught up with Redis
    expect(await banks()).toEqual(['brightwater', 'examplebank', 'harbour', 'northwind', 'revenueoffice']);
    const score = await fetch(`${c.url}/v1/calls/score`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...bearer('switch') },
      body: JSON.stringify({ from: '+443450000000', to: '+447700900123' }), // Example Bank's inbound-only number
    });
    expect(((await score.json()) as { verdict: string }).verdict).toBe('block');
  }, 60_000);
});

import { formatReport } from '../../scripts/drill/report';
import { runDrill } from '../../scripts/drill/run';

/**
 * The fault drill on a Redis Cluster, as CI runs it (`npm run fault:drill -- --cluster` is the
 * same run for an operator): three masters with a replica each, two real server processes, the
 * master holding the registry SIGKILLed under load and its replica promoted, the node started
 * again (it rejoins as a replica), then one instance stopped with SIGTERM. Shorter than the
 * operator's run, and with two instances rather than three, to stay within about 40 s.
 */
describe('fault drill on a Redis Cluster', () => {
  it('loses no call and no acknowledged registry write while a master fails over, and the instances come back on the cluster by themselves', async () => {
    const report = await runDrill({
      cluster: true,
      instances: 2,
      durationS: 12,
      rate: 100,
      writeRate: 20,
      redisKillAtS: 2,
      redisDownS: 2,
      sigtermAtS: 7,
      // A limit a busy CI machine's real delays do not reach, as in faults.test.ts: this test is
      // not about shedding. The p99 bound is one no hang could meet, not a latency target.
      env: { LOAD_SHED_EVENT_LOOP_DELAY_MS: '5000' },
      p99LimitMs: 1500,
    });
    console.log(formatReport(report));

    expect(report.checks.filter((c) => !c.ok && c.severity === 'fail')).toEqual([]);
    // The same, spelt out.
    expect(report.calls.failed).toBe(0);
    expect(report.failures).toEqual([]); // no failed request, no 500
    expect(report.writes.lost).toEqual([]);
    expect(report.writes.badRefusals).toEqual([]);
    expect(report.writes.acknowledged).toBeGreaterThan(10);
    // The master failed over: its replica holds its slots, and the killed node follows it.
    expect(report.redis?.failover).toMatchObject({ promoted: true, rejoined: true });
    // Back on the cluster with no restart: every instance ready, and registry writes acknowledged again.
    expect(report.redis!.readyAfterMs).not.toBeNull();
    expect(report.redis!.writesAckedSince).toBeGreaterThan(0);
    expect(report.stopped).toMatchObject({ exitCode: 0, inFlightReset: 0 });
  }, 90_000);
});

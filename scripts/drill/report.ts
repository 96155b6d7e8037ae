/**
 * What the drill found: the calls and writes it recorded, read against when the faults
 * happened; the checks that pass or fail the drill; and the summary the command line prints.
 */
import type { Target } from './http';
import { FAILOVER } from './http';
import { DEFAULT_OPTIONS, type DrillOptions } from './options';
import type { MasterFailover, Probe, RedisOutage, StoppedInstance } from './faults';
import type { AttemptRecord, CallRecord } from './switches';
import type { Timeline } from './timeline';
import type { WriteVerification } from './verify';
import type { WriteState } from './writers';

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
  /** `warn`: reported, but does not fail the drill. */
  severity: 'fail' | 'warn';
}

export interface LatencySummary {
  count: number;
  p50: number;
  p99: number;
  max: number;
  overBudget: number;
}

export interface DrillReport {
  mode: 'self-contained' | 'targets';
  targets: string[];
  workDir: string | null;
  loadMs: number;
  calls: { total: number; answered: number; failed: number; failedOver: number; ratePerS: number };
  attempts: Record<string, number>;
  failovers: Record<string, number>;
  failures: string[];
  perInstance: { url: string; role: 'survivor' | 'stopped'; attempts: number; ok: number; failovers: number; failures: number; latency: LatencySummary }[];
  survivorLatency: LatencySummary;
  callLatency: LatencySummary;
  stopped: null | {
    instance: number;
    exitCode: number | null;
    inFlightAtSigterm: number;
    inFlightCompleted: number;
    inFlightRefused: number;
    inFlightReset: number;
    resetAfterSigterm: number;
    /** When those were handed to the OS, in ms after SIGTERM was sent: [first, last]. */
    resetSentMsAfterSigterm: [number, number] | null;
    probes: Probe[];
  };
  writes: {
    attempted: number;
    acknowledged: number;
    verified: number;
    lost: string[];
    /** Writes answered 503 ("nothing was changed") that were made all the same. */
    phantoms: string[];
    refused: Record<string, number>;
    refusedWhileRedisUp: number;
    badRefusals: string[];
    unacknowledged: string[];
    verifiedOn: string[];
  };
  /** Self-contained mode: Redis's outage (in cluster mode, a master's) and the instances' return; times in ms after it was killed. */
  redis: null | {
    /** Until it served again: restarted (single Redis), or the replica promoted (cluster). */
    upAfterMs: number;
    /** Until every instance was ready (not degraded) again; null when one was not within 20 s of upAfterMs. */
    readyAfterMs: number | null;
    /** Registry writes acknowledged once every instance was ready again. */
    writesAckedSince: number;
    failover: MasterFailover | null;
  };
  /** The banks each instance listed afterwards. */
  banksOn: { url: string; banks: string[] }[];
  timeline: { atMs: number; event: string }[];
  perSecond: { s: number; calls: number; failovers: number; failures: number; p99: number; writesAcked: number; writesRefused: number }[];
  checks: Check[];
  ok: boolean;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function latency(values: number[], budgetMs: number): LatencySummary {
  const sorted = [...values].sort((a, b) => a - b);
  const r = (v: number) => Math.round(v * 10) / 10;
  return { count: sorted.length, p50: r(percentile(sorted, 50)), p99: r(percentile(sorted, 99)), max: r(sorted[sorted.length - 1] ?? 0), overBudget: sorted.filter((v) => v > budgetMs).length };
}

export interface ReportInput {
  o: DrillOptions;
  workDir: string | null;
  targets: Target[];
  timeline: Timeline;
  loadMs: number;
  calls: CallRecord[];
  /** The instance stopped with SIGTERM (self-contained mode), else null. */
  stopped: StoppedInstance | null;
  /** When Redis was away (self-contained mode), else null. */
  redisOutage: RedisOutage | null;
  writes: WriteState;
  /** The instances the writes were checked on. */
  live: Target[];
  verification: WriteVerification;
}

export function buildReport(input: ReportInput): DrillReport {
  const { o, workDir, targets, timeline, loadMs, calls, stopped, writes, live } = input;
  const { lost, phantoms, banksOn } = input.verification;
  const selfContained = !o.targets;
  const victim = stopped?.index ?? -1;
  const sigtermAt = stopped?.sigtermAt ?? Infinity;
  const backAt = stopped?.backAt ?? Infinity;
  const redisDownFrom = input.redisOutage?.downFrom ?? Infinity;
  const redisUpAt = input.redisOutage?.upAt ?? Infinity;

  const isSurvivorAttempt = (a: AttemptRecord) => a.instance !== victim;
  const { failures, attempts, failovers, atSigterm } = judgeAttempts(calls, { selfContained, victim, sigtermAt, backAt, targets, timeline });

  const perInstance = targets.map((t, i) => {
    const mine = calls.flatMap((c) => c.attempts.filter((a) => a.instance === i));
    const okOnes = mine.filter((a) => a.outcome === 'ok');
    return {
      url: t.url,
      role: (i === victim ? 'stopped' : 'survivor') as 'survivor' | 'stopped',
      attempts: mine.length,
      ok: okOnes.length,
      failovers: mine.filter((a) => FAILOVER.has(a.outcome)).length,
      failures: mine.filter((a) => a.outcome === 'error').length,
      latency: latency(okOnes.map((a) => a.ended - a.started), o.switchBudgetMs),
    };
  });
  const survivorLatency = latency(
    calls.flatMap((c) => c.attempts.filter((a) => isSurvivorAttempt(a) && a.outcome === 'ok').map((a) => a.ended - a.started)),
    o.switchBudgetMs,
  );
  const callLatency = latency(
    calls.filter((c) => c.answered).map((c) => c.ended - c.started),
    o.switchBudgetMs,
  );

  // A refusal explained by the outage: on the wire at any time from the kill until two seconds
  // after Redis served again (a write sent just before the kill may be refused just after it).
  const duringOutage = (r: { at: number; ended: number }) => r.ended >= redisDownFrom && r.at < redisUpAt + 2000;
  const outage = input.redisOutage;
  const refused: Record<string, number> = {};
  for (const r of writes.refusals) refused[r.outcome] = (refused[r.outcome] ?? 0) + 1;
  const refusedWhileRedisUp = writes.refusals.filter((r) => r.outcome === '503 registry_unavailable' && !duringOutage(r)).length;

  const perSecond = perSecondRows(calls, writes, timeline.t0, loadMs);

  const answered = calls.filter((c) => c.answered).length;
  const report: DrillReport = {
    mode: selfContained ? 'self-contained' : 'targets',
    targets: targets.map((t) => t.url),
    workDir,
    loadMs: Math.round(loadMs),
    calls: {
      total: calls.length,
      answered,
      failed: calls.length - answered,
      failedOver: calls.filter((c) => c.attempts.length > 1).length,
      ratePerS: Math.round(calls.length / (loadMs / 1000)),
    },
    attempts,
    failovers,
    failures,
    perInstance,
    survivorLatency,
    callLatency,
    stopped: stopped
      ? {
          instance: victim,
          exitCode: stopped.exitCode,
          ...atSigterm,
          probes: stopped.probes,
        }
      : null,
    writes: {
      attempted: writes.attempted,
      acknowledged: writes.acknowledged,
      verified: writes.expected.size * live.length - lost.length - phantoms.length,
      lost,
      phantoms,
      refused,
      refusedWhileRedisUp,
      badRefusals: writes.badRefusals,
      unacknowledged: writes.unacknowledged,
      verifiedOn: live.map((t) => t.url),
    },
    redis: outage
      ? {
          upAfterMs: Math.round(outage.upAt - outage.downFrom),
          readyAfterMs: outage.readyAt === null ? null : Math.round(outage.readyAt - outage.downFrom),
          writesAckedSince: outage.readyAt === null ? 0 : writes.ackTimes.filter((t) => t > outage.readyAt!).length,
          failover: outage.failover,
        }
      : null,
    banksOn,
    timeline: timeline.events,
    perSecond,
    checks: [],
    ok: false,
  };
  report.checks = checksOf(report, o, selfContained);
  report.ok = report.checks.every((c) => c.ok || c.severity === 'warn');
  return report;
}

interface AttemptContext {
  selfContained: boolean;
  /** Index of the instance stopped with SIGTERM; -1 for none. */
  victim: number;
  sigtermAt: number;
  backAt: number;
  targets: Target[];
  timeline: Timeline;
}

/**
 * Every attempt of every call, judged: a failure unless it succeeded, or was a failover the
 * faults explain (the stopped instance refusing from SIGTERM until it answered again; in target
 * mode, any failover). Attempts in flight when SIGTERM was sent are counted apart: each must be
 * answered or cleanly refused, and one reset after being handed to the OS is a failure.
 */
function judgeAttempts(calls: CallRecord[], ctx: AttemptContext) {
  const { selfContained, victim, sigtermAt, backAt, targets, timeline } = ctx;
  const isSurvivorAttempt = (a: AttemptRecord) => a.instance !== victim;
  // The stopped instance is expected to refuse only from SIGTERM until it answers again.
  const inStopWindow = (a: AttemptRecord) => a.instance === victim && a.started >= sigtermAt && a.started < backAt;
  const inFlightAtSigterm = (a: AttemptRecord) => a.instance === victim && a.started < sigtermAt && a.ended >= sigtermAt;
  const failures: string[] = [];
  const attempts: Record<string, number> = {};
  const failovers: Record<string, number> = {};
  const describe = (a: AttemptRecord, why: string) => `${targets[a.instance]!.url} at ${timeline.stamp(a.started)}: ${why}`;
  let inFlight = 0;
  let inFlightCompleted = 0;
  let inFlightRefused = 0;
  let inFlightReset = 0;
  let resetAfterSigterm = 0;
  const resetDelays: number[] = [];
  const resetLate = (a: AttemptRecord) => {
    resetAfterSigterm++;
    resetDelays.push((a.sentAt ?? a.started) - sigtermAt);
  };
  for (const c of calls) {
    for (const a of c.attempts) {
      attempts[a.outcome] = (attempts[a.outcome] ?? 0) + 1;
      if (FAILOVER.has(a.outcome)) failovers[a.outcome] = (failovers[a.outcome] ?? 0) + 1;
      if (inFlightAtSigterm(a)) {
        inFlight++;
        if (a.outcome === 'ok') inFlightCompleted++;
        else if (a.outcome === 'closing' || a.outcome === 'refused') inFlightRefused++;
        // Handed to the OS before the signal was even sent: the instance had it, and dropped it.
        else if (a.outcome === 'reset' && a.sentAt !== null && a.sentAt < sigtermAt) {
          inFlightReset++;
          failures.push(
            describe(a, `a request in flight when SIGTERM was sent was reset (${a.reused ? 'kept-alive' : 'new'} connection, sent ${(sigtermAt - a.sentAt).toFixed(1)} ms before the signal, reset ${(a.ended - sigtermAt).toFixed(1)} ms after)`),
          );
        } else if (a.outcome === 'reset') resetLate(a);
        else failures.push(describe(a, `in flight at SIGTERM: ${a.detail}`));
        continue;
      }
      if (a.outcome === 'ok') continue;
      if (selfContained && !isSurvivorAttempt(a) && inStopWindow(a) && FAILOVER.has(a.outcome)) {
        if (a.outcome === 'reset') resetLate(a);
        continue;
      }
      if (!selfContained && FAILOVER.has(a.outcome)) continue; // the operator's faults: failovers, counted above
      failures.push(describe(a, a.detail));
    }
    if (!c.answered) failures.push(`call at ${timeline.stamp(c.started)} got no verdict from any instance: ${c.attempts.map((a) => a.detail).join(', ')}`);
  }

  const atSigterm = {
    inFlightAtSigterm: inFlight,
    inFlightCompleted,
    inFlightRefused,
    inFlightReset,
    resetAfterSigterm,
    resetSentMsAfterSigterm: (resetDelays.length ? [Math.round(Math.min(...resetDelays)), Math.round(Math.max(...resetDelays))] : null) as [number, number] | null,
  };
  return { failures, attempts, failovers, atSigterm };
}

/** Calls, failovers, failures, p99 and registry writes, second by second of the load. */
function perSecondRows(calls: CallRecord[], writes: WriteState, t0: number, loadMs: number): DrillReport['perSecond'] {
  const perSecond: DrillReport['perSecond'] = [];
  for (let s = 0; s * 1000 < loadMs; s++) {
    const from = t0 + s * 1000;
    const to = from + 1000;
    const inSecond = calls.filter((c) => c.started >= from && c.started < to);
    const lat = inSecond.filter((c) => c.answered).map((c) => c.ended - c.started);
    perSecond.push({
      s,
      calls: inSecond.length,
      failovers: inSecond.reduce((n, c) => n + c.attempts.filter((a) => FAILOVER.has(a.outcome)).length, 0),
      failures: inSecond.filter((c) => !c.answered || c.attempts.some((a) => a.outcome === 'error')).length,
      p99: Math.round(percentile(lat.sort((a, b) => a - b), 99)),
      writesAcked: writes.ackTimes.filter((t) => t >= from && t < to).length,
      writesRefused: writes.refusals.filter((r) => r.at >= from && r.at < to).length,
    });
  }
  return perSecond;
}

function checksOf(r: DrillReport, o: DrillOptions, selfContained: boolean): Check[] {
  const fail = (name: string, ok: boolean, detail: string): Check => ({ name, ok, detail, severity: 'fail' });
  const w = r.writes;
  const checks: Check[] = [
    fail('every call got a verdict', r.calls.failed === 0, `${r.calls.answered}/${r.calls.total} answered, ${r.calls.failedOver} after failing over`),
    fail(
      selfContained ? 'no failed request on the surviving instances (nor on the stopped one before SIGTERM or once back)' : 'no failed request (failovers excepted)',
      r.failures.length === 0,
      r.failures.length === 0 ? 'none' : `${r.failures.length}: ${r.failures.slice(0, 5).join('; ')}`,
    ),
    fail(`survivors' p99 under ${o.p99LimitMs} ms`, r.survivorLatency.p99 < o.p99LimitMs, `p50 ${r.survivorLatency.p50} ms, p99 ${r.survivorLatency.p99} ms, max ${r.survivorLatency.max} ms`),
    fail(
      'every acknowledged registry write visible on every instance',
      w.lost.length === 0 && w.acknowledged > 0,
      w.lost.length === 0 ? `${w.acknowledged} acknowledged writes, checked on ${w.verifiedOn.length} instances` : `${w.lost.length} lost: ${w.lost.slice(0, 5).join('; ')}`,
    ),
    fail(
      'refused writes were clean JSON 503s (no 500, no 4xx, no hang)',
      w.badRefusals.length === 0 && w.unacknowledged.length === 0,
      [...w.badRefusals, ...w.unacknowledged].slice(0, 5).join('; ') || JSON.stringify(w.refused),
    ),
    fail(
      'every instance holds the same registry (the same banks)',
      r.banksOn.every((b) => JSON.stringify(b.banks) === JSON.stringify(r.banksOn[0]!.banks)) && r.banksOn[0]!.banks.includes(o.bankId),
      r.banksOn.map((b) => `${b.url}: ${b.banks.join(' ')}`).join('; '),
    ),
  ];
  if (selfContained && r.stopped) {
    const s = r.stopped;
    checks.push(
      fail('the stopped instance exited 0', s.exitCode === 0, `exit code ${s.exitCode}`),
      fail(
        'requests in flight at SIGTERM completed or were cleanly refused',
        s.inFlightReset === 0 && s.probes.length === 2 && s.probes.every((p) => p.ok),
        `${s.inFlightAtSigterm} calls in flight: ${s.inFlightCompleted} answered, ${s.inFlightRefused} refused, ${s.inFlightReset} reset; half-sent probes: ${s.probes.map((p) => `${p.status}`).join(', ')}`,
      ),
      // On a cluster a registry write may wait out the failover rather than be refused: only the
      // calls' failovers (the stopped instance) are sure to happen.
      r.redis?.failover
        ? fail(
            'the faults happened (a master killed, calls failed over; the promotion is checked on its own)',
            r.calls.failedOver > 0,
            `${w.refused['503 registry_unavailable'] ?? 0} writes refused while the master was down, ${w.refused['503 registry_unconfirmed'] ?? 0} unconfirmed; ${r.calls.failedOver} calls failed over`,
          )
        : fail(
            'the faults happened (writes refused while Redis was down, calls failed over)',
            (w.refused['503 registry_unavailable'] ?? 0) - w.refusedWhileRedisUp > 0 && r.calls.failedOver > 0,
            `${(w.refused['503 registry_unavailable'] ?? 0) - w.refusedWhileRedisUp} writes refused while Redis was down, ${r.calls.failedOver} calls failed over`,
          ),
    );
  }
  if (selfContained && r.redis) {
    const { upAfterMs, readyAfterMs, writesAckedSince, failover } = r.redis;
    const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
    if (failover) {
      checks.push(
        fail(
          "the killed master's replica was promoted, and the killed node rejoined as its replica (CLUSTER NODES)",
          failover.promoted && failover.rejoined,
          `127.0.0.1:${failover.replica} ${failover.promoted ? `master of slot ${failover.slot} ${s(upAfterMs)} after the kill` : 'not promoted'}; 127.0.0.1:${failover.killed} ${failover.rejoined ? 'its replica' : 'not its connected replica'}; nodes: ${failover.nodes}`,
        ),
      );
    }
    checks.push(
      fail(
        `every instance back on ${failover ? 'the cluster' : 'Redis'} without a restart (ready, not degraded; registry writes acknowledged again)`,
        readyAfterMs !== null && writesAckedSince > 0,
        `${readyAfterMs === null ? 'not every instance ready 20 s after' : `every instance ready ${s(readyAfterMs)} after the kill, ${s(readyAfterMs - upAfterMs)} after`} ${failover ? 'the promotion' : 'Redis answered again'}; ${writesAckedSince} writes acknowledged since`,
      ),
    );
  }
  checks.push(
    {
      name: 'no write answered 503 "nothing was changed" was made all the same',
      ok: w.phantoms.length === 0,
      detail: w.phantoms.length === 0 ? 'none' : `${w.phantoms.length}: ${w.phantoms.slice(0, 5).join('; ')}`,
      severity: 'warn',
    },
    {
      name: 'no write refused while Redis was up',
      ok: w.refusedWhileRedisUp === 0,
      detail: w.refusedWhileRedisUp === 0 ? 'none' : `${w.refusedWhileRedisUp} answered 503 registry_unavailable (a commit slower than REDIS_COMMAND_TIMEOUT_MS?)`,
      severity: 'warn',
    },
  );
  return checks;
}


// ---------------------------------------------------------------------------------------------
// Summary

export function formatReport(r: DrillReport): string {
  const lines: string[] = [];
  const ms = (v: number) => `${v} ms`;
  lines.push(`callguard fault drill (${r.mode}${r.redis?.failover ? ', Redis Cluster' : ''}): ${r.targets.join(', ')}`);
  lines.push('');
  lines.push('timeline');
  for (const e of r.timeline) lines.push(`  +${(e.atMs / 1000).toFixed(1).padStart(5)} s  ${e.event}`);
  lines.push('');
  lines.push(`calls        ${r.calls.total} in ${(r.loadMs / 1000).toFixed(1)} s (${r.calls.ratePerS}/s): ${r.calls.answered} answered, ${r.calls.failed} without a verdict`);
  lines.push(`failovers    ${r.calls.failedOver} calls answered by another instance; attempts ${JSON.stringify(r.failovers)}`);
  lines.push(`failures     ${r.failures.length}${r.failures.length ? `\n${r.failures.slice(0, 20).map((f) => `    ${f}`).join('\n')}` : ''}`);
  lines.push(`latency      survivors p50 ${ms(r.survivorLatency.p50)}, p99 ${ms(r.survivorLatency.p99)}, max ${ms(r.survivorLatency.max)}; whole calls (failovers included) p50 ${ms(r.callLatency.p50)}, p99 ${ms(r.callLatency.p99)}, max ${ms(r.callLatency.max)}`);
  lines.push(`             ${r.callLatency.overBudget} calls over a switch's ${DEFAULT_OPTIONS.switchBudgetMs} ms budget`);
  for (const p of r.perInstance) {
    lines.push(`  ${p.url.padEnd(24)} ${p.role.padEnd(9)} ${String(p.attempts).padStart(6)} attempts, ${p.ok} ok, ${p.failovers} failed over, ${p.failures} failed; p50 ${ms(p.latency.p50)}, p99 ${ms(p.latency.p99)}`);
  }
  if (r.stopped) {
    const s = r.stopped;
    lines.push(
      `stopped      ${r.targets[s.instance]}: exit ${s.exitCode}; ${s.inFlightAtSigterm} calls in flight at SIGTERM: ${s.inFlightCompleted} answered, ${s.inFlightRefused} refused (503), ${s.inFlightReset} reset`,
    );
    if (s.resetAfterSigterm > 0) {
      lines.push(`             ${s.resetAfterSigterm} sent after SIGTERM (${s.resetSentMsAfterSigterm![0]} to ${s.resetSentMsAfterSigterm![1]} ms after) were reset, and failed over`);
    }
    for (const p of s.probes) lines.push(`             ${p.name}: ${p.status}`);
  }
  if (r.redis) {
    const { upAfterMs, readyAfterMs, writesAckedSince, failover } = r.redis;
    const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
    const up = failover ? `replica 127.0.0.1:${failover.replica} ${failover.promoted ? 'promoted' : 'NOT promoted'}` : 'Redis answering again';
    const ready = readyAfterMs === null ? 'not every instance ready again' : `every instance ready ${s(readyAfterMs)} after`;
    lines.push(`${failover ? 'failover' : 'redis'}`.padEnd(13) + `${up} ${s(upAfterMs)} after the kill, ${ready}; ${writesAckedSince} writes acknowledged since`);
    if (failover) lines.push(`             cluster afterwards (port role): ${failover.nodes}`);
  }
  const w = r.writes;
  lines.push(`writes       ${w.acknowledged} acknowledged of ${w.attempted}; ${w.lost.length} lost, ${w.phantoms.length} refused but made; checked on ${w.verifiedOn.length} instances`);
  lines.push(`             refusals: ${JSON.stringify(w.refused)}; 503s while Redis was up: ${w.refusedWhileRedisUp}`);
  for (const b of [...w.badRefusals, ...w.unacknowledged, ...w.lost, ...w.phantoms].slice(0, 20)) lines.push(`    ${b}`);
  lines.push('');
  lines.push('per second   s  calls  failovers  failures  p99 ms  writes ok/refused');
  for (const p of r.perSecond) {
    lines.push(`           ${String(p.s).padStart(3)} ${String(p.calls).padStart(6)} ${String(p.failovers).padStart(10)} ${String(p.failures).padStart(9)} ${String(p.p99).padStart(7)}  ${p.writesAcked}/${p.writesRefused}`);
  }
  lines.push('');
  for (const c of r.checks) lines.push(`${c.ok ? 'PASS' : c.severity === 'warn' ? 'WARN' : 'FAIL'}  ${c.name}: ${c.detail}`);
  lines.push(r.ok ? 'drill passed' : 'drill FAILED');
  if (r.workDir) lines.push(`\nlogs: ${r.workDir}`);
  return lines.join('\n');
}

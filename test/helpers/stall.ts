import { PerformanceObserver } from 'node:perf_hooks';
import { procCpuMs } from '../../scripts/lib/process';

/**
 * The longest the event loop went without a turn while `work` ran, in ms (a 1 ms timer's gaps).
 * Of a gap, only what this process spent running counts (a loaded machine deschedules it for
 * tens of ms at a time), less the garbage collector's pauses: those are of the test's heap, which
 * may hold a whole import, and on a loaded machine one can take 80 ms whatever the code under test does.
 */
export async function longestOwnStall(work: () => Promise<void>): Promise<number> {
  const pauses: { start: number; end: number }[] = [];
  const gc = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) pauses.push({ start: e.startTime, end: e.startTime + e.duration });
  });
  gc.observe({ entryTypes: ['gc'] });
  const gaps: { start: number; end: number; cpuMs: number }[] = [];
  const cpuMs = () => {
    const { user, system } = process.cpuUsage();
    return (user + system) / 1000;
  };
  let last = performance.now();
  let lastCpu = cpuMs();
  const tick = () => {
    const now = performance.now();
    const cpu = cpuMs();
    if (now - last > 20) gaps.push({ start: last, end: now, cpuMs: cpu - lastCpu });
    last = now;
    lastCpu = cpu;
  };
  const timer = setInterval(tick, 1);
  try {
    await work();
  } finally {
    clearInterval(timer);
    tick();
  }
  // The observer's entries arrive on a later turn.
  await new Promise((resolve) => setTimeout(resolve, 50));
  gc.disconnect();
  const inGc = (g: { start: number; end: number }) => pauses.reduce((sum, p) => sum + Math.max(0, Math.min(p.end, g.end) - Math.max(p.start, g.start)), 0);
  return Math.max(0, ...gaps.map((g) => Math.min(g.end - g.start, g.cpuMs) - inGc(g)));
}

/**
 * CPU time of this process's main thread, ms: the event loop's own work, without the garbage
 * collector's helper threads or the thread pool. Linux's per-thread counters (10 ms ticks);
 * elsewhere the whole process's.
 */
function mainThreadCpuMs(): number {
  try {
    return procCpuMs(`/proc/self/task/${process.pid}/stat`);
  } catch {
    const { user, system } = process.cpuUsage();
    return (user + system) / 1000;
  }
}

/**
 * The calmest of up to `runs` runs of fresh work, by `longestOwnStall`, against a bound that
 * follows the machine: `base` ms, or `share` of the run's own CPU time (the main thread's) when
 * that is more.
 *
 * Code that holds the event loop stalls every run; a busy machine (another process's burst, a
 * concurrent GC thread counted as this process's CPU) stalls one run at random, so the calmest
 * run is judged and a tight bound does not fail by chance. The bases were set on a machine four
 * times faster than some that run these tests, where everything, slices included, takes four
 * times as long; work done in one piece stalls for nearly all of its CPU time, far past any
 * share used here, so a test still tells sliced work from unsliced on any machine. Returns the
 * stall and bound of the run with the least stall for its bound, stopping at the first under.
 */
export async function calmestStallWithin(base: number, share: number, runs: number, work: (run: number) => Promise<void>): Promise<{ stall: number; bound: number }> {
  let best = { stall: Infinity, bound: base };
  for (let run = 0; run < runs; run++) {
    const cpu0 = mainThreadCpuMs();
    const stall = await longestOwnStall(() => work(run));
    const bound = Math.max(base, (mainThreadCpuMs() - cpu0) * share);
    if (stall / bound < best.stall / best.bound) best = { stall, bound };
    if (stall < bound) break;
  }
  return best;
}

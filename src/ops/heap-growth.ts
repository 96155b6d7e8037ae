import { setFlagsFromString } from 'node:v8';

/**
 * How far V8 lets the heap grow past what survived the last full collection before it collects
 * again: at most 25 % more, unless the operator chose otherwise (a --heap-growing-percent
 * or a heap size flag in NODE_OPTIONS or on the command line).
 *
 * V8's own factor, tuned for throughput, is about 2 to 4 on a large machine: in a soak of distinct
 * calls with about 170 MB live, it let the heap reach 440 MB of mostly garbage and the process
 * 570 MB resident. At 25 %, with the bounds of src/state/memory-bounds.ts and a signature
 * thread's isolate, the soak levels off under 256 MB (bench/soak.ts; README, Performance); at
 * 30 % a thread's isolate took it to 254 MB. Full collections come more often, each
 * marking the same bounded live set, mostly concurrently with the event loop; the old
 * generation's garbage is only the stores' evictions, so they stay seconds apart.
 *
 * V8 reads the factor each time it sets the next collection's limit, so setting it at start
 * (first in server.ts, with the thread pool's size) holds for the process's whole life.
 */
export const DEFAULT_HEAP_GROWING_PERCENT = 25;

const OPERATOR_FLAG = /--(heap-growing-percent|max-old-space-size|max-heap-size|max-semi-space-size)\b/;

/** The flag set, or null when the operator's own flags decide. */
export function limitHeapGrowth(execArgv: readonly string[] = process.execArgv, env: NodeJS.ProcessEnv = process.env): string | null {
  if (execArgv.some((a) => OPERATOR_FLAG.test(a)) || OPERATOR_FLAG.test(env.NODE_OPTIONS ?? '')) return null;
  const flag = `--heap-growing-percent=${DEFAULT_HEAP_GROWING_PERCENT}`;
  setFlagsFromString(flag);
  return flag;
}

limitHeapGrowth();

import { availableParallelism } from 'node:os';

/**
 * Sizes libuv's thread pool to the machine's cores unless the operator chose a size. PASSporT
 * signatures are checked there when SHAKEN_VERIFY_THREADS is 0 or a signature thread is lost
 * (see shaken/signature-threads.ts), beside file I/O. libuv's default of four threads on a
 * two-core machine has the pool's threads preempt the event loop itself: measured with
 * bench/shaken-verify.ts, four threads gave 8,400 verifications a second against 9,400 with two.
 *
 * libuv reads UV_THREADPOOL_SIZE once, when the pool first starts, so this module must be
 * imported before anything uses the pool (first in server.ts).
 */
export function sizeThreadPool(env: NodeJS.ProcessEnv = process.env): string {
  env.UV_THREADPOOL_SIZE ??= String(Math.max(2, availableParallelism()));
  return env.UV_THREADPOOL_SIZE;
}

sizeThreadPool();

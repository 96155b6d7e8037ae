/** The calls the bench sends. */

/** The number called in every bench call. */
export const CALLEE = '+442079460999';

let seq = 0;
/**
 * A call as a switch sends it: a distinct valid UK mobile caller (+44 74xx is valid in every
 * completion), so that it misses the verdict cache, and a call id of its own, as real calls have.
 */
export function uniqueCall(extra: object = {}, from?: string, to = CALLEE): string {
  seq = (seq + 1) % 100_000_000;
  return JSON.stringify({ from: from ?? `+4474${String(seq).padStart(8, '0')}`, to, callId: `bench-${seq}`, ...extra });
}

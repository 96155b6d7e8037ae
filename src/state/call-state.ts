import type { BehaviourSignals, Decision } from '../scoring';
import type { BehaviourTracker, ObservedCall } from './ports';
import type { SharedVerdicts, VerdictCache } from './verdict-cache';

/** A verdict cache entry to write along with the call's record. */
export interface VerdictStore<V> {
  shared: SharedVerdicts<V>;
  key: string;
  value: V;
  ttlMs: number;
}

/**
 * A tracker whose Redis command for a call can also carry the shared verdict cache's GET
 * (before the decision) and SET (after it), when the cache lives on the same Redis.
 */
export interface VerdictCarrier extends BehaviourTracker {
  carries<V>(shared: SharedVerdicts<V>): boolean;
  observeFetching<V>(call: ObservedCall, verdict: { shared: SharedVerdicts<V>; key: string } | null): Promise<[V | undefined, BehaviourSignals]>;
  recordStoring<V>(call: ObservedCall, decision: Decision, store: VerdictStore<V> | null): Promise<void>;
}

function carrier<V>(behaviour: BehaviourTracker, shared: SharedVerdicts<V> | undefined): VerdictCarrier | null {
  if (!shared || !('carries' in behaviour)) return null;
  const c = behaviour as VerdictCarrier;
  return c.carries(shared) ? c : null;
}

/**
 * A call's first round trip: the shared verdict cache (when `cache` is given) and the behaviour
 * counters, read together. One command when the tracker carries the cache's read; otherwise the
 * two go out at once, which is still one round trip.
 */
export function observeAndFetch<V>(behaviour: BehaviourTracker, cache: VerdictCache<V> | null, key: string, call: ObservedCall): Promise<[V | undefined, BehaviourSignals]> {
  const shared = cache?.shared;
  const c = carrier(behaviour, shared);
  if (c && shared) return c.observeFetching(call, { shared, key });
  return Promise.all([cache ? cache.fetch(key) : undefined, behaviour.observe(call)]);
}

/**
 * A call's second round trip, after the decision: the record, and the verdict cache entry when
 * there is one to store. Not awaited by the call; never rejects.
 */
export function recordAndStore<V>(
  behaviour: BehaviourTracker,
  call: ObservedCall,
  decision: Decision,
  store: { cache: VerdictCache<V>; key: string; value: V; ttlMs: number } | null,
): void {
  const shared = store?.cache.shared;
  const c = carrier(behaviour, shared);
  if (store && c && shared) {
    void c.recordStoring(call, decision, { shared, key: store.key, value: store.value, ttlMs: store.ttlMs });
    return;
  }
  void behaviour.record(call, decision);
  if (store) void store.cache.set(store.key, store.value, store.ttlMs);
}

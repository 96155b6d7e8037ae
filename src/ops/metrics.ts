import type { FastifyPluginAsync } from 'fastify';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { REASON_CODES, VERDICTS, type Verdict } from '../scoring/reasons';

/**
 * Prometheus metrics, on a registry of the app's own: prom-client's global registry would make
 * a second app in the same process (tests, the bench) fail with "metric already registered".
 *
 * The hot path (one decision, one response) touches only label children bound in advance or
 * cached on first use, so a call costs a Map lookup and an add, never label hashing. Every known
 * label value starts at 0, so `rate()` sees a counter's first increment instead of its birth.
 */

/** What happened to one x5u certificate fetch (a certificate served from cache is no fetch). */
export type CertFetchOutcome =
  /** fetched, and the body parsed as a certificate chain */
  | 'ok'
  /** no answer within SHAKEN_FETCH_TIMEOUT_MS */
  | 'timeout'
  /** connection failure or a non-2xx answer */
  | 'error'
  /** an answer that is not a usable certificate chain */
  | 'invalid';
export const CERT_FETCH_OUTCOMES: readonly CertFetchOutcome[] = ['ok', 'timeout', 'error', 'invalid'];

export interface RegistrySize {
  banks: number;
  numbers: number;
  prefixes: number;
}

export interface RedisState {
  degraded: boolean;
  /** Milliseconds spent degraded in episodes that have ended (`RedisGuard.degradedMsTotal`). */
  degradedMsTotal: number;
  /**
   * Start of the current episode (`RedisGuard.status().degradedSince`), when known: lets the
   * seconds total grow during an outage instead of jumping when it ends.
   */
  degradedSince?: string | number | null;
}

/** Read at scrape time, never on the hot path. */
export interface MetricsReaders {
  registrySize?: () => RegistrySize;
  /** null when the service runs without Redis. */
  redis?: () => RedisState | null;
}

export interface DecisionObservation {
  verdict: Verdict;
  reasons: readonly { code: string }[];
  cached: boolean;
}

export interface MetricsOptions {
  /** Process metrics (CPU, memory, event loop lag, GC), shared by every app in the process. Default true. */
  defaultMetrics?: boolean;
  /** Clock for the degraded-seconds gauge; a test pins it. */
  now?: () => number;
}

export interface Metrics {
  readonly registry: Registry;
  /** One scored call: its verdict, each reason that fired, and whether the verdict cache answered. */
  observeDecision(decision: DecisionObservation): void;
  certFetch(outcome: CertFetchOutcome): void;
  /** A Redis command that failed or timed out (the call went on without it). */
  redisError(): void;
  /** One HTTP response; the `metricsRoutes` hook calls it for every request. */
  observeRequest(method: string, route: string, statusCode: number, seconds: number): void;
  /** Registers the readers that gauges consult at scrape time; later calls replace the readers they name. */
  bind(readers: MetricsReaders): void;
  /** The exposition text and its content type, as served at /metrics. */
  render(): Promise<{ contentType: string; body: string }>;
}

/** Response times of 0.2-10 ms are the norm; the tail up to 1 s is where trouble shows. */
export const HTTP_DURATION_BUCKETS = [0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

/** The `route` label of a request that matched no route: raw URLs would make cardinality unbounded. */
export const UNMATCHED_ROUTE = 'unmatched';

type Child = { inc(value?: number): void };
type HistogramChild = { observe(value: number): void };

/**
 * CPU, memory, event loop and GC belong to the process, not to an app: they are collected once
 * per process (one event-loop histogram, one GC observer however many apps a test builds) and
 * merged into each app's registry.
 */
let processRegistry: Registry | undefined;
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    // At the default 10 ms resolution an idle loop reports 10 ms of "lag"; at 1 ms the floor
    // is 1 ms, well below the latencies worth seeing.
    collectDefaultMetrics({ register: processRegistry, prefix: 'callguard_', eventLoopMonitoringPrecision: 1 });
  }
  return processRegistry;
}

export function createMetrics(opts: MetricsOptions = {}): Metrics {
  const own = new Registry();
  const registers = [own];
  const now = opts.now ?? Date.now;
  let readers: MetricsReaders = {};

  const httpDuration = new Histogram({
    name: 'callguard_http_request_duration_seconds',
    help: 'Time from receiving a request to sending its response, by route template',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: HTTP_DURATION_BUCKETS,
    registers,
  });

  const verdicts = new Counter({
    name: 'callguard_verdicts_total',
    help: 'Calls scored, by verdict',
    labelNames: ['verdict'] as const,
    registers,
  });
  const reasons = new Counter({
    name: 'callguard_reasons_total',
    help: 'Reasons that fired on scored calls, by reason code',
    labelNames: ['code'] as const,
    registers,
  });
  const cacheLookups = new Counter({
    name: 'callguard_verdict_cache_lookups_total',
    help: 'Verdict cache lookups on scored calls, by result (hit or miss; every call is a miss when the cache is off)',
    labelNames: ['result'] as const,
    registers,
  });
  const certFetches = new Counter({
    name: 'callguard_shaken_cert_fetches_total',
    help: 'x5u certificate fetches, by outcome (ok, timeout, error, invalid)',
    labelNames: ['outcome'] as const,
    registers,
  });
  const redisErrors = new Counter({
    name: 'callguard_redis_errors_total',
    help: 'Redis commands that failed or timed out',
    registers,
  });

  new Gauge({
    name: 'callguard_redis_degraded',
    help: '1 while Redis is unavailable and the service runs on in-process state, else 0 (also 0 without Redis)',
    registers,
    collect() {
      this.set(readers.redis?.()?.degraded ? 1 : 0);
    },
  });
  new Gauge({
    name: 'callguard_redis_degraded_seconds_total',
    help: 'Seconds spent running degraded without Redis since start',
    registers,
    collect() {
      this.set(degradedSeconds(readers.redis?.() ?? null, now()));
    },
  });

  const sizeGauge = (key: keyof RegistrySize, help: string) =>
    new Gauge({
      name: `callguard_registry_${key}`,
      help,
      registers,
      collect() {
        const size = readers.registrySize?.();
        if (size) this.set(size[key]);
      },
    });
  sizeGauge('banks', 'Banks in the number registry');
  sizeGauge('numbers', 'Single numbers in the number registry');
  sizeGauge('prefixes', 'Number prefixes (ranges) in the number registry');

  const registry = opts.defaultMetrics === false ? own : Registry.merge([own, processMetrics()]);

  const verdictChildren = new Map<string, Child>(VERDICTS.map((v) => [v, verdicts.labels(v)]));
  const reasonChildren = new Map<string, Child>(REASON_CODES.map((c) => [c, reasons.labels(c)]));
  const certChildren = new Map<string, Child>(CERT_FETCH_OUTCOMES.map((o) => [o, certFetches.labels(o)]));
  const cacheHit = cacheLookups.labels('hit');
  const cacheMiss = cacheLookups.labels('miss');
  for (const child of [...verdictChildren.values(), ...reasonChildren.values(), ...certChildren.values(), cacheHit, cacheMiss]) {
    child.inc(0);
  }
  const httpChildren = new Map<string, HistogramChild>();

  // Values outside the known sets (a reason code added later) still count, bound on first use.
  const child = (map: Map<string, Child>, counter: Counter<string>, value: string): Child => {
    let c = map.get(value);
    if (!c) {
      c = counter.labels(value);
      map.set(value, c);
    }
    return c;
  };

  return {
    registry,
    observeDecision({ verdict, reasons: fired, cached }) {
      child(verdictChildren, verdicts, verdict).inc();
      for (const reason of fired) child(reasonChildren, reasons, reason.code).inc();
      (cached ? cacheHit : cacheMiss).inc();
    },
    certFetch(outcome) {
      child(certChildren, certFetches, outcome).inc();
    },
    redisError() {
      redisErrors.inc();
    },
    observeRequest(method, route, statusCode, seconds) {
      const key = `${method} ${statusCode} ${route}`;
      let h = httpChildren.get(key);
      if (!h) {
        h = httpDuration.labels(method, route, String(statusCode));
        httpChildren.set(key, h);
      }
      h.observe(seconds);
    },
    bind(next) {
      readers = { ...readers, ...next };
    },
    async render() {
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
  };
}

function degradedSeconds(state: RedisState | null, nowMs: number): number {
  if (!state) return 0;
  let ms = state.degradedMsTotal;
  if (state.degraded && state.degradedSince != null) {
    const since = typeof state.degradedSince === 'number' ? state.degradedSince : Date.parse(state.degradedSince);
    if (Number.isFinite(since) && nowMs > since) ms += nowMs - since;
  }
  return ms / 1000;
}

export interface MetricsRoutesOptions {
  metrics: Metrics;
}

/**
 * `GET /metrics` and the request-latency hook. Registered without encapsulation (the
 * `skip-override` mark that fastify-plugin sets) so the hook sees every route of the app, not
 * only the ones inside this plugin (fastify attaches hooks at `ready`, so routes registered
 * before this plugin are timed too).
 */
export const metricsRoutes: FastifyPluginAsync<MetricsRoutesOptions> = async (app, { metrics }) => {
  app.addHook('onResponse', async (request, reply) => {
    // A request that matched no route has no template; its raw URL must never become a label.
    const route = request.routeOptions.url ?? UNMATCHED_ROUTE;
    metrics.observeRequest(request.method, route, reply.statusCode, reply.elapsedTime / 1000);
  });

  app.get(
    '/metrics',
    {
      schema: {
        tags: ['ops'],
        summary: 'Prometheus metrics',
        description:
          'Prometheus text exposition: request latency per route, verdicts, reasons, verdict cache hits, certificate ' +
          'fetches, Redis errors and degraded time, registry size, and process metrics. All names start with `callguard_`.',
      },
    },
    async (_request, reply) => {
      const { contentType, body } = await metrics.render();
      return reply.type(contentType).send(body);
    },
  );
};
Object.assign(metricsRoutes, { [Symbol.for('skip-override')]: true, [Symbol.for('fastify.display-name')]: 'callguard-metrics' });

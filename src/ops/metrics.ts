import type { FastifyPluginAsync } from 'fastify';
import { collectDefaultMetrics, Counter, Gauge, Registry, type Metric } from 'prom-client';
import { listenForMetrics, type MetricsListener } from './metrics-listener';
import { PACKAGE_INFO } from '../config';
import { REASON_CODES, VERDICTS, type Verdict } from '../scoring/reasons';
import {
  CERT_FETCH_OUTCOMES,
  CRL_FETCH_OUTCOMES,
  SHAKEN_ERROR_CODES,
  type CertFetchOutcome,
  type CrlFetchOutcome,
  type ShakenErrorCode,
  type Verstat,
} from '../shaken/types';

/**
 * Prometheus metrics, on a registry of the app's own: prom-client's global registry would make
 * a second app in the same process (tests, the bench) fail with "metric already registered".
 *
 * The hot path (one decision, one response) adds to plain numbers and never calls prom-client:
 * prom-client hashes and validates the label set on every inc() and observe(), even through a
 * child bound with labels(), which measured about 1 µs per call here, several percent of a
 * cached score. The numbers are handed to prom-client when Prometheus scrapes. Every known label
 * value starts at 0, so `rate()` sees a counter's first increment instead of its birth.
 */


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
  /** The STI-CA roots in force. */
  trustAnchors?: () => TrustAnchorsState;
  /** Trusted certificate chains in the in-memory x5u cache, as of `nowMs`. */
  certCache?: (nowMs: number) => CachedCertsState;
}

export interface TrustAnchorsState {
  count: number;
  /** The soonest notAfter among them (ms); null when there is none. */
  soonestExpiryMs: number | null;
}

export interface CachedCertsState {
  trusted: number;
  /** The soonest end of a cached chain's validity (ms); null when none is cached. */
  soonestExpiryMs: number | null;
  /** Chains whose validity ends within CACHED_CERT_EXPIRY_WINDOW_MS. */
  expiringSoon: number;
}

/** Cached chains ending within this count as expiring soon (callguard_shaken_cached_certs_expiring_soon). */
export const CACHED_CERT_EXPIRY_WINDOW_MS = 7 * 86_400_000;

export const TRUST_ANCHOR_RELOAD_OUTCOMES = ['ok', 'rejected'] as const;
export type TrustAnchorReloadOutcome = (typeof TRUST_ANCHOR_RELOAD_OUTCOMES)[number];

export interface DecisionObservation {
  verdict: Verdict;
  reasons: readonly { code: string }[];
  cached: boolean;
}

export const ANNOUNCEMENT_ACTIONS = ['created', 'withdrawn'] as const;
export type AnnouncementAction = (typeof ANNOUNCEMENT_ACTIONS)[number];

/** Why a request was refused for its key: none sent, one that matches no key, or a key whose role may not use the route. */
export const AUTH_FAILURE_REASONS = ['missing', 'invalid', 'forbidden'] as const;
export type AuthFailureReason = (typeof AUTH_FAILURE_REASONS)[number];

/** The roles a rate limit applies to (switch keys are never limited); `none` for a route that names no role. */
export const RATE_LIMITED_ROLES = ['bank', 'admin', 'none'] as const;
/** A key's role as the rate limiter sees it: `switch` is accepted for the type's sake and never limited. */
export type RateLimitedRole = (typeof RATE_LIMITED_ROLES)[number] | 'switch';

export const VERSTATS: readonly Verstat[] = ['TN-Validation-Passed', 'TN-Validation-Failed', 'No-TN-Validation'];

export interface VerificationObservation {
  verstat: Verstat;
  errors: readonly ShakenErrorCode[];
}

/** What `callguard_build_info` says of the running code. */
export interface BuildInfo {
  version: string;
  /** The source commit, when the build was told it (BUILD_COMMIT). */
  commit?: string | undefined;
}

export interface MetricsOptions {
  /** Process metrics (CPU, memory, event loop lag, GC), shared by every app in the process. Default true. */
  defaultMetrics?: boolean;
  /** Clock for the degraded-seconds gauge; a test pins it. */
  now?: () => number;
  /** Defaults to package.json's version and no commit. */
  build?: BuildInfo;
}

export interface Metrics {
  readonly registry: Registry;
  /** One scored call: its verdict, each reason that fired, and whether the verdict cache answered. */
  observeDecision(decision: DecisionObservation): void;
  certFetch(outcome: CertFetchOutcome): void;
  /** How one CRL fetch ended. */
  crlFetch(outcome: CrlFetchOutcome): void;
  /** A trusted chain judged without one of its CRLs (failed or not, as SHAKEN_CRL_REQUIRED says). */
  crlUnavailable(): void;
  /** A Redis command that failed or timed out (the call went on without it). */
  redisError(): void;
  /** An announced bank call made or withdrawn (calls that matched one, or did not, are counted by reason). */
  announcement(action: AnnouncementAction): void;
  /** A re-read of SHAKEN_TRUST_ANCHORS: `ok` (in force, or unchanged) or `rejected` (the old set kept). */
  trustAnchorReload(outcome: TrustAnchorReloadOutcome): void;
  /** An API request refused with 503 because the event loop is overloaded. */
  loadShed(): void;
  /** An API request refused with 429 for its key's rate limit; `role` is the key's (`none` on a route without roles). */
  rateLimited(role: RateLimitedRole): void;
  /** An API request refused with 401 (`missing`, `invalid` key) or 403 (`forbidden`). */
  authFailure(reason: AuthFailureReason): void;
  /** One PASSporT verification's result: its verstat and each error code it gave. */
  shakenVerification(result: VerificationObservation): void;
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

/** One label value's running total: a plain number on the hot path. */
interface Tally {
  total: number;
  pushed: number;
  readonly labels: Record<string, string>;
}

/**
 * A prom-client Counter fed from tallies: `tally(value).total++` on the hot path, and at scrape
 * time each tally's growth since the last scrape goes into the Counter, through its public API.
 */
class TallyCounter {
  private readonly tallies = new Map<string, Tally>();
  private readonly counter: Counter<string>;
  private readonly labelName: string | undefined;

  constructor(opts: { name: string; help: string; labelName?: string; known?: readonly string[]; registers: Registry[] }) {
    const tallies = this.tallies;
    this.labelName = opts.labelName;
    this.counter = new Counter({
      name: opts.name,
      help: opts.help,
      labelNames: opts.labelName ? [opts.labelName] : [],
      registers: opts.registers,
      collect() {
        for (const t of tallies.values()) {
          if (t.total > t.pushed) {
            this.inc(t.labels, t.total - t.pushed);
            t.pushed = t.total;
          }
        }
      },
    });
    for (const value of opts.known ?? ['']) this.tally(value);
  }

  /** The tally of one label value; a value outside the known set (a reason code added later) gets one on first use. */
  tally(value: string): Tally {
    let t = this.tallies.get(value);
    if (!t) {
      t = { total: 0, pushed: 0, labels: this.labelName ? { [this.labelName]: value } : {} };
      this.tallies.set(value, t);
      this.counter.inc(t.labels, 0);
    }
    return t;
  }
}

interface LatencySeries {
  labels: Record<string, string>;
  /** Observations per bucket, not cumulative; the last slot is above the largest bound. */
  counts: Float64Array;
  sum: number;
  count: number;
}

/**
 * The request-latency histogram, counted in typed arrays. prom-client's Histogram has no way
 * to take counts made elsewhere, so this is a metric of its own: the registry needs from a
 * metric only its name, help, type, `get()` (the values in prom-client's format) and `reset()`.
 */
class LatencyHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly series: LatencySeries[] = [];
  /**
   * route -> status -> method -> series. Nested maps, not one map on a joined key: the route
   * and method strings are the same objects on every request, so their hashes are cached,
   * where building a key string would allocate and hash it on every request.
   */
  private readonly index = new Map<string, Map<number, Map<string, LatencySeries>>>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly bounds: readonly number[],
  ) {}

  observe(method: string, route: string, statusCode: number, seconds: number): void {
    let byStatus = this.index.get(route);
    if (!byStatus) this.index.set(route, (byStatus = new Map()));
    let byMethod = byStatus.get(statusCode);
    if (!byMethod) byStatus.set(statusCode, (byMethod = new Map()));
    let s = byMethod.get(method);
    if (!s) {
      s = { labels: { method, route, status_code: String(statusCode) }, counts: new Float64Array(this.bounds.length + 1), sum: 0, count: 0 };
      byMethod.set(method, s);
      this.series.push(s);
    }
    const { bounds } = this;
    let i = 0;
    while (i < bounds.length && seconds > bounds[i]!) i++;
    s.counts[i]!++;
    s.sum += seconds;
    s.count++;
  }

  async get() {
    const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = [];
    for (const s of this.series) {
      let acc = 0;
      this.bounds.forEach((le, i) => {
        acc += s.counts[i]!;
        values.push({ labels: { le, ...s.labels }, value: acc, metricName: `${this.name}_bucket` });
      });
      values.push({ labels: { le: '+Inf', ...s.labels }, value: s.count, metricName: `${this.name}_bucket` });
      values.push({ labels: s.labels, value: s.sum, metricName: `${this.name}_sum` });
      values.push({ labels: s.labels, value: s.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    this.series.length = 0;
    this.index.clear();
  }
}

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
    // No prefix: `process_*` and `nodejs_*` are the names every Node dashboard and alert expects.
    collectDefaultMetrics({ register: processRegistry, eventLoopMonitoringPrecision: 1 });
  }
  return processRegistry;
}

export function createMetrics(opts: MetricsOptions = {}): Metrics {
  const own = new Registry();
  const registers = [own];
  const now = opts.now ?? Date.now;
  let readers: MetricsReaders = {};

  const httpDuration = new LatencyHistogram(
    'callguard_http_request_duration_seconds',
    'Time from receiving a request to sending its response, by route template',
    HTTP_DURATION_BUCKETS,
  );
  own.registerMetric(httpDuration as unknown as Metric);

  const verdicts = new TallyCounter({
    name: 'callguard_verdicts_total',
    help: 'Calls scored, by verdict',
    labelName: 'verdict',
    known: VERDICTS,
    registers,
  });
  const reasons = new TallyCounter({
    name: 'callguard_reasons_total',
    help: 'Reasons that fired on scored calls, by reason code',
    labelName: 'code',
    known: REASON_CODES,
    registers,
  });
  const cacheLookups = new TallyCounter({
    name: 'callguard_verdict_cache_lookups_total',
    help: 'Verdict cache lookups on scored calls, by result (hit or miss; every call is a miss when the cache is off)',
    labelName: 'result',
    known: ['hit', 'miss'],
    registers,
  });
  const certFetches = new TallyCounter({
    name: 'callguard_shaken_cert_fetches_total',
    help: 'x5u certificate fetches, by outcome (ok, timeout, error, invalid)',
    labelName: 'outcome',
    known: CERT_FETCH_OUTCOMES,
    registers,
  });
  const crlFetches = new TallyCounter({
    name: 'callguard_shaken_crl_fetches_total',
    help: 'CRL fetches, by outcome (ok, timeout, error, invalid, stale: past its nextUpdate)',
    labelName: 'outcome',
    known: CRL_FETCH_OUTCOMES,
    registers,
  });
  const crlUnavailable = new TallyCounter({
    name: 'callguard_shaken_crl_unavailable_total',
    help: 'Certificate chains checked without one of their CRLs (CERT_REVOKED when SHAKEN_CRL_REQUIRED, else judged on the rest)',
    registers,
  }).tally('');
  const redisErrors = new TallyCounter({
    name: 'callguard_redis_errors_total',
    help: 'Redis commands that failed or timed out',
    registers,
  }).tally('');

  const loadShed = new TallyCounter({
    name: 'callguard_load_shed_total',
    help: 'API requests refused with 503 because the event loop was overloaded (LOAD_SHED_EVENT_LOOP_DELAY_MS)',
    registers,
  }).tally('');
  const rateLimited = new TallyCounter({
    name: 'callguard_rate_limited_total',
    help: 'API requests refused with 429 for their key\'s rate limit, by the key\'s role',
    labelName: 'role',
    known: RATE_LIMITED_ROLES,
    registers,
  });
  const authFailures = new TallyCounter({
    name: 'callguard_auth_failures_total',
    help: 'API requests refused for their key, by reason: missing (401, no key), invalid (401, no such key), forbidden (403, the key\'s role may not use the route)',
    labelName: 'reason',
    known: AUTH_FAILURE_REASONS,
    registers,
  });
  const verifications = new TallyCounter({
    name: 'callguard_shaken_verifications_total',
    help: 'PASSporT verifications (calls scored with an Identity, and POST /stir/v1/verification), by verstat',
    labelName: 'verstat',
    known: VERSTATS,
    registers,
  });
  const verificationErrors = new TallyCounter({
    name: 'callguard_shaken_verification_errors_total',
    help: 'Error codes given by PASSporT verifications, by code (one verification may give several)',
    labelName: 'code',
    known: SHAKEN_ERROR_CODES,
    registers,
  });

  const build = opts.build ?? { version: PACKAGE_INFO.version };
  new Gauge({
    name: 'callguard_build_info',
    help: 'Always 1; its labels say which build runs: version (package.json), node (the Node.js version) and, when known, commit',
    labelNames: ['version', 'node', ...(build.commit ? ['commit'] : [])],
    registers,
  }).set({ version: build.version, node: process.version, ...(build.commit ? { commit: build.commit } : {}) }, 1);

  const announcements = new TallyCounter({
    name: 'callguard_announcements_total',
    help: 'Announced bank calls, by action (created, withdrawn); calls that matched one are callguard_reasons_total{code="BANK_CALL_EXPECTED"}, unannounced ones BANK_CALL_UNEXPECTED',
    labelName: 'action',
    known: ANNOUNCEMENT_ACTIONS,
    registers,
  });

  const anchorReloads = new TallyCounter({
    name: 'callguard_shaken_trust_anchor_reloads_total',
    help: 'Re-reads of SHAKEN_TRUST_ANCHORS (SIGHUP, file change), by outcome: ok (new set in force, or unchanged), rejected (broken set, old one kept)',
    labelName: 'outcome',
    known: TRUST_ANCHOR_RELOAD_OUTCOMES,
    registers,
  });
  new Gauge({
    name: 'callguard_shaken_trust_anchors',
    help: 'STI-CA root certificates in force (SHAKEN_TRUST_ANCHORS)',
    registers,
    collect() {
      const state = readers.trustAnchors?.();
      if (state) this.set(state.count);
    },
  });
  new Gauge({
    name: 'callguard_shaken_trust_anchor_expiry_seconds',
    help: 'Seconds until the soonest STI-CA root in force expires (negative once it has); absent without anchors',
    registers,
    collect() {
      this.reset();
      const soonest = readers.trustAnchors?.().soonestExpiryMs;
      if (soonest != null && Number.isFinite(soonest)) this.set((soonest - now()) / 1000);
    },
  });
  const cachedCerts = () => readers.certCache?.(now());
  new Gauge({
    name: 'callguard_shaken_cached_certs',
    help: 'Trusted x5u certificate chains in the in-memory cache',
    registers,
    collect() {
      const state = cachedCerts();
      if (state) this.set(state.trusted);
    },
  });
  new Gauge({
    name: 'callguard_shaken_cached_cert_expiry_seconds',
    help: 'Seconds until the soonest cached trusted certificate chain stops being valid; absent when none is cached',
    registers,
    collect() {
      this.reset();
      const soonest = cachedCerts()?.soonestExpiryMs;
      if (soonest != null && Number.isFinite(soonest)) this.set((soonest - now()) / 1000);
    },
  });
  new Gauge({
    name: 'callguard_shaken_cached_certs_expiring_soon',
    help: 'Cached trusted certificate chains that stop being valid within 7 days',
    registers,
    collect() {
      const state = cachedCerts();
      if (state) this.set(state.expiringSoon);
    },
  });

  new Gauge({
    name: 'callguard_redis_degraded',
    help: '1 while Redis is unavailable and the service runs on in-process state, else 0 (also 0 without Redis)',
    registers,
    collect() {
      this.set(readers.redis?.()?.degraded ? 1 : 0);
    },
  });
  // A counter, since the time only grows; its value is read from the guard at scrape time.
  let degradedPushed = 0;
  new Counter({
    name: 'callguard_redis_degraded_seconds_total',
    help: 'Seconds spent running degraded without Redis since start',
    registers,
    collect() {
      // The guard adds an ended episode by its own clock, which may read a little below the
      // last scrape's estimate: never let that show as a decrease.
      const seconds = degradedSeconds(readers.redis?.() ?? null, now());
      if (seconds > degradedPushed) {
        this.inc(seconds - degradedPushed);
        degradedPushed = seconds;
      }
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

  const cacheHit = cacheLookups.tally('hit');
  const cacheMiss = cacheLookups.tally('miss');

  return {
    registry,
    observeDecision({ verdict, reasons: fired, cached }) {
      verdicts.tally(verdict).total++;
      for (const reason of fired) reasons.tally(reason.code).total++;
      (cached ? cacheHit : cacheMiss).total++;
    },
    certFetch(outcome) {
      certFetches.tally(outcome).total++;
    },
    crlFetch(outcome) {
      crlFetches.tally(outcome).total++;
    },
    crlUnavailable() {
      crlUnavailable.total++;
    },
    redisError() {
      redisErrors.total++;
    },
    announcement(action) {
      announcements.tally(action).total++;
    },
    trustAnchorReload(outcome) {
      anchorReloads.tally(outcome).total++;
    },
    loadShed() {
      loadShed.total++;
    },
    rateLimited(role) {
      rateLimited.tally(role).total++;
    },
    authFailure(reason) {
      authFailures.tally(reason).total++;
    },
    shakenVerification({ verstat, errors }) {
      verifications.tally(verstat).total++;
      for (const code of errors) verificationErrors.tally(code).total++;
    },
    observeRequest(method, route, statusCode, seconds) {
      httpDuration.observe(method, route, statusCode, seconds);
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
  /**
   * Serve `GET /metrics` on a listener of its own (METRICS_PORT) instead of on the app: opened
   * when the app is ready, closed with it. The request-latency hook stays on the app either way.
   */
  ownListener?: { host: string; port: number };
}

/**
 * `GET /metrics` and the request-latency hook. Registered without encapsulation (the
 * `skip-override` mark that fastify-plugin sets) so the hook sees every route of the app, not
 * only the ones inside this plugin (fastify attaches hooks at `ready`, so routes registered
 * before this plugin are timed too).
 */
export const metricsRoutes: FastifyPluginAsync<MetricsRoutesOptions> = async (app, { metrics, ownListener }) => {
  // A callback hook, not an async one: no promise per request.
  app.addHook('onResponse', (request, reply, done) => {
    // A request that matched no route has no template; its raw URL must never become a label.
    const route = request.is404 ? UNMATCHED_ROUTE : (request.routeOptions.url ?? UNMATCHED_ROUTE);
    metrics.observeRequest(request.method, route, reply.statusCode, reply.elapsedTime / 1000);
    done();
  });

  if (ownListener) {
    let listener: MetricsListener | undefined;
    // At ready rather than at listen: a port already taken then fails the start, where an
    // onListen hook's error would only be logged.
    app.addHook('onReady', async () => {
      listener = await listenForMetrics(metrics, ownListener.host, ownListener.port);
      app.log.info({ host: ownListener.host, port: listener.port }, 'metrics served on their own port (METRICS_PORT)');
    });
    app.addHook('onClose', async () => {
      await listener?.close();
    });
    return;
  }

  app.get(
    '/metrics',
    {
      schema: {
        operationId: 'getMetrics',
        tags: ['ops'],
        summary: 'Prometheus metrics',
        description:
          'Prometheus text exposition: request latency per route, verdicts, reasons, verdict cache hits, load shedding, ' +
          'rate limiting, authentication failures, PASSporT verification results, certificate and CRL fetches, STI-CA ' +
          'trust anchors (count, soonest expiry, reloads) and cached certificates nearing expiry, Redis errors and degraded ' +
          'time, registry size, announced calls and the build (`callguard_*`), and Node\'s process metrics (`process_*`, ' +
          '`nodejs_*`). Not served here when METRICS_PORT gives the metrics a port of their own.',
        response: {
          200: {
            description: 'The metrics, in the Prometheus text exposition format',
            content: {
              'text/plain': {
                schema: {
                  type: 'string',
                  example:
                    '# HELP callguard_verdicts_total Verdicts given, by verdict\n# TYPE callguard_verdicts_total counter\ncallguard_verdicts_total{verdict="block"} 2\n',
                },
              },
            },
          },
        },
      },
    },
    async (_request, reply) => {
      const { contentType, body } = await metrics.render();
      return reply.type(contentType).send(body);
    },
  );
};
Object.assign(metricsRoutes, { [Symbol.for('skip-override')]: true, [Symbol.for('fastify.display-name')]: 'callguard-metrics' });

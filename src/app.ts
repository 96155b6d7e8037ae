import Fastify, { LogController, type FastifyInstance } from 'fastify';
import type Redis from 'ioredis';
import { CallAssessor } from './calls/assess';
import type { Evidence } from './calls/evidence';
import { loadConfig, type Config } from './config';
import { api } from './http/api';
import { KeyRing } from './http/auth';
import { registerDocs } from './http/docs';
import { registerErrorHandling } from './http/errors';
import { healthRoutes } from './ops/health';
import { createMetrics, metricsRoutes, type Metrics, type MetricsOptions } from './ops/metrics';
import { loggerOptions } from './ops/logger';
import { loadNumbering } from './numbering';
import { FileRegistryBackend, findInvalidNumbers, loadRegistryFile, type NumberTable, RedisRegistryBackend, RegistryStore } from './registry';
import { DEFAULT_POLICY, policyVersion, type Policy } from './scoring';
import { createShakenVerifier, loadTrustAnchors } from './shaken';
import type { CertificateFetcher, ShakenVerifier } from './shaken/types';
import { Behaviour } from './calls/behaviour';
import type { BehaviourStore } from './state/ports';
import { MemoryCallState } from './state/memory/call-state';
import { RedisCallState } from './state/redis/call-state';
import { createRedisClient, RedisGuard, whenReady } from './state/redis/client';

/** What routes reach through `app.services`: one home for every dependency of a request. */
export interface Services {
  config: Config;
  assessor: CallAssessor;
  registryStore: RegistryStore;
  /** Numbers of the seed registry found invalid by the numbering-plan check after start; null until it ends. */
  registryCheck: { invalidNumbers: number | null };
  keys: KeyRing;
  metrics: Metrics;
  behaviour: BehaviourStore;
  now: () => number;
  verifier: ShakenVerifier;
  redisGuard: RedisGuard | null;
  policy: Policy;
}

declare module 'fastify' {
  interface FastifyInstance {
    services: Services;
  }
}

/** Everything a test, the bench or the server may hand in instead of the defaults. */
export interface BuildOptions {
  /** Defaults to `loadConfig(env)`. */
  config?: Config;
  env?: NodeJS.ProcessEnv;
  /** Milliseconds since the epoch; a test pins it. */
  now?: () => number;
  certFetcher?: CertificateFetcher;
  /** An existing Redis client (tests); otherwise one is made from REDIS_URL. */
  redis?: Redis;
  policy?: Policy;
  behaviour?: Behaviour<Evidence>;
  metrics?: MetricsOptions;
  /** Pino options, `false` for silence (tests). Defaults to the config's log level. */
  logger?: boolean | object;
}

/** How long a registry change may take in Redis before it is reported as not confirmed. */
const REGISTRY_COMMAND_TIMEOUT_MS = 5000;
/** How long the start waits for Redis before serving the seed registry and catching up later. */
const REGISTRY_CONNECT_WAIT_MS = 3000;

/**
 * Checks the seed registry's numbers against the numbering plan in the background, slice by
 * slice: an E.164-shaped number that no plan allows is most likely a typo in a bank's entry,
 * and the operator must hear of it, but a million numbers must not hold the start. It begins
 * once the app is ready, so its slices do not lengthen the start itself, and walks the seed's
 * compact table, which is never changed in place, so edits made meanwhile cannot upset it.
 */
function checkSeedNumbers(app: FastifyInstance, numbers: NumberTable, defaultCountry: string): { invalidNumbers: number | null } {
  const status: { invalidNumbers: number | null } = { invalidNumbers: null };
  app.addHook('onReady', async () => {
    void findInvalidNumbers(numbers, defaultCountry, 250).then((invalid) => {
      status.invalidNumbers = invalid.length;
      if (invalid.length === 0) return;
      app.log.warn(
        { count: invalid.length, first: invalid.slice(0, 50).map((e) => ({ number: e.key, bankId: e.bankId })) },
        'registry numbers that are not valid in the numbering plan: check them for typos',
      );
    }, (err: unknown) => app.log.error({ err }, 'registry numbering-plan check failed'));
  });
  return status;
}

/** The app factory, used alike by the server, the tests and the benchmark. */
export async function buildApp(opts: BuildOptions = {}): Promise<FastifyInstance> {
  const config = opts.config ?? loadConfig(opts.env ?? process.env);
  const now = opts.now ?? Date.now;
  const policy = opts.policy ?? DEFAULT_POLICY;

  const app = Fastify({
    logger: opts.logger === undefined ? loggerOptions(config.logLevel) : opts.logger,
    bodyLimit: config.bodyLimitBytes,
    requestIdHeader: 'x-request-id',
    // Per-request access logs at 50k calls a second would cost more than the scoring; metrics
    // count requests, and errors are logged where they happen.
    logController: new LogController({ disableRequestLogging: true }),
    // Switches keep connections open for hours; keep them alive longer than their pools do.
    keepAliveTimeout: 75_000,
    requestTimeout: config.requestTimeoutMs,
    // Node enforces requestTimeout only when it sweeps its connections, every 30 s by default:
    // a body trickled in a byte at a time would hold its socket and its parser three times the
    // promise. Swept every second, a request that has not fully arrived is cut off (408) on time.
    http: { requestTimeout: config.requestTimeoutMs, headersTimeout: config.requestTimeoutMs, connectionsCheckingInterval: 1000 },
    return503OnClosing: true,
    ajv: { customOptions: { coerceTypes: false } },
  });
  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });

  // Everything read from files comes first: a bad file stops the start before a Redis client
  // (which reconnects forever) exists to be left behind.
  const keys = config.apiKeysFile ? KeyRing.fromFile(config.apiKeysFile) : KeyRing.open();
  // The seed is read (and validated) even when a backend already holds the registry, so a
  // broken REGISTRY_FILE is reported at start rather than on the day Redis is emptied.
  const seed = loadRegistryFile(config.registryFile, config.defaultCountry);
  const numbering = config.numberingDataDir ? loadNumbering(config.numberingDataDir) : null;
  const trustAnchors = config.shaken.trustAnchors ? loadTrustAnchors(config.shaken.trustAnchors) : [];

  const redis = opts.redis ?? (config.redisUrl ? createRedisClient(config.redisUrl, { commandTimeoutMs: config.redisCommandTimeoutMs, cluster: config.redisCluster }) : null);
  if (redis) redis.on('error', (err: Error) => app.log.debug({ err: err.message }, 'redis connection error'));
  const metrics = createMetrics(opts.metrics ?? {});
  const redisGuard = redis ? new RedisGuard(redis, app.log, { onError: () => metrics.redisError() }) : null;

  // The registry's writes get a connection of their own with a patient timeout: a change
  // that Redis applies after a 50 ms hot-path timeout would be answered "nothing was changed".
  const registryRedis = redis && !opts.redis ? createRedisClient(config.redisUrl!, { commandTimeoutMs: REGISTRY_COMMAND_TIMEOUT_MS, cluster: config.redisCluster }) : redis;
  if (registryRedis && registryRedis !== redis) registryRedis.on('error', (err: Error) => app.log.debug({ err: err.message }, 'redis connection error (registry)'));
  // Its first load must not mistake "not connected yet" for "Redis is down".
  if (registryRedis) await whenReady(registryRedis, REGISTRY_CONNECT_WAIT_MS);
  const backend = registryRedis ? new RedisRegistryBackend(registryRedis, { log: app.log }) : new FileRegistryBackend(config.registryDataDir, config.defaultCountry);
  const registry = await RegistryStore.open(backend, () => seed, app.log);
  const registryCheck = checkSeedNumbers(app, seed.data.numbers, config.defaultCountry);
  app.log.info({ backend: backend.name, seed: seed.source, version: registry.version, ...registry.index.size }, 'registry loaded');

  const verifier = createShakenVerifier({
    trustAnchors,
    ...(opts.certFetcher ? { fetcher: opts.certFetcher } : {}),
    allowInsecure: config.shaken.allowInsecureX5u,
    maxAgeS: config.shaken.maxAgeS,
    fetchTimeoutMs: config.shaken.fetchTimeoutMs,
    ...(redis ? { redis } : {}),
    logger: app.log,
    onCertFetch: (outcome) => metrics.certFetch(outcome),
  });

  // State across calls and the verdict cache: in-process always (warm when Redis fails), Redis
  // shared when configured.
  const replayTtlS = 2 * config.shaken.maxAgeS;
  const stateOptions = { replayTtlS, reportsMaxAgeS: policy.reports.maxAgeS };
  const localState = new MemoryCallState<Evidence>({ ...stateOptions, verdictCacheSize: config.verdictCache.size });
  const behaviour =
    opts.behaviour ?? new Behaviour<Evidence>(redisGuard ? new RedisCallState(redisGuard, { ...stateOptions, fallback: localState }) : localState, policy);

  const assessor = new CallAssessor({
    defaultCountry: config.defaultCountry,
    registry: () => registry.index,
    verifier,
    cacheTtlMs: config.verdictCache.ttlS * 1000,
    policy,
    // Cached assessments carry the numbering result, so its data version is part of the key too.
    policyVersion: numbering ? `${policyVersion(policy)}+${numbering.version}` : policyVersion(policy),
    numbering,
    maxPassportAgeS: config.shaken.maxAgeS,
    verifyPassports: config.shaken.verify,
    now,
    behaviour,
  });

  app.decorate('services', {
    config,
    assessor,
    registryStore: registry,
    registryCheck,
    keys,
    metrics,
    behaviour,
    now,
    verifier,
    redisGuard,
    policy,
  } satisfies Services);

  metrics.bind({
    registrySize: () => registry.index.size,
    redis: () => (redisGuard ? { ...redisGuard.status(), degradedMsTotal: redisGuard.degradedMsTotal } : null),
  });

  registerErrorHandling(app);
  await registerDocs(app);
  await app.register(metricsRoutes, { metrics });
  await app.register(healthRoutes);
  await app.register(api);
  if (config.benchBaselineRoute) {
    // Same server, same hooks, same JSON body parsing, no work: what every path is measured against.
    app.post('/bench/baseline', { schema: { hide: true } }, async () => ({ ok: true }));
  }

  app.addHook('onClose', async () => {
    await registry.close();
    // Only a client this app made is this app's to close.
    if (redis && !opts.redis) redis.disconnect();
    if (registryRedis && registryRedis !== redis) registryRedis.disconnect();
  });
  return app;
}

import type { X509Certificate } from 'node:crypto';
import type Redis from 'ioredis';
import { Cluster } from 'ioredis';
import pino, { type Logger } from 'pino';
import { CallAssessor } from './calls/assess';
import type { Evidence } from './calls/evidence';
import { PACKAGE_INFO, type Config } from './config';
import { loggerOptions } from './ops/logger';
import { CACHED_CERT_EXPIRY_WINDOW_MS, createMetrics, type Metrics } from './ops/metrics';
import { statusSummary, type StatusSummary } from './ops/status';
import { loadNumbering, type NumberingIndex } from './numbering';
import {
  FileRegistryBackend,
  findInvalidNumbers,
  loadRegistryFile,
  RedisRegistryBackend,
  RegistryAdministration,
  type RegistryBackend,
  RegistryStore,
  type NumberTable,
} from './registry';
import type { Policy } from './scoring';
import { createShakenVerifier, fixedTrustAnchors, loadCrlSigners, loadPassportSigner, loadTrustAnchors, trustAnchorSet, TrustAnchorSource, type PassportSigner, type TrustAnchorsStatus } from './shaken';
import type { CertificateFetcher, ShakenVerifier } from './shaken/types';
import { Behaviour } from './calls/behaviour';
import { MemoryCallState } from './state/memory/call-state';
import { RedisCallState } from './state/redis/call-state';
import { createRedisClient, RedisGuard, whenReady } from './state/redis/client';
import { keyspace } from './state/redis/keyspace';
import { CallAnnouncements, CallbackVerification, DecisionRecords, KeyRing, Operators, PolicySource, ShadowPolicy } from './usecases';
import { MemoryShadowStore, RedisShadowStore } from './state';

/** Every dependency of a request, built once by `compose`; routes reach it through `app.services`. */
export interface Services {
  config: Config;
  /** The one clock: milliseconds since the epoch. Everything that reads the time reads this. */
  now: () => number;
  log: Logger;
  assessor: CallAssessor;
  registryStore: RegistryStore;
  /** Numbers of the seed registry found invalid by the numbering-plan check after start; null until it ends. */
  registryCheck: { invalidNumbers: number | null };
  keys: KeyRing;
  metrics: Metrics;
  behaviour: Behaviour<Evidence>;
  verifier: ShakenVerifier;
  /** The STI-AS of POST /stir/v1/signing; null when no SHAKEN_SIGNING_KEY is configured. */
  signer: PassportSigner | null;
  /** The STI-CA roots in force, and their reload (SIGHUP; file changes are watched for). */
  trustAnchors: TrustAnchorsStatus;
  redisGuard: RedisGuard | null;
  /** The base scoring policy in force. */
  readonly policy: Policy;
  /** The scoring policy in force (POLICY_FILE or built in) with its profiles, and its reload (SIGHUP). */
  policySource: PolicySource;
  /** A candidate policy decided beside the live one on every call (PUT /v1/policy/shadow). */
  shadowPolicy: ShadowPolicy;
  /** The use cases the routes call. */
  registryAdmin: RegistryAdministration;
  callbacks: CallbackVerification;
  operators: Operators;
  announcements: CallAnnouncements;
  decisionRecords: DecisionRecords;
  /** The summary an operator checks first (GET /v1/status; logged once at start), as of now. */
  status(): StatusSummary;
}

/**
 * What a test, the bench or the server may hand in instead of what `compose` would build.
 * Whatever is handed in stays the caller's: `close()` releases only what `compose` opened (a
 * registry backend is the exception: the store that holds it closes it).
 */
export interface Overrides {
  now?: () => number;
  /** Defaults to a pino logger at the config's level. */
  log?: Logger;
  /** The hot-path Redis (calls, verdicts, rate limits); null: none, even when REDIS_URL is set. */
  redis?: Redis | null;
  /**
   * The registry's Redis; null: the embedded file backend. By default a connection of its own,
   * with a patient timeout, to the hot path's server (see `registryClient`).
   */
  registryRedis?: Redis | null;
  /** Where the registry lives; by default Redis when there is one for it, else REGISTRY_DATA_DIR. */
  registryBackend?: RegistryBackend;
  /** Instead of API_KEYS_FILE. */
  keys?: KeyRing;
  /** Instead of NUMBERING_DATA_DIR; null: no numbering data. */
  numbering?: NumberingIndex | null;
  /** Instead of SHAKEN_TRUST_ANCHORS. */
  trustAnchors?: X509Certificate[];
  /** Where the default verifier gets certificates (the network by default). */
  certFetcher?: CertificateFetcher;
  /** Where CRLs come from (tests); certFetcher when unset, then the guarded HTTPS fetcher. */
  crlFetcher?: CertificateFetcher;
  /** Where the default verifier gets rich call data's referenced jCards (the network by default). */
  rcdFetcher?: CertificateFetcher;
  verifier?: ShakenVerifier;
  /** Instead of SHAKEN_SIGNING_KEY; null: no signing. */
  signer?: PassportSigner | null;
  /** Instead of POLICY_FILE: this policy, with no profiles. */
  policy?: Policy;
  /** State across calls and the verdict cache, with the policy's rules over it. */
  behaviour?: Behaviour<Evidence>;
  assessor?: CallAssessor;
  metrics?: Metrics;
  registryAdmin?: RegistryAdministration;
  callbacks?: CallbackVerification;
  operators?: Operators;
  announcements?: CallAnnouncements;
  decisionRecords?: DecisionRecords;
}

export interface Composition {
  services: Services;
  /** Background work that must wait until the app serves (the seed's numbering-plan check). */
  start(): void;
  /** Releases what `compose` opened, in the reverse order of opening. */
  close(): Promise<void>;
}

/** How long a registry change may take in Redis before it is reported as not confirmed. */
export const REGISTRY_COMMAND_TIMEOUT_MS = 5000;
/** How long the start waits for Redis before serving the seed registry and catching up later. */
const REGISTRY_CONNECT_WAIT_MS = 3000;

/**
 * The registry's own Redis connection. Its writes need a patient timeout: a change that Redis
 * applies after the hot path's 50 ms timeout would be answered "nothing was changed". So it is
 * never the hot-path client itself: with a hot-path client handed in, it is a copy of that
 * client (same server, same options) with the patient timeout; otherwise one made from REDIS_URL.
 */
export function registryClient(config: Config, hot: Redis | null, hotHandedIn: boolean): Redis | null {
  if (hot && hotHandedIn) {
    // A Cluster passes for the single-node type (see createRedisClient); its copy takes node options apart.
    const maybeCluster: unknown = hot;
    return maybeCluster instanceof Cluster
      ? (maybeCluster.duplicate([], { redisOptions: { commandTimeout: REGISTRY_COMMAND_TIMEOUT_MS } }) as unknown as Redis)
      : hot.duplicate({ commandTimeout: REGISTRY_COMMAND_TIMEOUT_MS });
  }
  if (!hot || !config.redisUrl) return null;
  return createRedisClient(config.redisUrl, { commandTimeoutMs: REGISTRY_COMMAND_TIMEOUT_MS, cluster: config.redisCluster });
}

/**
 * The composition root: builds every dependency of the service, each replaceable through
 * `overrides`, in an order that keeps the start's guarantees (files before Redis, the registry's
 * Redis waited for before its first load). Fails with nothing left open.
 */
export async function compose(config: Config, opts: Overrides = {}): Promise<Composition> {
  const now = opts.now ?? Date.now;
  // The policy file is read with the other files, before anything is opened.
  const policySource = new PolicySource(config.policyFile, now, opts.policy);
  const policy = policySource.current().document.policy;
  const log = opts.log ?? pino(loggerOptions(config.logLevel) as pino.LoggerOptions);

  // Everything read from files comes first: a bad file stops the start before a Redis client
  // (which reconnects forever) exists to be left behind.
  const keys = opts.keys ?? (config.apiKeysFile ? KeyRing.fromFile(config.apiKeysFile) : KeyRing.open());
  // The seed is read (and validated) even when a backend already holds the registry, so a
  // broken REGISTRY_FILE is reported at start rather than on the day Redis is emptied.
  const seed = loadRegistryFile(config.registryFile, config.defaultCountry);
  const numbering = opts.numbering !== undefined ? opts.numbering : config.numberingDataDir ? loadNumbering(config.numberingDataDir) : null;
  const trustAnchors = opts.trustAnchors ?? (config.shaken.trustAnchors ? loadTrustAnchors(config.shaken.trustAnchors) : []);
  const signer = opts.signer !== undefined ? opts.signer : config.shaken.signingKey ? loadSigner(config, now, log) : null;
  const crlSigners = config.shaken.crlSigners ? loadCrlSigners(config.shaken.crlSigners) : [];
  let anchors: TrustAnchorsStatus = fixedTrustAnchors(trustAnchorSet(trustAnchors));

  const closers: (() => void | Promise<void>)[] = [];
  const close = async () => {
    for (const release of closers.splice(0).reverse()) await release();
  };
  try {
    const hotHandedIn = opts.redis !== undefined;
    const redis = hotHandedIn ? opts.redis! : config.redisUrl ? createRedisClient(config.redisUrl, { commandTimeoutMs: config.redisCommandTimeoutMs, cluster: config.redisCluster }) : null;
    if (redis && !hotHandedIn) closers.push(() => redis.disconnect());
    if (redis) redis.on('error', (err: Error) => log.debug({ err: err.message }, 'redis connection error'));
    const metrics = opts.metrics ?? createMetrics({ now, build: { version: PACKAGE_INFO.version, commit: config.buildCommit } });
    const redisGuard = redis ? new RedisGuard(redis, log, { now, onError: () => metrics.redisError() }) : null;

    const registryRedis = opts.registryRedis !== undefined ? opts.registryRedis : registryClient(config, redis, hotHandedIn);
    if (registryRedis && opts.registryRedis === undefined) {
      closers.push(() => registryRedis.disconnect());
      registryRedis.on('error', (err: Error) => log.debug({ err: err.message }, 'redis connection error (registry)'));
    }
    const backend =
      opts.registryBackend ??
      (registryRedis
        ? // Its first load must not mistake "not connected yet" for "Redis is down".
          (await whenReady(registryRedis, REGISTRY_CONNECT_WAIT_MS), new RedisRegistryBackend(registryRedis, {
            log,
            prefix: config.redisKeyPrefix,
            // While a large change's script holds Redis, this instance's calls use in-process state
            // at once instead of each waiting out a command timeout (other instances' breakers open).
            ...(redisGuard ? { whileBusy: () => redisGuard.bypass(REGISTRY_COMMAND_TIMEOUT_MS) } : {}),
          }))
        : new FileRegistryBackend(config.registryDataDir, config.defaultCountry));
    const registry = await RegistryStore.open(backend, () => seed, log, { now });
    closers.push(() => registry.close());
    log.info({ backend: backend.name, seed: seed.source, registryVersion: registry.version, ...registry.index.size }, 'registry loaded');

    let verifier = opts.verifier;
    if (!verifier) {
      const made = createShakenVerifier({
        trustAnchors,
        ...(opts.certFetcher ? { fetcher: opts.certFetcher } : {}),
        ...(opts.rcdFetcher ? { rcdFetcher: opts.rcdFetcher } : {}),
        allowInsecure: config.shaken.allowInsecureX5u,
        maxAgeS: config.shaken.maxAgeS,
        fetchTimeoutMs: config.shaken.fetchTimeoutMs,
        signatureThreads: config.shaken.verifyThreads,
        ...(redis ? { redis, redisPrefix: keyspace(config.redisKeyPrefix).certificates } : {}),
        logger: log,
        onCertFetch: (outcome) => metrics.certFetch(outcome),
        // A test's fetcher serves CRLs too; in production each has its own size cap.
        ...((opts.crlFetcher ?? opts.certFetcher) ? { crlFetcher: (opts.crlFetcher ?? opts.certFetcher)! } : {}),
        crlSigners,
        crlRequired: config.shaken.crlRequired,
        ...(redis ? { crlRedisPrefix: keyspace(config.redisKeyPrefix).crls } : {}),
        onCrlFetch: (outcome) => metrics.crlFetch(outcome),
        onCrlUnavailable: () => metrics.crlUnavailable(),
        onVerification: (result) => metrics.shakenVerification(result),
        now,
      });
      closers.push(() => made.close());
      verifier = made;
      // Anchors handed in stay as they are; anchors from SHAKEN_TRUST_ANCHORS are kept current.
      if (config.shaken.trustAnchors && !opts.trustAnchors) {
        const source = new TrustAnchorSource({
          path: config.shaken.trustAnchors,
          initial: anchors.current(),
          apply: (set) => made.setTrustAnchors(set.certs),
          logger: log,
          now,
          onReload: (outcome) => metrics.trustAnchorReload(outcome),
        });
        closers.push(() => source.close());
        await source.start();
        anchors = source;
      }
      metrics.bind({ certCache: (nowMs) => made.certCache.expiryStats(nowMs, CACHED_CERT_EXPIRY_WINDOW_MS) });
    }

    // State across calls and the verdict cache: in-process always (warm when Redis fails), Redis
    // shared when configured.
    const replayTtlS = 2 * config.shaken.maxAgeS;
    const stateOptions = { replayTtlS, reportsMaxAgeS: policy.reports.maxAgeS };
    const localState = new MemoryCallState<Evidence>({ ...stateOptions, verdictCacheSize: config.verdictCache.size, now });
    const behaviour =
      opts.behaviour ?? new Behaviour<Evidence>(redisGuard ? new RedisCallState(redisGuard, { ...stateOptions, prefix: config.redisKeyPrefix, fallback: localState }) : localState, () => policySource.current().document.policy);

    // The shadow policy: shared by every instance on Redis, in process otherwise.
    const shadowPolicy = new ShadowPolicy({
      // The registry's patient connection where there is one (see RedisShadowStore), else the hot path's.
      store: registryRedis || redis ? new RedisShadowStore((registryRedis ?? redis)!, config.redisKeyPrefix) : new MemoryShadowStore(),
      live: () => policySource.current().document,
      now,
      log,
    });
    closers.push(() => shadowPolicy.close());

    const assessor =
      opts.assessor ??
      new CallAssessor({
        defaultCountry: config.defaultCountry,
        registry: () => registry.index,
        verifier,
        cacheTtlMs: config.verdictCache.ttlS * 1000,
        // Cached assessments carry the numbering result, so its data version is part of the key too.
        policy: numbering
          ? () => {
              const p = policySource.current();
              return { document: p.document, version: `${p.version}+${numbering.version}` };
            }
          : () => policySource.current(),
        numbering,
        trustVersion: () => anchors.current().fingerprint,
        maxPassportAgeS: config.shaken.maxAgeS,
        verifyPassports: config.shaken.verify,
        now,
        behaviour,
        shadow: shadowPolicy,
      });

    // The use cases, each given the ports it needs and nothing more.
    const registryIndex = () => registry.index;
    const registryAdmin =
      opts.registryAdmin ?? new RegistryAdministration(registry, { defaultCountry: config.defaultCountry, minPrefixDigits: config.registryMinPrefixDigits, now });
    const callbacks =
      opts.callbacks ??
      new CallbackVerification({ registry: registryIndex, history: behaviour.history, announcements: behaviour.announcements, now, defaultCountry: config.defaultCountry });
    // Announcements live beside the call state that matches them (one read a call, one store).
    const announcements =
      opts.announcements ?? new CallAnnouncements({ registry: registryIndex, store: behaviour.announcements, now, defaultCountry: config.defaultCountry });
    const operators =
      opts.operators ??
      new Operators({
        registry: registryIndex,
        listCampaigns: (at) => behaviour.listCampaigns(at),
        reports: behaviour.reports,
        now,
        defaultCountry: config.defaultCountry,
      });
    const decisionRecords = opts.decisionRecords ?? new DecisionRecords({ decisions: behaviour.state.decisions });

    metrics.bind({
      registrySize: () => registry.index.size,
      redis: () => (redisGuard ? { ...redisGuard.status(), degradedMsTotal: redisGuard.degradedMsTotal } : null),
      trustAnchors: () => {
        const set = anchors.current();
        return { count: set.certs.length, soonestExpiryMs: set.soonestExpiryMs };
      },
    });

    const registryCheck: { invalidNumbers: number | null } = { invalidNumbers: null };
    const status = () =>
      statusSummary({
        version: PACKAGE_INFO.version,
        node: process.version,
        config,
        keys: keys.holders(),
        registry: { backend: backend.name, seed: seed.source, version: registry.version, size: registry.index.size },
        trustAnchors: anchors.current(),
        numbering: numbering && {
          version: numbering.version,
          ranges: numbering.size,
          generatedAt: numbering.provenance?.generatedAt ?? null,
          sources: numbering.provenance?.sources ?? [],
        },
        policy: policySource.current(),
        shadowPolicyVersion: shadowPolicy.candidate()?.version ?? null,
      });
    return {
      services: {
        config,
        now,
        log,
        assessor,
        registryStore: registry,
        registryCheck,
        keys,
        metrics,
        behaviour,
        verifier,
        signer,
        trustAnchors: anchors,
        redisGuard,
        get policy() {
          return policySource.current().document.policy;
        },
        policySource,
        shadowPolicy,
        registryAdmin,
        callbacks,
        operators,
        announcements,
        decisionRecords,
        status,
      },
      start: () => {
        // One line with everything an operator checks first: the same summary GET /v1/status answers.
        // Every line already names the service and its version: the summary's own `service` would overwrite them.
        const { service, ...summary } = status();
        log.info({ event: 'startup', node: service.node, ...summary }, 'callguard started');
        shadowPolicy.start();
        checkSeedNumbers(seed.data.numbers, config.defaultCountry, registryCheck, log);
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/** The signing key, checked at start (see loadPassportSigner); its warnings go to the log. */
function loadSigner(config: Config, now: () => number, log: Logger): PassportSigner {
  const { signer, warnings } = loadPassportSigner({
    keyFile: config.shaken.signingKey!,
    x5u: config.shaken.signingX5u,
    certFile: config.shaken.signingCert,
    allowInsecureX5u: config.shaken.allowInsecureX5u,
    now,
  });
  for (const warning of warnings) log.warn(warning);
  log.info({ x5u: signer.x5u }, 'PASSporT signing enabled (POST /stir/v1/signing)');
  return signer;
}

/**
 * Checks the seed registry's numbers against the numbering plan in the background, slice by
 * slice: an E.164-shaped number that no plan allows is most likely a typo in a bank's entry,
 * and the operator must hear of it, but a million numbers must not hold the start. It is begun
 * once the app is ready, so its slices do not lengthen the start itself, and walks the seed's
 * compact table, which is never changed in place, so edits made meanwhile cannot upset it.
 */
function checkSeedNumbers(
  numbers: NumberTable,
  defaultCountry: string,
  status: { invalidNumbers: number | null },
  log: Logger,
): void {
  void findInvalidNumbers(numbers, defaultCountry, 250).then(
    (invalid) => {
      status.invalidNumbers = invalid.length;
      if (invalid.length === 0) return;
      log.warn(
        { count: invalid.length, first: invalid.slice(0, 50).map((e) => ({ number: e.key, bankId: e.bankId })) },
        'registry numbers that are not valid in the numbering plan: check them for typos',
      );
    },
    (err: unknown) => log.error({ err }, 'registry numbering-plan check failed'),
  );
}

/**
 * Re-reads POLICY_FILE (SIGHUP): a good file is in force for every later call; a bad one keeps
 * the running policy, and the log says why.
 */
export function reloadPolicy(services: Pick<Services, 'policySource' | 'log'>, reason: string): void {
  const result = services.policySource.reload();
  if (result.ok) services.log.info({ reason, policyVersion: result.version, changed: result.changed }, 'policy reloaded');
  else services.log.error({ reason, problem: result.reason }, 'policy reload failed: the running policy is kept');
}

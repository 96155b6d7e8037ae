import { isIP } from 'node:net';
import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { StartupError } from '../errors';

/**
 * The service's environment, validated once at start. A bad value stops the process with a
 * message naming the variable and what it accepts, instead of surfacing as an odd failure
 * on the first call.
 */

const bool = (name: string) =>
  z
    .enum(['true', 'false', '1', '0', 'yes', 'no'], {
      error: `${name} must be one of true, false, 1, 0, yes, no`,
    })
    .transform((v) => v === 'true' || v === '1' || v === 'yes');

const int = (name: string, min: number, max: number) =>
  z.coerce
    .number({ error: `${name} must be a whole number` })
    .int({ error: `${name} must be a whole number` })
    .min(min, { error: `${name} must be at least ${min}` })
    .max(max, { error: `${name} must be at most ${max}` });

const EnvSchema = z.object({
  PORT: int('PORT', 0, 65535).default(8080),
  HOST: z.string().min(1).default('127.0.0.1'),
  METRICS_PORT: int('METRICS_PORT', 1, 65535).optional(),
  BUILD_COMMIT: z
    .string()
    .regex(/^[0-9a-f]{7,40}$/, { error: 'BUILD_COMMIT must be a git commit hash (7-40 lower-case hex digits)' })
    .optional(),
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\/[^,]+(,\s*rediss?:\/\/[^,]+)*$/, { error: 'REDIS_URL must be a redis:// or rediss:// URL (with REDIS_CLUSTER, a comma-separated list of them)' })
    .optional(),
  REDIS_CLUSTER: bool('REDIS_CLUSTER').default(false),
  REDIS_KEY_PREFIX: z
    .string()
    .regex(/^[^{}\s]{1,64}$/, { error: 'REDIS_KEY_PREFIX must be 1-64 characters without braces or spaces (a brace would become every key\'s hash tag)' })
    .default('callguard:'),
  REGISTRY_FILE: z.string().min(1).optional(),
  REGISTRY_DATA_DIR: z.string().min(1).default('data'),
  REGISTRY_MIN_PREFIX_DIGITS: int('REGISTRY_MIN_PREFIX_DIGITS', 1, 15).default(6),
  DEFAULT_COUNTRY: z
    .string()
    .regex(/^[A-Z]{2}$/, { error: 'DEFAULT_COUNTRY must be an ISO 3166-1 alpha-2 code such as GB' })
    .default('GB'),
  SHAKEN_TRUST_ANCHORS: z.string().min(1).optional(),
  SHAKEN_X5U_ALLOW_INSECURE: bool('SHAKEN_X5U_ALLOW_INSECURE').default(false),
  SHAKEN_VERIFY: bool('SHAKEN_VERIFY').default(true),
  SHAKEN_MAX_AGE_S: int('SHAKEN_MAX_AGE_S', 1, 3600).default(60),
  SHAKEN_CRL_REQUIRED: bool('SHAKEN_CRL_REQUIRED').default(false),
  SHAKEN_CRL_SIGNERS: z.string().min(1).optional(),
  SHAKEN_SIGNING_KEY: z.string().min(1).optional(),
  SHAKEN_SIGNING_X5U: z.string().url().optional(),
  SHAKEN_SIGNING_CERT: z.string().min(1).optional(),
  // Below a switch's usual budget for the whole answer: a cold fetch must not make the switch give up.
  SHAKEN_FETCH_TIMEOUT_MS: int('SHAKEN_FETCH_TIMEOUT_MS', 50, 10000).default(250),
  // One thread checks signatures about as fast as one event loop brings them; a second takes
  // bursts (measured on 2 cores: as fast as one in the server, and the verifier alone 10-20 %
  // faster). More would only cost memory (a few MB each), and availableParallelism() counts a
  // container host's cores, not the container's share.
  SHAKEN_VERIFY_THREADS: int('SHAKEN_VERIFY_THREADS', 0, 64).default(() => Math.min(2, availableParallelism())),
  API_KEYS_FILE: z.string().min(1).optional(),
  POLICY_FILE: z.string().min(1).optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  ACCESS_LOG_LEVEL: z
    .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace'], { error: 'ACCESS_LOG_LEVEL must be one of fatal, error, warn, info, debug, trace' })
    .default('info'),
  ACCESS_LOG_SAMPLE: z.coerce
    .number({ error: 'ACCESS_LOG_SAMPLE must be a number from 0 to 1' })
    .min(0, { error: 'ACCESS_LOG_SAMPLE must be a number from 0 to 1' })
    .max(1, { error: 'ACCESS_LOG_SAMPLE must be a number from 0 to 1' })
    .default(0),
  BODY_LIMIT_BYTES: int('BODY_LIMIT_BYTES', 1024, 10 * 1024 * 1024).default(64 * 1024),
  REQUEST_TIMEOUT_MS: int('REQUEST_TIMEOUT_MS', 1000, 120_000).default(10_000),
  VERDICT_CACHE_TTL_S: int('VERDICT_CACHE_TTL_S', 0, 86400).default(30),
  VERDICT_CACHE_SIZE: int('VERDICT_CACHE_SIZE', 0, 10_000_000).default(20_000),
  REDIS_COMMAND_TIMEOUT_MS: int('REDIS_COMMAND_TIMEOUT_MS', 5, 10000).default(50),
  LOAD_SHED_EVENT_LOOP_DELAY_MS: int('LOAD_SHED_EVENT_LOOP_DELAY_MS', 0, 10000).default(200),
  RATE_LIMIT_BANK_PER_MIN: int('RATE_LIMIT_BANK_PER_MIN', 0, 1_000_000).default(600),
  RATE_LIMIT_ADMIN_PER_MIN: int('RATE_LIMIT_ADMIN_PER_MIN', 0, 1_000_000).default(3000),
  NUMBERING_DATA_DIR: z.string().min(1).optional(),
});

export type Env = z.infer<typeof EnvSchema>;

export interface Config {
  port: number;
  host: string;
  /** True when HOST is a loopback address: the only place the service may run without keys. */
  hostIsLoopback: boolean;
  /** GET /metrics on a listener of its own at HOST and this port, and not on PORT; unset: on PORT. */
  metricsPort: number | undefined;
  /** The source commit of the running build, shown by callguard_build_info; unset: not shown. */
  buildCommit: string | undefined;
  redisUrl: string | undefined;
  /** REDIS_URL names seed nodes of a Redis Cluster. */
  redisCluster: boolean;
  /** Every key this service writes in Redis starts with it: instances of one deployment share it, others use their own. */
  redisKeyPrefix: string;
  registryFile: string | undefined;
  /** Embedded default only: where registry changes and the audit log are kept. */
  registryDataDir: string;
  /** Shortest prefix an API key may create, in digits after the `+`. */
  registryMinPrefixDigits: number;
  defaultCountry: string;
  shaken: {
    trustAnchors: string | undefined;
    /**
     * False: the operator says PASSporTs are not verified here (UK networks carry none today):
     * Identity headers are ignored and calls are scored on everything else.
     */
    verify: boolean;
    allowInsecureX5u: boolean;
    maxAgeS: number;
    /** True: a certificate whose CRL cannot be had fails (CERT_REVOKED); false: it is logged, counted and judged on the rest. */
    crlRequired: boolean;
    /** PEM file or folder of the certificates trusted to sign indirect CRLs (the STI-PA's); unset: an indirect CRL is unavailable. */
    crlSigners: string | undefined;
    /** PEM file of the EC P-256 key POST /stir/v1/signing signs with; unset: no signing (404). */
    signingKey: string | undefined;
    /** The https URL of the signing certificate chain, the x5u of every PASSporT signed here. */
    signingX5u: string | undefined;
    /** PEM file of the signing certificate (first of the file); when set, the key must match it at start. */
    signingCert: string | undefined;
    fetchTimeoutMs: number;
    /** Worker threads checking ES256 signatures in batches; 0: libuv's thread pool checks them one by one. */
    verifyThreads: number;
  };
  apiKeysFile: string | undefined;
  /** The scoring policy (JSON); unset: the built-in policy. */
  policyFile: string | undefined;
  logLevel: Env['LOG_LEVEL'];
  /**
   * One access line per request, at `level`. Every 4xx and 5xx answer gets its line; of the
   * successes of the busy routes (see src/http/request-log.ts) only the fraction `sample` does.
   */
  accessLog: { level: Env['ACCESS_LOG_LEVEL']; sample: number };
  bodyLimitBytes: number;
  /** A request (headers and body) must have arrived whole within this, or it is cut off with 408. */
  requestTimeoutMs: number;
  verdictCache: { ttlS: number; size: number };
  redisCommandTimeoutMs: number;
  /** Mean event-loop delay over which API requests get 503 + Retry-After (0: never shed). */
  loadShedEventLoopDelayMs: number;
  /** Requests a minute per API key, by role; 0 means no limit. Switch keys are never limited. */
  rateLimit: { bankPerMin: number; adminPerMin: number };
  /** Folder holding the imported Ofcom numbering data (`npm run numbering:import`); unset: none. */
  numberingDataDir: string | undefined;
}

export class ConfigError extends StartupError {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
  }
}

/** Settings that are dangerous where switches or banks reach the service (see productionSafetyProblems). */
export class UnsafeProductionError extends StartupError {
  constructor(readonly problems: string[]) {
    super(`refusing to start with API keys or on a non-loopback address:\n  - ${problems.join('\n  - ')}`);
  }
}

/** Throws UnsafeProductionError when productionSafetyProblems finds any. */
export function assertProductionSafe(config: Config): void {
  const problems = productionSafetyProblems(config);
  if (problems.length > 0) throw new UnsafeProductionError(problems);
}

export function isLoopbackHost(host: string): boolean {
  if (host === 'localhost') return true;
  const bare = host.replace(/^\[|\]$/g, '');
  if (isIP(bare) === 4) return bare.startsWith('127.');
  if (isIP(bare) === 6) return bare === '::1';
  return false;
}

/** Reads the environment; empty strings count as unset, as in most deployment tools. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const present = Object.fromEntries(
    Object.entries(env).filter(([key, value]) => key in EnvSchema.shape && value !== undefined && value !== ''),
  );
  const parsed = EnvSchema.safeParse(present);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => {
        const name = String(issue.path[0] ?? '');
        return issue.message.startsWith(name) ? issue.message : `${name}: ${issue.message}`;
      }),
    );
  }
  const e = parsed.data;
  if (e.METRICS_PORT !== undefined && e.METRICS_PORT === e.PORT) {
    throw new ConfigError([`METRICS_PORT must differ from PORT (both ${e.PORT}): leave it unset to serve /metrics on PORT`]);
  }
  return {
    port: e.PORT,
    host: e.HOST,
    hostIsLoopback: isLoopbackHost(e.HOST),
    metricsPort: e.METRICS_PORT,
    buildCommit: e.BUILD_COMMIT,
    redisUrl: e.REDIS_URL,
    redisCluster: e.REDIS_CLUSTER,
    redisKeyPrefix: e.REDIS_KEY_PREFIX,
    registryFile: e.REGISTRY_FILE,
    registryDataDir: e.REGISTRY_DATA_DIR,
    registryMinPrefixDigits: e.REGISTRY_MIN_PREFIX_DIGITS,
    defaultCountry: e.DEFAULT_COUNTRY,
    shaken: {
      trustAnchors: e.SHAKEN_TRUST_ANCHORS,
      verify: e.SHAKEN_VERIFY,
      allowInsecureX5u: e.SHAKEN_X5U_ALLOW_INSECURE,
      maxAgeS: e.SHAKEN_MAX_AGE_S,
      fetchTimeoutMs: e.SHAKEN_FETCH_TIMEOUT_MS,
      verifyThreads: e.SHAKEN_VERIFY_THREADS,
      crlRequired: e.SHAKEN_CRL_REQUIRED,
      crlSigners: e.SHAKEN_CRL_SIGNERS,
      signingKey: e.SHAKEN_SIGNING_KEY,
      signingX5u: e.SHAKEN_SIGNING_X5U,
      signingCert: e.SHAKEN_SIGNING_CERT,
    },
    apiKeysFile: e.API_KEYS_FILE,
    policyFile: e.POLICY_FILE,
    logLevel: e.LOG_LEVEL,
    accessLog: { level: e.ACCESS_LOG_LEVEL, sample: e.ACCESS_LOG_SAMPLE },
    bodyLimitBytes: e.BODY_LIMIT_BYTES,
    requestTimeoutMs: e.REQUEST_TIMEOUT_MS,
    verdictCache: { ttlS: e.VERDICT_CACHE_TTL_S, size: e.VERDICT_CACHE_SIZE },
    redisCommandTimeoutMs: e.REDIS_COMMAND_TIMEOUT_MS,
    loadShedEventLoopDelayMs: e.LOAD_SHED_EVENT_LOOP_DELAY_MS,
    rateLimit: { bankPerMin: e.RATE_LIMIT_BANK_PER_MIN, adminPerMin: e.RATE_LIMIT_ADMIN_PER_MIN },
    numberingDataDir: e.NUMBERING_DATA_DIR,
  };
}

/**
 * Settings that are fine on a developer's loopback and dangerous where switches or banks reach
 * the service (API keys configured, or a non-loopback HOST). Each entry says what to set.
 * Checked by the process entry before anything is built, so nothing is seeded or listened on.
 */
export function productionSafetyProblems(config: Config): string[] {
  const production = config.apiKeysFile !== undefined || !config.hostIsLoopback;
  if (!production) return [];
  const problems: string[] = [];
  if (!config.hostIsLoopback && config.apiKeysFile === undefined)
    problems.push(`no API keys configured (API_KEYS_FILE unset) and HOST=${config.host} is not a loopback address: refusing to start open`);
  if (config.shaken.verify && config.shaken.trustAnchors === undefined)
    problems.push(
      'SHAKEN_TRUST_ANCHORS is unset, so no PASSporT could verify and every signed call would score as forged: ' +
        'name your STI-CA roots in SHAKEN_TRUST_ANCHORS, or set SHAKEN_VERIFY=false to say that PASSporTs are not verified here',
    );
  if (config.registryFile === undefined)
    problems.push(
      'REGISTRY_FILE is unset, so the fictional sample registry would be seeded into the registry this service keeps: ' +
        'set REGISTRY_FILE to your registry file',
    );
  return problems;
}
export { PACKAGE_INFO } from './package-info';

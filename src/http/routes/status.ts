import type { FastifyPluginAsyncZod } from '@fastify/type-provider-zod';
import { z } from 'zod';

/** A setting's whole number: a count, a size, a time in ms or s (bounded, so the document shows real limits). */
const whole = z.number().int().min(0).max(2 ** 31 - 1);

const roleKeys = z.object({
  count: whole,
  names: z.array(z.string()).describe("the keys' names, sorted"),
});

const iso = z.iso.datetime();

/** The effective configuration, as src/config reads it from the environment. */
const ConfigSchema = z
  .object({
    port: whole.max(65535),
    host: z.string(),
    hostIsLoopback: z.boolean(),
    redisUrl: z.string().nullable().describe('REDIS_URL with its password (and any credential in its query) shown as `***`; null when unset'),
    redisCluster: z.boolean(),
    redisKeyPrefix: z.string(),
    registryFile: z.string().optional(),
    registryDataDir: z.string(),
    registryMinPrefixDigits: whole,
    defaultCountry: z.string(),
    shaken: z.object({
      trustAnchors: z.string().optional(),
      verify: z.boolean(),
      allowInsecureX5u: z.boolean(),
      maxAgeS: whole,
      crlRequired: z.boolean(),
      crlSigners: z.string().optional(),
      signingKey: z.string().optional().describe('the path of the key file, never the key'),
      signingX5u: z.string().optional(),
      signingCert: z.string().optional(),
      fetchTimeoutMs: whole,
      verifyThreads: whole.describe('SHAKEN_VERIFY_THREADS: threads checking PASSporT signatures (0: libuv\'s thread pool)'),
    }),
    apiKeysFile: z.string().optional(),
    policyFile: z.string().optional(),
    logLevel: z.string(),
    bodyLimitBytes: whole,
    requestTimeoutMs: whole,
    verdictCache: z.object({ ttlS: whole, size: whole }),
    redisCommandTimeoutMs: whole,
    loadShedEventLoopDelayMs: whole,
    rateLimit: z.object({ bankPerMin: whole, adminPerMin: whole }),
    numberingDataDir: z.string().optional(),
    accessLog: z
      .object({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']), sample: z.number().min(0).max(1) })
      .describe('ACCESS_LOG_LEVEL and ACCESS_LOG_SAMPLE: the level of access lines, and the share of hot-route successes that get one'),
    metricsPort: z.number().int().min(1).max(65535).optional().describe('METRICS_PORT: /metrics on a listener of its own; absent: on the API port'),
    buildCommit: z.string().optional().describe('BUILD_COMMIT: the commit the build was made from'),
  })
  .describe('The effective configuration: every variable with its default applied (unset paths are absent)');

export const StatusResponseSchema = z
  .object({
    service: z.object({ name: z.literal('callguard'), version: z.string(), node: z.string().describe('the Node.js version running it') }),
    config: ConfigSchema,
    keys: z
      .object({
        open: z.boolean().describe('no API keys: the service answers anyone on its loopback address'),
        count: whole,
        byRole: z.object({ switch: roleKeys, bank: roleKeys, admin: roleKeys }),
      })
      .describe('The API keys of API_KEYS_FILE by role, by name only (never their hashes)'),
    registry: z
      .object({
        source: z
          .enum(['data-directory', 'redis', 'other'])
          .describe('where the registry is kept: `data-directory` (the embedded default, REGISTRY_DATA_DIR) or `redis` (shared by every instance)'),
        dataDir: z.string().optional().describe('REGISTRY_DATA_DIR, when the registry is kept there'),
        seed: z.string().describe('the file the registry was first filled from: REGISTRY_FILE, or the sample registry'),
        version: z.string(),
        banks: whole,
        numbers: whole,
        prefixes: whole,
      }),
    trustAnchors: z
      .object({
        path: z.string().nullable().describe('SHAKEN_TRUST_ANCHORS; null when unset'),
        count: whole.describe('0: no PASSporT can verify'),
        fingerprint: z.string().describe('names the set in force, as GET /readyz does'),
        soonestExpiry: iso.nullable().describe('the soonest notAfter among the roots; null without roots'),
        anchors: z.array(z.object({ subject: z.string(), fingerprint256: z.string(), notAfter: iso.nullable() })),
      })
      .describe('The STI-CA roots in force (SIGHUP or a change of the files replaces them)'),
    numbering: z
      .object({
        dataDir: z.string().nullable(),
        version: z.string().describe('part of every verdict cache key'),
        ranges: whole,
        generatedAt: iso.nullable().describe('when `npm run numbering:import` wrote the data'),
        sources: z.array(z.object({ file: z.string(), sha256: z.string() })).describe("Ofcom's files the data was imported from"),
      })
      .nullable()
      .describe('The numbering data in use (NUMBERING_DATA_DIR); null when none is configured'),
    policy: z.object({
      version: z.string().describe('the version in every verdict cache key and decision record'),
      source: z.enum(['built-in', 'file']),
      path: z.string().nullable().describe('POLICY_FILE; null for the built-in policy'),
      loadedAt: iso,
      shadowVersion: z.string().nullable().describe('the shadow policy being tried (PUT /v1/policy/shadow); null when none is'),
    }),
  })
  .meta({
    id: 'StatusResponse',
    example: {
      service: { name: 'callguard', version: '0.1.0', node: 'v20.19.0' },
      config: {
        port: 8080,
        host: '0.0.0.0',
        hostIsLoopback: false,
        redisUrl: 'redis://callguard:***@redis.internal:6379/0',
        redisCluster: false,
        redisKeyPrefix: 'callguard:',
        registryFile: '/etc/callguard/registry.json',
        registryDataDir: 'data',
        registryMinPrefixDigits: 6,
        defaultCountry: 'GB',
        shaken: { trustAnchors: '/etc/callguard/sti-ca', verify: true, allowInsecureX5u: false, maxAgeS: 60, crlRequired: false, fetchTimeoutMs: 250, verifyThreads: 2 },
        apiKeysFile: '/etc/callguard/keys.json',
        policyFile: '/etc/callguard/policy.json',
        logLevel: 'info',
        bodyLimitBytes: 65536,
        requestTimeoutMs: 10000,
        verdictCache: { ttlS: 30, size: 100000 },
        redisCommandTimeoutMs: 50,
        loadShedEventLoopDelayMs: 200,
        rateLimit: { bankPerMin: 600, adminPerMin: 3000 },
        numberingDataDir: '/var/lib/callguard/numbering',
        accessLog: { level: 'info', sample: 0 },
        metricsPort: 9464,
      },
      keys: {
        open: false,
        count: 4,
        byRole: {
          switch: { count: 2, names: ['sbc-london', 'sbc-manchester'] },
          bank: { count: 1, names: ['examplebank-call-centre'] },
          admin: { count: 1, names: ['noc'] },
        },
      },
      registry: { source: 'redis', seed: '/etc/callguard/registry.json', version: '3f9c2a71-5d0e-4b8e-9a61-0c2d7e4b1a90', banks: 12, numbers: 4810, prefixes: 37 },
      trustAnchors: {
        path: '/etc/callguard/sti-ca',
        count: 1,
        fingerprint: 'bq3P1l2uXk0m9Yc6xq8v2oKfJzW4rT7sH1dE5gA0nLc',
        soonestExpiry: '2030-06-30T23:59:59.000Z',
        anchors: [
          {
            subject: 'C=GB, O=Example STI-CA, CN=Example STI-CA Root',
            fingerprint256: '4F:1A:9C:2E:77:0B:D3:58:6A:E1:0C:93:B2:45:7D:18:C6:2F:90:AB:3E:54:D7:61:08:FA:2C:9B:E3:70:15:4D',
            notAfter: '2030-06-30T23:59:59.000Z',
          },
        ],
      },
      numbering: {
        dataDir: '/var/lib/callguard/numbering',
        version: 'r8yqf0cZl3T1m7uE',
        ranges: 61234,
        generatedAt: '2026-11-02T09:14:00.000Z',
        sources: [{ file: 'S1.csv', sha256: '9d4c0e6f1b2a3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5' }],
      },
      policy: { version: 'p-6c1e0b9a', source: 'file', path: '/etc/callguard/policy.json', loadedAt: '2026-12-07T08:00:00.000Z', shadowVersion: null },
    },
  });

/** The start-up summary (see src/ops/status.ts), asked for again at any time. */
export const statusRoutes: FastifyPluginAsyncZod = async (app) => {
  app.get(
    '/v1/status',
    {
      config: { roles: ['admin'] },
      schema: {
        operationId: 'getStatus',
        tags: ['ops'],
        summary: 'What this instance runs with',
        description:
          'The summary the service logs once at start (`"event":"startup"`), as of now: its version and Node.js version, the ' +
          'effective configuration (REDIS_URL credentials redacted), the API keys by role and name (never their hashes), where ' +
          'the registry is kept and its size, the STI-CA roots in force with their expiry, the numbering data and where it came ' +
          'from, and the policy version (and the shadow policy being tried). For an operator checking a deployment, not for probes: ' +
          '/readyz is the readiness check.',
        response: { 200: StatusResponseSchema.describe('The summary of this instance') },
      },
    },
    () => app.services.status(),
  );
};

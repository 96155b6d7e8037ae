import type { FastifyPluginAsync } from 'fastify';

export const healthRoutes: FastifyPluginAsync = async (app) => {
  app.get(
    '/healthz',
    {
      schema: {
        operationId: 'getHealth',
        tags: ['ops'],
        summary: 'Liveness: the process is up',
        description: 'Answers as long as the process can answer at all; needs no key. Use /readyz to decide whether to send calls.',
        response: {
          200: {
            description: 'The process is up',
            type: 'object',
            properties: { status: { type: 'string', enum: ['ok'] } },
            required: ['status'],
            example: { status: 'ok' },
          },
        },
      },
    },
    async () => ({ status: 'ok' }),
  );

  app.get(
    '/readyz',
    {
      schema: {
        operationId: 'getReadiness',
        tags: ['ops'],
        summary: 'Readiness: able to score calls',
        description:
          'Ready whenever the registry is loaded. A Redis outage does not make the service unready: it keeps scoring ' +
          'from in-process state and says `degraded` here. Neither does a Redis that cannot promise to keep acknowledged ' +
          'registry changes through a crash (an operator chose it): `registry.durability` and `registry.durabilityWarning` say so. ' +
          '`shaken.trustAnchors` is the number of STI-CA roots in force (0: no PASSporT can verify), `shaken.trustAnchorsFingerprint` ' +
          'names the set (it changes when SIGHUP or a file change puts a new set in force).',
        response: {
          200: {
            description: 'Ready to score calls: `ready`, or `degraded` while Redis is away',
            type: 'object',
            required: ['status', 'redis', 'shaken', 'registry'],
            example: {
              status: 'ready',
              redis: { connected: true, degraded: false, degradedSince: null },
              shaken: { trustAnchors: 2, trustAnchorsFingerprint: 'b1946ac92492d2347c6235b4d2611184', trustAnchorsExpireAt: '2031-06-30T23:59:59.000Z' },
              registry: {
                version: '42',
                banks: 5,
                numbers: 12,
                prefixes: 3,
                invalidNumbers: 0,
                durability: 'waitaof',
                durabilityWarning: null,
                restores: { count: 0, lastAt: null },
              },
            },
            properties: {
              status: { type: 'string', enum: ['ready', 'degraded'] },
              redis: {
                type: 'object',
                nullable: true,
                properties: {
                  connected: { type: 'boolean' },
                  degraded: { type: 'boolean' },
                  degradedSince: { type: 'string', nullable: true },
                },
              },
              shaken: {
                type: 'object',
                properties: {
                  trustAnchors: { type: 'integer', description: 'STI-CA root certificates in force (SHAKEN_TRUST_ANCHORS)' },
                  trustAnchorsFingerprint: { type: 'string', description: 'SHA-256 over the roots in force: the same roots, the same fingerprint' },
                  trustAnchorsExpireAt: { type: 'string', nullable: true, description: 'the soonest notAfter among the roots; null without roots' },
                },
              },
              registry: {
                type: 'object',
                properties: {
                  version: { type: 'string' },
                  banks: { type: 'integer' },
                  numbers: { type: 'integer' },
                  prefixes: { type: 'integer' },
                  invalidNumbers: {
                    type: 'integer',
                    nullable: true,
                    description: 'seed registry numbers the numbering plan does not allow (checked after start; null until done)',
                  },
                  durability: {
                    type: 'string',
                    enum: ['waitaof', 'appendfsync-always', 'not-durable', 'unknown', 'fsync'],
                    description:
                      'what an acknowledged registry change survives: `waitaof` (Redis 7.2+ confirms it on disk), `appendfsync-always`, ' +
                      '`not-durable` (a Redis crash may lose it), `unknown` (Redis does not say: CONFIG disabled), `fsync` (embedded journal)',
                  },
                  durabilityWarning: { type: 'string', nullable: true },
                  restores: {
                    type: 'object',
                    description: 'times this instance wrote its registry back over an older one Redis came back with',
                    properties: { count: { type: 'integer' }, lastAt: { type: 'string', nullable: true } },
                  },
                },
              },
            },
          },
        },
      },
    },
    async () => {
      const { redisGuard, registryStore } = app.services;
      const redis = redisGuard ? redisGuard.status() : null;
      const index = registryStore.index;
      const durability = registryStore.durability();
      const anchors = app.services.trustAnchors.current();
      return {
        status: redis && (redis.degraded || !redis.connected) ? 'degraded' : 'ready',
        redis,
        shaken: {
          trustAnchors: anchors.certs.length,
          trustAnchorsFingerprint: anchors.fingerprint,
          trustAnchorsExpireAt: anchors.soonestExpiryMs !== null && Number.isFinite(anchors.soonestExpiryMs) ? new Date(anchors.soonestExpiryMs).toISOString() : null,
        },
        registry: {
          version: index.version,
          ...index.size,
          invalidNumbers: app.services.registryCheck.invalidNumbers,
          durability: durability.mode,
          durabilityWarning: durability.warning,
          restores: registryStore.restores,
        },
      };
    },
  );
};

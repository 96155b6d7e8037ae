import fastJson from 'fast-json-stringify';
import { validatorCompiler } from '@fastify/type-provider-zod';
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { authenticate } from './auth';
import { registerLoadShedding } from './load-shedding';
import { registerRateLimit } from './rate-limit';
import { callbackRoutes } from './routes/callbacks';
import { expectedCallRoutes } from './routes/expected';
import { callRoutes } from './routes/calls';
import { meRoutes } from './routes/me';
import { operatorRoutes } from './routes/operators';
import { policyRoutes } from './routes/policy';
import { registryRoutes } from './routes/registry';
import { scoreRoutes } from './routes/score';
import { signingRoutes } from './routes/signing';
import { statusRoutes } from './routes/status';
import { stirRoutes } from './routes/stir';
import { keyspace } from '../state/redis/keyspace';

/**
 * The JSON API. Its compilers are scoped to this plugin: zod validates requests, and
 * response schemas (zod too) are compiled once to fast-json-stringify serialisers. Other
 * plugins (docs, metrics) keep fastify's defaults.
 */
export const api: FastifyPluginAsync = async (app) => {
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(({ schema }) =>
    fastJson(z.toJSONSchema(schema as z.ZodType, { io: 'output', target: 'draft-7' }) as object),
  );
  // Every route here reads JSON: fastify's default text/plain parser would hand a JSON route a
  // string and earn a 400 naming the body, where any other type it does not read gets a 415.
  app.removeContentTypeParser('text/plain');
  // Shedding first: an overloaded instance should refuse before spending anything on a request.
  await registerLoadShedding(app, app.services.config.loadShedEventLoopDelayMs, app.services.metrics);
  app.addHook('onRequest', authenticate(app.services.keys, app.services.metrics));
  await registerRateLimit(app, {
    ...app.services.config.rateLimit,
    metrics: app.services.metrics,
    open: app.services.keys.isOpen,
    redis: app.services.redisGuard?.client ?? null,
    nameSpace: keyspace(app.services.config.redisKeyPrefix).rateLimit,
  });

  // The use cases come composed (see composition.ts); each route plugin gets the one it calls.
  const { registryAdmin, callbacks, operators, announcements, decisionRecords } = app.services;
  await app.register(meRoutes);
  await app.register(scoreRoutes);
  await app.register(registryRoutes, { registry: registryAdmin });
  await app.register(stirRoutes);
  await app.register(signingRoutes);
  await app.register(callbackRoutes, { callbacks });
  await app.register(operatorRoutes, { operators });
  await app.register(expectedCallRoutes, { announcements });
  await app.register(callRoutes, { decisionRecords });
  await app.register(policyRoutes, { policy: app.services.policySource, shadow: app.services.shadowPolicy });
  await app.register(statusRoutes);
};

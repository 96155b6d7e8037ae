import fastJson from 'fast-json-stringify';
import { validatorCompiler } from '@fastify/type-provider-zod';
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { authenticate } from './auth';
import { registryRoutes } from './routes/registry';
import { scoreRoutes } from './routes/score';
import { stirRoutes } from './routes/stir';

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
  app.addHook('onRequest', authenticate(app.services.keys));
  await app.register(scoreRoutes);
  await app.register(registryRoutes);
  await app.register(stirRoutes);
};

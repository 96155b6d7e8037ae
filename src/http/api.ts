import fastJson from 'fast-json-stringify';
import { validatorCompiler } from '@fastify/type-provider-zod';
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { scoreRoutes } from './routes/score';

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
  await app.register(scoreRoutes);
};

import type { FastifyPluginAsyncZod } from '@fastify/type-provider-zod';
import { authErrorResponses, errorResponses, ScoreRequestSchema, ScoreResponseSchema } from '../schemas';

export const scoreRoutes: FastifyPluginAsyncZod = async (app) => {
  app.post(
    '/v1/calls/score',
    {
      config: { roles: ['switch', 'admin'] },
      schema: {
        tags: ['calls'],
        summary: 'Score one call',
        security: [{ bearer: [] }],
        description:
          "The per-call decision for switches and session border controllers: the claimed caller ID's spoofing risk " +
          '(0-100), a verdict (allow, flag, block) and every reason that moved the score.',
        body: ScoreRequestSchema,
        response: { 200: ScoreResponseSchema, ...errorResponses, ...authErrorResponses },
      },
    },
    async (request) => {
      const assessment = await app.services.assessor.assess(request.body);
      app.services.metrics.observeDecision(assessment);
      return assessment;
    },
  );
};

import type { FastifyPluginAsyncZod } from '@fastify/type-provider-zod';
import { z } from 'zod';
import { parseNumber } from '../../numbers';
import { HttpError } from '../errors';
import {
  authErrorResponses,
  CampaignSchema,
  ErrorResponseSchema,
  errorResponses,
  rateLimitedResponses,
  ReportBodySchema,
  ReportSchema,
} from '../schemas';

/** Spoofing campaigns running now, and fraud reports: what operators and fraud teams use. */
export const operatorRoutes: FastifyPluginAsyncZod = async (app) => {
  const { config, now } = app.services;

  app.get(
    '/v1/campaigns',
    {
      config: { roles: ['bank', 'admin'] },
      schema: {
        tags: ['operators'],
        summary: "Spoofing campaigns running now (a bank key sees its own bank's)",
        description:
          "A campaign is a bank's numbers failing the checks (presented from abroad, by an unauthorised carrier, with a " +
          'bad PASSporT, ...) more often than the policy allows within its window; while it runs, every call presenting ' +
          "one of that bank's numbers gets CAMPAIGN_ACTIVE.",
        security: [{ bearer: [] }],
        response: { 200: z.object({ campaigns: z.array(CampaignSchema) }), ...authErrorResponses, ...rateLimitedResponses },
      },
    },
    async (request) => {
      const campaigns = await app.services.behaviour.listCampaigns(now());
      const { role, bankId } = request.principal;
      return { campaigns: role === 'bank' ? campaigns.filter((c) => c.bankId === bankId) : campaigns };
    },
  );

  app.post(
    '/v1/reports',
    {
      config: { roles: ['bank', 'admin'] },
      schema: {
        tags: ['operators'],
        summary: 'Report a caller ID for fraud',
        description:
          'The report counts against the number at once: calls presenting it get REPORTED_FRAUD, weighted down as the ' +
          'report ages and dropped after the policy\'s maximum age. The reporter is the API key\'s name. Any bank key may ' +
          "report any number: what its customers were called from is rarely the bank's own.",
        security: [{ bearer: [] }],
        body: ReportBodySchema,
        response: { 201: ReportSchema, ...errorResponses, ...authErrorResponses, ...rateLimitedResponses, 503: ErrorResponseSchema },
      },
    },
    async (request, reply) => {
      const { number, category, callId, note } = request.body;
      const parsed = parseNumber(number, config.defaultCountry);
      // Calls from a number that is not diallable are blocked already; a report against one
      // would only be noise, and the store takes E.164 alone.
      if (parsed.e164 === null || !parsed.valid) {
        const why = parsed.withheld ? 'is a withheld caller ID marker, not a number' : 'is not a valid, diallable phone number';
        throw new HttpError(400, 'validation_failed', `number: ${JSON.stringify(number.slice(0, 64))} ${why}`, [{ field: 'number', message: why }]);
      }
      const report = await app.services.behaviour.reports.addReport({
        number: parsed.e164,
        category,
        ...(callId !== undefined ? { callId } : {}),
        ...(note !== undefined ? { note } : {}),
        reporter: request.principal.name,
        at: now(),
      });
      return reply.status(201).send(report);
    },
  );
};

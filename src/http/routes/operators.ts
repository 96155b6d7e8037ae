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

  /** The bank a number is given to: its registry entry or prefix, else the bank listing it as a callback number. */
  function ownerOf(e164: string): string | null {
    const registry = app.services.registryStore.index;
    const match = registry.lookup(e164);
    if (match) return match.bankId;
    return registry.allBanks().find((b) => b.callbackNumbers.includes(e164))?.id ?? null;
  }

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
          'report ages and dropped after the policy\'s maximum age. The reporter is the API key\'s name. A bank key may ' +
          "report its own bank's numbers and numbers that are no bank's (what its customers were called from is rarely the bank's " +
          "own), not a number the registry gives to another bank (403): a report flags that bank's genuine calls, and only it " +
          'or an administrator may say its number is abused.',
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
      const { principal } = request;
      if (principal.role === 'bank') {
        const owner = ownerOf(parsed.e164);
        if (owner !== null && owner !== principal.bankId) {
          throw new HttpError(
            403,
            'forbidden',
            `number: ${parsed.e164} is a number of bank "${owner}" in the registry: a bank key may not report another bank's number (its genuine calls would be flagged); that bank or an administrator may`,
          );
        }
      }
      const report = await app.services.behaviour.reports.addReport({
        number: parsed.e164,
        category,
        ...(callId !== undefined ? { callId } : {}),
        ...(note !== undefined ? { note } : {}),
        reporter: principal.name,
        at: now(),
      });
      return reply.status(201).send(report);
    },
  );
};

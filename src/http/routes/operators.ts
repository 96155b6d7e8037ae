import type { FastifyPluginAsyncZod } from '@fastify/type-provider-zod';
import { z } from 'zod';
import type { CampaignSummary } from '../../scoring';
import type { FraudReport } from '../../state/reports';
import type { Operators } from '../../usecases';
import {
  CampaignSchema,
  errorAnswer,
  ReportBodySchema,
  ReportSchema,
  ReportsQuerySchema,
} from '../schemas';

const CampaignListSchema = z.object({ campaigns: z.array(CampaignSchema) }).meta({ id: 'CampaignList', examples: [{ campaigns: CampaignSchema.meta()?.examples ?? [] }] });
const ReportListSchema = z.object({ reports: z.array(ReportSchema) }).meta({ id: 'ReportList', examples: [{ reports: ReportSchema.meta()?.examples ?? [] }] });

type Campaign = z.infer<typeof CampaignSchema>;
type Report = z.infer<typeof ReportSchema>;

/** The API's campaign, from the store's summary: the one place the two meet. */
const campaignOf = (c: CampaignSummary): Campaign => ({
  bankId: c.bankId,
  bankName: c.bankName,
  numbers: c.numbers.map((n) => ({ number: n.number, calls: n.calls })),
  failedCalls: c.failedCalls,
  since: c.since,
  lastSeen: c.lastSeen,
});

/** The API's report, from the store's: the one place the two meet. */
const reportOf = (r: FraudReport): Report => ({
  id: r.id,
  number: r.number,
  category: r.category,
  ...(r.callId !== undefined ? { callId: r.callId } : {}),
  ...(r.note !== undefined ? { note: r.note } : {}),
  at: r.at,
  reporter: r.reporter,
});

/** Spoofing campaigns running now, and fraud reports: what operators and fraud teams use. */
export const operatorRoutes: FastifyPluginAsyncZod<{ operators: Operators }> = async (app, { operators }) => {
  app.get(
    '/v1/campaigns',
    {
      config: { roles: ['bank', 'admin'] },
      schema: {
        operationId: 'listCampaigns',
        tags: ['operators'],
        summary: "Spoofing campaigns running now (a bank key sees its own bank's)",
        description:
          "A campaign is a bank's numbers failing the checks (presented from abroad, by an unauthorised carrier, with a " +
          'bad PASSporT, ...) more often than the policy allows within its window; while it runs, every call presenting ' +
          "one of that bank's numbers gets CAMPAIGN_ACTIVE.",
        response: { 200: CampaignListSchema.describe('The campaigns running now') },
      },
    },
    async (request) => ({ campaigns: (await operators.campaigns(request.principal)).map(campaignOf) }),
  );

  app.post(
    '/v1/reports',
    {
      config: { roles: ['bank', 'admin'] },
      schema: {
        operationId: 'createReport',
        tags: ['operators'],
        summary: 'Report a caller ID for fraud, or a flagged call as genuine',
        description:
          'A `genuine` report (a called party or agent says a flagged or blocked call was genuine) is kept for review ' +
          '(GET /v1/reports) and never changes a score by itself. Any other report counts against the number at once: calls presenting it get REPORTED_FRAUD, weighted down as the ' +
          'report ages and dropped after the policy\'s maximum age. The reporter is the API key\'s name. A bank key may ' +
          "report its own bank's numbers and numbers that are no bank's (what its customers were called from is rarely the bank's " +
          "own), not a number the registry gives to another bank (403): a report flags that bank's genuine calls, and only it " +
          'or an administrator may say its number is abused.',
        body: ReportBodySchema,
        response: { 201: ReportSchema.describe('The report, as kept'), 503: errorAnswer('The shared store (Redis) did not take the report; try again') },
      },
    },
    async (request, reply) => reply.status(201).send(reportOf(await operators.report(request.principal, request.body))),
  );

  app.get(
    '/v1/reports',
    {
      config: { roles: ['bank', 'admin'] },
      schema: {
        operationId: 'listReports',
        tags: ['operators'],
        summary: 'Reports for review, newest first (a bank key sees those about its own numbers)',
        description:
          'Reports within the policy\'s maximum age, `genuine` ones included, narrowed by `category` and `since`; at most ' +
          '`limit` (default 100, at most 1000). A bank key sees the reports about numbers the registry gives to its bank now.',
        querystring: ReportsQuerySchema,
        response: { 200: ReportListSchema.describe('The reports, newest first') },
      },
    },
    async (request) => {
      const { category, since, limit } = request.query;
      const list = await operators.reports(request.principal, {
        ...(category !== undefined ? { category } : {}),
        ...(since !== undefined ? { since: Date.parse(since) } : {}),
        limit,
      });
      return { reports: list.map(reportOf) };
    },
  );
};

import type { FastifyPluginAsyncZod } from '@fastify/type-provider-zod';
import { z } from 'zod';
import { RECENT_DECISIONS_KEPT, type DecisionEntry } from '../../state';
import type { DecisionRecords } from '../../usecases';
import { CallDecisionsResponseSchema, CallIdParamsSchema, DecisionRecordSchema, errorAnswer } from '../schemas';

type DecisionView = z.infer<typeof DecisionRecordSchema>;

/** The API's decision record, from the store's: the one place the two meet. */
function decisionOf(d: DecisionEntry): DecisionView {
  const view: DecisionView = {
    at: new Date(d.at).toISOString(),
    decidedAt: new Date(d.decidedAt).toISOString(),
    from: d.from,
    to: d.to,
    verdict: d.verdict,
    score: d.score,
    presentation: d.presentation,
    reasons: d.reasons.map((r) => r.code),
    reasonDetails: d.reasons.map((r) => ({ code: r.code, weight: r.weight, message: r.message })),
    cached: d.cached,
    shaken: { ...d.shaken, errors: [...d.shaken.errors] },
    policyVersion: d.policyVersion,
    registryVersion: d.registryVersion,
  };
  if (d.bankId !== undefined) view.bankId = d.bankId;
  if (d.origin !== undefined) view.origin = d.origin;
  return view;
}

const RecentDecisionSchema = DecisionRecordSchema.extend({ callId: z.string() }).meta({ id: 'RecentDecision' });

/** Decision records: why a call got its verdict, and where it came from. */
export const callRoutes: FastifyPluginAsyncZod<{ decisionRecords: DecisionRecords }> = async (app, { decisionRecords }) => {
  app.get(
    '/v1/calls',
    {
      config: { roles: ['admin'] },
      schema: {
        tags: ['calls'],
        operationId: 'listRecentDecisions',
        summary: 'The latest decisions this instance made, newest first',
        description:
          `What an operator watches live (the console asks every few seconds): the newest \`limit\` decisions (default 50, at most ${RECENT_DECISIONS_KEPT}) ` +
          'made for calls that carried a callId, each as GET /v1/calls/{callId} answers it, with its callId. Only the instance that answers ' +
          "keeps them, in memory: behind a load balancer each instance lists its own calls, and a restart starts the list again. " +
          'For the whole story of one call, ask GET /v1/calls/{callId}.',
        querystring: z.object({
          limit: z.coerce
            .number({ error: 'limit must be a number' })
            .int({ error: 'limit must be a whole number' })
            .min(1, { error: 'limit must be at least 1' })
            .max(RECENT_DECISIONS_KEPT, { error: `limit must be at most ${RECENT_DECISIONS_KEPT}` })
            .default(50)
            .describe(`decisions listed at most, 1-${RECENT_DECISIONS_KEPT}`),
        }),
        response: {
          200: z
            .object({ decisions: z.array(RecentDecisionSchema) })
            .meta({
              id: 'RecentDecisionList',
              example: {
                decisions: [
                  {
                    callId: 'a84f2c1e-3b7d-4e0a-9c51-2f6b8d0e7a13',
                    at: '2026-12-07T10:15:04.120Z',
                    decidedAt: '2026-12-07T10:15:04.131Z',
                    from: '+443450000000',
                    to: '+447400123456',
                    bankId: 'examplebank',
                    verdict: 'block',
                    score: 97,
                    presentation: 'allowed',
                    reasons: ['CLI_DNO'],
                    reasonDetails: [{ code: 'CLI_DNO', weight: 90, message: 'caller ID is a bank number that never makes outbound calls' }],
                    cached: false,
                    shaken: { source: 'none', verstat: 'No-TN-Validation', attestation: null, errors: [] },
                    policyVersion: 'builtin-3f9a2c',
                    registryVersion: 'r-41',
                  },
                ],
              },
            })
            .describe("This instance's latest decisions, newest first"),
        },
      },
    },
    async (request) => {
      const decisions = await decisionRecords.recent(request.principal, request.query.limit);
      return { decisions: decisions.map((d) => ({ ...decisionOf(d), callId: d.callId })) };
    },
  );

  app.get(
    '/v1/calls/:callId',
    {
      config: { roles: ['bank', 'admin'] },
      schema: {
        operationId: 'getCallDecisions',
        tags: ['calls'],
        summary: 'The decisions made for a call id, newest first',
        description:
          'For "why was this call blocked?" and traceback: each decision with its reasons (codes, weights and messages), ' +
          'the STIR/SHAKEN evidence (who signed it: spc, origid, x5u), the origin the switch gave (trunk, carrier, country) ' +
          'and the policy and registry versions it was made under. Kept 30 days, the newest 20 decisions of a call id. ' +
          "A bank key sees only decisions on calls that presented its own bank's numbers when they were scored; anything " +
          'else, like an unknown call id, is 404.',
        params: CallIdParamsSchema,
        response: {
          200: CallDecisionsResponseSchema.describe('The decisions made for the call id, newest first'),
          404: errorAnswer('`not_found`: no decision for that call id (or none the key may see)'),
        },
      },
    },
    async (request) => {
      const { callId } = request.params;
      const decisions = await decisionRecords.forCall(request.principal, callId);
      return { callId, decisions: decisions.map(decisionOf) };
    },
  );
};

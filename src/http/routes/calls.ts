import type { FastifyPluginAsyncZod } from '@fastify/type-provider-zod';
import type { z } from 'zod';
import type { DecisionEntry } from '../../state';
import type { DecisionRecords } from '../../usecases';
import { CallDecisionsResponseSchema, CallIdParamsSchema, errorAnswer, type DecisionRecordSchema } from '../schemas';

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

/** Decision records: why a call got its verdict, and where it came from. */
export const callRoutes: FastifyPluginAsyncZod<{ decisionRecords: DecisionRecords }> = async (app, { decisionRecords }) => {
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

import type { FastifyPluginAsyncZod } from '@fastify/type-provider-zod';
import type { z } from 'zod';
import type { CallOutcome } from '../../calls/types';
import { displayOf } from '../../scoring';
import { sipReasonHeader } from '../../shaken';
import { ScoreRequestSchema, ScoreResponseSchema } from '../schemas';

type ScoreResponse = z.infer<typeof ScoreResponseSchema>;

export const scoreRoutes: FastifyPluginAsyncZod = async (app) => {
  app.post(
    '/v1/calls/score',
    {
      config: { roles: ['switch', 'admin'] },
      schema: {
        operationId: 'scoreCall',
        tags: ['calls'],
        summary: 'Score one call',
        description:
          "The per-call decision for switches and session border controllers: the claimed caller ID's spoofing risk " +
          '(0-100), a verdict (allow, flag, block) and every reason that moved the score.',
        body: ScoreRequestSchema,
        response: { 200: ScoreResponseSchema.describe('The decision: score, verdict, every reason that moved the score, and the evidence a switch is told') },
      },
    },
    async (request) => {
      const outcome = await app.services.assessor.assess(request.body);
      app.services.metrics.observeDecision({ verdict: outcome.decision.verdict, reasons: outcome.decision.reasons, cached: outcome.cached });
      return scoreResponse(outcome);
    },
  );
};

/** The contract's response body: the decision, and of the evidence what a switch is told. */
export function scoreResponse({ callId, decision, evidence, cached }: CallOutcome): ScoreResponse {
  const { caller, registry, shaken } = evidence.signals;
  const callerView: ScoreResponse['caller'] = { e164: caller.e164, valid: caller.valid, withheld: caller.withheld };
  if (caller.type !== undefined) callerView.type = caller.type;
  if (caller.country !== undefined) callerView.country = caller.country;
  if (caller.shortCode) callerView.shortCode = caller.shortCode.code;
  const shakenView: ScoreResponse['shaken'] = { verstat: shaken.verstat, attestation: shaken.attestation, errors: shaken.errors };
  if (shaken.origid !== undefined) shakenView.origid = shaken.origid;
  if (shaken.spc !== undefined) shakenView.spc = shaken.spc;
  if (shaken.authority !== undefined) shakenView.authority = shaken.authority;
  if (shaken.rcd !== undefined) shakenView.rcd = { ...shaken.rcd };
  const answer: ScoreResponse = {
    score: decision.score,
    verdict: decision.verdict,
    reasons: decision.reasons,
    caller: callerView,
    registry: registry ? { bankId: registry.bankId, bankName: registry.bankName, inboundOnly: registry.inboundOnly, match: registry.match } : null,
    shaken: shakenView,
    presentation: decision.presentation,
    cached,
  };
  // The switch passes a failed PASSporT's cause on with a call it delivers (RFC 8224 section 6.2.2).
  if (shaken.source === 'passport' && shaken.verstat === 'TN-Validation-Failed' && decision.verdict !== 'block') {
    const reason = sipReasonHeader(shaken.errors);
    if (reason !== null) answer.sipReason = reason;
  }
  const display = displayOf(evidence.signals, decision);
  if (display !== undefined) answer.display = display;
  if (callId !== undefined) answer.callId = callId;
  return answer;
}

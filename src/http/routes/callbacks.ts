import type { FastifyPluginAsyncZod } from '@fastify/type-provider-zod';
import type { CallbackVerification } from '../../usecases';
import { CallbackVerifyRequestSchema, CallbackVerifyResponseSchema } from '../schemas';

/** Bank call centres: validates, lets the use case answer, and shapes the recent and expected calls. */
export const callbackRoutes: FastifyPluginAsyncZod<{ callbacks: CallbackVerification }> = async (app, { callbacks }) => {
  app.post(
    '/v1/callbacks/verify',
    {
      config: { roles: ['switch', 'bank', 'admin'] },
      schema: {
        operationId: 'verifyCallback',
        tags: ['callbacks'],
        summary: "Is this number genuinely a bank's, and what became of recent calls presenting it?",
        description:
          "For a call-centre agent (or the bank's app) whose customer says \"my bank just called me from this number\". " +
          '`genuine`, `bank`, `inboundOnly` and `callbackNumbers` are told to every key, a bank key asking about another ' +
          "bank's number included: which bank a published number belongs to is what a customer may be told anyway, and " +
          "\"no, that is not our number, but it is Example Bank's\" is a legitimate answer. `recentCalls` (only with " +
          '`customer`) is scoped: a bank key sees only calls that presented its own bank\'s numbers as the registry stood ' +
          "when each call was scored, so for another bank's number it is empty, and so it is for calls made before a number became the bank's. " +
          "`expectedCalls` (only with `customer`) lists the calls the number's bank announced to the customer (POST /v1/calls/expected), " +
          "from any of its numbers, in their window at any time since `since`; a bank key sees its own bank's only.",
        body: CallbackVerifyRequestSchema,
        response: { 200: CallbackVerifyResponseSchema.describe("Whether the number is a bank's, its official callback numbers, and (with `customer`) the recent and announced calls") },
      },
    },
    async (request) => {
      const { recentCalls, expectedCalls, ...answer } = await callbacks.verify(request.principal, request.body);
      return {
        ...answer,
        ...(recentCalls
          ? {
              recentCalls: recentCalls.map((e) => ({
                ...(e.callId !== undefined ? { callId: e.callId } : {}),
                at: e.at,
                verdict: e.verdict,
                score: e.score,
                reasons: e.reasons,
              })),
            }
          : {}),
        ...(expectedCalls
          ? {
              expectedCalls: expectedCalls.map((a) => ({
                from: a.from,
                at: new Date(a.at).toISOString(),
                expiresAt: new Date(a.expiresAt).toISOString(),
                ...(a.reference !== undefined ? { reference: a.reference } : {}),
              })),
            }
          : {}),
      };
    },
  );
};

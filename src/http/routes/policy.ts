import type { FastifyPluginAsyncZod } from '@fastify/type-provider-zod';
import { z } from 'zod';
import { REASON_CODES, VERDICTS, type Policy } from '../../scoring';
import type { PolicySource } from '../../usecases';
import { authErrorResponses, errorResponses, rateLimitedResponses } from '../schemas';

const ReasonCodeSchema = z.enum(REASON_CODES);

const PolicySchema = z
  .object({
    baseScore: z.number().int(),
    thresholds: z.object({ flag: z.number().int(), block: z.number().int() }),
    weights: z.record(ReasonCodeSchema, z.number().int()),
    verdictFloors: z.partialRecord(ReasonCodeSchema, z.enum(VERDICTS as ['allow', 'flag', 'block'])),
    velocity: z.object({ windows: z.array(z.object({ seconds: z.number().int(), maxDistinct: z.number().int() })) }),
    reports: z.object({ halfLifeS: z.number().int(), maxAgeS: z.number().int() }),
    campaign: z.object({ windowS: z.number().int(), minFailedCalls: z.number().int() }),
    presentation: z.object({ ukMobileFromAbroad: z.enum(['allowed', 'withheld']) }),
  })
  .meta({ id: 'Policy' });

export const PolicyResponseSchema = z
  .object({
    version: z.string().describe('The version in every verdict cache key and decision record'),
    source: z.enum(['built-in', 'file']),
    path: z.string().optional().describe('POLICY_FILE, when the policy came from it'),
    loadedAt: z.iso.datetime(),
    policy: PolicySchema.describe('The base policy: every call whose trunk has no profile'),
    profiles: z.record(z.string(), PolicySchema).describe("Per origin.trunk: the policy a call from that trunk is judged by (the base's velocity, campaign and report settings)"),
  })
  .meta({ id: 'PolicyResponse' });

function policyView(p: Policy): z.infer<typeof PolicySchema> {
  return p;
}

/** The scoring policy in force, for operators. */
export const policyRoutes: FastifyPluginAsyncZod<{ policy: PolicySource }> = async (app, { policy }) => {
  app.get(
    '/v1/policy',
    {
      config: { roles: ['admin'] },
      schema: {
        tags: ['operators'],
        summary: 'The scoring policy in force',
        description:
          'The policy deciding calls now (POLICY_FILE merged over the built-in policy, or the built-in policy) with its ' +
          'per-trunk profiles, and its version: the one in every verdict cache key and decision record. ' +
          'SIGHUP re-reads POLICY_FILE; a bad file keeps the running policy.',
        security: [{ bearer: [] }],
        response: { 200: PolicyResponseSchema, ...errorResponses, ...authErrorResponses, ...rateLimitedResponses },
      },
    },
    () => {
      const p = policy.current();
      return {
        version: p.version,
        source: p.source,
        ...(p.path !== undefined ? { path: p.path } : {}),
        loadedAt: new Date(p.loadedAt).toISOString(),
        policy: policyView(p.document.policy),
        profiles: Object.fromEntries(Object.entries(p.document.profiles).map(([trunk, profile]) => [trunk, policyView(profile)])),
      };
    },
  );
};

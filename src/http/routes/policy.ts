import type { FastifyPluginAsyncZod } from '@fastify/type-provider-zod';
import { z } from 'zod';
import { REASON_CODES, VERDICTS, type Policy } from '../../scoring';
import type { PolicySource, ShadowPolicy } from '../../usecases';
import { authErrorResponses, ErrorResponseSchema, errorResponses, rateLimitedResponses } from '../schemas';

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

const VerdictSchema = z.enum(VERDICTS as ['allow', 'flag', 'block']);

export const ShadowReportSchema = z
  .object({
    version: z.string().describe("The candidate's version"),
    since: z.iso.datetime().describe('When it was set: its counts start then'),
    calls: z.number().int().min(0).describe('Calls decided under the candidate since, on every instance (each sends its tally about every second)'),
    changed: z
      .array(z.object({ live: VerdictSchema, shadow: VerdictSchema, count: z.number().int().min(1) }))
      .describe('Verdict pairs that differ (live, then under the candidate), most frequent first'),
    examples: z
      .array(
        z.object({
          callId: z.string().optional(),
          at: z.iso.datetime(),
          live: VerdictSchema,
          shadow: VerdictSchema,
          liveScore: z.number().int().min(0).max(100),
          shadowScore: z.number().int().min(0).max(100),
          reasons: z.array(ReasonCodeSchema).describe("The candidate's reason codes for the call"),
        }),
      )
      .max(100)
      .describe('Up to 100 recent calls whose verdict the candidate would change, newest first'),
  })
  .meta({ id: 'ShadowPolicyReport' });

/** Any JSON object: the document is read (and every problem named) by the same rules as POLICY_FILE. */
const PolicyDocumentBodySchema = z
  .record(z.string(), z.unknown())
  .meta({
    id: 'PolicyDocument',
    description:
      "A policy document in POLICY_FILE's format: only what differs from the built-in policy (baseScore, thresholds, weights, " +
      'verdictFloors, presentation), and optional per-trunk `profiles`. Velocity, campaign and report settings must be the live ones.',
  });

const shadowNotFound = ErrorResponseSchema.describe('`not_found`: no shadow policy is set');
const shadowUnavailable = ErrorResponseSchema.describe('`redis_unavailable`: the shared store (Redis) could not be reached; nothing is known to have changed, try again');

function policyView(p: Policy): z.infer<typeof PolicySchema> {
  return p;
}

/** The scoring policy in force, for operators. */
export const policyRoutes: FastifyPluginAsyncZod<{ policy: PolicySource; shadow: ShadowPolicy }> = async (app, { policy, shadow }) => {
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

  app.put(
    '/v1/policy/shadow',
    {
      config: { roles: ['admin'] },
      schema: {
        tags: ['operators'],
        summary: 'Try a policy in shadow',
        description:
          'Every scored call is also decided under this candidate, on every instance, without changing its answer; ' +
          'GET /v1/policy/shadow/report says what it would have changed. The body is a policy document as POLICY_FILE takes it, ' +
          'read by the same rules (every problem is named). The candidate is judged on the live counts across calls, so its ' +
          'velocity, campaign and report settings must be the live ones. Setting the candidate already set keeps its counts; ' +
          'another replaces it and the counts start again. Answers the report.',
        security: [{ bearer: [] }],
        body: PolicyDocumentBodySchema,
        response: { 200: ShadowReportSchema, ...errorResponses, ...authErrorResponses, ...rateLimitedResponses, 503: shadowUnavailable },
      },
    },
    async (request) => shadow.set(request.body),
  );

  app.get(
    '/v1/policy/shadow/report',
    {
      config: { roles: ['admin'] },
      schema: {
        tags: ['operators'],
        summary: 'What the shadow policy would have changed',
        description:
          'Calls decided under the candidate since it was set, the verdict pairs that differ with their counts, and up to 100 ' +
          "recent examples. This instance's tally is sent first; other instances' are up to a second behind.",
        security: [{ bearer: [] }],
        response: { 200: ShadowReportSchema, ...authErrorResponses, 404: shadowNotFound, ...rateLimitedResponses, 503: shadowUnavailable },
      },
    },
    async () => shadow.report(),
  );

  app.delete(
    '/v1/policy/shadow',
    {
      config: { roles: ['admin'] },
      schema: {
        tags: ['operators'],
        summary: 'End the shadow policy',
        description: 'Calls are no longer decided under the candidate, on any instance (within a second); its counts are dropped.',
        security: [{ bearer: [] }],
        response: { 204: z.null().meta({ description: 'ended: no body', type: 'null' }), ...authErrorResponses, 404: shadowNotFound, ...rateLimitedResponses, 503: shadowUnavailable },
      },
    },
    async (_request, reply) => {
      await shadow.clear();
      return reply.status(204).send(null);
    },
  );
};

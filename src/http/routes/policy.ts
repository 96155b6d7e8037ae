import type { FastifyPluginAsyncZod } from '@fastify/type-provider-zod';
import { z } from 'zod';
import { DEFAULT_POLICY, REASON_CODES, VERDICTS, type Policy, type ReasonCode } from '../../scoring';
import type { PolicySource, ShadowPolicy } from '../../usecases';
import { errorAnswer } from '../schemas';

const ReasonCodeSchema = z.enum(REASON_CODES);

const Score = z.number().int().min(0).max(100);
const Positive = z.number().int().min(1);
const VerdictSchema = z.enum(VERDICTS as ['allow', 'flag', 'block']);

/** One property a reason code, so a client reads `weights.CLI_DNO` as a field (the bounds are a policy file's). */
const byReasonCode = <T extends z.ZodType>(value: T) =>
  Object.fromEntries(REASON_CODES.map((code) => [code, value])) as Record<ReasonCode, T>;

const PolicySchema = z
  .object({
    baseScore: Score,
    thresholds: z.object({ flag: Score, block: Score }),
    weights: z.object(byReasonCode(z.number().int().min(-100).max(100))).describe('points each signal adds (> 0) or takes off (< 0)'),
    verdictFloors: z.object(byReasonCode(VerdictSchema.optional())).describe('the least verdict a call with that reason gets'),
    velocity: z.object({ windows: z.array(z.object({ seconds: Positive, maxDistinct: Positive })).min(1).max(10) }),
    reports: z.object({ halfLifeS: Positive, maxAgeS: Positive }),
    campaign: z.object({ windowS: Positive, minFailedCalls: Positive }),
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
  .meta({
    id: 'PolicyResponse',
    examples: [
      {
        version: 'Qm3xW1aB9cDe',
        source: 'file',
        path: '/etc/callguard/policy.json',
        loadedAt: '2026-12-07T06:00:00.000Z',
        policy: { ...DEFAULT_POLICY, baseScore: 10, thresholds: { flag: 45, block: 75 } },
        profiles: { 'intl-gw-2': { ...DEFAULT_POLICY, thresholds: { flag: 35, block: 70 } } },
      },
    ],
  });

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
  .meta({
    id: 'ShadowPolicyReport',
    examples: [
      {
        version: 'Zk81LqP0vT2s',
        since: '2026-12-07T09:00:00.000Z',
        calls: 48210,
        changed: [{ live: 'allow', shadow: 'flag', count: 37 }],
        examples: [
          {
            callId: 'c-1',
            at: '2026-12-07T10:01:12.000Z',
            live: 'allow',
            shadow: 'flag',
            liveScore: 40,
            shadowScore: 50,
            reasons: ['CLI_MOBILE_FROM_ABROAD', 'SHAKEN_ABSENT'],
          },
        ],
      },
    ],
  });

/** Any JSON object: the document is read (and every problem named) by the same rules as POLICY_FILE. */
const PolicyDocumentBodySchema = z
  .record(z.string(), z.unknown())
  .meta({
    id: 'PolicyDocument',
    examples: [{ thresholds: { flag: 40, block: 70 }, weights: { CLI_MOBILE_FROM_ABROAD: 20 }, profiles: { 'intl-gw-2': { thresholds: { flag: 35 } } } }],
    description:
      "A policy document in POLICY_FILE's format: only what differs from the built-in policy (baseScore, thresholds, weights, " +
      'verdictFloors, presentation), and optional per-trunk `profiles`. Velocity, campaign and report settings must be the live ones.',
  });

const shadowNotFound = errorAnswer('`not_found`: no shadow policy is set');
const shadowUnavailable = errorAnswer('`redis_unavailable`: the shared store (Redis) could not be reached; nothing is known to have changed, try again');

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
        operationId: 'getPolicy',
        tags: ['operators'],
        summary: 'The scoring policy in force',
        description:
          'The policy deciding calls now (POLICY_FILE merged over the built-in policy, or the built-in policy) with its ' +
          'per-trunk profiles, and its version: the one in every verdict cache key and decision record. ' +
          'SIGHUP re-reads POLICY_FILE; a bad file keeps the running policy.',
        response: { 200: PolicyResponseSchema.describe('The policy in force, its per-trunk profiles and its version') },
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
        operationId: 'setShadowPolicy',
        tags: ['operators'],
        summary: 'Try a policy in shadow',
        description:
          'Every scored call is also decided under this candidate, on every instance, without changing its answer; ' +
          'GET /v1/policy/shadow/report says what it would have changed. The body is a policy document as POLICY_FILE takes it, ' +
          'read by the same rules (every problem is named). The candidate is judged on the live counts across calls, so its ' +
          'velocity, campaign and report settings must be the live ones. Setting the candidate already set keeps its counts; ' +
          'another replaces it and the counts start again. Answers the report.',
        body: PolicyDocumentBodySchema,
        response: { 200: ShadowReportSchema.describe('The candidate is set: its report so far'), 503: shadowUnavailable },
      },
    },
    async (request) => shadow.set(request.body),
  );

  app.get(
    '/v1/policy/shadow/report',
    {
      config: { roles: ['admin'] },
      schema: {
        operationId: 'getShadowPolicyReport',
        tags: ['operators'],
        summary: 'What the shadow policy would have changed',
        description:
          'Calls decided under the candidate since it was set, the verdict pairs that differ with their counts, and up to 100 ' +
          "recent examples. This instance's tally is sent first; other instances' are up to a second behind.",
        response: { 200: ShadowReportSchema.describe('What the candidate would have changed so far'), 404: shadowNotFound, 503: shadowUnavailable },
      },
    },
    async () => shadow.report(),
  );

  app.delete(
    '/v1/policy/shadow',
    {
      config: { roles: ['admin'] },
      schema: {
        operationId: 'endShadowPolicy',
        tags: ['operators'],
        summary: 'End the shadow policy',
        description: 'Calls are no longer decided under the candidate, on any instance (within a second); its counts are dropped.',
        response: { 204: z.null().meta({ description: 'ended: no body', type: 'null' }), 404: shadowNotFound, 503: shadowUnavailable },
      },
    },
    async (_request, reply) => {
      await shadow.clear();
      return reply.status(204).send(null);
    },
  );
};

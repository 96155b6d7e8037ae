import { createHash } from 'node:crypto';
import { z } from 'zod';
import { DEFAULT_POLICY, policyVersion, type Policy } from './policy';
import { REASON_CODES, VERDICTS, type ReasonCode, type Verdict } from './reasons';

/**
 * The policy an operator writes (POLICY_FILE): only what they change, merged over the built-in
 * policy, and `profiles` per `origin.trunk`, each merged over the file's base policy.
 *
 * A profile may change how a call is judged (base score, thresholds, weights, floors,
 * presentation) but not the counting across calls (velocity windows, campaign window, report
 * ages): those counts are shared by every trunk, so their windows come from the base alone.
 */
export interface PolicyDocument {
  policy: Policy;
  profiles: Record<string, Policy>;
}

export const MAX_PROFILES = 100;
const MAX_WINDOWS = 10;
/** Keys a profile may not set, with why. */
const BASE_ONLY = ['velocity', 'campaign', 'reports'] as const;

const positiveInt = z.number().int().positive();

/**
 * A weight keeps the direction the built-in policy gives it: a risk may be made heavier or
 * lighter but never a credit, and a credit never a risk, so adding a risk signal never lowers
 * a score under any policy.
 */
function weightSchema(code: ReasonCode) {
  const base = z.number().int().min(-100).max(100);
  const d = DEFAULT_POLICY.weights[code];
  if (d > 0) return base.min(0, { message: `${code} is a risk: its weight must not be negative` });
  if (d < 0) return base.max(0, { message: `${code} is a credit: its weight must not be positive` });
  return base;
}

const WeightsSchema = z.strictObject(
  Object.fromEntries(REASON_CODES.map((c) => [c, weightSchema(c).optional()])) as Record<ReasonCode, z.ZodOptional<z.ZodNumber>>,
);
const VerdictSchema = z.enum(VERDICTS as [Verdict, ...Verdict[]]);
/** `null` removes a built-in floor. */
const FloorsSchema = z.strictObject(
  Object.fromEntries(REASON_CODES.map((c) => [c, VerdictSchema.nullable().optional()])) as Record<ReasonCode, z.ZodOptional<z.ZodNullable<typeof VerdictSchema>>>,
);
const Score = z.number().int().min(0).max(100);

const JudgementShape = {
  baseScore: Score.optional(),
  thresholds: z.strictObject({ flag: Score.optional(), block: Score.optional() }).optional(),
  weights: WeightsSchema.optional(),
  verdictFloors: FloorsSchema.optional(),
  presentation: z.strictObject({ ukMobileFromAbroad: z.enum(['allowed', 'withheld']).optional() }).optional(),
};

const CountingShape = {
  velocity: z
    .strictObject({ windows: z.array(z.strictObject({ seconds: positiveInt, maxDistinct: positiveInt })).min(1).max(MAX_WINDOWS).optional() })
    .optional(),
  reports: z.strictObject({ halfLifeS: positiveInt.optional(), maxAgeS: positiveInt.optional() }).optional(),
  campaign: z.strictObject({ windowS: positiveInt.optional(), minFailedCalls: positiveInt.optional() }).optional(),
};

type PolicyPatch = z.infer<z.ZodObject<typeof JudgementShape & typeof CountingShape>>;

const ProfileSchema = z.looseObject({}).superRefine((raw, ctx) => {
  for (const key of BASE_ONLY)
    if (key in raw) ctx.addIssue({ code: 'custom', path: [key], message: `${key} is counted across every trunk: set it in the base policy, not in a profile` });
});

const DocumentSchema = z.strictObject({
  ...JudgementShape,
  ...CountingShape,
  profiles: z
    .record(z.string().min(1).max(128), z.unknown())
    .refine((p) => Object.keys(p).length <= MAX_PROFILES, { message: `at most ${MAX_PROFILES} profiles` })
    .optional(),
});
const ProfileFieldsSchema = z.strictObject(JudgementShape);

function merge(base: Policy, patch: PolicyPatch): Policy {
  const floors: Partial<Record<ReasonCode, Verdict>> = { ...base.verdictFloors };
  for (const [code, v] of Object.entries(patch.verdictFloors ?? {}) as [ReasonCode, Verdict | null | undefined][]) {
    if (v === null) delete floors[code];
    else if (v !== undefined) floors[code] = v;
  }
  return {
    baseScore: patch.baseScore ?? base.baseScore,
    thresholds: { ...base.thresholds, ...defined(patch.thresholds) },
    weights: { ...base.weights, ...defined(patch.weights) },
    verdictFloors: floors,
    velocity: { windows: patch.velocity?.windows ?? base.velocity.windows },
    reports: { ...base.reports, ...defined(patch.reports) },
    campaign: { ...base.campaign, ...defined(patch.campaign) },
    presentation: { ...base.presentation, ...defined(patch.presentation) },
  };
}

function defined<T extends object>(o: T | undefined): Partial<{ [K in keyof T]: Exclude<T[K], undefined> }> {
  return Object.fromEntries(Object.entries(o ?? {}).filter(([, v]) => v !== undefined)) as Partial<{ [K in keyof T]: Exclude<T[K], undefined> }>;
}

function issues(error: z.ZodError, prefix: (string | number)[] = []): string[] {
  return error.issues.map((i) => {
    const path = [...prefix, ...i.path.map(String)].join('.');
    return path ? `${path}: ${i.message}` : i.message;
  });
}

/** Checks the merged policy as a whole: what no single field can say. */
function coherence(p: Policy, prefix: string): string[] {
  const problems: string[] = [];
  if (p.thresholds.flag > p.thresholds.block) problems.push(`${prefix}thresholds: flag (${p.thresholds.flag}) must not exceed block (${p.thresholds.block})`);
  if (p.reports.halfLifeS > p.reports.maxAgeS) problems.push(`${prefix}reports: halfLifeS must not exceed maxAgeS`);
  return problems;
}

/** Reads a policy document: the policies it gives, or every problem, each naming its path. */
export function readPolicyDocument(raw: unknown): { document: PolicyDocument } | { problems: string[] } {
  // A record drops a `__proto__` key: said here, rather than a profile silently lost.
  const given = typeof raw === 'object' && raw !== null ? (raw as { profiles?: unknown }).profiles : undefined;
  if (typeof given === 'object' && given !== null && Object.hasOwn(given, '__proto__'))
    return { problems: ['profiles.__proto__: not a trunk name'] };
  const parsed = DocumentSchema.safeParse(raw);
  if (!parsed.success) return { problems: issues(parsed.error) };
  const { profiles: rawProfiles, ...patch } = parsed.data;
  const policy = merge(DEFAULT_POLICY, patch);
  const problems = coherence(policy, '');
  const profiles: Record<string, Policy> = {};
  for (const [trunk, rawProfile] of Object.entries(rawProfiles ?? {})) {
    const at = ['profiles', trunk];
    const baseOnly = ProfileSchema.safeParse(rawProfile);
    if (!baseOnly.success) {
      problems.push(...issues(baseOnly.error, at));
      continue;
    }
    const fields = ProfileFieldsSchema.safeParse(rawProfile);
    if (!fields.success) {
      problems.push(...issues(fields.error, at));
      continue;
    }
    profiles[trunk] = merge(policy, fields.data);
    problems.push(...coherence(profiles[trunk], `profiles.${trunk}.`));
  }
  return problems.length ? { problems } : { document: { policy, profiles } };
}

/** The built-in policy as a document. */
export const DEFAULT_DOCUMENT: PolicyDocument = { policy: DEFAULT_POLICY, profiles: {} };

/**
 * The version of everything that decides: the built-in policy keeps its own version, and a
 * document with profiles is versioned as a whole, so changing any profile changes it too.
 */
export function documentVersion(doc: PolicyDocument): string {
  if (Object.keys(doc.profiles).length === 0) return policyVersion(doc.policy);
  const profiles = Object.fromEntries(Object.entries(doc.profiles).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return createHash('sha256').update(JSON.stringify({ policy: doc.policy, profiles })).digest('base64url').slice(0, 12);
}

/** The policy a call from `trunk` is judged by. */
export function policyFor(doc: PolicyDocument, trunk: string | undefined): Policy {
  return (trunk !== undefined && Object.hasOwn(doc.profiles, trunk) ? doc.profiles[trunk] : undefined) ?? doc.policy;
}

import { z } from 'zod';
import { REASON_CODES, VERDICTS } from '../scoring/reasons';
import { SHAKEN_ERROR_CODES } from '../shaken/types';
import { REPORT_CATEGORIES } from '../state/reports';

/**
 * Request and response schemas, defined once. Requests are validated with zod; responses are
 * turned into JSON Schema for the docs and for fast-json-stringify, which serialises them an
 * order of magnitude faster than a zod encode.
 */

const numberField = (what: string) =>
  z
    .string({ error: `${what} must be a string` })
    .max(256, { error: `${what} is longer than 256 characters` })
    .describe(`${what}: E.164, national (DEFAULT_COUNTRY), tel: or sip:/sips: URI, or a withheld marker`);

const identityValue = z.string().min(1, { error: 'identity must not be empty' }).max(8192, { error: 'an identity header is longer than 8192 characters' });

export const AttestationSchema = z.enum(['A', 'B', 'C']);
export const VerstatSchema = z.enum(['TN-Validation-Passed', 'TN-Validation-Failed', 'No-TN-Validation']);

export const ScoreRequestSchema = z
  .object({
    from: numberField('from (caller ID as presented)'),
    to: numberField('to (called number)'),
    pai: numberField('pai (P-Asserted-Identity)').optional(),
    identity: z
      .union([identityValue, z.array(identityValue).min(1).max(10, { error: 'at most 10 identity headers' })])
      .optional()
      .describe('SIP Identity header value(s), exactly as received'),
    attestation: AttestationSchema.optional().describe('attestation from an upstream verifier, when no identity is passed'),
    verstat: VerstatSchema.optional().describe('upstream verstat value'),
    origin: z
      .object({
        trunk: z.string().max(128).optional(),
        carrier: z.string().max(32).optional().describe('service provider code of the originating carrier'),
        international: z.boolean().optional(),
        roamingVerified: z
          .boolean()
          .optional()
          .describe("the caller's home network confirmed this UK mobile caller ID is its customer roaming abroad"),
        country: z
          .string()
          .regex(/^[A-Za-z]{2}$/, { error: 'origin.country must be an ISO 3166-1 alpha-2 code' })
          .optional(),
      })
      .optional(),
    callId: z.string().max(256).optional().describe("the call's identifier, echoed back"),
    receivedAt: z.iso
      .datetime({ offset: true, error: 'receivedAt must be an RFC 3339 date-time' })
      .optional()
      .describe('when the switch received the call; default now'),
  })
  .meta({
    id: 'ScoreRequest',
    examples: [{ from: '+442079460000', to: '07400 123456', callId: 'c-1', origin: { international: true, country: 'NG' } }],
  });

/** A reason's weight: what a policy may give a signal (policy-document.ts), negative for a credit. */
const Weight = z.number().int().min(-100).max(100).describe('points the signal added to the score (> 0 raises the risk, < 0 lowers it)');
/** A score, and the thresholds it is held against. */
const Score = z.number().int().min(0).max(100);

export const ReasonSchema = z.object({
  code: z.enum(REASON_CODES),
  weight: Weight,
  message: z.string(),
});

export const ShakenResultSchema = z.object({
  verstat: VerstatSchema,
  attestation: AttestationSchema.nullable(),
  origid: z.string().optional(),
  spc: z.string().optional(),
  authority: z
    .enum(['spc', 'tn'])
    .optional()
    .describe("what the verified PASSporT's certificate authorised: a service provider code (`spc`), or telephone numbers (`tn`: a delegate certificate)"),
  rcd: z
    .object({
      name: z.string().optional().describe('the caller name the signer vouched for (`nam`, else the jCard `fn`), cleaned for a SIP display name, at most 64 characters'),
      callReason: z.string().optional().describe('the call reason (`crn`), cleaned, at most 128 characters'),
    })
    .optional()
    .describe("verified rich call data (RFC 9795) of the PASSporT that passed and vouches for the caller ID shown; absent when none, or when it failed its integrity check (RCD_INVALID in errors)"),
  errors: z.array(z.enum(SHAKEN_ERROR_CODES)),
});

export const ScoreResponseSchema = z
  .object({
    callId: z.string().optional(),
    score: Score.describe('risk that the caller ID is spoofed, 0-100; higher is riskier'),
    verdict: z.enum(VERDICTS as ['allow', 'flag', 'block']),
    reasons: z.array(ReasonSchema),
    caller: z.object({
      e164: z.string().nullable(),
      valid: z.boolean(),
      withheld: z.boolean(),
      type: z.string().optional(),
      country: z.string().optional(),
      shortCode: z.string().optional(),
    }),
    registry: z
      .object({
        bankId: z.string(),
        bankName: z.string(),
        inboundOnly: z.boolean(),
        match: z.enum(['number', 'prefix']),
      })
      .nullable(),
    shaken: ShakenResultSchema,
    presentation: z
      .enum(['allowed', 'withheld'])
      .describe('whether the switch should show the caller ID to the called party; withheld: deliver with it hidden (RFC 3323 Privacy: id)'),
    sipReason: z
      .string()
      .optional()
      .describe('when a PASSporT failed verification and the call is not blocked: the RFC 8224 Reason header value to attach downstream'),
    display: z
      .object({
        name: z.string().describe('the name to show, fit for a SIP display name (no quotes, backslashes, angle brackets or control characters), at most 64 characters'),
        source: z.enum(['registry', 'rcd']).describe("registry: the organisation's registry name (the call earned BANK_VERIFIED or BANK_CALL_EXPECTED); rcd: the verified rich call data name"),
      })
      .optional()
      .describe('what the switch may show the called party as the caller name; only for a verified caller on a call not blocked'),
    cached: z.boolean(),
  })
  .meta({
    id: 'ScoreResponse',
    examples: [
      {
        callId: 'c-1',
        score: 90,
        verdict: 'block',
        reasons: [
          { code: 'CLI_DOMESTIC_FROM_ABROAD', weight: 75, message: 'UK number +442079460000 presented on a call arriving from abroad (from NG)' },
          { code: 'SHAKEN_ABSENT', weight: 5, message: 'no STIR/SHAKEN attestation on the call' },
        ],
        caller: { e164: '+442079460000', valid: true, withheld: false, type: 'FIXED_LINE', country: 'GB' },
        registry: { bankId: 'examplebank', bankName: 'Example Bank', inboundOnly: false, match: 'number' },
        shaken: { verstat: 'No-TN-Validation', attestation: null, errors: [] },
        presentation: 'allowed',
        cached: false,
      },
    ],
  });

export const ErrorResponseSchema = z
  .object({
    error: z.string().describe('machine-readable error code'),
    message: z.string().describe('what is wrong, naming the field'),
    details: z.array(z.object({ field: z.string(), message: z.string() })).optional(),
  })
  .meta({ id: 'Error' });

/**
 * An error a route gives for its own reasons, described in words; the errors every route of a
 * kind gives (401, 403, 429, 503, and 400/413/415 for a body) are added by the conventions of
 * the OpenAPI document (openapi.ts).
 */
export const errorAnswer = (description: string) => ErrorResponseSchema.describe(description);

/** Bank call centres: POST /v1/callbacks/verify. */
export const CallbackVerifyRequestSchema = z
  .object({
    number: numberField('number'),
    customer: numberField('customer').optional().describe("customer: the customer's own number; recentCalls lists the calls from number to it"),
    since: z.iso
      .datetime({ offset: true, error: 'since must be an RFC 3339 date-time' })
      .optional()
      .describe('since: how far back recentCalls goes (RFC 3339); default 7 days ago'),
  })
  .meta({ id: 'CallbackVerifyRequest', examples: [{ number: '+442079460000', customer: '+447400123456', since: '2026-12-01T00:00:00Z' }] });

export const RecentCallSchema = z.object({
  callId: z.string().optional(),
  at: z.string().describe('when the call was received (ISO 8601)'),
  verdict: z.enum(VERDICTS as ['allow', 'flag', 'block']),
  score: Score,
  reasons: z.array(z.string()).describe('reason codes the call got'),
});

export const ExpectedCallSchema = z.object({
  from: z.string().describe("E.164: the bank's number the call was announced from"),
  at: z.string().describe('when the bank announced the call (ISO 8601)'),
  expiresAt: z.string().describe('the end of its window (ISO 8601)'),
  reference: z.string().optional().describe("the bank's own reference for the call"),
});

export const CallbackVerifyResponseSchema = z
  .object({
    number: z.object({ e164: z.string(), valid: z.boolean() }),
    genuine: z.boolean().describe("the number is a bank's: in the registry (number or prefix) or one of a bank's callback numbers"),
    bank: z.object({ id: z.string(), name: z.string() }).nullable(),
    inboundOnly: z.boolean().describe('the bank only receives calls on it: a call presenting it was spoofed'),
    callbackNumbers: z.array(z.string()).describe("the bank's official numbers, for the customer to call back"),
    recentCalls: z
      .array(RecentCallSchema)
      .optional()
      .describe('calls scored from number to customer since `since`, newest first (at most 100); only when customer is given'),
    expectedCalls: z
      .array(ExpectedCallSchema)
      .optional()
      .describe(
        "calls the number's bank announced to customer (POST /v1/calls/expected), from any of its numbers, whose window reached `since` or later, newest first (at most 100); only when customer is given. A bank key sees its own bank's only",
      ),
  })
  .meta({
    id: 'CallbackVerifyResponse',
    examples: [
      {
        number: { e164: '+442079460000', valid: true },
        genuine: true,
        bank: { id: 'examplebank', name: 'Example Bank' },
        inboundOnly: false,
        callbackNumbers: ['+443450000000'],
        recentCalls: [{ callId: 'c-1', at: '2026-12-07T10:01:12.000Z', verdict: 'allow', score: 0, reasons: ['BANK_CALL_EXPECTED'] }],
        expectedCalls: [{ from: '+442079460000', at: '2026-12-07T10:00:00.000Z', expiresAt: '2026-12-07T10:05:00.000Z', reference: 'case 4711' }],
      },
    ],
  });

/** Announced bank calls: /v1/calls/expected. */
export const AnnouncementRequestSchema = z
  .object({
    from: numberField('from (the outbound number the bank calls from)'),
    to: numberField('to (the number it calls)'),
    validForS: z
      .number({ error: 'validForS must be a number' })
      .int({ error: 'validForS must be a whole number of seconds' })
      .min(1, { error: 'validForS must be at least 1' })
      .max(86400, { error: 'validForS must be at most 86400 (a day)' })
      .optional()
      .describe('how long the announcement matches calls, in seconds (1-86400); default 600'),
    reference: z
      .string({ error: 'reference must be a string' })
      .max(128, { error: 'reference is longer than 128 characters' })
      .optional()
      .describe("the bank's own reference for the call (a case number, an agent), shown to its call centre"),
  })
  .meta({ id: 'AnnouncementRequest', examples: [{ from: '+442079460000', to: '07400 123456', validForS: 300, reference: 'case 4711' }] });

export const AnnouncementSchema = z
  .object({
    id: z.string().describe('withdraw it with DELETE /v1/calls/expected/{id}'),
    from: z.string().describe('E.164'),
    to: z.string().describe('E.164'),
    bankId: z.string().describe('the organisation whose registry entry covers `from`'),
    at: z.string().describe('when it was made (ISO 8601)'),
    expiresAt: z.string().describe('RFC 3339: it matches calls from `from` to `to` received before this time'),
    reference: z.string().optional(),
  })
  .meta({
    id: 'Announcement',
    examples: [
      {
        id: '0f6c3c1e-5d2b-4f0e-9a53-7c1d8e2b9a41',
        from: '+442079460000',
        to: '+447400123456',
        bankId: 'examplebank',
        at: '2026-12-07T10:00:00.000Z',
        expiresAt: '2026-12-07T10:05:00.000Z',
        reference: 'case 4711',
      },
    ],
  });

/** Operators: fraud reports. */
export const ReportBodySchema = z
  .object({
    number: numberField('number'),
    category: z.enum(REPORT_CATEGORIES, { error: `category must be one of ${REPORT_CATEGORIES.join(', ')}` }).describe('genuine: a flagged or blocked call was genuine; kept for review, it never lowers a score'),
    callId: z.string({ error: 'callId must be a string' }).max(256, { error: 'callId is longer than 256 characters' }).optional(),
    note: z.string({ error: 'note must be a string' }).max(1000, { error: 'note is longer than 1000 characters' }).optional(),
  })
  .meta({ id: 'ReportBody', examples: [{ number: '+441134960300', category: 'genuine', callId: 'c-7', note: 'customer confirms it was the bank' }] });

export const ReportSchema = z
  .object({
    id: z.string(),
    number: z.string().describe('E.164'),
    category: z.enum(REPORT_CATEGORIES),
    callId: z.string().optional(),
    note: z.string().optional(),
    at: z.string().describe('when the report was taken (ISO 8601)'),
    reporter: z.string().describe('name of the API key that made the report'),
  })
  .meta({
    id: 'Report',
    examples: [
      {
        id: '7d0b1b52-3f5e-4f8e-b7a4-2c6f1f0f9a10',
        number: '+441134960300',
        category: 'genuine',
        callId: 'c-7',
        note: 'customer confirms it was the bank',
        at: '2026-12-07T10:02:00.000Z',
        reporter: 'examplebank-callcentre',
      },
    ],
  });

export const MAX_REPORTS_LISTED = 1000;
export const DEFAULT_REPORTS_LISTED = 100;

/** Operators: the reports listed for review. */
export const ReportsQuerySchema = z.object({
  category: z.enum(REPORT_CATEGORIES, { error: `category must be one of ${REPORT_CATEGORIES.join(', ')}` }).optional().describe('only reports of this category'),
  since: z.iso
    .datetime({ offset: true, error: 'since must be an RFC 3339 date-time' })
    .optional()
    .describe('only reports taken at or after this time (RFC 3339); reports older than the policy\'s maximum age are gone anyway'),
  limit: z.coerce
    .number({ error: 'limit must be a number' })
    .int({ error: 'limit must be a whole number' })
    .min(1, { error: 'limit must be at least 1' })
    .max(MAX_REPORTS_LISTED, { error: `limit must be at most ${MAX_REPORTS_LISTED}` })
    .default(DEFAULT_REPORTS_LISTED)
    .describe(`reports listed at most, 1-${MAX_REPORTS_LISTED}`),
});

/** Operators: spoofing campaigns running now. */
export const CampaignSchema = z
  .object({
    bankId: z.string(),
    bankName: z.string(),
    numbers: z.array(z.object({ number: z.string(), calls: z.number().int().min(1) })).describe("the bank's numbers the failing calls presented, most used first"),
    failedCalls: z.number().int().min(1).describe('calls presenting the bank\'s numbers that failed the checks within the window'),
    since: z.string().describe('first failing call in the window (ISO 8601)'),
    lastSeen: z.string().describe('latest failing call (ISO 8601)'),
  })
  .meta({
    id: 'Campaign',
    examples: [
      {
        bankId: 'examplebank',
        bankName: 'Example Bank',
        numbers: [{ number: '+443450000000', calls: 41 }, { number: '+442079460000', calls: 12 }],
        failedCalls: 53,
        since: '2026-12-07T09:12:40.000Z',
        lastSeen: '2026-12-07T10:01:55.000Z',
      },
    ],
  });

/** Decision records: GET /v1/calls/{callId}. */
export const CallIdParamsSchema = z.object({
  callId: z
    .string()
    .min(1, { error: 'callId must not be empty' })
    .max(256, { error: 'callId is longer than 256 characters' })
    .describe('the callId the call was scored with (URL-encoded)'),
});

export const DecisionRecordSchema = z
  .object({
    at: z.string().describe("when the call was received (ISO 8601): the switch's receivedAt, else when it was scored"),
    decidedAt: z.string().describe("when the decision was made (ISO 8601), on the service's clock; decisions are ordered by it"),
    from: z.string().nullable().describe('the caller ID as E.164 (valid or not: see the reasons), the short code presented, or null when withheld or unreadable'),
    to: z.string().nullable().describe('the called number as E.164 or the short code dialled; null when unreadable'),
    bankId: z.string().optional().describe("the bank whose registry entry the caller ID matched when the call was scored"),
    verdict: z.enum(VERDICTS as ['allow', 'flag', 'block']),
    score: Score,
    presentation: z.enum(['allowed', 'withheld']),
    reasons: z.array(z.string()).describe('reason codes, as the score answered them'),
    reasonDetails: z.array(z.object({ code: z.string(), weight: Weight, message: z.string() })).describe('every reason with its weight and message, as the score answered them'),
    cached: z.boolean().describe("the evidence came from the verdict cache"),
    shaken: z.object({
      source: z.string().describe('passport (verified here), upstream (the switch reported it), none'),
      verstat: z.string().describe('TN-Validation-Passed, TN-Validation-Failed or No-TN-Validation'),
      attestation: z.string().nullable(),
      spc: z.string().optional().describe("service provider code of the signing certificate (who signed the call)"),
      origid: z.string().optional().describe("the PASSporT's origid: the originating carrier's identifier of where the call entered its network"),
      x5u: z.string().optional().describe('the certificate URL of the PASSporT judged: the one that passed, else the first that named one'),
      errors: z.array(z.string()).describe('shaken.errors codes'),
    }),
    origin: z
      .object({
        trunk: z.string().optional(),
        carrier: z.string().optional(),
        country: z.string().optional(),
        international: z.boolean().optional(),
        roamingVerified: z.boolean().optional(),
      })
      .optional()
      .describe("the call's origin as the decision read it (country upper-cased; international inferred from the country when not given); absent when the switch sent none"),
    policyVersion: z.string().describe('the scoring policy the decision was made under'),
    registryVersion: z.string().describe('the registry version the caller ID was looked up in'),
  })
  .meta({ id: 'DecisionRecord' });

export const CallDecisionsResponseSchema = z
  .object({
    callId: z.string(),
    decisions: z.array(DecisionRecordSchema).describe('newest first; at most 20, kept 30 days'),
  })
  .meta({
    id: 'CallDecisions',
    examples: [
      {
        callId: 'c-1',
        decisions: [
          {
            at: '2026-12-07T10:01:12.000Z',
            decidedAt: '2026-12-07T10:01:12.004Z',
            from: '+442079460000',
            to: '+447400123456',
            bankId: 'examplebank',
            verdict: 'block',
            score: 90,
            presentation: 'allowed',
            reasons: ['CLI_DOMESTIC_FROM_ABROAD', 'SHAKEN_ABSENT'],
            reasonDetails: [
              { code: 'CLI_DOMESTIC_FROM_ABROAD', weight: 75, message: 'UK number +442079460000 presented on a call arriving from abroad (from NG)' },
              { code: 'SHAKEN_ABSENT', weight: 5, message: 'no STIR/SHAKEN attestation on the call' },
            ],
            cached: false,
            shaken: { source: 'none', verstat: 'No-TN-Validation', attestation: null, errors: [] },
            origin: { country: 'NG', international: true },
            policyVersion: 'Qm3xW1',
            registryVersion: '42',
          },
        ],
      },
    ],
  });

import type { FastifyPluginAsyncZod } from '@fastify/type-provider-zod';
import { z } from 'zod';
import { parseNumber } from '../../numbers';
import { sipReasonsFor } from '../../shaken';
import type { ShakenVerification } from '../../shaken/types';
import { NotFoundError } from '../../errors';
import { errorAnswer, VerstatSchema } from '../schemas';

/**
 * A drop-in STI-VS for session border controllers that speak the REST shape of the 3GPP
 * TS 24.229 Ms reference point (ATIS-1000082): they post the Identity header with From, To
 * and the time, and read back a verstat value with the SIP reason code to use on failure.
 */

const TnOrUri = z.union([z.object({ tn: z.string().min(1).max(64) }), z.object({ uri: z.string().min(1).max(256) })]);

const VerificationRequestSchema = z
  .object({
    verificationRequest: z.object({
      from: TnOrUri,
      to: z.union([z.object({ tn: z.array(z.string().min(1).max(64)).min(1).max(10) }), z.object({ uri: z.array(z.string().min(1).max(256)).min(1).max(10) })]),
      time: z.number().int().nonnegative().describe('seconds since the epoch, from the SIP Date header'),
      identityHeader: z.string().min(1).max(8192).optional(),
      identityHeaders: z.array(z.string().min(1).max(8192)).min(1).max(10).optional(),
      requestId: z.string().max(256).optional(),
    }),
  })
  .meta({
    id: 'VerificationRequest',
    examples: [
      {
        verificationRequest: {
          from: { tn: '442079460000' },
          to: { tn: ['447400123456'] },
          time: 1796638400,
          identityHeader:
            'eyJhbGciOiJFUzI1NiIsInBwdCI6InNoYWtlbiIsInR5cCI6InBhc3Nwb3J0IiwieDV1IjoiaHR0cHM6Ly9jZXJ0LmV4YW1wbGUub3JnL3NoYWtlbi5wZW0ifQ.eyJhdHRlc3QiOiJBIiwiZGVzdCI6eyJ0biI6WyI0NDc0MDAxMjM0NTYiXX0sImlhdCI6MTc5NjYzODQwMCwib3JpZyI6eyJ0biI6IjQ0MjA3OTQ2MDAwMCJ9LCJvcmlnaWQiOiI0NDM3YzNlMi0wZTVkLTRmNWItOWI0Yi0xYTJiM2M0ZDVlNmYifQ.c2lnbmF0dXJl;info=<https://cert.example.org/shaken.pem>;alg=ES256;ppt=shaken',
          requestId: 'r-1',
        },
      },
    ],
  });

const VerifyResultSchema = z.object({
  reasonCode: z.number().int().min(400).max(499).describe('SIP response code for a failed verification (RFC 8224): 403, 428, 436, 437 or 438'),
  reasonText: z.string(),
  errors: z.array(z.string()).describe('the shaken.errors codes this reason answers for'),
});

const VerificationResponseSchema = z
  .object({
    verificationResponse: z.object({
      verstatValue: VerstatSchema,
      attestation: z.enum(['A', 'B', 'C']).optional(),
      origid: z.string().optional(),
      spc: z.string().optional(),
      verifyResults: z.array(VerifyResultSchema).optional(),
      requestId: z.string().optional(),
    }),
  })
  .meta({
    id: 'VerificationResponse',
    examples: [
      {
        verificationResponse: {
          verstatValue: 'TN-Validation-Failed',
          verifyResults: [{ reasonCode: 437, reasonText: 'Unsupported Credential', errors: ['CERT_UNTRUSTED'] }],
          requestId: 'r-1',
        },
      },
    ],
  });

export function verifyResults(v: ShakenVerification): z.infer<typeof VerifyResultSchema>[] {
  // Rich call data that failed its check is dropped, not a failed verification: a passed answer
  // carries no failure cause for it, which an SBC could read as the call's.
  const errors = v.verstat === 'TN-Validation-Passed' ? v.errors.filter((e) => e !== 'RCD_INVALID') : v.errors;
  return sipReasonsFor(errors).map(({ cause, text, errors }) => ({ reasonCode: cause, reasonText: text, errors }));
}

export const stirRoutes: FastifyPluginAsyncZod = async (app) => {
  const { verifier, config } = app.services;
  /** SHAKEN TNs are E.164 digits without the `+`. */
  const e164Of = (x: { tn: string } | { uri: string }) =>
    parseNumber('tn' in x ? `+${x.tn.replace(/^\+/, '')}` : x.uri, config.defaultCountry).e164;

  app.post(
    '/stir/v1/verification',
    {
      config: { roles: ['switch', 'admin'] },
      schema: {
        operationId: 'verifyIdentity',
        tags: ['stir'],
        summary: 'STI-VS verification (3GPP TS 24.229 Ms reference point REST shape)',
        description:
          'Verifies the SIP Identity header(s) of a call against its From, To and Date, as an STI-VS would: answers the ' +
          '`verstatValue` to put on the call and, for each failure, the SIP reason code (RFC 8224) with the `shaken.errors` ' +
          'codes behind it. No Identity header answers `No-TN-Validation` with 428. 404 when verification is switched off (SHAKEN_VERIFY=false).',
        body: VerificationRequestSchema,
        response: { 200: VerificationResponseSchema.describe('The verification result'), 404: errorAnswer('`not_found`: PASSporTs are not verified here (SHAKEN_VERIFY=false)') },
      },
    },
    async (request) => {
      if (!config.shaken.verify) throw new NotFoundError('PASSporTs are not verified here (SHAKEN_VERIFY=false)');
      const r = request.body.verificationRequest;
      const identity = [...(r.identityHeader ? [r.identityHeader] : []), ...(r.identityHeaders ?? [])];
      const requestId = r.requestId !== undefined ? { requestId: r.requestId } : {};
      if (identity.length === 0) {
        return { verificationResponse: { verstatValue: 'No-TN-Validation' as const, verifyResults: [{ reasonCode: 428, reasonText: 'Use Identity Header', errors: [] }], ...requestId } };
      }
      const firstTo = 'tn' in r.to ? { tn: r.to.tn[0]! } : { uri: r.to.uri[0]! };
      const from = e164Of(r.from);
      const v = await verifier.verify({
        identity,
        origCandidates: from ? [from] : [],
        dest: e164Of(firstTo),
        receivedAt: new Date(r.time * 1000),
      });
      const results = verifyResults(v);
      return {
        verificationResponse: {
          verstatValue: v.verstat,
          ...(v.attestation ? { attestation: v.attestation } : {}),
          ...(v.origid !== undefined ? { origid: v.origid } : {}),
          ...(v.spc !== undefined ? { spc: v.spc } : {}),
          ...(results.length ? { verifyResults: results } : {}),
          ...requestId,
        },
      };
    },
  );
};

import type { FastifyPluginAsyncZod } from '@fastify/type-provider-zod';
import { z } from 'zod';
import { NotFoundError } from '../../errors';
import { requireNumber } from '../../usecases';
import { AttestationSchema, errorAnswer } from '../schemas';

/**
 * The STI-AS beside the STI-VS, for operators who also originate calls: the REST shape of the
 * 3GPP TS 24.229 Ms reference point (ATIS-1000082), like /stir/v1/verification. The switch
 * posts what it attests to and puts the answered value in the call's Identity header.
 */

const Tn = z.string().min(1).max(64).describe('E.164, with or without the `+`');

/** Seconds since the epoch; bounded so a typo (milliseconds, a negative) is refused, not signed. */
const IAT_MAX = 4102444800; // 2100-01-01

const SigningRequestSchema = z
  .object({
    signingRequest: z.object({
      orig: z.object({ tn: Tn }),
      dest: z.object({ tn: z.array(Tn).min(1).max(10) }),
      attest: AttestationSchema,
      origid: z.string().min(1).max(128).optional().describe('the origination identifier; a new UUID when absent'),
      iat: z.number().int().min(1).max(IAT_MAX).optional().describe('seconds since the epoch; the service clock when absent'),
    }),
  })
  .meta({ id: 'SigningRequest', examples: [{ signingRequest: { orig: { tn: '442079460000' }, dest: { tn: ['447400123456'] }, attest: 'A' } }] });

const SigningResponseSchema = z
  .object({
    signingResponse: z.object({
      identity: z.string().describe('full-form Identity header value: `<jws>;info=<x5u>;alg=ES256;ppt=shaken`'),
    }),
  })
  .meta({
    id: 'SigningResponse',
    examples: [
      {
        signingResponse: {
          identity:
            'eyJhbGciOiJFUzI1NiIsInBwdCI6InNoYWtlbiIsInR5cCI6InBhc3Nwb3J0IiwieDV1IjoiaHR0cHM6Ly9jZXJ0LmV4YW1wbGUub3JnL3NoYWtlbi5wZW0ifQ.eyJhdHRlc3QiOiJBIiwiZGVzdCI6eyJ0biI6WyI0NDc0MDAxMjM0NTYiXX0sImlhdCI6MTc5NjYzODQwMCwib3JpZyI6eyJ0biI6IjQ0MjA3OTQ2MDAwMCJ9LCJvcmlnaWQiOiI0NDM3YzNlMi0wZTVkLTRmNWItOWI0Yi0xYTJiM2M0ZDVlNmYifQ.c2lnbmF0dXJl;info=<https://cert.example.org/shaken.pem>;alg=ES256;ppt=shaken',
        },
      },
    ],
  });

export const signingRoutes: FastifyPluginAsyncZod = async (app) => {
  const { signer, config } = app.services;
  /** SHAKEN TNs are E.164 digits without the `+` (ATIS-1000074). */
  const tnOf = (field: string, tn: string) => requireNumber(field, `+${tn.trim().replace(/^\+/, '')}`, config.defaultCountry).e164.slice(1);

  app.post(
    '/stir/v1/signing',
    {
      config: { roles: ['switch', 'admin'] },
      schema: {
        operationId: 'signIdentity',
        tags: ['stir'],
        summary: 'STI-AS signing (3GPP TS 24.229 Ms reference point REST shape)',
        description: 'Signs a SHAKEN PASSporT with SHAKEN_SIGNING_KEY, naming SHAKEN_SIGNING_X5U; 404 when no signing key is configured.',
        body: SigningRequestSchema,
        response: { 200: SigningResponseSchema.describe('The Identity header value to put on the call'), 404: errorAnswer('`not_found`: PASSporTs are not signed here (SHAKEN_SIGNING_KEY is unset)') },
      },
    },
    async (request) => {
      if (!signer) throw new NotFoundError('PASSporTs are not signed here (SHAKEN_SIGNING_KEY is unset)');
      const r = request.body.signingRequest;
      const { identity } = signer.sign({
        attest: r.attest,
        orig: tnOf('signingRequest.orig.tn', r.orig.tn),
        dest: r.dest.tn.map((tn, i) => tnOf(`signingRequest.dest.tn.${i}`, tn)),
        ...(r.origid !== undefined ? { origid: r.origid } : {}),
        ...(r.iat !== undefined ? { iat: r.iat } : {}),
      });
      return { signingResponse: { identity } };
    },
  );
};

import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { build } from '../helpers/build';

/**
 * Every route, fed random JSON and random strings: never a 500, always a JSON answer. Runs are
 * bounded; jest's timeout catches a hang.
 */
let app: FastifyInstance;
beforeAll(async () => {
  app = await build();
});
afterAll(() => app.close());

const ROUTES: [string, string][] = [
  ['POST', '/v1/calls/score'],
  ['POST', '/stir/v1/verification'],
  ['POST', '/v1/callbacks/verify'],
  ['POST', '/v1/reports'],
  ['POST', '/v1/registry/import'],
  ['PUT', '/v1/registry/banks/fuzzbank'],
  ['PUT', '/v1/registry/numbers/+442079460999'],
  ['PUT', '/v1/registry/prefixes/+4420794699'],
  ['GET', '/v1/registry/numbers/'],
  ['DELETE', '/v1/registry/numbers/'],
  ['GET', '/v1/registry/audit?limit='],
  ['GET', '/v1/campaigns'],
];

/** Objects shaped like the real requests, with hostile values in random places. */
const hostileValue = fc.oneof(
  fc.string({ maxLength: 400 }),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.constantFrom('__proto__', 'constructor', '+442079460123', 'sip:+44@h', '2026-11-24T10:00:00Z', 'A', 'spoof'),
  fc.array(fc.string({ maxLength: 20 }), { maxLength: 5 }),
);
const requestLike = fc.dictionary(
  fc.constantFrom('from', 'to', 'pai', 'identity', 'attestation', 'verstat', 'origin', 'callId', 'receivedAt', 'number', 'customer', 'since', 'category', 'note', 'name', 'bankId', 'inboundOnly', 'authorisedSpcs', 'overseasOrigins', 'kind', 'announcesCalls', 'banks', 'numbers', 'verificationRequest', '__proto__'),
  fc.oneof(hostileValue, fc.dictionary(fc.string({ maxLength: 10 }), hostileValue, { maxKeys: 4 })),
  { maxKeys: 8 },
);

describe('every route under random input', () => {
  it.each(ROUTES)('%s %s never answers 500', async (method, url) => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(requestLike.map((o) => JSON.stringify(o)), fc.string({ maxLength: 300 })), fc.string({ maxLength: 30 }), async (payload, suffix) => {
        const path = url.endsWith('/') || url.endsWith('=') ? url + encodeURIComponent(suffix) : url;
        const res = await app.inject({ method: method as 'POST', url: path, payload: method === 'GET' || method === 'DELETE' ? undefined : payload, headers: { 'content-type': 'application/json' } });
        expect(res.statusCode).toBeLessThan(500);
        expect(() => res.json()).not.toThrow();
      }),
      { numRuns: 150 },
    );
  });
});

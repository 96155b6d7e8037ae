import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { build } from '../helpers/build';
import { headersFor, KEYS_FILE, type Who } from '../helpers/keys';
import { makePki, mapFetcher, type Pki } from '../shaken/helpers';

const X5U = 'https://certs.test/sp.pem';
/** The app's one clock, a little after the test PKI's certificates begin. */
const NOW_MS = (Math.floor(Date.now() / 1000) + 60) * 1000;

let pki: Pki;
let app: FastifyInstance;
beforeAll(async () => {
  pki = makePki();
  app = await build(
    {
      API_KEYS_FILE: KEYS_FILE,
      SHAKEN_TRUST_ANCHORS: join(pki.dir, 'root.crt'),
      SHAKEN_SIGNING_KEY: join(pki.dir, 'leaf.key'),
      SHAKEN_SIGNING_CERT: join(pki.dir, 'leaf.crt'),
      SHAKEN_SIGNING_X5U: X5U,
    },
    { certFetcher: mapFetcher({ [X5U]: pki.chainPem }), now: () => NOW_MS },
  );
});
afterAll(async () => {
  await app.close();
  pki.cleanup();
});

const sign = (signingRequest: unknown, who: Who = 'switch', target = app) =>
  target.inject({ method: 'POST', url: '/stir/v1/signing', headers: headersFor(who), payload: { signingRequest } as object });
const valid = { orig: { tn: '442079460123' }, dest: { tn: ['447400123456'] }, attest: 'A' };
const claimsOf = (identity: string) => JSON.parse(Buffer.from(identity.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;

describe('POST /stir/v1/signing (3GPP Ms REST shape)', () => {
  it('answers a full-form Identity value that the service\'s own STI-VS passes', async () => {
    const res = await sign({ ...valid, origid: 'gw-42', iat: NOW_MS / 1000 });
    expect(res.statusCode).toBe(200);
    const { identity } = res.json().signingResponse;
    expect(identity).toMatch(new RegExp(`^[\\w-]+\\.[\\w-]+\\.[\\w-]+;info=<${X5U}>;alg=ES256;ppt=shaken$`));
    expect(claimsOf(identity)).toEqual({ attest: 'A', dest: { tn: ['447400123456'] }, iat: NOW_MS / 1000, orig: { tn: '442079460123' }, origid: 'gw-42' });

    const verified = await app.inject({
      method: 'POST',
      url: '/stir/v1/verification',
      headers: headersFor('switch'),
      payload: { verificationRequest: { from: { tn: '442079460123' }, to: { tn: ['447400123456'] }, time: NOW_MS / 1000 + 1, identityHeader: identity } },
    });
    expect(verified.json().verificationResponse).toMatchObject({ verstatValue: 'TN-Validation-Passed', attestation: 'A', origid: 'gw-42', spc: '5678' });
  });

  it('defaults iat to the service clock and origid to a fresh UUID', async () => {
    const a = claimsOf((await sign(valid)).json().signingResponse.identity);
    const b = claimsOf((await sign(valid)).json().signingResponse.identity);
    expect(a.iat).toBe(NOW_MS / 1000);
    expect(a.origid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(b.origid).not.toBe(a.origid);
  });

  it('writes TNs as E.164 digits without the +, whatever form they came in', async () => {
    const res = await sign({ ...valid, orig: { tn: '+44 20 7946 0123' }, dest: { tn: ['+447400123456', '447400654321'] } });
    expect(claimsOf(res.json().signingResponse.identity)).toMatchObject({ orig: { tn: '442079460123' }, dest: { tn: ['447400123456', '447400654321'] } });
  });

  it.each([
    ['switch', 200],
    ['admin', 200],
    ['examplebank', 403],
    ['none', 401],
    ['bad', 401],
  ] as const)('%s -> %i', async (who, status) => {
    expect((await sign(valid, who)).statusCode).toBe(status);
  });

  it.each([
    ['a bad attestation', 'signingRequest.attest', { ...valid, attest: 'D' }],
    ['no attestation', 'signingRequest.attest', { orig: valid.orig, dest: valid.dest }],
    ['no dest TN', 'signingRequest.dest.tn', { ...valid, dest: { tn: [] } }],
    ['an empty dest TN', 'signingRequest.dest.tn.0', { ...valid, dest: { tn: [''] } }],
    ['eleven dest TNs', 'signingRequest.dest.tn', { ...valid, dest: { tn: Array.from({ length: 11 }, () => '447400123456') } }],
    ['an origid too long', 'signingRequest.origid', { ...valid, origid: 'x'.repeat(129) }],
    ['an empty origid', 'signingRequest.origid', { ...valid, origid: '' }],
    ['an iat in milliseconds', 'signingRequest.iat', { ...valid, iat: NOW_MS }],
    ['a fractional iat', 'signingRequest.iat', { ...valid, iat: 1.5 }],
    ['a negative iat', 'signingRequest.iat', { ...valid, iat: -1 }],
    ['an orig TN that is no number', 'signingRequest.orig.tn', { ...valid, orig: { tn: 'anonymous' } }],
    ['a dest TN that is no number', 'signingRequest.dest.tn.1', { ...valid, dest: { tn: ['447400123456', '12'] } }],
  ])('400 for %s, naming %s', async (_name, field, body) => {
    const res = await sign(body);
    expect(res.statusCode).toBe(400);
    expect(res.json().message).toContain(field);
  });

  it('415 for a wrong content type', async () => {
    const res = await app.inject({ method: 'POST', url: '/stir/v1/signing', headers: { ...headersFor('switch'), 'content-type': 'text/xml' }, payload: '<x/>' });
    expect(res.statusCode).toBe(415);
    expect(res.json().error).toBe('unsupported_media_type');
  });
});

describe('POST /stir/v1/signing without SHAKEN_SIGNING_KEY', () => {
  it('answers 404', async () => {
    const plain = await build({ API_KEYS_FILE: KEYS_FILE });
    try {
      const res = await sign(valid, 'switch', plain);
      expect(res.statusCode).toBe(404);
      expect(res.json().message).toMatch(/SHAKEN_SIGNING_KEY/);
    } finally {
      await plain.close();
    }
  });
});

describe('the start with SHAKEN_SIGNING_KEY', () => {
  it('refuses a key without SHAKEN_SIGNING_X5U, and a key that does not match SHAKEN_SIGNING_CERT', async () => {
    await expect(build({ SHAKEN_SIGNING_KEY: join(pki.dir, 'leaf.key') })).rejects.toThrow(/SHAKEN_SIGNING_X5U is required/);
    await expect(build({ SHAKEN_SIGNING_KEY: join(pki.dir, 'intermediate.key'), SHAKEN_SIGNING_CERT: join(pki.dir, 'leaf.crt'), SHAKEN_SIGNING_X5U: X5U })).rejects.toThrow(
      /SHAKEN_SIGNING_KEY does not match/,
    );
  });
});

import { resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { build, VECTORS_DIR } from '../helpers/build';
import { loadCases } from '../shaken/helpers';

/**
 * SHAKEN_VERIFY=false: the operator says PASSporTs are not verified here (as on UK networks
 * today). An Identity header then neither helps nor harms a call, and the STI-VS says it is off.
 */
const valid = loadCases().find((c) => c.case === 'valid-A')!.request;
const forged = loadCases().find((c) => c.case === 'bad-signature')!.request;

describe.each([
  ['off', { SHAKEN_VERIFY: 'false' }],
  ['on', { SHAKEN_TRUST_ANCHORS: resolve(VECTORS_DIR, 'certs/root.pem') }],
])('PASSporT verification %s', (state, env) => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await build(env);
  });
  afterAll(() => app.close());

  const score = async (body: object) => (await app.inject({ method: 'POST', url: '/v1/calls/score', payload: body })).json();

  it('scores an Identity header as the setting says', async () => {
    const good = await score(valid);
    const bad = await score(forged);
    if (state === 'off') {
      for (const json of [good, bad]) {
        const codes = json.reasons.map((r: { code: string }) => r.code);
        expect(codes).toContain('SHAKEN_ABSENT');
        expect(codes).not.toEqual(expect.arrayContaining([expect.stringMatching(/^SHAKEN_(INVALID|ATTEST)/)]));
        expect(json.shaken).toEqual({ verstat: 'No-TN-Validation', attestation: null, errors: [] });
      }
    } else {
      expect(good.shaken).toMatchObject({ verstat: 'TN-Validation-Passed', attestation: 'A' });
      expect(bad.shaken).toMatchObject({ verstat: 'TN-Validation-Failed', errors: ['BAD_SIGNATURE'] });
    }
  });

  it('answers the STI-VS only where it verifies', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/stir/v1/verification',
      payload: { verificationRequest: { from: { tn: valid.from.slice(1) }, to: { tn: [valid.to.slice(1)] }, time: Date.parse(valid.receivedAt) / 1000, identityHeader: valid.identity } },
    });
    if (state === 'off') {
      expect(res.statusCode).toBe(404);
      expect(res.json().message).toMatch(/SHAKEN_VERIFY=false/);
    } else {
      expect(res.statusCode).toBe(200);
      expect(res.json().verificationResponse.verstatValue).toBe('TN-Validation-Passed');
    }
  });
});

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
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

describe('what the switch shows and passes on', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    // The vectors' caller is an inbound-only number of the sample registry: a registry without it.
    const registry = join(mkdtempSync(join(tmpdir(), 'callguard-reg-')), 'registry.json');
    writeFileSync(registry, JSON.stringify({ banks: [{ id: 'b', name: 'Bank B' }], numbers: [{ number: '+443450000000', bankId: 'b', inboundOnly: true }] }));
    app = await build({ SHAKEN_TRUST_ANCHORS: resolve(VECTORS_DIR, 'certs/root.pem'), REGISTRY_FILE: registry });
  });
  afterAll(() => app.close());
  const score = async (body: object) => (await app.inject({ method: 'POST', url: '/v1/calls/score', payload: body })).json();
  const vector = (name: string) => loadCases().find((c) => c.case === name)!.request;

  it('withholds a UK mobile caller ID from abroad unless its home network confirmed the roamer', async () => {
    const abroad = { from: '+447400123456', to: '+442079460999', origin: { international: true, country: 'FR' } };
    const unconfirmed = await score(abroad);
    expect(unconfirmed.presentation).toBe('withheld');
    expect(unconfirmed.reasons.map((r: { code: string }) => r.code)).toContain('CLI_MOBILE_FROM_ABROAD');
    const roamer = await score({ ...abroad, origin: { ...abroad.origin, roamingVerified: true } });
    expect(roamer.presentation).toBe('allowed');
    expect(roamer.reasons.map((r: { code: string }) => r.code)).not.toContain('CLI_MOBILE_FROM_ABROAD');
    expect((await score({ from: '+442079460123', to: '+447400123456' })).presentation).toBe('allowed');
  });

  it.each([
    ['bad-signature', 'STIR;cause=438;text="Invalid Identity Header"'],
    ['stale', 'STIR;cause=403;text="Stale Date"'],
    ['untrusted-chain', 'STIR;cause=437;text="Unsupported Credential"'],
  ])('gives the RFC 8224 Reason for a failed PASSporT on a call it does not block (%s)', async (name, reason) => {
    const json = await score(vector(name));
    expect(json.verdict).not.toBe('block');
    expect(json.sipReason).toBe(reason);
  });

  it('gives no Reason for a call that verified, carried no PASSporT, or is blocked', async () => {
    expect((await score(vector('valid-A'))).sipReason).toBeUndefined();
    expect((await score({ from: '+442079460123', to: '+447400123456' })).sipReason).toBeUndefined();
    const blocked = await score({ ...vector('bad-signature'), from: '+443450000000' });
    expect(blocked.verdict).toBe('block');
    expect(blocked.sipReason).toBeUndefined();
  });
});

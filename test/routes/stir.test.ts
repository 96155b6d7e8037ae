import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { build, VECTORS_DIR } from '../helpers/build';

const cases = JSON.parse(readFileSync(resolve(VECTORS_DIR, 'cases.json'), 'utf8')) as { case: string; request: { identity: string | string[]; receivedAt: string } }[];
const identityOf = (name: string) => cases.find((c) => c.case === name)!.request.identity as string;
const time = Date.parse('2026-12-01T12:00:02Z') / 1000;

let app: FastifyInstance;
beforeAll(async () => {
  app = await build({ SHAKEN_TRUST_ANCHORS: resolve(VECTORS_DIR, 'certs/root.pem') });
});
afterAll(() => app.close());

const verify = (verificationRequest: unknown) =>
  app.inject({ method: 'POST', url: '/stir/v1/verification', payload: { verificationRequest } as object });

describe('POST /stir/v1/verification (3GPP Ms REST shape)', () => {
  it('passes a valid PASSporT, with TNs as SHAKEN writes them', async () => {
    const res = await verify({ from: { tn: '442079460123' }, to: { tn: ['447400123456'] }, time, identityHeader: identityOf('valid-A'), requestId: 'r-1' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ verificationResponse: { verstatValue: 'TN-Validation-Passed', attestation: 'A', origid: expect.any(String), spc: '1234', requestId: 'r-1' } });
  });

  it('takes SIP/tel URIs too', async () => {
    const res = await verify({ from: { uri: 'sip:+442079460123@carrier.example;user=phone' }, to: { uri: ['tel:+447400123456'] }, time, identityHeader: identityOf('valid-B') });
    expect(res.json().verificationResponse).toMatchObject({ verstatValue: 'TN-Validation-Passed', attestation: 'B' });
  });

  it.each([
    ['bad-signature', 438, 'Invalid Identity Header'],
    ['expired-cert', 437, 'Unsupported Credential'],
    ['untrusted-chain', 437, 'Unsupported Credential'],
  ])('%s -> verifyResults with SIP reason %i', async (name, code, text) => {
    const res = (await verify({ from: { tn: '442079460123' }, to: { tn: ['447400123456'] }, time, identityHeader: identityOf(name) })).json();
    expect(res.verificationResponse.verstatValue).not.toBe('TN-Validation-Passed');
    expect(res.verificationResponse.verifyResults).toEqual(expect.arrayContaining([expect.objectContaining({ reasonCode: code, reasonText: text })]));
  });

  it('a stale PASSporT gets 403 Stale Date', async () => {
    const res = (await verify({ from: { tn: '442079460123' }, to: { tn: ['447400123456'] }, time: time + 600, identityHeader: identityOf('valid-A') })).json();
    expect(res.verificationResponse).toMatchObject({ verstatValue: 'TN-Validation-Failed', verifyResults: [{ reasonCode: 403, reasonText: 'Stale Date', errors: ['STALE'] }] });
  });

  it('verifies diverted calls from identityHeaders', async () => {
    const identity = cases.find((c) => c.case === 'diverted-valid')!.request.identity as string[];
    const res = (await verify({ from: { tn: '442079460123' }, to: { tn: ['447400654321'] }, time, identityHeaders: identity })).json();
    expect(res.verificationResponse.verstatValue).toBe('TN-Validation-Passed');
  });

  it('no Identity header: No-TN-Validation with 428', async () => {
    const res = (await verify({ from: { tn: '442079460123' }, to: { tn: ['447400123456'] }, time })).json();
    expect(res.verificationResponse).toEqual({ verstatValue: 'No-TN-Validation', verifyResults: [{ reasonCode: 428, reasonText: 'Use Identity Header', errors: [] }] });
  });

  it('errors: 400 for a malformed request, 415 for a wrong content type, 404 for a wrong path', async () => {
    const bad = await verify({ from: { tn: '442079460123' }, time });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error).toBeDefined();
    expect(bad.json().message).toMatch(/verificationRequest\.to/);
    const wrongType = await app.inject({ method: 'POST', url: '/stir/v1/verification', payload: 'x', headers: { 'content-type': 'text/xml' } });
    expect(wrongType.statusCode).toBe(415);
    expect(wrongType.json().error).toBeDefined();
    const notFound = await app.inject({ method: 'POST', url: '/stir/v1/verify', payload: {} });
    expect(notFound.statusCode).toBe(404);
    expect(notFound.json().error).toBeDefined();
  });
});

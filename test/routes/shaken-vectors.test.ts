import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { build, VECTORS_DIR } from '../helpers/build';

/**
 * The independent STIR/SHAKEN vectors (made with another toolchain), posted to the score route
 * exactly as a switch would: the `shaken` part of each answer must match the case's `expect`.
 */
interface VectorCase {
  case: string;
  request: Record<string, unknown>;
  expect: { verstat?: string; verstatOneOf?: string[]; attestation?: string; spc?: string; errors?: string[]; errorsInclude?: string[] };
}
const cases = JSON.parse(readFileSync(resolve(VECTORS_DIR, 'cases.json'), 'utf8')) as VectorCase[];

/**
 * `x5u-bad-scheme` is defective as shipped: its signed header's x5u and its info parameter are
 * both the https URL of sp1234.pem and its signature verifies, so it is a valid token and no
 * honest verifier answers X5U_POLICY for it (see test/shaken/vectors.test.ts). It is checked
 * for what it is; the x5u policy itself is tested with tokens whose x5u really is not https.
 */
const DEFECTIVE = new Set(['x5u-bad-scheme']);

let app: FastifyInstance;
beforeAll(async () => {
  app = await build({ SHAKEN_TRUST_ANCHORS: resolve(VECTORS_DIR, 'certs/root.pem') });
});
afterAll(() => app.close());

describe('shared STIR/SHAKEN vectors through POST /v1/calls/score', () => {
  it('has all 25 cases', () => expect(cases).toHaveLength(25));

  it.each(cases.filter((c) => !DEFECTIVE.has(c.case)).map((c) => [c.case, c] as const))('%s', async (_name, c) => {
    const res = await app.inject({ method: 'POST', url: '/v1/calls/score', payload: c.request });
    expect(res.statusCode).toBe(200);
    const { shaken, reasons } = res.json();
    const e = c.expect;
    if (e.verstat) expect(shaken.verstat).toBe(e.verstat);
    if (e.verstatOneOf) expect(e.verstatOneOf).toContain(shaken.verstat);
    if ('attestation' in e) expect(shaken.attestation).toBe(e.attestation);
    if (e.spc) expect(shaken.spc).toBe(e.spc);
    if (e.errors) expect(shaken.errors).toEqual(e.errors);
    if (e.errorsInclude) expect(shaken.errors).toEqual(expect.arrayContaining(e.errorsInclude));
    const codes = reasons.map((r: { code: string }) => r.code);
    // Several cases carry the same token: from its second presentation on it is a replay, and a
    // replayed signature earns the call no attestation credit.
    if (shaken.verstat === 'TN-Validation-Passed') expect(codes).toContain(codes.includes('PASSPORT_REPLAY') ? 'PASSPORT_REPLAY' : `SHAKEN_ATTEST_${shaken.attestation}`);
    else expect(codes).toContain('SHAKEN_INVALID');
  });

  it('x5u-bad-scheme (defective vector) is answered as the valid token it is', async () => {
    const c = cases.find((x) => x.case === 'x5u-bad-scheme')!;
    const res = (await app.inject({ method: 'POST', url: '/v1/calls/score', payload: c.request })).json();
    expect(res.shaken).toMatchObject({ verstat: 'TN-Validation-Passed', attestation: 'A', errors: [] });
  });

  it('without trust anchors nothing verifies', async () => {
    const open = await build();
    const valid = cases.find((c) => c.case === 'valid-A')!;
    const res = (await open.inject({ method: 'POST', url: '/v1/calls/score', payload: valid.request })).json();
    expect(res.shaken.errors).toContain('CERT_UNTRUSTED');
    expect(res.shaken.attestation).toBeNull();
    await open.close();
  });
});

import type { FastifyInstance } from 'fastify';
import { announcingRegistryFile, EXAMPLE_OUT, NORTHWIND_OUT } from '../helpers/announcing-registry';
import { twoInstances, type TwoInstances } from '../helpers/deployment';

/** Announced calls across instances: two apps of one deployment (one REDIS_KEY_PREFIX) on one Redis. */

const CUSTOMER = '+447400123456';
let a: FastifyInstance;
let b: FastifyInstance;
let deployment: TwoInstances | undefined;

beforeAll(async () => {
  deployment = await twoInstances('announcements-app', { REGISTRY_FILE: announcingRegistryFile() });
  ({ a, b } = deployment);
});
afterAll(() => deployment?.close());

const announce = (app: FastifyInstance, payload: object) => app.inject({ method: 'POST', url: '/v1/calls/expected', payload });
const score = (app: FastifyInstance, body: object) => app.inject({ method: 'POST', url: '/v1/calls/score', payload: body }).then((r) => r.json());
const codes = (answer: { reasons: { code: string }[] }) => answer.reasons.map((r) => r.code);

describe('two instances sharing one Redis', () => {
  it('an announcement made on one matches calls scored on the other, and withdrawn on one, stops matching on the other', async () => {
    const call = { from: NORTHWIND_OUT, to: CUSTOMER };
    // Scored first, so that the evidence is in the verdict cache on both.
    expect(await score(b, call)).toMatchObject({ verdict: 'flag' });
    expect(codes(await score(a, call))).toEqual(['SHAKEN_ABSENT', 'BANK_CALL_UNEXPECTED']);

    const made = await announce(a, { ...call, reference: 'case 7' });
    expect(made.statusCode).toBe(201);
    const expected = await score(b, call);
    expect(codes(expected)).toEqual(['SHAKEN_ABSENT', 'BANK_CALL_EXPECTED']);
    expect(expected).toMatchObject({ verdict: 'allow', cached: true });
    // The other instance lists it, and withdraws it.
    const listed = (await b.inject('/v1/calls/expected?from=01614960201')).json().announcements;
    expect(listed).toEqual([made.json()]);
    expect((await b.inject({ method: 'DELETE', url: `/v1/calls/expected/${made.json().id}` })).statusCode).toBe(204);

    for (const app of [a, b]) {
      const after = await score(app, call);
      expect(codes(after)).toEqual(['SHAKEN_ABSENT', 'BANK_CALL_UNEXPECTED']);
      expect(after).toMatchObject({ verdict: 'flag', cached: true });
    }
    expect((await a.inject('/v1/calls/expected')).json().announcements).toEqual([]);
  });

  it("the callback answer on one instance lists what was announced on the other", async () => {
    const made = (await announce(b, { from: EXAMPLE_OUT, to: CUSTOMER })).json();
    const res = await a.inject({ method: 'POST', url: '/v1/callbacks/verify', payload: { number: EXAMPLE_OUT, customer: CUSTOMER } });
    expect(res.json().expectedCalls).toEqual([{ from: EXAMPLE_OUT, at: made.at, expiresAt: made.expiresAt }]);
    expect(codes(await score(a, { from: EXAMPLE_OUT, to: CUSTOMER }))).toContain('BANK_CALL_EXPECTED');
  });
});

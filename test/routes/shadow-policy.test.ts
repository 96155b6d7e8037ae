import type { FastifyInstance } from 'fastify';
import { build } from '../helpers/build';
import { bearer, headersFor, KEYS_FILE, type Who } from '../helpers/keys';

/**
 * The shadow policy: a candidate decided beside the live policy on every scored call, its
 * report saying what it would have changed, and never a change to the answer itself.
 */
interface Report {
  version: string;
  since: string;
  calls: number;
  changed: { live: string; shadow: string; count: number }[];
  examples: { callId?: string; at: string; live: string; shadow: string; liveScore: number; shadowScore: number; reasons: string[] }[];
}

// An ordinary UK mobile caller without attestation: allowed by the built-in policy (score 15).
const CALL = { from: '+447400123456', to: '+442079460123' };
// The same policy with a base score that blocks it.
const HARSH = { baseScore: 70 };

let app: FastifyInstance;
beforeAll(async () => {
  app = await build({ API_KEYS_FILE: KEYS_FILE });
});
afterAll(async () => app?.close());
afterEach(async () => {
  await app.inject({ method: 'DELETE', url: '/v1/policy/shadow', headers: bearer('admin') });
});

const put = (body: unknown, who: Who = 'admin') => app.inject({ method: 'PUT', url: '/v1/policy/shadow', headers: headersFor(who), payload: body as object });
const report = (who: Who = 'admin') => app.inject({ method: 'GET', url: '/v1/policy/shadow/report', headers: headersFor(who) });
const score = async (body: object) => {
  const res = await app.inject({ method: 'POST', url: '/v1/calls/score', headers: bearer('switch'), payload: body });
  expect(res.statusCode).toBe(200);
  return res.json() as { verdict: string; score: number; reasons: { code: string }[] };
};

describe('a shadow policy', () => {
  it('is decided on every call without changing the answer, and reported', async () => {
    const before = await score(CALL);
    expect(before.verdict).toBe('allow');

    const set = await put(HARSH);
    expect(set.statusCode).toBe(200);
    const fresh = set.json() as Report;
    expect(fresh).toMatchObject({ calls: 0, changed: [], examples: [] });
    expect(Number.isNaN(Date.parse(fresh.since))).toBe(false);

    // The answers are the live policy's, cached or not.
    const decided = ({ verdict, score, reasons }: { verdict: string; score: number; reasons: unknown }) => ({ verdict, score, reasons });
    for (let i = 0; i < 3; i++) expect(decided(await score({ ...CALL, callId: `shadow-${i}` }))).toEqual(decided(before));
    // A call the candidate judges alike (the emergency services are always allowed): counted, not changed.
    expect((await score({ ...CALL, to: '999' })).verdict).toBe('allow');

    const res = await report();
    expect(res.statusCode).toBe(200);
    const r = res.json() as Report;
    expect(r.version).toBe(fresh.version);
    expect(r.since).toBe(fresh.since);
    expect(r.calls).toBe(4);
    expect(r.changed).toEqual([{ live: 'allow', shadow: 'block', count: 3 }]);
    expect(r.examples.map((e) => e.callId)).toEqual(['shadow-2', 'shadow-1', 'shadow-0']);
    expect(r.examples[0]).toMatchObject({ live: 'allow', shadow: 'block', liveScore: before.score, shadowScore: 75, reasons: before.reasons.map((x) => x.code) });
  });

  it('keeps its counts when set again, and starts again when replaced', async () => {
    const first = (await put(HARSH)).json() as Report;
    await score(CALL);
    const again = (await put(HARSH)).json() as Report;
    expect(again).toMatchObject({ version: first.version, since: first.since, calls: 1 });

    const other = (await put({ baseScore: 60 })).json() as Report;
    expect(other.version).not.toBe(first.version);
    expect(other.calls).toBe(0);
  });

  it('picks the candidate profile of the call’s trunk', async () => {
    await put({ profiles: { 'intl-7': HARSH } });
    await score(CALL);
    await score({ ...CALL, origin: { trunk: 'intl-7' } });
    expect(((await report()).json() as Report).changed).toEqual([{ live: 'allow', shadow: 'block', count: 1 }]);
  });

  it('keeps at most 100 examples, the newest', async () => {
    await put(HARSH);
    for (let i = 0; i < 105; i++) await score({ ...CALL, callId: `c${i}` });
    const r = (await report()).json() as Report;
    expect(r.calls).toBe(105);
    expect(r.examples).toHaveLength(100);
    expect(r.examples[0]!.callId).toBe('c104');
    expect(r.examples[99]!.callId).toBe('c5');
  });

  it('ends on DELETE: calls are no longer counted, and the report is 404', async () => {
    await put(HARSH);
    const del = await app.inject({ method: 'DELETE', url: '/v1/policy/shadow', headers: bearer('admin') });
    expect(del.statusCode).toBe(204);
    await score(CALL);
    const res = await report();
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({ error: 'not_found', message: expect.stringMatching(/no shadow policy/) });
    expect((await app.inject({ method: 'DELETE', url: '/v1/policy/shadow', headers: bearer('admin') })).statusCode).toBe(404);
  });

  it('refuses a bad document, naming every problem, and keeps the candidate it had', async () => {
    const good = (await put(HARSH)).json() as Report;
    const res = await put({ baseScore: 500, weights: { VELOCITY_HIGH: -1 } });
    expect(res.statusCode).toBe(400);
    const body = res.json() as { error: string; message: string; details: { field: string }[] };
    expect(body.error).toBe('validation_failed');
    expect(body.details.map((d) => d.field).sort()).toEqual(['baseScore', 'weights.VELOCITY_HIGH']);
    const incoherent = await put({ thresholds: { flag: 90, block: 50 } });
    expect(incoherent.statusCode).toBe(400);
    expect(incoherent.json()).toMatchObject({ details: [{ field: 'thresholds', message: expect.stringMatching(/flag \(90\) must not exceed block \(50\)/) }] });
    expect(((await report()).json() as Report).version).toBe(good.version);
  });

  it('refuses a candidate that counts across calls differently, saying why', async () => {
    const res = await put({ velocity: { windows: [{ seconds: 60, maxDistinct: 2 }] } });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ message: expect.stringMatching(/^velocity: .*live counts/) });
  });

  it.each([
    ['an array', [1, 2]],
    ['a string', 'nope'],
  ])('refuses %s as the document', async (_what, body) => {
    const res = await app.inject({ method: 'PUT', url: '/v1/policy/shadow', headers: { ...bearer('admin'), 'content-type': 'application/json' }, payload: JSON.stringify(body) });
    expect(res.statusCode).toBe(400);
  });

  it.each(['switch', 'examplebank', 'none'] as const)('is for admin keys only: %s is refused', async (who) => {
    const want = who === 'none' ? 401 : 403;
    expect((await put(HARSH, who)).statusCode).toBe(want);
    expect((await report(who)).statusCode).toBe(want);
    expect((await app.inject({ method: 'DELETE', url: '/v1/policy/shadow', headers: headersFor(who) })).statusCode).toBe(want);
  });
});

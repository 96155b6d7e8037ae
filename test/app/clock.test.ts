import { resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { build, VECTORS_DIR } from '../helpers/build';
import { loadCases, toE164, vectorsFetcher } from '../shaken/helpers';

/**
 * One clock everywhere: an app built with a fake clock reads the time from it alone, in the
 * verifier (freshness when the receive time is lost, certificate cache lifetimes), the verdict
 * cache (expiry), and the registry's audit log (record times).
 */
const valid = loadCases().find((c) => c.case === 'valid-A')!;
const start = Date.parse(valid.request.receivedAt);
let t = start;
const fetcher = vectorsFetcher();
let app: FastifyInstance;

beforeAll(async () => {
  app = await build({ SHAKEN_TRUST_ANCHORS: resolve(VECTORS_DIR, 'certs/root.pem'), VERDICT_CACHE_TTL_S: '60' }, { now: () => t, certFetcher: fetcher });
});
afterAll(() => app.close());
beforeEach(() => (t = start));

const verifyValid = (receivedAt: Date) =>
  app.services.verifier.verify({
    identity: valid.request.identity,
    origCandidates: [toE164(valid.request.from)!],
    dest: toE164(valid.request.to),
    receivedAt,
  });

it('the services carry the clock they were built with', () => {
  expect(app.services.now()).toBe(start);
});

it('the verifier judges freshness at the fake "now" when the receive time is lost', async () => {
  expect(await verifyValid(new Date(NaN))).toMatchObject({ verstat: 'TN-Validation-Passed' });
  t = start + 3600_000; // an hour on: the same PASSporT is stale by the fake clock alone
  expect((await verifyValid(new Date(NaN))).errors).toContain('STALE');
});

it('a certificate cache entry expires on the fake clock', async () => {
  const url = 'https://certs.vectors.example/sp1234.pem';
  const fetches = () => fetcher.calls.filter((u) => u === url).length;
  await verifyValid(new Date(start));
  const before = fetches();
  t = start + 23 * 3600_000; // within the default 24 hours (no Cache-Control): served from the cache
  await verifyValid(new Date(start));
  expect(fetches()).toBe(before);
  t = start + 25 * 3600_000; // past it: fetched again
  await verifyValid(new Date(start));
  expect(fetches()).toBe(before + 1);
});

it('a verdict cache entry expires on the fake clock', async () => {
  const call = { from: '+447400123456', to: '+447400900111' };
  expect((await app.services.assessor.assess(call)).cached).toBe(false);
  t = start + 59_000;
  expect((await app.services.assessor.assess(call)).cached).toBe(true);
  t = start + 61_000;
  expect((await app.services.assessor.assess(call)).cached).toBe(false);
});

it('an audit record is dated by the fake clock', async () => {
  t = Date.parse('2031-05-06T07:08:09.010Z');
  const put = await app.inject({ method: 'PUT', url: '/v1/registry/numbers/+441174960900', payload: { bankId: 'harbour', inboundOnly: true } });
  expect(put.statusCode).toBe(201);
  const audit = (await app.inject('/v1/registry/audit?limit=1')).json() as { records: { at: string; target: string }[] };
  expect(audit.records[0]).toMatchObject({ target: 'number:+441174960900', at: '2031-05-06T07:08:09.010Z' });
});

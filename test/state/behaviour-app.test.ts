import type { FastifyInstance } from 'fastify';
import type Redis from 'ioredis';
import { DEFAULT_POLICY } from '../../src/scoring';
import { build } from '../helpers/build';
import { connect, deleteByPrefix, guardFor, uniquePrefix, MemoryBehaviourTracker, RedisBehaviourTracker } from './support';
import { until } from '../../scripts/lib/process';

/** The trackers wired into the app as `buildApp({ behaviour })` takes them, through POST /v1/calls/score. */

let client: Redis;
let app: FastifyInstance;
let tracker: RedisBehaviourTracker;
const prefix = uniquePrefix('app');

beforeAll(async () => {
  client = await connect();
  tracker = new RedisBehaviourTracker(guardFor(client), DEFAULT_POLICY, { prefix, fallback: new MemoryBehaviourTracker(DEFAULT_POLICY) });
  app = await build({}, { behaviour: tracker });
});
afterAll(async () => {
  await app.close();
  await deleteByPrefix(client, prefix);
  client.disconnect();
});

const score = async (body: object) => {
  const res = await app.inject({ method: 'POST', url: '/v1/calls/score', payload: body });
  expect(res.statusCode).toBe(200);
  return res.json() as { verdict: string; reasons: { code: string; message: string }[] };
};
const codes = (json: { reasons: { code: string }[] }) => json.reasons.map((r) => r.code);

it('a caller ID sweeping numbers gets VELOCITY_HIGH past the per-minute limit', async () => {
  for (let i = 0; i < 20; i++) {
    expect(codes(await score({ from: '+447400123456', to: `+4474009000${String(i).padStart(2, '0')}`, callId: `sweep-${i}` }))).not.toContain(
      'VELOCITY_HIGH',
    );
  }
  // Rescoring a call already counted adds nothing.
  expect(codes(await score({ from: '+447400123456', to: '+447400900000', callId: 'sweep-0' }))).not.toContain('VELOCITY_HIGH');
  const json = await score({ from: '+447400123456', to: '+447400900099', callId: 'sweep-20' });
  expect(codes(json)).toContain('VELOCITY_HIGH');
  expect(json.reasons.find((r) => r.code === 'VELOCITY_HIGH')?.message).toMatch(/21 distinct numbers in 60 s/);
});

it("a bank's numbers failing checks again and again start a campaign that the bank's other calls carry, unless they show the bank's own evidence", async () => {
  for (let i = 0; i < DEFAULT_POLICY.campaign.minFailedCalls; i++) {
    await score({ from: '+442079460000', to: `+4474009001${String(i).padStart(2, '0')}`, callId: `spoof-${i}`, origin: { international: true, country: 'NG' } });
  }
  await until(async () => (await tracker.listCampaigns(Date.now())).length === 1, 2000, 'the campaign');
  // Nothing on this call says where it came from: the campaign weighs on it.
  const unknown = await score({ from: '+442079460000', to: '+447400123457' });
  expect(codes(unknown)).toEqual(['SHAKEN_ABSENT', 'CAMPAIGN_ACTIVE']);
  // The bank's verified call is evidence against the campaign, not part of it.
  const genuine = await score({ from: '+442079460000', to: '+447400123456', attestation: 'A', verstat: 'TN-Validation-Passed', origin: { carrier: '1234' } });
  expect(codes(genuine)).toEqual(['BANK_VERIFIED', 'SHAKEN_ATTEST_A']);
  expect(genuine.verdict).toBe('allow');

  const [campaign] = await tracker.listCampaigns(Date.now());
  expect(campaign).toMatchObject({
    bankId: 'examplebank',
    bankName: 'Example Bank',
    failedCalls: DEFAULT_POLICY.campaign.minFailedCalls,
    numbers: [{ number: '+442079460000', calls: DEFAULT_POLICY.campaign.minFailedCalls }],
  });
  const history = await tracker.history.query({ caller: '+442079460000', limit: 50 });
  expect(history).toHaveLength(DEFAULT_POLICY.campaign.minFailedCalls + 2);
  expect(history[0]).toMatchObject({ verdict: 'allow', reasons: ['BANK_VERIFIED', 'SHAKEN_ATTEST_A'], bankId: 'examplebank' });
});

it("a spoofer spraying a bank's number fills the shared counts, and the bank's genuine calls from its named carrier still pass", async () => {
  // iSpoof's pattern: one line presenting the bank's outbound number to many people, fast.
  for (let i = 0; i < 30; i++) await score({ from: '+442079460000', to: `+4474005${String(10000 + i)}`, callId: `spray-${i}` });
  const sprayed = await score({ from: '+442079460000', to: '+447400510099', callId: 'spray-last' });
  expect(codes(sprayed)).toEqual(expect.arrayContaining(['VELOCITY_HIGH', 'CAMPAIGN_ACTIVE']));
  // The bank's own call, unsigned as UK calls are, from the carrier its registry entry names.
  const genuine = await score({ from: '+442079460000', to: '+447400190002', origin: { carrier: '1234' }, callId: 'genuine-after-spray' });
  expect(codes(genuine)).toEqual(['SHAKEN_ABSENT']);
  expect(genuine.verdict).toBe('allow');
});

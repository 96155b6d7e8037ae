import type { FastifyInstance } from 'fastify';
import { build } from '../helpers/build';
import { bearer, headersFor, KEYS_FILE, type Who } from '../helpers/keys';

let app: FastifyInstance;
beforeEach(async () => {
  app = await build({ API_KEYS_FILE: KEYS_FILE });
});
afterEach(() => app.close());

const headers = headersFor;
const report = (who: Who, payload: unknown, extra: Record<string, string> = {}) =>
  app.inject({ method: 'POST', url: '/v1/reports', headers: { ...headers(who), ...extra }, payload: payload as string });
const campaigns = (who: Who) => app.inject({ method: 'GET', url: '/v1/campaigns', headers: headers(who) });
const score = (body: object) => app.inject({ method: 'POST', url: '/v1/calls/score', headers: bearer('switch'), payload: body }).then((r) => r.json());
const codes = (res: { reasons: { code: string }[] }) => res.reasons.map((r) => r.code);

describe('access: every role against both routes', () => {
  const everyone: Who[] = ['switch', 'examplebank', 'northwind', 'admin', 'none', 'bad'];
  const allowed: Who[] = ['examplebank', 'northwind', 'admin'];
  for (const who of everyone) {
    const expected = who === 'none' || who === 'bad' ? 401 : allowed.includes(who) ? 'ok' : 403;
    it(`GET /v1/campaigns as ${who} -> ${expected}`, async () => {
      const res = await campaigns(who);
      if (expected === 'ok') expect(res.statusCode).toBe(200);
      else expect([res.statusCode, res.json().error]).toEqual([expected, expected === 401 ? 'unauthorized' : 'forbidden']);
    });
    it(`POST /v1/reports as ${who} -> ${expected}`, async () => {
      const res = await report(who, { number: '+447400123456', category: 'scam' });
      if (expected === 'ok') expect(res.statusCode).toBe(201);
      else expect([res.statusCode, res.json().error]).toEqual([expected, expected === 401 ? 'unauthorized' : 'forbidden']);
    });
  }
});

describe('POST /v1/reports', () => {
  it('stores the report and answers 201 with it; the reporter is the key', async () => {
    const res = await report('examplebank', { number: '07400 123456', category: 'spoof', callId: 'call-77', note: 'customer says the caller claimed to be us' });
    expect(res.statusCode).toBe(201);
    expect(res.json()).toEqual({
      id: expect.any(String),
      number: '+447400123456',
      category: 'spoof',
      callId: 'call-77',
      note: 'customer says the caller claimed to be us',
      at: expect.stringMatching(/^\d{4}-\d\d-\d\dT.*Z$/),
      reporter: 'test-examplebank',
    });
    expect(Math.abs(Date.parse(res.json().at) - Date.now())).toBeLessThan(5000);
    const again = await report('admin', { number: 'sip:+447400123456@x', category: 'scam' });
    expect(again.json()).toMatchObject({ number: '+447400123456', reporter: 'test-admin' });
    expect(again.json().id).not.toBe(res.json().id);
  });

  it('a call from the reported number then gets REPORTED_FRAUD, even from a cached verdict', async () => {
    const call = { from: '+447400123456', to: '+442079460999' };
    const before = await score({ ...call, callId: 'r1' });
    expect(codes(before)).not.toContain('REPORTED_FRAUD');
    expect((await score({ ...call, callId: 'r2' })).cached).toBe(true);
    expect((await report('northwind', { number: '+447400123456', category: 'scam' })).statusCode).toBe(201);
    const after = await score({ ...call, callId: 'r3' });
    expect(after.cached).toBe(true);
    expect(codes(after)).toContain('REPORTED_FRAUD');
    expect(after.reasons.find((r: { code: string }) => r.code === 'REPORTED_FRAUD')).toMatchObject({ weight: 40, message: expect.stringMatching(/reported for fraud 1 time\(s\) \(scam\)/) });
    expect(after.score).toBeGreaterThan(before.score);
    // Other numbers are untouched.
    expect(codes(await score({ from: '+447400123457', to: '+442079460999' }))).not.toContain('REPORTED_FRAUD');
  });

  it("a bank key may not report another bank's number (403), only its own or a number that is no bank's", async () => {
    // Harbour's authorised outbound number, on a genuine call from its own carrier.
    const harbour = { from: '+441134960300', to: '+447400123456', origin: { carrier: '9012' } };
    const before = await score({ ...harbour, callId: 'h1' });
    for (const number of ['+441134960300', '+441214960250' /* under harbour's prefix */, '+441214960100' /* its callback number */]) {
      const res = await report('northwind', { number, category: 'scam' });
      expect([number, res.statusCode]).toEqual([number, 403]);
      expect(res.json()).toEqual({ error: 'forbidden', message: expect.stringMatching(/is a number of bank "harbour".*may not report another bank's number/) });
    }
    const after = await score({ ...harbour, callId: 'h2' });
    expect(codes(after)).not.toContain('REPORTED_FRAUD');
    expect([after.verdict, after.score]).toEqual([before.verdict, before.score]);
    // Its own number, and a number no bank holds, may be reported; an administrator may report any.
    expect((await report('northwind', { number: '+441614960200', category: 'spoof' })).statusCode).toBe(201);
    expect((await report('northwind', { number: '+447400123456', category: 'scam' })).statusCode).toBe(201);
    expect((await report('admin', { number: '+441134960300', category: 'spoof' })).statusCode).toBe(201);
  });

  const cases: [string, unknown, RegExp][] = [
    ['no body fields', {}, /^number/],
    ['number missing', { category: 'scam' }, /^number/],
    ['category missing', { number: '+447400123456' }, /^category/],
    ['category unknown', { number: '+447400123456', category: 'fraud' }, /^category: category must be one of spoof, scam, nuisance/],
    ['category a number', { number: '+447400123456', category: 1 }, /^category/],
    ['number a number', { number: 447400123456, category: 'scam' }, /^number: number must be a string/],
    ['number junk', { number: 'call me', category: 'scam' }, /^number: "call me" is not a valid, diallable phone number/],
    ['number not diallable', { number: '+44740012345', category: 'scam' }, /^number: .*not a valid, diallable/],
    ['number withheld', { number: 'withheld', category: 'scam' }, /^number: .*withheld/],
    ['number a short code', { number: '999', category: 'scam' }, /^number: /],
    ['number too long', { number: '+'.padEnd(1000, '4'), category: 'scam' }, /^number: number is longer than 256 characters/],
    ['note too long', { number: '+447400123456', category: 'scam', note: 'x'.repeat(1001) }, /^note: note is longer than 1000 characters/],
    ['note an object', { number: '+447400123456', category: 'scam', note: { text: 'x' } }, /^note: note must be a string/],
    ['callId a number', { number: '+447400123456', category: 'scam', callId: 7 }, /^callId: callId must be a string/],
    ['callId too long', { number: '+447400123456', category: 'scam', callId: 'c'.repeat(257) }, /^callId: /],
    ['body an array', [{ number: '+447400123456', category: 'scam' }], /./],
  ];
  for (const [name, payload, message] of cases) {
    it(`bad input: ${name} -> 400 naming the field`, async () => {
      const res = await report('admin', payload);
      expect(res.statusCode).toBe(400);
      expect(res.json()).toMatchObject({ error: expect.any(String), message: expect.stringMatching(message) });
    });
  }

  it('a note of exactly 1000 characters is kept whole', async () => {
    const res = await report('admin', { number: '+447400123456', category: 'nuisance', note: 'n'.repeat(1000) });
    expect(res.statusCode).toBe(201);
    expect(res.json().note).toHaveLength(1000);
  });

  it('prototype pollution, broken JSON and oversized bodies are refused with a 4xx', async () => {
    const json = { 'content-type': 'application/json' };
    expect((await report('admin', '{"number":"+447400123456","category":"scam","__proto__":{"x":1}}', json)).statusCode).toBe(400);
    expect((await report('admin', '{"number":"+447400123456","category":"scam","constructor":{"prototype":{"x":1}}}', json)).statusCode).toBe(400);
    expect((await report('admin', '{"number":', json)).statusCode).toBe(400);
    const huge = await report('admin', { number: '+447400123456', category: 'scam', note: 'x'.repeat(200_000) });
    expect(huge.statusCode).toBe(413);
    expect(huge.json().error).toBe('payload_too_large');
  });
});

describe('GET /v1/campaigns', () => {
  it('is empty while nothing is going on', async () => {
    expect((await campaigns('admin')).json()).toEqual({ campaigns: [] });
  });

  it("failing calls presenting a bank's number start a campaign; its other numbers then get CAMPAIGN_ACTIVE; it is listed", async () => {
    const threshold = app.services.policy.campaign.minFailedCalls;
    // The bank's outbound number, presented on calls arriving from abroad: spoofing at scale.
    for (let i = 0; i < threshold; i++) {
      const res = await score({ from: '+442079460000', to: `+4474001234${String(i).padStart(2, '0')}`, origin: { international: true }, callId: `spoof-${i}` });
      expect(codes(res)).toContain('CLI_DOMESTIC_FROM_ABROAD');
      expect(codes(res)).not.toContain('CAMPAIGN_ACTIVE');
    }
    // A domestic call presenting another of the bank's numbers (its inbound-only one).
    const next = await score({ from: '+443450000000', to: '+447400123499', callId: 'next' });
    expect(codes(next)).toEqual(expect.arrayContaining(['CLI_DNO', 'CAMPAIGN_ACTIVE']));
    expect(next.reasons.find((r: { code: string }) => r.code === 'CAMPAIGN_ACTIVE').message).toMatch(/Example Bank's numbers/);
    // Another bank's numbers are not affected.
    expect(codes(await score({ from: '+441614960200', to: '+447400123499', origin: { carrier: '5678' } }))).not.toContain('CAMPAIGN_ACTIVE');

    const listed = (await campaigns('admin')).json();
    expect(listed).toEqual({
      campaigns: [
        {
          bankId: 'examplebank',
          bankName: 'Example Bank',
          numbers: [
            { number: '+442079460000', calls: threshold },
            { number: '+443450000000', calls: 1 },
          ],
          failedCalls: threshold + 1,
          since: expect.stringMatching(/^\d{4}-/),
          lastSeen: expect.stringMatching(/^\d{4}-/),
        },
      ],
    });
    expect(Date.parse(listed.campaigns[0].lastSeen)).toBeGreaterThanOrEqual(Date.parse(listed.campaigns[0].since));
    // A bank key sees its own bank's campaigns only.
    expect((await campaigns('examplebank')).json().campaigns.map((c: { bankId: string }) => c.bankId)).toEqual(['examplebank']);
    expect((await campaigns('northwind')).json()).toEqual({ campaigns: [] });
  });

  it('ignores a query string it does not know', async () => {
    expect((await app.inject({ method: 'GET', url: '/v1/campaigns?bankId=northwind&__proto__=1', headers: bearer('examplebank') })).statusCode).toBe(200);
  });
});

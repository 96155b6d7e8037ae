import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import sample from '../../src/registry/sample-registry.json';
import { build } from '../helpers/build';
import { bearer, headersFor, KEYS_FILE, type Who } from '../helpers/keys';

let app: FastifyInstance;
beforeEach(async () => {
  app = await build({ API_KEYS_FILE: KEYS_FILE });
});
afterEach(() => app.close());

const headers = headersFor;
const verify = (who: Who, payload: unknown, extra: Record<string, string> = {}) =>
  app.inject({ method: 'POST', url: '/v1/callbacks/verify', headers: { ...headers(who), ...extra }, payload: payload as string });
const score = (body: object) => app.inject({ method: 'POST', url: '/v1/calls/score', headers: bearer('switch'), payload: body });
const ago = (ms: number) => new Date(Date.now() - ms).toISOString();

const CUSTOMER = '+447400123456';

/**
 * Restarts the app on the sample registry with `banks` changed. The API refuses a callback number
 * the registry does not give to its bank, but a registry file may still hold one.
 */
async function startWithBanks(change: (banks: typeof sample.banks) => typeof sample.banks): Promise<void> {
  const file = join(mkdtempSync(join(tmpdir(), 'callguard-callbacks-')), 'registry.json');
  writeFileSync(file, JSON.stringify({ ...sample, banks: change(sample.banks) }));
  await app.close();
  app = await build({ API_KEYS_FILE: KEYS_FILE, REGISTRY_FILE: file });
}

describe('POST /v1/callbacks/verify: access', () => {
  for (const who of ['switch', 'examplebank', 'northwind', 'admin'] as const) {
    it(`${who} may verify`, async () => {
      const res = await verify(who, { number: '+442079460000' });
      expect(res.statusCode).toBe(200);
    });
  }
  for (const who of ['none', 'bad'] as const) {
    it(`${who === 'none' ? 'no key' : 'a wrong key'} -> 401`, async () => {
      const res = await verify(who, { number: '+442079460000' });
      expect(res.statusCode).toBe(401);
      expect(res.json()).toMatchObject({ error: 'unauthorized' });
    });
  }
});

describe("POST /v1/callbacks/verify: is it the bank's number?", () => {
  it("an exact registry number: genuine, with the bank's callback numbers", async () => {
    const res = await verify('admin', { number: '+442079460000' });
    expect(res.json()).toEqual({
      number: { e164: '+442079460000', valid: true },
      genuine: true,
      bank: { id: 'examplebank', name: 'Example Bank' },
      inboundOnly: false,
      callbackNumbers: ['+443450000000'],
    });
  });

  it('a number under a registry prefix, and an inbound-only one', async () => {
    expect((await verify('admin', { number: '+442079460123' })).json()).toMatchObject({ genuine: true, bank: { id: 'examplebank' }, inboundOnly: true });
    expect((await verify('admin', { number: '+448081570100' })).json()).toMatchObject({
      genuine: true,
      bank: { id: 'northwind', name: 'Northwind Building Society' },
      inboundOnly: true,
      callbackNumbers: ['+443069990100', '+448081570100'],
    });
  });

  it("a bank's callback number that has no registry entry of its own is genuine too", async () => {
    await startWithBanks((banks) => [...banks, { id: 'lakeside', name: 'Lakeside Bank', callbackNumbers: ['+441134960999'] }]);
    expect((await verify('northwind', { number: '0113 496 0999' })).json()).toEqual({
      number: { e164: '+441134960999', valid: true },
      genuine: true,
      bank: { id: 'lakeside', name: 'Lakeside Bank' },
      inboundOnly: false,
      callbackNumbers: ['+441134960999'],
    });
  });

  it('a number that is no bank\'s', async () => {
    expect((await verify('examplebank', { number: CUSTOMER })).json()).toEqual({
      number: { e164: CUSTOMER, valid: true },
      genuine: false,
      bank: null,
      inboundOnly: false,
      callbackNumbers: [],
    });
  });

  it('takes every input form of the contract', async () => {
    for (const number of ['020 7946 0000', '02079460000', 'tel:+44-20-7946-0000', 'sip:+442079460000@sbc.example;user=phone', '"Bank" <sips:+44 20 7946 0000@x>']) {
      const body = (await verify('switch', { number })).json();
      expect([number, body.number.e164, body.genuine]).toEqual([number, '+442079460000', true]);
    }
  });

  it('answers a number libphonenumber finds invalid with valid: false rather than refusing it', async () => {
    expect((await verify('admin', { number: '+44207946000' })).json()).toMatchObject({ number: { e164: '+44207946000', valid: false }, genuine: false });
  });

  it("tells a bank key which bank another bank's number belongs to (see the route's description)", async () => {
    expect((await verify('northwind', { number: '+442079460000' })).json()).toMatchObject({ genuine: true, bank: { id: 'examplebank' } });
  });
});

describe('POST /v1/callbacks/verify: recent calls', () => {
  async function history() {
    // Three calls to the customer, one to someone else, one too old for the default week.
    await score({ from: '+442079460000', to: CUSTOMER, callId: 'c-old', receivedAt: ago(8 * 86400_000) });
    await score({ from: '+442079460000', to: CUSTOMER, callId: 'c1', receivedAt: ago(3 * 3600_000) });
    await score({ from: '+442079460000', to: CUSTOMER, callId: 'c3', receivedAt: ago(1 * 3600_000), origin: { international: true } });
    await score({ from: '+442079460000', to: CUSTOMER, callId: 'c2', receivedAt: ago(2 * 3600_000) });
    await score({ from: '+442079460000', to: '+447400999888', callId: 'other', receivedAt: ago(1800_000) });
  }

  it('lists the calls from the number to the customer in the last week, newest first', async () => {
    await history();
    const body = (await verify('admin', { number: '+442079460000', customer: '07400 123456' })).json();
    expect(body.recentCalls.map((c: { callId: string }) => c.callId)).toEqual(['c3', 'c2', 'c1']);
    expect(body.recentCalls[0]).toEqual({
      callId: 'c3',
      at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      verdict: 'block',
      score: expect.any(Number),
      reasons: expect.arrayContaining(['CLI_DOMESTIC_FROM_ABROAD']),
    });
    expect(body.recentCalls[1]).toMatchObject({ callId: 'c2', verdict: 'allow' });
  });

  it('since narrows the window, and reaches back past the default week', async () => {
    await history();
    const recent = (await verify('admin', { number: '+442079460000', customer: CUSTOMER, since: ago(2.5 * 3600_000) })).json();
    expect(recent.recentCalls.map((c: { callId: string }) => c.callId)).toEqual(['c3', 'c2']);
    const older = (await verify('admin', { number: '+442079460000', customer: CUSTOMER, since: ago(10 * 86400_000) })).json();
    expect(older.recentCalls.map((c: { callId: string }) => c.callId)).toEqual(['c3', 'c2', 'c1', 'c-old']);
    const offset = (await verify('admin', { number: '+442079460000', customer: CUSTOMER, since: '2020-01-01T01:00:00+01:00' })).json();
    expect(offset.recentCalls).toHaveLength(4);
  });

  it('is absent without a customer, and empty when nothing was called', async () => {
    await history();
    expect((await verify('admin', { number: '+442079460000' })).json()).not.toHaveProperty('recentCalls');
    expect((await verify('admin', { number: '+442079460000', customer: '+447400555000' })).json().recentCalls).toEqual([]);
  });

  it("a bank key sees the calls that presented its own bank's numbers, and no others", async () => {
    await history();
    await score({ from: '+447400777666', to: CUSTOMER, callId: 'private', receivedAt: ago(600_000) });
    const own = (await verify('examplebank', { number: '+442079460000', customer: CUSTOMER })).json();
    expect(own.recentCalls.map((c: { callId: string }) => c.callId)).toEqual(['c3', 'c2', 'c1']);
    // Another bank's number: who it belongs to is told, its calls are not.
    const other = (await verify('northwind', { number: '+442079460000', customer: CUSTOMER })).json();
    expect(other).toMatchObject({ genuine: true, bank: { id: 'examplebank' }, recentCalls: [] });
    // A number that is no bank's: calls from it presented no bank's number.
    expect((await verify('examplebank', { number: '+447400777666', customer: CUSTOMER })).json().recentCalls).toEqual([]);
    expect((await verify('admin', { number: '+447400777666', customer: CUSTOMER })).json().recentCalls).toHaveLength(1);
    expect((await verify('switch', { number: '+447400777666', customer: CUSTOMER })).json().recentCalls).toHaveLength(1);
  });

  it('a bank key does not see calls that presented a number in no registry entry, even its callback number', async () => {
    await startWithBanks((banks) => banks.map((b) => (b.id === 'northwind' ? { ...b, callbackNumbers: ['+441134960999'] } : b)));
    await score({ from: '+441134960999', to: CUSTOMER, callId: 'cb1' });
    // The call matched no bank when scored: it presented nobody's number.
    expect((await verify('northwind', { number: '+441134960999', customer: CUSTOMER })).json()).toMatchObject({ genuine: true, bank: { id: 'northwind' }, recentCalls: [] });
    expect((await verify('examplebank', { number: '+441134960999', customer: CUSTOMER })).json().recentCalls).toEqual([]);
    expect((await verify('admin', { number: '+441134960999', customer: CUSTOMER })).json().recentCalls.map((c: { callId: string }) => c.callId)).toEqual(['cb1']);
  });

  it("a number given to a bank later: the bank sees the calls made since, not its earlier callers' history", async () => {
    const mobile = '+447911123456';
    await score({ from: mobile, to: CUSTOMER, callId: 'before', receivedAt: ago(3600_000) });
    const put = await app.inject({ method: 'PUT', url: `/v1/registry/numbers/${mobile}`, headers: bearer('admin'), payload: { bankId: 'northwind', inboundOnly: false } });
    expect(put.statusCode).toBe(201);
    await score({ from: mobile, to: CUSTOMER, callId: 'after' });
    const own = (await verify('northwind', { number: mobile, customer: CUSTOMER })).json();
    expect(own).toMatchObject({ genuine: true, bank: { id: 'northwind' } });
    expect(own.recentCalls.map((c: { callId: string }) => c.callId)).toEqual(['after']);
    expect((await verify('admin', { number: mobile, customer: CUSTOMER })).json().recentCalls.map((c: { callId: string }) => c.callId)).toEqual(['after', 'before']);
  });
});

describe('POST /v1/callbacks/verify: hostile input gets a 4xx naming the field, never a 500', () => {
  const cases: [string, unknown, number, RegExp][] = [
    ['number missing', {}, 400, /^number/],
    ['number a number', { number: 442079460000 }, 400, /^number: number must be a string/],
    ['number an array', { number: ['+442079460000'] }, 400, /^number/],
    ['number an object', { number: { e164: '+442079460000' } }, 400, /^number/],
    ['number null', { number: null }, 400, /^number/],
    ['number junk', { number: 'not-a-number' }, 400, /^number: "not-a-number" is not a phone number/],
    ['number withheld', { number: 'anonymous' }, 400, /^number: .*withheld/],
    ['number empty', { number: '' }, 400, /^number: .*withheld/],
    ['number a short code', { number: '159' }, 400, /^number: .*short code 159/],
    ['number huge', { number: '4'.repeat(100_000) }, 413, /larger than the limit/],
    ['number long', { number: '+44'.padEnd(300, '1') }, 400, /^number: number is longer than 256 characters/],
    ['customer junk', { number: '+442079460000', customer: 'the customer' }, 400, /^customer: /],
    ['customer a number', { number: '+442079460000', customer: 7400123456 }, 400, /^customer/],
    ['since not a date', { number: '+442079460000', since: 'yesterday' }, 400, /^since: since must be an RFC 3339 date-time/],
    ['since without offset', { number: '+442079460000', since: '2025-01-01T00:00:00' }, 400, /^since/],
    ['since month 13', { number: '+442079460000', since: '2025-13-01T00:00:00Z' }, 400, /^since/],
    ['since a number', { number: '+442079460000', since: 1735689600000 }, 400, /^since/],
    ['body an array', [{ number: '+442079460000' }], 400, /./],
    ['body a string', '"+442079460000"', 400, /./],
  ];
  for (const [name, payload, status, message] of cases) {
    it(name, async () => {
      const res = await verify('admin', payload, { 'content-type': 'application/json' });
      expect(res.statusCode).toBe(status);
      expect(res.json()).toMatchObject({ error: expect.any(String), message: expect.stringMatching(message) });
    });
  }

  it('prototype pollution attempts are refused', async () => {
    for (const body of ['{"number":"+442079460000","__proto__":{"admin":true}}', '{"number":"+442079460000","constructor":{"prototype":{"admin":true}}}']) {
      const res = await verify('admin', body, { 'content-type': 'application/json' });
      expect(res.statusCode).toBe(400);
      expect(res.json().error).toEqual(expect.any(String));
    }
    expect(({} as Record<string, unknown>).admin).toBeUndefined();
  });

  it('broken JSON, the wrong content type and unknown fields', async () => {
    expect((await verify('admin', '{"number":', { 'content-type': 'application/json' })).statusCode).toBe(400);
    expect((await verify('admin', 'number=+442079460000', { 'content-type': 'application/x-www-form-urlencoded' })).statusCode).toBe(415);
    expect((await verify('admin', { number: '+442079460000', extra: 'x'.repeat(1000) })).statusCode).toBe(200);
  });
});

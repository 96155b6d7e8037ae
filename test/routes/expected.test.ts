import type { FastifyInstance } from 'fastify';
import { announcingRegistryFile, EXAMPLE_OUT, NORTHWIND_OUT } from '../helpers/announcing-registry';
import { build } from '../helpers/build';
import { headersFor, KEYS_FILE, type Who } from '../helpers/keys';

/** POST, GET and DELETE /v1/calls/expected: who may do what, and what announced calls score. */

const START = Date.parse('2026-12-07T10:00:00.000Z');
let t = START;
let app: FastifyInstance;
const registryFile = announcingRegistryFile();

beforeEach(async () => {
  t = START;
  app = await build({ API_KEYS_FILE: KEYS_FILE, REGISTRY_FILE: registryFile }, { now: () => t });
});
afterEach(() => app.close());

const CUSTOMER = '+447400123456';

const announce = (who: Who, payload: object) => app.inject({ method: 'POST', url: '/v1/calls/expected', headers: headersFor(who), payload });
const list = (who: Who, query = '') => app.inject({ method: 'GET', url: `/v1/calls/expected${query}`, headers: headersFor(who) });
const withdraw = (who: Who, id: string) => app.inject({ method: 'DELETE', url: `/v1/calls/expected/${encodeURIComponent(id)}`, headers: headersFor(who) });
const score = (body: object) => app.inject({ method: 'POST', url: '/v1/calls/score', headers: headersFor('switch'), payload: body }).then((r) => r.json());
const verify = (who: Who, body: object) => app.inject({ method: 'POST', url: '/v1/callbacks/verify', headers: headersFor(who), payload: body });
const codes = (answer: { reasons: { code: string }[] }) => answer.reasons.map((r) => r.code);

/** Announces and returns the answer's body, failing unless it is 201. */
async function announced(who: Who, payload: object): Promise<{ id: string; from: string; to: string; bankId: string; at: string; expiresAt: string; reference?: string }> {
  const res = await announce(who, payload);
  expect([res.statusCode, res.json()]).toEqual([201, expect.anything()]);
  return res.json();
}

describe('POST /v1/calls/expected: who may announce what', () => {
  it('a bank key, from its own outbound number: 201 with the announcement', async () => {
    const res = await announce('examplebank', { from: '020 7946 0000', to: 'tel:+44-7400-123456', reference: 'case 42' });
    expect(res.statusCode).toBe(201);
    expect(res.json()).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      from: EXAMPLE_OUT,
      to: CUSTOMER,
      bankId: 'examplebank',
      at: '2026-12-07T10:00:00.000Z',
      expiresAt: '2026-12-07T10:10:00.000Z',
      reference: 'case 42',
    });
  });

  it('takes every number form, and a number under a prefix of the bank', async () => {
    for (const from of ['sip:+441614960201@sbc.example;user=phone', '01614960201', 'tel:+44-161-496-0201', '"Northwind" <sips:+44 161 496 0201@x>']) {
      const body = await announced('northwind', { from, to: `sip:${CUSTOMER}@x` });
      expect([from, body.from, body.to, body.bankId]).toEqual([from, NORTHWIND_OUT, CUSTOMER, 'northwind']);
    }
  });

  it("another bank's number, outbound or inbound-only: 403", async () => {
    for (const from of [NORTHWIND_OUT, '+443069990100']) {
      const res = await announce('examplebank', { from, to: CUSTOMER });
      expect([from, res.statusCode, res.json().error]).toEqual([from, 403, 'forbidden']);
    }
  });

  it.each([
    ['its own inbound-only number', '+443450000000', /inbound-only/],
    ['a number under its own inbound-only prefix', '+442079460123', /inbound-only/],
    ['a number that is no bank\'s', '+441134960000', /not an outbound number of bank "examplebank"/],
    ['a number that is not valid', '+44207946000', /not a valid/],
    ['a withheld marker', 'anonymous', /withheld/],
    ['a short code', '159', /short code/],
  ])('%s: 400 naming from', async (_what, from, why) => {
    const res = await announce('examplebank', { from, to: CUSTOMER });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ error: 'validation_failed', message: expect.stringMatching(why), details: [{ field: 'from' }] });
  });

  it.each([['anonymous'], ['999'], ['+44740012345'], ['not a number']])('an invalid `to` (%s): 400 naming to', async (to) => {
    const res = await announce('examplebank', { from: EXAMPLE_OUT, to });
    expect(res.statusCode).toBe(400);
    expect(res.json().details).toEqual([{ field: 'to', message: expect.any(String) }]);
  });

  it('validForS is a whole number of seconds from 1 to 86400 (default 600); reference at most 128 characters', async () => {
    for (const validForS of [0, 86401, 1.5, '600', -1]) {
      const res = await announce('examplebank', { from: EXAMPLE_OUT, to: CUSTOMER, validForS });
      expect([validForS, res.statusCode, res.json().details?.[0]?.field]).toEqual([validForS, 400, 'validForS']);
    }
    expect((await announced('examplebank', { from: EXAMPLE_OUT, to: CUSTOMER, validForS: 1 })).expiresAt).toBe('2026-12-07T10:00:01.000Z');
    expect((await announced('examplebank', { from: EXAMPLE_OUT, to: CUSTOMER, validForS: 86400 })).expiresAt).toBe('2026-12-08T10:00:00.000Z');
    const long = await announce('examplebank', { from: EXAMPLE_OUT, to: CUSTOMER, reference: 'x'.repeat(129) });
    expect([long.statusCode, long.json().details?.[0]?.field]).toEqual([400, 'reference']);
    expect((await announced('examplebank', { from: EXAMPLE_OUT, to: CUSTOMER, reference: 'x'.repeat(128) })).reference).toHaveLength(128);
    for (const payload of [{ to: CUSTOMER }, { from: EXAMPLE_OUT }, { from: 42, to: CUSTOMER }]) {
      const res = await announce('examplebank', payload);
      expect(res.statusCode).toBe(400);
      expect(res.json().message).toMatch(/from|to/);
    }
  });

  it('an admin key announces for the bank whose entry covers the number; an unknown number is 400', async () => {
    expect(await announced('admin', { from: NORTHWIND_OUT, to: CUSTOMER })).toMatchObject({ bankId: 'northwind' });
    expect(await announced('admin', { from: EXAMPLE_OUT, to: CUSTOMER })).toMatchObject({ bankId: 'examplebank' });
    const res = await announce('admin', { from: '+441134960000', to: CUSTOMER });
    expect(res.json()).toMatchObject({ error: 'validation_failed', details: [{ field: 'from' }] });
    expect((await announce('admin', { from: '+443450000000', to: CUSTOMER })).statusCode).toBe(400);
  });

  it('a switch key: 403; no key or a wrong one: 401', async () => {
    expect((await announce('switch', { from: EXAMPLE_OUT, to: CUSTOMER })).statusCode).toBe(403);
    expect((await announce('none', { from: EXAMPLE_OUT, to: CUSTOMER })).statusCode).toBe(401);
    expect((await announce('bad', { from: EXAMPLE_OUT, to: CUSTOMER })).statusCode).toBe(401);
  });

  it('counts announcements made and withdrawn', async () => {
    const made = await announced('examplebank', { from: EXAMPLE_OUT, to: CUSTOMER });
    await announced('examplebank', { from: EXAMPLE_OUT, to: CUSTOMER });
    expect((await withdraw('examplebank', made.id)).statusCode).toBe(204);
    const metrics = (await app.inject('/metrics')).body;
    expect(metrics).toMatch(/callguard_announcements_total\{action="created"\} 2/);
    expect(metrics).toMatch(/callguard_announcements_total\{action="withdrawn"\} 1/);
  });
});

describe('GET /v1/calls/expected', () => {
  beforeEach(async () => {
    await announced('examplebank', { from: EXAMPLE_OUT, to: CUSTOMER });
    t += 1000;
    await announced('northwind', { from: NORTHWIND_OUT, to: CUSTOMER });
    t += 1000;
    await announced('northwind', { from: '+441614960202', to: '+447400999888', validForS: 60 });
  });
  const froms = async (who: Who, query = '') => {
    const res = await list(who, query);
    expect(res.statusCode).toBe(200);
    return (res.json().announcements as { from: string; to: string }[]).map((a) => `${a.from}>${a.to}`);
  };

  it("a bank key lists its own bank's, newest first; an admin every bank's", async () => {
    expect(await froms('examplebank')).toEqual([`${EXAMPLE_OUT}>${CUSTOMER}`]);
    expect(await froms('northwind')).toEqual(['+441614960202>+447400999888', `${NORTHWIND_OUT}>${CUSTOMER}`]);
    expect(await froms('admin')).toEqual(['+441614960202>+447400999888', `${NORTHWIND_OUT}>${CUSTOMER}`, `${EXAMPLE_OUT}>${CUSTOMER}`]);
  });

  it('narrowed by from and to, in any number form, and by limit', async () => {
    expect(await froms('admin', '?to=07400%20123456')).toEqual([`${NORTHWIND_OUT}>${CUSTOMER}`, `${EXAMPLE_OUT}>${CUSTOMER}`]);
    expect(await froms('admin', `?from=${encodeURIComponent('tel:+44-20-7946-0000')}`)).toEqual([`${EXAMPLE_OUT}>${CUSTOMER}`]);
    expect(await froms('northwind', `?from=${encodeURIComponent(EXAMPLE_OUT)}`)).toEqual([]);
    expect(await froms('admin', '?limit=1')).toEqual(['+441614960202>+447400999888']);
    for (const query of ['?limit=0', '?limit=1001', '?limit=x', '?from=anonymous', '?to=nonsense']) {
      const res = await list('admin', query);
      expect([query, res.statusCode]).toEqual([query, 400]);
    }
    expect((await list('admin', '?from=anonymous')).json().details).toEqual([{ field: 'from', message: expect.any(String) }]);
  });

  it('lists only the announcements still in their window', async () => {
    t += 61_000;
    expect(await froms('northwind')).toEqual([`${NORTHWIND_OUT}>${CUSTOMER}`]);
    t += 600_000;
    expect(await froms('admin')).toEqual([]);
  });

  it('a switch key: 403; no key: 401', async () => {
    expect((await list('switch')).statusCode).toBe(403);
    expect((await list('none')).statusCode).toBe(401);
  });
});

describe('DELETE /v1/calls/expected/{id}', () => {
  it("a bank withdraws its own; another bank's id is as unknown as an id nobody made", async () => {
    const mine = await announced('examplebank', { from: EXAMPLE_OUT, to: CUSTOMER });
    const other = await withdraw('northwind', mine.id);
    const unknown = await withdraw('northwind', '00000000-0000-0000-0000-000000000000');
    expect([other.statusCode, unknown.statusCode]).toEqual([404, 404]);
    expect(other.json().error).toBe(unknown.json().error);
    expect(other.json().message.replace(mine.id, 'ID')).toBe(unknown.json().message.replace('00000000-0000-0000-0000-000000000000', 'ID'));
    // Still there, until its own bank withdraws it.
    expect((await list('examplebank')).json().announcements).toHaveLength(1);
    const res = await withdraw('examplebank', mine.id);
    expect([res.statusCode, res.body]).toEqual([204, '']);
    expect((await list('examplebank')).json().announcements).toEqual([]);
    expect((await withdraw('examplebank', mine.id)).statusCode).toBe(404);
  });

  it("an admin withdraws any bank's; a switch key may not; no key: 401", async () => {
    const a = await announced('northwind', { from: NORTHWIND_OUT, to: CUSTOMER });
    expect((await withdraw('switch', a.id)).statusCode).toBe(403);
    expect((await withdraw('none', a.id)).statusCode).toBe(401);
    expect((await withdraw('admin', a.id)).statusCode).toBe(204);
    expect((await list('northwind')).json().announcements).toEqual([]);
  });
});

describe('announced calls, scored', () => {
  it('a call the bank announced: BANK_CALL_EXPECTED, and allow', async () => {
    expect(codes(await score({ from: EXAMPLE_OUT, to: CUSTOMER }))).toEqual(['SHAKEN_ABSENT']);
    await announced('examplebank', { from: EXAMPLE_OUT, to: CUSTOMER });
    const answer = await score({ from: '020 7946 0000', to: '07400 123456' });
    expect(codes(answer)).toEqual(['SHAKEN_ABSENT', 'BANK_CALL_EXPECTED']);
    expect(answer).toMatchObject({ verdict: 'allow', score: 0 });
    // Only that call: another customer, or the bank's number arriving from abroad, gets no credit.
    expect(codes(await score({ from: EXAMPLE_OUT, to: '+447400999888' }))).toEqual(['SHAKEN_ABSENT']);
    const abroad = await score({ from: EXAMPLE_OUT, to: CUSTOMER, origin: { international: true } });
    expect(codes(abroad)).not.toContain('BANK_CALL_EXPECTED');
    expect(abroad.verdict).toBe('block');
  });

  it('an organisation that announces every call: an unannounced call is flagged with BANK_CALL_UNEXPECTED, an announced one allowed', async () => {
    const unannounced = await score({ from: NORTHWIND_OUT, to: CUSTOMER });
    expect(codes(unannounced)).toEqual(['SHAKEN_ABSENT', 'BANK_CALL_UNEXPECTED']);
    expect(unannounced.verdict).toBe('flag');
    await announced('northwind', { from: NORTHWIND_OUT, to: CUSTOMER });
    const expected = await score({ from: NORTHWIND_OUT, to: CUSTOMER });
    expect(codes(expected)).toEqual(['SHAKEN_ABSENT', 'BANK_CALL_EXPECTED']);
    expect(expected.verdict).toBe('allow');
    // Its inbound-only numbers are blocked as ever, announced or not.
    expect(codes(await score({ from: '+443069990100', to: CUSTOMER }))).toEqual(['CLI_DNO', 'SHAKEN_ABSENT']);
  });

  it('matches until the end of its window, on the service clock', async () => {
    await announced('northwind', { from: NORTHWIND_OUT, to: CUSTOMER, validForS: 60 });
    t = START + 59_999;
    expect(codes(await score({ from: NORTHWIND_OUT, to: CUSTOMER }))).toContain('BANK_CALL_EXPECTED');
    t = START + 60_000;
    const after = await score({ from: NORTHWIND_OUT, to: CUSTOMER });
    expect(codes(after)).toEqual(['SHAKEN_ABSENT', 'BANK_CALL_UNEXPECTED']);
    expect(after.verdict).toBe('flag');
  });

  it('the verdict cache never serves an announcement made or withdrawn since: it is read with every call', async () => {
    const call = { from: NORTHWIND_OUT, to: CUSTOMER };
    expect(await score(call)).toMatchObject({ cached: false, verdict: 'flag' });
    const a = await announced('northwind', call);
    const during = await score(call);
    expect(during).toMatchObject({ cached: true, verdict: 'allow' });
    expect(codes(during)).toContain('BANK_CALL_EXPECTED');
    expect((await withdraw('northwind', a.id)).statusCode).toBe(204);
    const after = await score(call);
    expect(after).toMatchObject({ cached: true, verdict: 'flag' });
    expect(codes(after)).toEqual(['SHAKEN_ABSENT', 'BANK_CALL_UNEXPECTED']);
  });
});

describe('POST /v1/callbacks/verify: expectedCalls', () => {
  beforeEach(async () => {
    await announced('examplebank', { from: EXAMPLE_OUT, to: CUSTOMER, reference: 'case 1', validForS: 60 });
    t += 3600_000;
    await announced('northwind', { from: NORTHWIND_OUT, to: CUSTOMER });
    t += 3600_000;
    await announced('examplebank', { from: EXAMPLE_OUT, to: CUSTOMER });
    await announced('examplebank', { from: EXAMPLE_OUT, to: '+447400999888' });
  });

  it("lists the calls the number's bank announced to the customer, past ones included, newest first", async () => {
    // Asked about the bank's inbound-only number: the bank is what counts, not the number.
    const res = await verify('examplebank', { number: '+443450000000', customer: '07400 123456' });
    expect(res.statusCode).toBe(200);
    expect(res.json().expectedCalls).toEqual([
      { from: EXAMPLE_OUT, at: '2026-12-07T12:00:00.000Z', expiresAt: '2026-12-07T12:10:00.000Z' },
      { from: EXAMPLE_OUT, at: '2026-12-07T10:00:00.000Z', expiresAt: '2026-12-07T10:01:00.000Z', reference: 'case 1' },
    ]);
    expect((await verify('admin', { number: NORTHWIND_OUT, customer: CUSTOMER })).json().expectedCalls).toEqual([
      { from: NORTHWIND_OUT, at: '2026-12-07T11:00:00.000Z', expiresAt: '2026-12-07T11:10:00.000Z' },
    ]);
  });

  it('since `since`: announcements whose window reached it', async () => {
    const since = (iso: string) => verify('admin', { number: EXAMPLE_OUT, customer: CUSTOMER, since: iso }).then((r) => r.json().expectedCalls.map((c: { at: string }) => c.at));
    expect(await since('2026-12-07T10:00:30Z')).toEqual(['2026-12-07T12:00:00.000Z', '2026-12-07T10:00:00.000Z']);
    expect(await since('2026-12-07T10:01:30Z')).toEqual(['2026-12-07T12:00:00.000Z']);
  });

  it("a bank key sees only its own bank's; no customer, no list; a number that is no bank's, none", async () => {
    expect((await verify('northwind', { number: EXAMPLE_OUT, customer: CUSTOMER })).json().expectedCalls).toEqual([]);
    expect((await verify('switch', { number: EXAMPLE_OUT, customer: CUSTOMER })).json().expectedCalls).toHaveLength(2);
    expect((await verify('examplebank', { number: EXAMPLE_OUT })).json()).not.toHaveProperty('expectedCalls');
    expect((await verify('admin', { number: '+441134960000', customer: CUSTOMER })).json().expectedCalls).toEqual([]);
  });
});

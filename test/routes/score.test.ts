import type { FastifyInstance } from 'fastify';
import { build } from '../helpers/build';

let app: FastifyInstance;
beforeAll(async () => {
  app = await build();
});
afterAll(() => app.close());

const score = (body: unknown) => app.inject({ method: 'POST', url: '/v1/calls/score', payload: body as object });
const codes = (json: { reasons: { code: string }[] }) => json.reasons.map((r) => r.code);

describe('POST /v1/calls/score', () => {
  it('allows an ordinary call and answers with every field of the contract', async () => {
    const res = await score({ from: '+447400123456', to: '+442079460999', callId: 'abc-1' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/application\/json/);
    expect(res.json()).toEqual({
      callId: 'abc-1',
      score: 15,
      verdict: 'allow',
      reasons: [{ code: 'SHAKEN_ABSENT', weight: 5, message: expect.any(String) }],
      caller: { e164: '+447400123456', valid: true, withheld: false, type: 'MOBILE', country: 'GB' },
      registry: null,
      shaken: { verstat: 'No-TN-Validation', attestation: null, errors: [] },
      presentation: 'allowed',
      cached: false,
    });
  });

  it('blocks a bank inbound-only number (sample registry) presented as caller ID', async () => {
    const res = await score({ from: '0345 000 0000', to: '07400 123456' });
    const json = res.json();
    expect(json.verdict).toBe('block');
    expect(codes(json)).toContain('CLI_DNO');
    expect(json.registry).toEqual({ bankId: 'examplebank', bankName: 'Example Bank', inboundOnly: true, match: 'number' });
  });

  it("blocks a bank's outbound number arriving from abroad", async () => {
    const json = (await score({ from: 'sip:+442079460000@gw.example;user=phone', to: 'tel:+447400123456', origin: { international: true, country: 'ng' } })).json();
    expect(json.verdict).toBe('block');
    expect(codes(json)).toEqual(['CLI_DOMESTIC_FROM_ABROAD', 'SHAKEN_ABSENT']);
  });

  it('treats an origin country other than DEFAULT_COUNTRY as international', async () => {
    const json = (await score({ from: '+442079460999', to: '+447400123456', origin: { country: 'US' } })).json();
    expect(codes(json)).toContain('CLI_DOMESTIC_FROM_ABROAD');
  });

  it('verifies a bank call with an upstream attestation A from an authorised carrier', async () => {
    const json = (await score({ from: '+442079460000', to: '+447400123456', attestation: 'A', verstat: 'TN-Validation-Passed', origin: { carrier: '1234' } })).json();
    expect(codes(json)).toEqual(['BANK_VERIFIED', 'SHAKEN_ATTEST_A']);
    expect(json).toMatchObject({ verdict: 'allow', score: 0, shaken: { verstat: 'TN-Validation-Passed', attestation: 'A', errors: [] } });
  });

  it('blocks a bank number from a carrier the registry does not authorise', async () => {
    const json = (await score({ from: '+442079460000', to: '+447400123456', origin: { carrier: '6666' } })).json();
    expect(codes(json)).toContain('BANK_UNAUTHORISED_ORIGIN');
    expect(json.verdict).toBe('block');
  });

  it('always allows emergency calls', async () => {
    const json = (await score({ from: '+443450000000', to: '999' })).json();
    expect(json.verdict).toBe('allow');
    expect(codes(json)).toContain('EMERGENCY_CALL');
  });

  it.each([
    ['anonymous', 'CLI_WITHHELD', 'allow'],
    ['', 'CLI_WITHHELD', 'allow'],
    ['sip:anonymous@anonymous.invalid', 'CLI_WITHHELD', 'allow'],
    ['+44 20 7946', 'CLI_INVALID', 'block'],
    ['09012345678', 'CLI_NOT_ALLOWED_TYPE', 'block'],
    ['159', 'CLI_NOT_ALLOWED_TYPE', 'block'],
  ])('from %j gives %s', async (from, code, verdict) => {
    const json = (await score({ from, to: '+447400123456' })).json();
    expect(codes(json)).toContain(code);
    expect(json.verdict).toBe(verdict);
  });

  it('reports the short code a caller ID is', async () => {
    const json = (await score({ from: '159', to: '+447400123456' })).json();
    expect(json.caller).toEqual({ e164: null, valid: true, withheld: false, type: 'SHORT_CODE', country: 'GB', shortCode: '159' });
  });

  it('takes a malformed Identity header as a signal, not bad input', async () => {
    const res = await score({ from: '+447400123456', to: '+442079460999', identity: 'garbage' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ shaken: { verstat: 'TN-Validation-Failed', errors: ['MALFORMED'] } });
    expect(codes(res.json())).toEqual(['SHAKEN_INVALID']);
  });

  it('serves a repeated call from the verdict cache with the same body', async () => {
    const body = { from: '+447400111222', to: '+442079460555', origin: { trunk: 't1' } };
    const first = (await score({ ...body, callId: 'one' })).json();
    const second = (await score({ ...body, callId: 'two' })).json();
    expect(first.cached).toBe(false);
    expect(second.cached).toBe(true);
    expect({ ...second, cached: false, callId: 'one' }).toEqual(first);
  });

  it('does not serve a cached verdict for a call that differs in any input', async () => {
    const body = { from: '+447400111333', to: '+442079460555' };
    await score(body);
    for (const change of [{ to: '+442079460556' }, { pai: '+447400111334' }, { attestation: 'B' }, { origin: { international: true } }, { receivedAt: '2026-11-24T10:00:00Z' }]) {
      expect((await score({ ...body, ...change })).json().cached).toBe(false);
    }
  });

  it('returns the request id it was given (a UUID)', async () => {
    const id = '6f1c2d3e-4b5a-4c7d-8e9f-0a1b2c3d4e5f';
    const res = await app.inject({ method: 'POST', url: '/v1/calls/score', payload: { from: '1', to: '2' }, headers: { 'x-request-id': id } });
    expect(res.headers['x-request-id']).toBe(id);
  });
});

describe('POST /v1/calls/score: UK organisations calling from abroad (overseasOrigins in the sample registry)', () => {
  // Harbour Savings Bank names its offshore call centre's trunk; Brightwater Energy (a utility)
  // names carrier 7788, which it also authorises; the Crown Revenue Office names neither.
  const fromAbroad = (from: string, origin: Record<string, unknown>) => score({ from, to: '+447400123456', origin: { international: true, country: 'IN', ...origin } });

  it("a bank's number on the trunk it names: CLI_OVERSEAS_AUTHORISED, not blocked, shown", async () => {
    const json = (await fromAbroad('+441214960300', { trunk: 'trunk-offshore-in' })).json();
    expect(codes(json)).toEqual(['CLI_OVERSEAS_AUTHORISED', 'SHAKEN_ABSENT']);
    expect(json.reasons[0].message).toMatch(/Harbour Savings Bank/);
    expect(json).toMatchObject({ verdict: 'allow', presentation: 'allowed', registry: { bankId: 'harbour', match: 'number' } });
  });

  it('the same number and called party on another trunk: blocked as any UK number from abroad (no cached verdict of the other)', async () => {
    const json = (await fromAbroad('+441214960300', { trunk: 'trunk-elsewhere' })).json();
    expect(codes(json)).toEqual(['CLI_DOMESTIC_FROM_ABROAD', 'SHAKEN_ABSENT']);
    expect(json).toMatchObject({ verdict: 'block', cached: false });
  });

  it("a utility's number from the offshore carrier it names and authorises", async () => {
    const json = (await fromAbroad('+441614960400', { carrier: '7788' })).json();
    expect(codes(json)).toEqual(['CLI_OVERSEAS_AUTHORISED', 'SHAKEN_ABSENT']);
    expect(json.reasons[0].message).toMatch(/carrier 7788.*Brightwater Energy/);
    expect(json.verdict).toBe('allow');
  });

  it("a government body's number from abroad, through a carrier it does not name: blocked", async () => {
    const json = (await fromAbroad('+442079460500', { carrier: '7788', trunk: 'trunk-offshore-in' })).json();
    expect(codes(json)).toEqual(expect.arrayContaining(['BANK_UNAUTHORISED_ORIGIN', 'CLI_DOMESTIC_FROM_ABROAD']));
    expect(json).toMatchObject({ verdict: 'block', registry: { bankId: 'revenueoffice', bankName: 'Crown Revenue Office' } });
  });

  it("a government body's inbound-only helpline is never a caller ID", async () => {
    const json = (await score({ from: '0808 157 0300', to: '07400 123456' })).json();
    expect(codes(json)).toContain('CLI_DNO');
    expect(json.verdict).toBe('block');
  });
});

describe('POST /v1/calls/score: bad input gets a 4xx naming the field', () => {
  it.each([
    [{}, 'from'],
    [{ from: '+447400123456' }, 'to'],
    [{ from: 447400123456, to: '+442079460999' }, 'from'],
    [{ from: '+447400123456', to: ['+442079460999'] }, 'to'],
    [{ from: '+447400123456', to: '+442079460999', attestation: 'D' }, 'attestation'],
    [{ from: '+447400123456', to: '+442079460999', verstat: 'yes' }, 'verstat'],
    [{ from: '+447400123456', to: '+442079460999', identity: 42 }, 'identity'],
    [{ from: '+447400123456', to: '+442079460999', identity: [] }, 'identity'],
    [{ from: '+447400123456', to: '+442079460999', origin: { international: 'yes' } }, 'origin.international'],
    [{ from: '+447400123456', to: '+442079460999', origin: { country: 'GBR' } }, 'origin.country'],
    [{ from: '+447400123456', to: '+442079460999', origin: 'abroad' }, 'origin'],
    [{ from: '+447400123456', to: '+442079460999', receivedAt: 'yesterday' }, 'receivedAt'],
    [{ from: '+447400123456', to: '+442079460999', callId: 7 }, 'callId'],
    [{ from: 'x'.repeat(300), to: '+442079460999' }, 'from'],
  ])('%j -> 400 naming %s', async (body, field) => {
    const res = await score(body);
    expect(res.statusCode).toBe(400);
    const json = res.json();
    expect(json.error).toBe('validation_failed');
    expect(json.message.startsWith(`${field}:`)).toBe(true);
    expect(json.details[0].field).toBe(field);
  });

  it('broken JSON -> 400', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/calls/score', payload: '{"from": "+4474', headers: { 'content-type': 'application/json' } });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ error: 'invalid_json', message: expect.stringMatching(/JSON/) });
  });

  it('an empty body -> 400', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/calls/score', payload: '', headers: { 'content-type': 'application/json' } });
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toBeDefined();
  });

  it('a JSON array or scalar body -> 400', async () => {
    for (const payload of ['[]', '"x"', 'null', '42']) {
      const res = await app.inject({ method: 'POST', url: '/v1/calls/score', payload, headers: { 'content-type': 'application/json' } });
      expect(res.statusCode).toBe(400);
      expect(res.json().error).toBe('validation_failed');
    }
  });

  it('wrong content type -> 415', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/calls/score', payload: 'from=1&to=2', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(res.statusCode).toBe(415);
    expect(res.json()).toMatchObject({ error: 'unsupported_media_type' });
  });

  it('a body over the limit -> 413', async () => {
    const res = await score({ from: '+447400123456', to: '+442079460999', pad: 'x'.repeat(100_000) });
    expect(res.statusCode).toBe(413);
    expect(res.json()).toMatchObject({ error: 'payload_too_large' });
  });

  it('__proto__ and constructor keys are refused, not merged', async () => {
    for (const payload of ['{"from":"1","to":"2","__proto__":{"verdict":"allow"}}', '{"from":"1","to":"2","constructor":{"prototype":{"x":1}}}']) {
      const res = await app.inject({ method: 'POST', url: '/v1/calls/score', payload, headers: { 'content-type': 'application/json' } });
      expect(res.statusCode).toBe(400);
      expect(res.json().error).toBeDefined();
    }
    expect(({} as Record<string, unknown>).verdict).toBeUndefined();
  });

  it('deep nesting neither crashes nor hangs', async () => {
    const deep = '['.repeat(20_000) + ']'.repeat(20_000);
    const status = async (payload: string) =>
      (await app.inject({ method: 'POST', url: '/v1/calls/score', payload, headers: { 'content-type': 'application/json' } })).statusCode;
    expect(await status(deep)).toBe(400);
    expect(await status(`{"from":${deep},"to":"2"}`)).toBe(400);
    // Unknown fields are ignored, however deep: the call itself is fine.
    expect(await status(`{"from":"1","to":"2","x":${deep}}`)).toBe(200);
    const deeper = '{"a":'.repeat(50_000) + '1' + '}'.repeat(50_000);
    expect(await status(deeper)).toBeLessThan(500);
  });

  it('unknown routes get a JSON 404', async () => {
    const res = await app.inject({ method: 'GET', url: '/v1/nothing' });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({ error: 'not_found' });
  });
});

import type { FastifyInstance } from 'fastify';
import { build } from '../helpers/build';
import { headersFor, KEYS_FILE, type Who } from '../helpers/keys';

let app: FastifyInstance;
beforeEach(async () => {
  app = await build({ API_KEYS_FILE: KEYS_FILE });
});
afterEach(() => app.close());

const headers = headersFor;
const req = (who: Who, method: 'GET' | 'PUT' | 'POST' | 'DELETE', url: string, payload?: unknown, extra: Record<string, string> = {}) =>
  app.inject({ method, url, headers: { ...headers(who), ...extra }, ...(payload !== undefined ? { payload: payload as string } : {}) });

describe('access control: every role against every endpoint', () => {
  const endpoints: [string, 'GET' | 'PUT' | 'POST' | 'DELETE', string, unknown, Who[]][] = [
    ['score', 'POST', '/v1/calls/score', { from: '+447400123456', to: '+442079460999' }, ['switch', 'admin']],
    ['list banks', 'GET', '/v1/registry/banks', undefined, ['examplebank', 'northwind', 'admin']],
    ['put bank', 'PUT', '/v1/registry/banks/examplebank', { name: 'Example Bank plc' }, ['examplebank', 'admin']],
    // Allowed to every bank key; another bank's number is simply not found (404).
    ['get number', 'GET', '/v1/registry/numbers/+443450000000', undefined, ['examplebank', 'northwind', 'admin']],
    ['put number', 'PUT', '/v1/registry/numbers/+442079460777', { bankId: 'examplebank', inboundOnly: true }, ['examplebank', 'admin']],
    ['delete number', 'DELETE', '/v1/registry/numbers/+442079460000', undefined, ['examplebank', 'admin']],
    ['put prefix', 'PUT', '/v1/registry/prefixes/+4420794609', { bankId: 'examplebank', inboundOnly: true }, ['examplebank', 'admin']],
    ['delete prefix', 'DELETE', '/v1/registry/prefixes/+4420794601', undefined, ['examplebank', 'admin']],
    ['export', 'GET', '/v1/registry/export', undefined, ['examplebank', 'northwind', 'admin']],
    ['import', 'POST', '/v1/registry/import', { banks: [], numbers: [] }, ['examplebank', 'northwind', 'admin']],
    ['audit', 'GET', '/v1/registry/audit', undefined, ['examplebank', 'northwind', 'admin']],
    ['delete bank', 'DELETE', '/v1/registry/banks/harbour?cascade=true', undefined, ['admin']],
  ];
  const everyone: Who[] = ['switch', 'examplebank', 'northwind', 'admin', 'none', 'bad'];

  for (const [name, method, url, body, allowed] of endpoints) {
    for (const who of everyone) {
      const expected = who === 'none' || who === 'bad' ? 401 : allowed.includes(who) ? 'ok' : 403;
      it(`${name} as ${who} -> ${expected}`, async () => {
        const res = await req(who, method, url, body);
        if (expected === 'ok') expect([401, 403]).not.toContain(res.statusCode);
        if (expected === 'ok') expect(res.statusCode).toBeLessThan(500);
        else {
          expect(res.statusCode).toBe(expected);
          expect(res.json().error).toBe(expected === 401 ? 'unauthorized' : 'forbidden');
          if (expected === 401) expect(res.headers['www-authenticate']).toMatch(/Bearer/);
        }
      });
    }
  }

  it('health, readiness and docs need no key', async () => {
    for (const url of ['/healthz', '/readyz', '/docs/json']) expect((await app.inject(url)).statusCode).toBe(200);
  });
});

describe('registry administration', () => {
  it('creates, reads, updates and deletes a number, with 201/200 and an audit trail', async () => {
    const created = await req('admin', 'PUT', '/v1/registry/numbers/020%207946%200777', { bankId: 'examplebank', inboundOnly: false, authorisedSpcs: ['1234'] });
    expect(created.statusCode).toBe(201);
    expect(created.json()).toEqual({ kind: 'number', key: '+442079460777', bankId: 'examplebank', inboundOnly: false, authorisedSpcs: ['1234'] });
    const updated = await req('admin', 'PUT', '/v1/registry/numbers/+442079460777', { bankId: 'examplebank', inboundOnly: true });
    expect(updated.statusCode).toBe(200);
    const got = await req('admin', 'GET', '/v1/registry/numbers/+442079460777');
    expect(got.json()).toMatchObject({ key: '+442079460777', inboundOnly: true, match: 'number', bankName: 'Example Bank' });
    expect((await req('admin', 'DELETE', '/v1/registry/numbers/+442079460777')).statusCode).toBe(200);
    expect((await req('admin', 'GET', '/v1/registry/numbers/+442079460777')).statusCode).toBe(404);
    const audit = (await req('admin', 'GET', '/v1/registry/audit?limit=3')).json().records;
    expect(audit.map((r: { action: string }) => r.action)).toEqual(['number.delete', 'number.update', 'number.create']);
    expect(audit[0]).toMatchObject({ actor: 'test-admin', bankId: 'examplebank', before: { inboundOnly: true }, after: null });
  });

  it('a registry change reaches scoring at once, and no stale cached verdict is served', async () => {
    const call = { from: '+442079460888', to: '+447400123456' };
    const score = () => req('switch', 'POST', '/v1/calls/score', call);
    expect((await score()).json().verdict).toBe('allow');
    expect((await score()).json().cached).toBe(true);
    await req('admin', 'PUT', '/v1/registry/numbers/+442079460888', { bankId: 'examplebank', inboundOnly: true });
    const after = (await score()).json();
    expect(after).toMatchObject({ verdict: 'block', cached: false, registry: { bankId: 'examplebank', inboundOnly: true } });
  });

  it('GET number finds the prefix that covers a number', async () => {
    const res = await req('admin', 'GET', '/v1/registry/numbers/+442079460123');
    expect(res.json()).toMatchObject({ kind: 'prefix', key: '+4420794601', match: 'prefix' });
  });

  it("a bank key sees and edits only its own bank's entries", async () => {
    expect((await req('northwind', 'GET', '/v1/registry/numbers/+443450000000')).statusCode).toBe(404);
    const put = await req('northwind', 'PUT', '/v1/registry/numbers/+442079460000', { bankId: 'northwind', inboundOnly: true });
    expect(put.statusCode).toBe(403);
    expect((await req('northwind', 'GET', '/v1/registry/banks')).json().banks.map((b: { id: string }) => b.id)).toEqual(['northwind']);
    const exported = (await req('northwind', 'GET', '/v1/registry/export')).json();
    expect(exported.numbers.every((n: { bankId: string }) => n.bankId === 'northwind')).toBe(true);
    expect((await req('northwind', 'GET', '/v1/registry/audit')).json().records).toEqual([]);
  });

  it('bad input gets a 4xx naming the problem', async () => {
    const cases: [string, string, unknown, number, RegExp][] = [
      ['PUT', '/v1/registry/numbers/not-a-number', { bankId: 'examplebank', inboundOnly: true }, 400, /not a valid phone number/],
      // Valid in Germany's plan by libphonenumber, but 16 digits: more than E.164 (and the table) allows.
      ['PUT', '/v1/registry/numbers/+4930123456789012', { bankId: 'examplebank', inboundOnly: true }, 400, /15/],
      ['PUT', '/v1/registry/numbers/+442079460777', { bankId: 'examplebank' }, 400, /inboundOnly/],
      ['PUT', '/v1/registry/numbers/+442079460777', { bankId: 'nobank', inboundOnly: true }, 422, /nobank/],
      ['PUT', '/v1/registry/prefixes/44207', { bankId: 'examplebank', inboundOnly: true }, 400, /prefix/],
      ['PUT', '/v1/registry/banks/Bad%20Id', { name: 'x' }, 400, /bank id/],
      ['PUT', '/v1/registry/banks/newbank', { name: 42 }, 400, /name/],
      ['DELETE', '/v1/registry/banks/examplebank', undefined, 409, /cascade/],
      ['DELETE', '/v1/registry/banks/nobank', undefined, 404, /nobank/],
      ['DELETE', '/v1/registry/prefixes/+449', undefined, 404, /no prefix/],
      ['POST', '/v1/registry/import?mode=sideways', { banks: [], numbers: [] }, 400, /mode/],
      ['POST', '/v1/registry/import', { numbers: 'all of them' }, 400, /numbers must be an array/],
      ['POST', '/v1/registry/import', [1, 2], 400, /object/],
    ];
    for (const [method, url, body, status, message] of cases) {
      const res = await req('admin', method as 'PUT', url, body);
      expect([url, res.statusCode]).toEqual([url, status]);
      expect(res.json().message).toMatch(message);
    }
  });

  it('imports CSV and JSON, reporting rejected lines', async () => {
    const csv = 'number,bankId,inboundOnly,authorisedSpcs\n+442079460700,examplebank,true,\nbogus,examplebank,true,\n+442079460701,examplebank,false,1234;9999\n';
    const res = await req('admin', 'POST', '/v1/registry/import', csv, { 'content-type': 'text/csv' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      mode: 'merge',
      applied: true,
      added: 2,
      updated: 0,
      removed: 0,
      rejected: [{ line: 3, error: expect.stringMatching(/bogus/) }],
      rejectedCount: 1,
      callbackNumbersDropped: [],
    });
    const replace = await req('admin', 'POST', '/v1/registry/import?mode=replace', { banks: [{ id: 'only', name: 'Only Bank' }], numbers: [{ number: 'bad', bankId: 'only', inboundOnly: true }] });
    expect(replace.statusCode).toBe(422);
    expect(replace.json()).toMatchObject({ applied: false, rejected: [{ line: 1 }] });
    expect((await req('admin', 'GET', '/v1/registry/banks')).json().banks).toHaveLength(3);
  });

  it('export and import round-trip the registry file', async () => {
    const exported = (await req('admin', 'GET', '/v1/registry/export')).json();
    const res = await req('admin', 'POST', '/v1/registry/import?mode=replace', exported);
    expect(res.json()).toMatchObject({ applied: true, added: 0, removed: 0, rejected: [] });
    expect((await req('admin', 'GET', '/v1/registry/export')).json()).toEqual(exported);
  });

  it('a CSV import in replace mode replaces the numbers and prefixes, and keeps the banks (CSV has none) but for the callback numbers it takes away', async () => {
    const before = (await req('admin', 'GET', '/v1/registry/export')).json();
    const csv = 'number,bankId,inboundOnly,authorisedSpcs\n+442079460800,northwind,true,\n';
    const res = await req('admin', 'POST', '/v1/registry/import?mode=replace', csv, { 'content-type': 'text/csv' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ mode: 'replace', applied: true, added: 1, removed: before.numbers.length, rejected: [] });
    const after = (await req('admin', 'GET', '/v1/registry/export')).json();
    // The banks stay; their callback numbers left with the numbers the import took away.
    expect(after.banks).toEqual(before.banks.map((b: { callbackNumbers: string[] }) => ({ ...b, callbackNumbers: [] })));
    expect(res.json().callbackNumbersDropped).toHaveLength(4);
    expect(after.numbers).toEqual([{ number: '+442079460800', bankId: 'northwind', inboundOnly: true }]);
    // Back as it was, for whatever runs next.
    expect((await req('admin', 'POST', '/v1/registry/import?mode=replace', before)).statusCode).toBe(200);
  });
});

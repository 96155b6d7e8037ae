import type { FastifyInstance } from 'fastify';
import { build } from '../helpers/build';
import { headersFor, KEYS_FILE, type Who } from '../helpers/keys';
import { calmestStallWithin } from '../helpers/stall';

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
    // Inside examplebank's prefix +4420794601: where its key may add numbers.
    ['put number', 'PUT', '/v1/registry/numbers/+442079460177', { bankId: 'examplebank', inboundOnly: true }, ['examplebank', 'admin']],
    ['delete number', 'DELETE', '/v1/registry/numbers/+442079460000', undefined, ['examplebank', 'admin']],
    ['put prefix', 'PUT', '/v1/registry/prefixes/+44207946019', { bankId: 'examplebank', inboundOnly: true }, ['examplebank', 'admin']],
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
    // The sample's five organisations, untouched.
    expect((await req('admin', 'GET', '/v1/registry/banks')).json().banks).toHaveLength(5);
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
    // Every callback number of the sample's five organisations (six numbers) was one of theirs.
    expect(res.json().callbackNumbersDropped).toHaveLength(6);
    expect(after.numbers).toEqual([{ number: '+442079460800', bankId: 'northwind', inboundOnly: true }]);
    // Back as it was, for whatever runs next.
    expect((await req('admin', 'POST', '/v1/registry/import?mode=replace', before)).statusCode).toBe(200);
  });
});

describe('authority: who may claim which numbers', () => {
  // In the sample registry harbour holds the prefix +4412149602 and the number +441214960100;
  // northwind holds +441614960200 and the callback numbers +443069990100 and +448081570100.
  it("a bank key may not place a number under another bank's prefix: 409 conflict naming it", async () => {
    const res = await req('examplebank', 'PUT', '/v1/registry/numbers/+441214960250', { bankId: 'examplebank', inboundOnly: true });
    expect(res.statusCode).toBe(409);
    expect(res.json()).toEqual({ error: 'conflict', message: expect.stringMatching(/prefix \+4412149602 of bank "harbour"/) });
    expect((await req('admin', 'GET', '/v1/registry/numbers/+441214960250')).json()).toMatchObject({ bankId: 'harbour', match: 'prefix' });
  });

  it("a bank key may not make a prefix that covers, or lies inside, another bank's number or prefix", async () => {
    const cases: [string, RegExp][] = [
      ['+44121496', /prefix \+4412149602 of bank "harbour"|number \+441214960100 of bank "harbour"/], // covers both
      ['+441214960255', /prefix \+4412149602 of bank "harbour"/], // inside harbour's prefix
      ['+4416149602', /number \+441614960200 of bank "northwind"/], // covers northwind's number
      ['+4416149602001', /number \+441614960200 of bank "northwind"/], // lies inside it
    ];
    for (const [prefix, message] of cases) {
      const res = await req('examplebank', 'PUT', `/v1/registry/prefixes/${encodeURIComponent(prefix)}`, { bankId: 'examplebank', inboundOnly: true });
      expect([prefix, res.statusCode, res.json().error]).toEqual([prefix, 409, 'conflict']);
      expect(res.json().message).toMatch(message);
    }
    // Its own range is its own: a prefix inside its own prefix is fine.
    expect((await req('examplebank', 'PUT', '/v1/registry/prefixes/+44207946015', { bankId: 'examplebank', inboundOnly: false })).statusCode).toBe(201);
  });

  it('an administrator may carve up a range; the bank may then keep that entry as it is, not change it', async () => {
    const body = { bankId: 'examplebank', inboundOnly: true };
    expect((await req('admin', 'PUT', '/v1/registry/numbers/+441214960250', body)).statusCode).toBe(201);
    expect((await req('examplebank', 'PUT', '/v1/registry/numbers/+441214960250', body)).statusCode).toBe(200);
    expect((await req('examplebank', 'PUT', '/v1/registry/numbers/+441214960250', { ...body, inboundOnly: false })).statusCode).toBe(409);
    // Deleting it hands the number back to harbour's prefix: allowed.
    expect((await req('examplebank', 'DELETE', '/v1/registry/numbers/+441214960250')).statusCode).toBe(200);
  });

  it("a bank key may not claim numbers or ranges that are no bank's: 403, an administrator must add them", async () => {
    const mobile = { from: '+447911123456', to: '+447400123456' };
    const before = (await req('switch', 'POST', '/v1/calls/score', { ...mobile, callId: 'm1' })).json();
    for (const [url, body] of [
      ['/v1/registry/prefixes/+447911', { bankId: 'northwind', inboundOnly: true }],
      // An attacker's own line made the bank's outbound number.
      ['/v1/registry/numbers/+447911123456', { bankId: 'northwind', inboundOnly: false }],
      // Wider than its own prefix +44306999020.
      ['/v1/registry/prefixes/+4430699902', { bankId: 'northwind', inboundOnly: false }],
    ] as const) {
      const res = await req('northwind', 'PUT', url, body);
      expect([url, res.statusCode, res.json().error]).toEqual([url, 403, 'forbidden']);
      expect(res.json().message).toMatch(/an administrator must add numbers outside the bank's own ranges/);
    }
    const after = (await req('switch', 'POST', '/v1/calls/score', { ...mobile, callId: 'm2' })).json();
    expect([after.verdict, after.registry]).toEqual([before.verdict, null]);
    // Another bank may still have the number given to it by an administrator.
    expect((await req('admin', 'PUT', '/v1/registry/numbers/+447911123999', { bankId: 'examplebank', inboundOnly: false })).statusCode).toBe(201);
    // Inside its own prefix the bank adds what it likes.
    expect((await req('northwind', 'PUT', '/v1/registry/numbers/+443069990205', { bankId: 'northwind', inboundOnly: false })).statusCode).toBe(201);
    const csv = 'number,bankId,inboundOnly\n+443069990206,northwind,false\n+447911123457,northwind,true\n';
    const imported = await req('northwind', 'POST', '/v1/registry/import', csv, { 'content-type': 'text/csv' });
    expect(imported.json()).toMatchObject({ applied: true, added: 1, rejectedCount: 1, rejected: [{ line: 3, error: expect.stringMatching(/administrator must add/) }] });
  });

  it("a bank key may not change or delete another bank's entry (403)", async () => {
    expect((await req('northwind', 'PUT', '/v1/registry/numbers/+442079460000', { bankId: 'northwind', inboundOnly: true })).statusCode).toBe(403);
    expect((await req('northwind', 'PUT', '/v1/registry/numbers/+442079460000', { bankId: 'examplebank', inboundOnly: true })).statusCode).toBe(403);
    expect((await req('northwind', 'DELETE', '/v1/registry/numbers/+442079460000')).statusCode).toBe(403);
    expect((await req('northwind', 'DELETE', '/v1/registry/prefixes/+4420794601')).statusCode).toBe(403);
    expect((await req('admin', 'GET', '/v1/registry/numbers/+442079460000')).json()).toMatchObject({ bankId: 'examplebank' });
  });

  it('no key may create a prefix shorter than REGISTRY_MIN_PREFIX_DIGITS (default 6): 400 naming the field', async () => {
    const res = await req('admin', 'PUT', '/v1/registry/prefixes/+44207', { bankId: 'examplebank', inboundOnly: true });
    expect(res.statusCode).toBe(400);
    expect(res.json().message).toMatch(/^prefix: \+44207 has 5 digits.*at least 6 \(REGISTRY_MIN_PREFIX_DIGITS\)/);
    expect((await req('admin', 'PUT', '/v1/registry/prefixes/+442079', { bankId: 'examplebank', inboundOnly: true })).statusCode).toBe(201);
    const looser = await build({ API_KEYS_FILE: KEYS_FILE, REGISTRY_MIN_PREFIX_DIGITS: '4' });
    const res4 = await looser.inject({ method: 'PUT', url: '/v1/registry/prefixes/+4420', headers: headers('admin'), payload: { bankId: 'examplebank', inboundOnly: true } });
    expect(res4.statusCode).toBe(201);
    await looser.close();
  });

  it("a bank's callback numbers must be numbers the registry gives to that bank: 400", async () => {
    const res = await req('examplebank', 'PUT', '/v1/registry/banks/examplebank', { name: 'Example Bank', callbackNumbers: ['+443450000000', '+441214960100'] });
    expect(res.statusCode).toBe(400);
    expect(res.json().message).toMatch(/^callbackNumbers: \+441214960100 is not among the numbers the registry gives to bank "examplebank"/);
    // Under its own prefix is its own (longest match): +442079460155 is under +4420794601.
    const ok = await req('examplebank', 'PUT', '/v1/registry/banks/examplebank', { name: 'Example Bank', callbackNumbers: ['+443450000000', '+442079460155'] });
    expect(ok.statusCode).toBe(200);
    expect((await req('admin', 'PUT', '/v1/registry/banks/newbank', { name: 'New', callbackNumbers: ['+449999999999'] })).statusCode).toBe(400);
  });

  it('a callback number the registry moves away from its bank leaves the bank\'s list, with an audit record', async () => {
    // Deleted by the bank itself.
    expect((await req('examplebank', 'DELETE', '/v1/registry/numbers/+443450000000')).statusCode).toBe(200);
    const banks = (await req('admin', 'GET', '/v1/registry/banks')).json().banks as { id: string; callbackNumbers: string[] }[];
    expect(banks.find((b) => b.id === 'examplebank')?.callbackNumbers).toEqual([]);
    const audit = (await req('admin', 'GET', '/v1/registry/audit?limit=2')).json().records;
    expect(audit.map((r: { action: string; target: string }) => [r.action, r.target])).toEqual([
      ['bank.update', 'bank:examplebank'],
      ['number.delete', 'number:+443450000000'],
    ]);
    // Given to another bank by an administrator.
    expect((await req('admin', 'PUT', '/v1/registry/numbers/+443069990100', { bankId: 'harbour', inboundOnly: true })).statusCode).toBe(200);
    const after = (await req('admin', 'GET', '/v1/registry/banks')).json().banks as { id: string; callbackNumbers: string[] }[];
    expect(after.find((b) => b.id === 'northwind')?.callbackNumbers).toEqual(['+448081570100']);
    // What a customer is told follows.
    const verified = await req('northwind', 'POST', '/v1/callbacks/verify', { number: '+448081570100' });
    expect(verified.json().callbackNumbers).toEqual(['+448081570100']);
  });
});

describe('authority in imports: every line, JSON and CSV, merge and replace', () => {
  const csv = (...lines: string[]) => ['number,bankId,inboundOnly,authorisedSpcs', ...lines].join('\n') + '\n';

  it('a bank key\'s merge rejects the lines that would override another bank, and applies the rest', async () => {
    const res = await req('examplebank', 'POST', '/v1/registry/import', csv('+442079460171,examplebank,true,', '+441214960250,examplebank,true,'), { 'content-type': 'text/csv' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ applied: true, added: 1, rejectedCount: 1, rejected: [{ line: 3, error: expect.stringMatching(/override prefix \+4412149602 of bank "harbour"/) }] });
    const json = await req('examplebank', 'POST', '/v1/registry/import', { numbers: [{ prefix: '+44121496', bankId: 'examplebank', inboundOnly: true }] });
    expect(json.json()).toMatchObject({ applied: true, added: 0, rejected: [{ line: 1, error: expect.stringMatching(/override/) }] });
  });

  it('replace applies nothing when a line is too short a prefix or a conflict', async () => {
    const before = (await req('admin', 'GET', '/v1/registry/export')).json();
    const short = await req('admin', 'POST', '/v1/registry/import?mode=replace', { ...before, numbers: [...before.numbers, { prefix: '+4412', bankId: 'harbour', inboundOnly: true }] });
    expect(short.statusCode).toBe(422);
    expect(short.json()).toMatchObject({ applied: false, rejected: [{ line: before.numbers.length + 1, error: expect.stringMatching(/REGISTRY_MIN_PREFIX_DIGITS/) }] });
    const conflict = await req('examplebank', 'POST', '/v1/registry/import?mode=replace', csv('+443450000000,examplebank,true,', '+441214960250,examplebank,true,'), { 'content-type': 'text/csv' });
    expect(conflict.statusCode).toBe(422);
    expect(conflict.json()).toMatchObject({ applied: false, rejectedCount: 1 });
    expect((await req('admin', 'GET', '/v1/registry/export')).json()).toEqual(before);
  });

  it("callback numbers are judged against the registry as the import leaves it", async () => {
    // A new bank with its callback number among the import's own lines: fine.
    const ok = await req('admin', 'POST', '/v1/registry/import', {
      banks: [{ id: 'newbank', name: 'New Bank', callbackNumbers: ['+442079460901'] }],
      numbers: [{ number: '+442079460901', bankId: 'newbank', inboundOnly: true }],
    });
    expect(ok.json()).toMatchObject({ applied: true, added: 1, rejectedCount: 0 });
    // A callback number the import does not give the bank: the bank is rejected, and so are the
    // lines of a new bank that has no bank to belong to.
    const bad = await req('admin', 'POST', '/v1/registry/import', {
      banks: [{ id: 'otherbank', name: 'Other', callbackNumbers: ['+441214960100'] }],
      numbers: [{ number: '+442079460902', bankId: 'otherbank', inboundOnly: true }],
    });
    expect(bad.json()).toMatchObject({ applied: true, added: 0, rejectedCount: 2 });
    expect(bad.json().rejected.map((r: { error: string }) => r.error)).toEqual([expect.stringMatching(/^banks\[0\]: callbackNumbers: \+441214960100/), expect.stringMatching(/its bank was rejected/)]);
    // A merge that gives a bank's callback number to another bank takes it off the first's list.
    const moved = await req('admin', 'POST', '/v1/registry/import', csv('+441214960100,northwind,true,'), { 'content-type': 'text/csv' });
    expect(moved.json()).toMatchObject({ applied: true, updated: 1, callbackNumbersDropped: [{ bankId: 'harbour', number: '+441214960100' }] });
  });
});

describe('imports, exports and the audit log at size', () => {
  it('an import past 32 MB is refused with a JSON 413, JSON and CSV alike', async () => {
    const big = Buffer.alloc(32 * 1024 * 1024 + 10, 0x20);
    for (const type of ['application/json', 'text/csv']) {
      const res = await app.inject({ method: 'POST', url: '/v1/registry/import', headers: { ...headers('admin'), 'content-type': type }, payload: big });
      expect([type, res.statusCode]).toEqual([type, 413]);
      expect(res.json()).toMatchObject({ error: 'payload_too_large' });
    }
  }, 60_000);

  it('the answer to an import is bounded: the first 100 rejected lines, and how many there were', async () => {
    const lines = Buffer.from(`number,bankId,inboundOnly\n${'bogus,examplebank,true\n'.repeat(5000)}+442079460701,examplebank,true\n`);
    const res = await app.inject({ method: 'POST', url: '/v1/registry/import', headers: { ...headers('admin'), 'content-type': 'text/csv' }, payload: lines });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ applied: true, added: 1, rejectedCount: 5000 });
    expect(res.json().rejected).toHaveLength(100);
    expect(res.json().rejected[0]).toMatchObject({ line: 2 });
  });

  it('registry routes take only application/json (and the import text/csv): anything else is a JSON 415', async () => {
    const cases: ['PUT' | 'POST', string, string][] = [
      ['POST', '/v1/registry/import', 'text/plain'],
      ['POST', '/v1/registry/import', 'application/xml'],
      ['PUT', '/v1/registry/numbers/+442079460777', 'text/plain'],
      ['PUT', '/v1/registry/numbers/+442079460777', 'text/csv'],
      ['PUT', '/v1/registry/banks/examplebank', 'application/x-www-form-urlencoded'],
    ];
    for (const [method, url, type] of cases) {
      const res = await req('admin', method, url, '{"bankId":"examplebank","inboundOnly":true}', { 'content-type': type });
      expect([url, type, res.statusCode]).toEqual([url, type, 415]);
      expect(res.json()).toMatchObject({ error: 'unsupported_media_type', message: expect.stringMatching(/application\/json/) });
    }
  });

  it('export is streamed (no content-length), and is the registry file', async () => {
    const res = await req('admin', 'GET', '/v1/registry/export');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.headers['content-length']).toBeUndefined();
    const doc = res.json();
    expect(doc.banks).toHaveLength(5);
    expect(doc.banks).toContainEqual({ id: 'revenueoffice', name: 'Crown Revenue Office', kind: 'government', callbackNumbers: ['+443069990300'] });
    expect(doc.numbers).toContainEqual({ prefix: '+4420794601', bankId: 'examplebank', inboundOnly: true });
    expect(doc.numbers).toContainEqual({ number: '+442079460000', bankId: 'examplebank', inboundOnly: false, authorisedSpcs: ['1234'] });
    expect(doc.numbers).toContainEqual({ number: '+441214960300', bankId: 'harbour', inboundOnly: false, overseasOrigins: ['trunk-offshore-in'] });
    const mine = (await req('northwind', 'GET', '/v1/registry/export')).json();
    expect(mine.banks.map((b: { id: string }) => b.id)).toEqual(['northwind']);
    expect(mine.numbers).toHaveLength(4);
  });

  it('the audit log is read a page at a time, newest first, with a cursor', async () => {
    for (let n = 0; n < 5; n++) await req('admin', 'PUT', `/v1/registry/numbers/+44207946077${n}`, { bankId: 'examplebank', inboundOnly: true });
    const records: { id: string; target: string }[] = [];
    let before: string | null = null;
    for (let page = 0; page < 3; page++) {
      const res = await req('admin', 'GET', `/v1/registry/audit?limit=2${before ? `&before=${encodeURIComponent(before)}` : ''}`);
      expect(res.statusCode).toBe(200);
      const body = res.json() as { records: { id: string; target: string }[]; next: string | null };
      records.push(...body.records);
      before = body.next;
      // A full page's next is its oldest record's id; the last page has none.
      expect(before).toBe(page < 2 ? body.records[1]!.id : null);
    }
    expect(records.map((r) => r.target)).toEqual([4, 3, 2, 1, 0].map((n) => `number:+44207946077${n}`));
    const older = (await req('admin', 'GET', `/v1/registry/audit?before=${encodeURIComponent(records[3]!.id)}`)).json();
    expect(older.records.map((r: { target: string }) => r.target)).toEqual(['number:+442079460770']);
    expect((await req('admin', 'GET', `/v1/registry/audit?before=${encodeURIComponent(records[4]!.id)}`)).json()).toEqual({ records: [], next: null });
    expect((await req('admin', 'GET', '/v1/registry/audit?before=yesterday')).statusCode).toBe(400);
  });

  it('scoring goes on while a large import is read, checked and applied', async () => {
    // Checking 40,000 numbers takes half a second on a fast machine and seconds on a slow one; no
    // stretch of it may hold the event loop for long: 150 ms (generous for a loaded test machine:
    // on its own a slice is a few ms), or a tenth of the import's CPU time on a slower machine.
    // Each run imports numbers of its own, so each is the same work, and the bodies are made
    // before anything is timed (building 40,000 lines is the test's own work).
    const bodies = [0, 1, 2].map((run) => {
      const lines = ['number,bankId,inboundOnly,authorisedSpcs'];
      for (let i = 0; i < 40_000; i++) lines.push(`+44113${2_000_000 + run * 300_000 + i * 7},examplebank,${i % 2 === 0},1234`);
      return lines.join('\n');
    });
    const { stall, bound } = await calmestStallWithin(150, 0.1, 3, async (run) => {
      const res = await req('admin', 'POST', '/v1/registry/import', bodies[run]!, { 'content-type': 'text/csv' });
      expect(res.statusCode).toBe(200);
      expect(res.json().added + res.json().rejectedCount).toBe(40_000);
    });
    expect(stall).toBeLessThan(bound);
  }, 90_000);
});

describe('organisations other than banks, and numbers presented from abroad (overseasOrigins)', () => {
  it("a bank key names the trunks that present its own number from abroad: stored, shown, audited, and scored as Ofcom's exception", async () => {
    const abroad = (trunk: string) => req('switch', 'POST', '/v1/calls/score', { from: '+442079460000', to: '+447400123456', origin: { international: true, trunk } });
    expect((await abroad('trunk-lisbon')).json().reasons.map((r: { code: string }) => r.code)).toContain('CLI_DOMESTIC_FROM_ABROAD');

    const put = await req('examplebank', 'PUT', '/v1/registry/numbers/+442079460000', { bankId: 'examplebank', inboundOnly: false, authorisedSpcs: ['1234'], overseasOrigins: ['trunk-lisbon', 'trunk-lisbon'] });
    expect(put.statusCode).toBe(200);
    // Repeats dropped, as for carriers.
    const entry = { kind: 'number', key: '+442079460000', bankId: 'examplebank', inboundOnly: false, authorisedSpcs: ['1234'], overseasOrigins: ['trunk-lisbon'] };
    expect(put.json()).toEqual(entry);
    expect((await req('examplebank', 'GET', '/v1/registry/numbers/+442079460000')).json()).toEqual({ ...entry, match: 'number', bankName: 'Example Bank' });
    const [record] = (await req('examplebank', 'GET', '/v1/registry/audit?limit=1')).json().records;
    expect(record).toMatchObject({ action: 'number.update', before: { authorisedSpcs: ['1234'] }, after: { overseasOrigins: ['trunk-lisbon'] } });
    expect(record.before.overseasOrigins).toBeUndefined();

    const named = (await abroad('trunk-lisbon')).json();
    expect(named).toMatchObject({ verdict: 'allow', presentation: 'allowed', cached: false });
    expect(named.reasons.map((r: { code: string }) => r.code)).toEqual(['CLI_OVERSEAS_AUTHORISED', 'SHAKEN_ABSENT']);
    expect(named.reasons[0].message).toMatch(/trunk trunk-lisbon.*Example Bank/);
    expect((await abroad('trunk-elsewhere')).json()).toMatchObject({ verdict: 'block' });

    // The export carries it, and an import of that export changes nothing.
    const exported = (await req('examplebank', 'GET', '/v1/registry/export')).json();
    expect(exported.numbers).toContainEqual({ number: '+442079460000', bankId: 'examplebank', inboundOnly: false, authorisedSpcs: ['1234'], overseasOrigins: ['trunk-lisbon'] });
    expect((await req('examplebank', 'POST', '/v1/registry/import?mode=merge', exported)).json()).toMatchObject({ applied: true, rejected: [] });

    // An empty list is no list: the number is back to having no overseas origin.
    const cleared = await req('examplebank', 'PUT', '/v1/registry/numbers/+442079460000', { bankId: 'examplebank', inboundOnly: false, authorisedSpcs: ['1234'], overseasOrigins: [] });
    expect(cleared.json()).toEqual({ kind: 'number', key: '+442079460000', bankId: 'examplebank', inboundOnly: false, authorisedSpcs: ['1234'] });
  });

  it('overseasOrigins that are not a list of trunk or carrier names: 400 naming the field', async () => {
    for (const overseasOrigins of [['two words'], ['a,b'], ['a;b'], ['a|b'], [''], ['x'.repeat(65)], ['tronc-é'], Array.from({ length: 101 }, (_, i) => `t${i}`), 'trunk-lisbon', [7]]) {
      const res = await req('examplebank', 'PUT', '/v1/registry/numbers/+442079460000', { bankId: 'examplebank', inboundOnly: false, overseasOrigins });
      expect([overseasOrigins, res.statusCode]).toEqual([overseasOrigins, 400]);
      expect(res.json().message).toMatch(/^overseasOrigins/);
    }
  });

  it("an organisation's kind and announcesCalls are taken, listed and exported; a bad one is 400 naming the field", async () => {
    const created = await req('admin', 'PUT', '/v1/registry/banks/waterboard', { name: 'Fenland Water', kind: 'utility', announcesCalls: true });
    expect(created.statusCode).toBe(201);
    expect(created.json()).toEqual({ id: 'waterboard', name: 'Fenland Water', kind: 'utility', announcesCalls: true, callbackNumbers: [] });
    const banks = (await req('admin', 'GET', '/v1/registry/banks')).json().banks;
    expect(banks).toContainEqual({ id: 'waterboard', name: 'Fenland Water', kind: 'utility', announcesCalls: true, callbackNumbers: [] });
    expect(banks).toContainEqual({ id: 'revenueoffice', name: 'Crown Revenue Office', kind: 'government', callbackNumbers: ['+443069990300'] });
    // A bank says nothing of its kind unless told: absent is `bank`.
    expect(banks.find((b: { id: string }) => b.id === 'examplebank')).not.toHaveProperty('kind');
    expect((await req('admin', 'GET', '/v1/registry/export')).json().banks).toContainEqual({ id: 'waterboard', name: 'Fenland Water', kind: 'utility', announcesCalls: true, callbackNumbers: [] });

    for (const [body, field] of [
      [{ name: 'Fenland Water', kind: 'ministry' }, 'kind'],
      [{ name: 'Fenland Water', kind: 'Utility' }, 'kind'],
      [{ name: 'Fenland Water', announcesCalls: 'yes' }, 'announcesCalls'],
    ] as const) {
      const res = await req('admin', 'PUT', '/v1/registry/banks/waterboard', body);
      expect([body, res.statusCode]).toEqual([body, 400]);
      expect(res.json().message).toMatch(new RegExp(`^${field}`));
    }
  });

  it('imports kinds and overseas origins from JSON, and overseas origins from an optional CSV column', async () => {
    const json = await req('admin', 'POST', '/v1/registry/import', {
      banks: [
        { id: 'waterboard', name: 'Fenland Water', kind: 'utility', callbackNumbers: [] },
        { id: 'council', name: 'Borough Council', kind: 'town hall' },
      ],
      numbers: [
        { prefix: '+4412149605', bankId: 'waterboard', inboundOnly: false, overseasOrigins: ['trunk-manila'] },
        { number: '+441214960590', bankId: 'waterboard', inboundOnly: false, overseasOrigins: ['has space'] },
      ],
    });
    expect(json.json()).toMatchObject({
      applied: true,
      added: 1,
      rejected: [
        { line: 2, error: expect.stringMatching(/^banks\[1\]: kind/) },
        { line: 2, error: expect.stringMatching(/^overseasOrigins/) },
      ],
    });
    expect((await req('admin', 'GET', '/v1/registry/numbers/+441214960500')).json()).toMatchObject({ key: '+4412149605', overseasOrigins: ['trunk-manila'] });

    const csv = 'number,bankId,inboundOnly,authorisedSpcs,overseasOrigins\n+441214960501,waterboard,false,1234;7788,trunk-manila;7788\n+441214960502,waterboard,false,,\n+441214960503,waterboard,false,,tronc-é\n';
    const res = await req('admin', 'POST', '/v1/registry/import', csv, { 'content-type': 'text/csv' });
    expect(res.json()).toMatchObject({ applied: true, added: 2, rejected: [{ line: 4, error: expect.stringMatching(/^overseasOrigins/) }] });
    expect((await req('admin', 'GET', '/v1/registry/numbers/+441214960501')).json()).toMatchObject({ authorisedSpcs: ['1234', '7788'], overseasOrigins: ['trunk-manila', '7788'] });
    expect((await req('admin', 'GET', '/v1/registry/numbers/+441214960502')).json()).not.toHaveProperty('overseasOrigins');
  });
});

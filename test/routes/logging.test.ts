import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { loggerOptions, VERSION } from '../../src/ops/logger';
import { build } from '../helpers/build';
import { bearer, KEYS, KEYS_FILE } from '../helpers/keys';
import { logLineProblems } from '../helpers/log-lines';

type Line = Record<string, unknown> & { msg?: string; reqId?: string };

/** An app logging as in production (LOG_LEVEL=info) to a list the test reads. */
async function logged(env: Record<string, string> = {}): Promise<{ app: FastifyInstance; text: () => string; lines: () => Line[] }> {
  const written: string[] = [];
  const log = pino(loggerOptions('info'), { write: (line: string) => void written.push(line) });
  const app = await build({ API_KEYS_FILE: KEYS_FILE, ...env }, { log });
  return {
    app,
    text: () => written.join(''),
    lines: () => {
      for (const line of written) expect(logLineProblems(line)).toEqual([]);
      return written.map((line) => JSON.parse(line) as Line);
    },
  };
}

const CALL = { from: '+442079460000', to: '+447400123456' };
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ofRequest = (lines: Line[], id: unknown) => lines.filter((l) => l.reqId === id);
const access = (lines: Line[]) => lines.filter((l) => l.msg === 'access');
const event = (lines: Line[], name: string) => lines.filter((l) => l.event === name);

describe('access lines', () => {
  let app: FastifyInstance;
  let lines: () => Line[];
  let text: () => string;
  beforeAll(async () => ({ app, lines, text } = await logged()));
  afterAll(() => app.close());

  it('one for a 401, with method, route, status and time taken', async () => {
    const res = await app.inject({ method: 'GET', url: '/v1/registry/banks' });
    expect(res.statusCode).toBe(401);
    const mine = access(ofRequest(lines(), res.headers['x-request-id']));
    expect(mine).toEqual([expect.objectContaining({ level: 30, method: 'GET', route: '/v1/registry/banks', status: 401, ms: expect.any(Number) })]);
  });

  it('one for a 404, with the URL asked for', async () => {
    const res = await app.inject({ method: 'GET', url: '/v1/nothing-here' });
    expect(res.statusCode).toBe(404);
    expect(access(ofRequest(lines(), res.headers['x-request-id']))).toEqual([expect.objectContaining({ method: 'GET', url: '/v1/nothing-here', status: 404 })]);
  });

  it('none for a 200 on the score route at the default sample (0)', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/calls/score', payload: CALL, headers: bearer('switch') });
    expect(res.statusCode).toBe(200);
    expect(access(ofRequest(lines(), res.headers['x-request-id']))).toEqual([]);
    // Nor is the 200 a reason to leave out a 400 on the same route.
    const bad = await app.inject({ method: 'POST', url: '/v1/calls/score', payload: { to: '1' }, headers: bearer('switch') });
    expect(access(ofRequest(lines(), bad.headers['x-request-id']))).toEqual([expect.objectContaining({ status: 400, key: 'test-switch', role: 'switch' })]);
  });

  it("one for each success on a people's route, naming the key and its role, never the key itself", async () => {
    const res = await app.inject({ method: 'GET', url: '/v1/registry/banks', headers: bearer('examplebank') });
    expect(res.statusCode).toBe(200);
    expect(access(ofRequest(lines(), res.headers['x-request-id']))).toEqual([expect.objectContaining({ status: 200, key: 'test-examplebank', role: 'bank' })]);
    expect(text()).not.toContain(KEYS.examplebank);
  });
});

describe('access lines: configured', () => {
  it('ACCESS_LOG_SAMPLE=1 writes one for every 200 on the score route', async () => {
    const { app, lines } = await logged({ ACCESS_LOG_SAMPLE: '1' });
    try {
      const res = await app.inject({ method: 'POST', url: '/v1/calls/score', payload: CALL, headers: bearer('switch') });
      expect(res.statusCode).toBe(200);
      expect(access(ofRequest(lines(), res.headers['x-request-id']))).toEqual([
        expect.objectContaining({ method: 'POST', route: '/v1/calls/score', status: 200, key: 'test-switch', role: 'switch' }),
      ]);
    } finally {
      await app.close();
    }
  });

  it('ACCESS_LOG_LEVEL sets their level: at debug, an info log has none, and still every security event', async () => {
    const { app, lines } = await logged({ ACCESS_LOG_LEVEL: 'debug' });
    try {
      const res = await app.inject({ method: 'GET', url: '/v1/registry/banks' });
      expect(res.statusCode).toBe(401);
      const mine = ofRequest(lines(), res.headers['x-request-id']);
      expect(access(mine)).toEqual([]);
      expect(event(mine, 'auth_failed')).toHaveLength(1);
    } finally {
      await app.close();
    }
  });
});

describe('security events', () => {
  let app: FastifyInstance;
  let lines: () => Line[];
  beforeAll(async () => ({ app, lines } = await logged({ RATE_LIMIT_ADMIN_PER_MIN: '2' })));
  afterAll(() => app.close());

  it('auth_failed for a 401, saying whether a key was presented', async () => {
    const none = await app.inject({ method: 'GET', url: '/v1/registry/audit' });
    const bad = await app.inject({ method: 'GET', url: '/v1/registry/audit', headers: { authorization: 'Bearer not-a-key' } });
    expect([none.statusCode, bad.statusCode]).toEqual([401, 401]);
    expect(event(ofRequest(lines(), none.headers['x-request-id']), 'auth_failed')).toEqual([
      expect.objectContaining({ level: 40, method: 'GET', route: '/v1/registry/audit', keyPresented: false, reason: expect.stringMatching(/API key is required/) }),
    ]);
    expect(event(ofRequest(lines(), bad.headers['x-request-id']), 'auth_failed')).toEqual([expect.objectContaining({ keyPresented: true, reason: 'the API key is not valid' })]);
    expect(JSON.stringify(lines())).not.toContain('not-a-key');
  });

  it("forbidden for a 403, naming the key: a role the route refuses, or another bank's entry", async () => {
    const role = await app.inject({ method: 'GET', url: '/v1/registry/banks', headers: bearer('switch') });
    const other = await app.inject({ method: 'PUT', url: '/v1/registry/banks/northwind', payload: { name: 'Mine now' }, headers: bearer('examplebank') });
    expect([role.statusCode, other.statusCode]).toEqual([403, 403]);
    expect(event(ofRequest(lines(), role.headers['x-request-id']), 'forbidden')).toEqual([
      expect.objectContaining({ level: 40, key: 'test-switch', role: 'switch', route: '/v1/registry/banks' }),
    ]);
    expect(event(ofRequest(lines(), other.headers['x-request-id']), 'forbidden')).toEqual([
      expect.objectContaining({ key: 'test-examplebank', role: 'bank', bankId: 'examplebank', reason: expect.stringMatching(/only change bank "examplebank"/) }),
    ]);
  });

  it('rate_limited for a 429, naming the key', async () => {
    const answers = [];
    for (let i = 0; i < 3; i++) answers.push(await app.inject({ method: 'GET', url: '/v1/registry/banks', headers: bearer('admin') }));
    expect(answers.map((r) => r.statusCode)).toEqual([200, 200, 429]);
    expect(event(ofRequest(lines(), answers[2]!.headers['x-request-id']), 'rate_limited')).toEqual([
      expect.objectContaining({ level: 40, key: 'test-admin', role: 'admin', reason: expect.stringMatching(/2 requests a minute/) }),
    ]);
    // Refusals only: the successes before it are no security event.
    expect(ofRequest(lines(), answers[0]!.headers['x-request-id']).filter((l) => l.event !== undefined)).toEqual([]);
  });

  it('registry_change for a registry PUT and DELETE, with actor, action and target, the number masked in the message too', async () => {
    const put = await app.inject({ method: 'PUT', url: '/v1/registry/numbers/02079460177', payload: { bankId: 'examplebank', inboundOnly: true }, headers: bearer('examplebank') });
    expect(put.statusCode).toBe(201);
    const [change] = event(ofRequest(lines(), put.headers['x-request-id']), 'registry_change');
    expect(change).toMatchObject({ level: 30, key: 'test-examplebank', role: 'bank', bankId: 'examplebank', action: 'number.create', target: 'number:+44207*******' });
    expect(change!.msg).toBe('security: registry_change number.create number:+44207*******');

    const bank = await app.inject({ method: 'PUT', url: '/v1/registry/banks/examplebank', payload: { name: 'Example Bank plc' }, headers: bearer('examplebank') });
    expect(bank.statusCode).toBe(200);
    expect(event(ofRequest(lines(), bank.headers['x-request-id']), 'registry_change')).toEqual([expect.objectContaining({ action: 'bank.update', target: 'bank:examplebank' })]);

    // A refused change is no change.
    const refused = await app.inject({ method: 'DELETE', url: '/v1/registry/banks/northwind', headers: bearer('examplebank') });
    expect(refused.statusCode).toBe(403);
    expect(event(ofRequest(lines(), refused.headers['x-request-id']), 'registry_change')).toEqual([]);
    expect(JSON.stringify(lines())).not.toMatch(/2079460177/);
  });
});

describe('request ids', () => {
  let app: FastifyInstance;
  let lines: () => Line[];
  beforeAll(async () => ({ app, lines } = await logged()));
  afterAll(() => app.close());

  it('a UUID in x-request-id is returned and names every line of the request', async () => {
    const id = 'b3d2c1a0-9f8e-4d7c-8b6a-5f4e3d2c1b0a';
    const res = await app.inject({ method: 'GET', url: '/v1/registry/banks', headers: { 'x-request-id': id } });
    expect(res.headers['x-request-id']).toBe(id);
    expect(ofRequest(lines(), id).map((l) => l.msg)).toEqual(['access', 'security: auth_failed']);
  });

  it('anything else is replaced by a fresh UUID, one per request', async () => {
    const ids = [];
    for (const given of ['sbc-42', 'b3d2c1a0-9f8e-4d7c-8b6a-5f4e3d2c1b0a, b3d2c1a0-9f8e-4d7c-8b6a-5f4e3d2c1b0a', '']) {
      const res = await app.inject({ method: 'GET', url: '/healthz', headers: { 'x-request-id': given } });
      ids.push(res.headers['x-request-id']);
    }
    const none = await app.inject({ method: 'GET', url: '/healthz' });
    ids.push(none.headers['x-request-id']);
    for (const id of ids) expect(id).toMatch(UUID);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('every line carries the service, its version and an ISO time', async () => {
    await app.inject({ method: 'GET', url: '/v1/nothing' });
    for (const line of lines()) expect(line).toMatchObject({ service: 'callguard', version: VERSION, time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/) });
  });
});

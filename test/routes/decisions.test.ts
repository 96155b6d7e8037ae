import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { DEFAULT_POLICY, policyVersion } from '../../src/scoring';
import type { MemoryCallState } from '../../src/state/memory/call-state';
import { build } from '../helpers/build';
import { bearer, headersFor, KEYS_FILE, type Who } from '../helpers/keys';
import { identity, makePki, mapFetcher, type Pki } from '../shaken/helpers';

/**
 * GET /v1/calls/{callId}: the decisions made for a call id, for "why was this call blocked?" and
 * traceback, scoped like the callback history. Real certificates sign the PASSporT cases.
 */
// A minute from now: after the test PKI's certificates are issued (openssl dates them from their making).
const AT = new Date(Date.now() + 60_000).toISOString();
const IAT = Math.floor(Date.parse(AT) / 1000);
const X5U = 'https://certs.carrier.example/sp5678.pem';
const CUSTOMER = '+447400123456';
/** The sample registry's: examplebank's outbound number, and northwind's, signed for by SPC 5678. */
const EXAMPLEBANK = '+442079460000';
const NORTHWIND = '+441614960200';

let pki: Pki;
let app: FastifyInstance;
let ids = 0;
const newCallId = () => `dec-${process.pid}-${ids++}`;

beforeAll(async () => {
  pki = makePki();
  const dir = mkdtempSync(join(tmpdir(), 'callguard-decisions-'));
  writeFileSync(join(dir, 'root.pem'), pki.root.certPem);
  app = await build({ API_KEYS_FILE: KEYS_FILE, SHAKEN_TRUST_ANCHORS: join(dir, 'root.pem') }, { certFetcher: mapFetcher({ [X5U]: pki.chainPem }) });
}, 60_000);
afterAll(async () => {
  await app?.close();
  pki?.cleanup();
});

const score = async (body: object) => {
  const res = await app.inject({ method: 'POST', url: '/v1/calls/score', headers: bearer('switch'), payload: body });
  expect(res.statusCode).toBe(200);
  return res.json() as { verdict: string; score: number; cached: boolean };
};
const decisions = (callId: string, who: Who = 'admin') => app.inject({ method: 'GET', url: `/v1/calls/${encodeURIComponent(callId)}`, headers: headersFor(who) });

interface Decision {
  at: string;
  decidedAt: string;
  from: string | null;
  to: string | null;
  bankId?: string;
  verdict: string;
  score: number;
  presentation: string;
  reasons: string[];
  reasonDetails: { code: string; weight: number; message: string }[];
  cached: boolean;
  shaken: { source: string; verstat: string; attestation: string | null; spc?: string; origid?: string; x5u?: string; errors: string[] };
  origin?: Record<string, unknown>;
  policyVersion: string;
  registryVersion: string;
}
const answered = async (callId: string, who: Who = 'admin'): Promise<Decision[]> => {
  const res = await decisions(callId, who);
  expect(res.statusCode).toBe(200);
  const body = res.json() as { callId: string; decisions: Decision[] };
  expect(body.callId).toBe(callId);
  return body.decisions;
};

describe('GET /v1/calls/{callId}: what an operator sees', () => {
  it('a blocked call: its reasons with weights and messages, the origin it came in on, the versions it was decided under', async () => {
    const callId = newCallId();
    const answer = await score({ from: EXAMPLEBANK, to: CUSTOMER, callId, receivedAt: AT, origin: { trunk: 'lagos-1', carrier: '9999', country: 'ng' } });
    expect(answer.verdict).toBe('block');
    const [d, ...rest] = await answered(callId);
    expect(rest).toEqual([]);
    expect(d).toEqual({
      at: AT,
      decidedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      from: EXAMPLEBANK,
      to: CUSTOMER,
      bankId: 'examplebank',
      verdict: 'block',
      score: answer.score,
      presentation: 'allowed',
      reasons: expect.arrayContaining(['CLI_DOMESTIC_FROM_ABROAD', 'BANK_UNAUTHORISED_ORIGIN']),
      reasonDetails: expect.arrayContaining([{ code: 'CLI_DOMESTIC_FROM_ABROAD', weight: DEFAULT_POLICY.weights.CLI_DOMESTIC_FROM_ABROAD, message: expect.stringContaining(EXAMPLEBANK) }]),
      cached: false,
      shaken: { source: 'none', verstat: 'No-TN-Validation', attestation: null, errors: [] },
      origin: { trunk: 'lagos-1', carrier: '9999', country: 'NG', international: true },
      policyVersion: policyVersion(DEFAULT_POLICY),
      registryVersion: app.services.registryStore.version,
    });
    expect(d!.reasons).toEqual(d!.reasonDetails.map((r) => r.code));
  });

  it('a signed call: who signed it (spc, origid and the certificate URL) for traceback', async () => {
    const callId = newCallId();
    const origid = '00000000-0000-4000-8000-000000000042';
    await score({ from: NORTHWIND, to: CUSTOMER, callId, receivedAt: AT, identity: identity({ x5u: X5U, key: pki.leaf.key, iat: IAT, orig: NORTHWIND.slice(1), dest: [CUSTOMER.slice(1)], origid }) });
    const [d] = await answered(callId);
    expect(d!.shaken).toEqual({ source: 'passport', verstat: 'TN-Validation-Passed', attestation: 'A', spc: '5678', origid, x5u: X5U, errors: [] });
    expect(d!.reasons).toContain('BANK_VERIFIED');
    expect(d).not.toHaveProperty('origin');
  });

  it('a PASSporT that failed names the certificate it was signed under, and why it failed', async () => {
    const callId = newCallId();
    await score({ from: NORTHWIND, to: CUSTOMER, callId, receivedAt: AT, identity: identity({ x5u: X5U, key: pki.leaf.key, iat: IAT - 3600, orig: NORTHWIND.slice(1), dest: [CUSTOMER.slice(1)] }) });
    const [d] = await answered(callId);
    expect(d!.shaken).toMatchObject({ source: 'passport', verstat: 'TN-Validation-Failed', x5u: X5U, errors: ['STALE'] });
    expect(d!.reasons).toContain('SHAKEN_INVALID');
  });

  it('every decision made for the call id, newest first, a verdict cache hit said so', async () => {
    const callId = newCallId();
    const body = { from: '+447400999001', to: CUSTOMER, callId };
    await score({ ...body, origin: { international: true } });
    await score(body);
    expect((await score(body)).cached).toBe(true);
    const got = await answered(callId);
    expect(got.map((d) => [d.verdict, d.cached])).toEqual([
      ['allow', true],
      ['allow', false],
      ['flag', false],
    ]);
    const times = got.map((d) => Date.parse(d.decidedAt));
    expect([...times].sort((a, b) => b - a)).toEqual(times);
  });

  it('a withheld caller is null, a short code is its code', async () => {
    const callId = newCallId();
    await score({ from: 'anonymous', to: '999', callId });
    const [d] = await answered(callId);
    expect(d).toMatchObject({ from: null, to: '999', verdict: 'allow' });
    expect(d).not.toHaveProperty('bankId');
  });

  it('a call id with any characters, URL-encoded', async () => {
    const callId = 'a84b4c76e66710@pc33.atlanta.com/x?y#z {}';
    await score({ from: '+447400999002', to: CUSTOMER, callId });
    expect(await answered(callId)).toHaveLength(1);
  });

  it('a call without a callId leaves no record', async () => {
    const store = (app.services.behaviour.state as MemoryCallState<never>).decisions;
    const before = store.size;
    await score({ from: '+447400999003', to: CUSTOMER });
    expect(store.size).toBe(before);
  });
});

describe('GET /v1/calls/{callId}: who may see what', () => {
  it('an unknown call id is 404', async () => {
    const res = await decisions('never-scored');
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({ error: 'not_found' });
  });

  it('a switch key may not read decisions (403); no key is 401', async () => {
    const callId = newCallId();
    await score({ from: EXAMPLEBANK, to: CUSTOMER, callId });
    expect((await decisions(callId, 'switch')).statusCode).toBe(403);
    expect((await decisions(callId, 'none')).statusCode).toBe(401);
  });

  it("the bank whose number the call presented sees it; another bank gets the unknown id's 404", async () => {
    const callId = newCallId();
    await score({ from: EXAMPLEBANK, to: CUSTOMER, callId });
    expect(await answered(callId, 'examplebank')).toHaveLength(1);
    const other = await decisions(callId, 'northwind');
    const unknown = await decisions(`${callId}-unknown`, 'northwind');
    expect(other.statusCode).toBe(404);
    expect(other.json().error).toBe(unknown.json().error);
    expect(other.json().message.replace(callId, '')).toBe(unknown.json().message.replace(`${callId}-unknown`, ''));
  });

  it('a call id reused across banks: each bank sees its own decisions, the operator all of them', async () => {
    const callId = newCallId();
    await score({ from: EXAMPLEBANK, to: CUSTOMER, callId });
    await score({ from: NORTHWIND, to: CUSTOMER, callId });
    await score({ from: '+447400999004', to: CUSTOMER, callId });
    expect((await answered(callId, 'examplebank')).map((d) => d.from)).toEqual([EXAMPLEBANK]);
    expect((await answered(callId, 'northwind')).map((d) => d.from)).toEqual([NORTHWIND]);
    expect((await answered(callId, 'admin')).map((d) => d.from)).toEqual(['+447400999004', NORTHWIND, EXAMPLEBANK]);
  });

  it('a call id longer than the score route takes is 400, naming it', async () => {
    const res = await decisions('x'.repeat(257));
    expect(res.statusCode).toBe(400);
    expect(res.json().message).toContain('callId');
  });
});

describe('GET /v1/calls/{callId}: the longest call ids', () => {
  it('a 256-character call id, percent-encoded however it must be, is found', async () => {
    const callId = `${newCallId()}-`.padEnd(256, '€');
    await score({ from: '+447400999005', to: CUSTOMER, callId });
    expect(await answered(callId)).toHaveLength(1);
  });
});

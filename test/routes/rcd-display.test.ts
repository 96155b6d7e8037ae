import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { build } from '../helpers/build';
import { headersFor, KEYS_FILE } from '../helpers/keys';
import { identity, makePki, mapFetcher, type Pki } from '../shaken/helpers';

/**
 * Rich call data and the display name through the whole service: real certificates, real ES256,
 * the registry, announcements, the decision and the score answer.
 */
// A minute from now: after the test PKI's certificates are issued (openssl dates them from their making).
const AT = new Date(Date.now() + 60_000).toISOString();
const IAT = Math.floor(Date.parse(AT) / 1000);
const X5U = 'https://certs.carrier.example/sp5678.pem';
const JCL = 'https://rcd.carrier.example/acme.json';
const CARD = JSON.stringify(['vcard', [['fn', {}, 'text', 'Acme Parcels']]]);
const CUSTOMER = '+447400123456';
const PERSON = '+447400111222';
const BANK = '+442079460000';
const HOSTILE_BANK = '+442079460003';
const sri = (content: string) => `sha256-${createHash('sha256').update(content).digest('base64')}`;

let pki: Pki;
let app: FastifyInstance;

beforeAll(async () => {
  pki = makePki();
  const dir = mkdtempSync(join(tmpdir(), 'callguard-rcd-'));
  writeFileSync(join(dir, 'root.pem'), pki.root.certPem);
  writeFileSync(
    join(dir, 'registry.json'),
    JSON.stringify({
      banks: [
        { id: 'examplebank', name: 'Example Bank' },
        { id: 'hostile', name: `Quote "Bank" <sip:evil@x>\r\nX-Injected: 1 ${'Z'.repeat(100)}` },
      ],
      numbers: [
        { number: BANK, bankId: 'examplebank', inboundOnly: false, authorisedSpcs: ['5678'] },
        { number: HOSTILE_BANK, bankId: 'hostile', inboundOnly: false },
      ],
    }),
  );
  app = await build(
    { API_KEYS_FILE: KEYS_FILE, SHAKEN_TRUST_ANCHORS: join(dir, 'root.pem'), REGISTRY_FILE: join(dir, 'registry.json'), VERDICT_CACHE_TTL_S: '0' },
    { certFetcher: mapFetcher({ [X5U]: pki.chainPem }), rcdFetcher: mapFetcher({ [JCL]: CARD }) },
  );
}, 60_000);
afterAll(async () => {
  await app?.close();
  pki?.cleanup();
});

interface Answer {
  verdict: string;
  reasons: { code: string }[];
  shaken: { verstat: string; attestation: string | null; errors: string[]; rcd?: { name?: string; callReason?: string } };
  display?: { name: string; source: string };
}

let n = 0;
const signed = (orig: string, claims: Record<string, unknown>, to = CUSTOMER) =>
  identity({ x5u: X5U, key: pki.leaf.key, iat: IAT, orig: orig.slice(1), dest: [to.slice(1)], origid: `00000000-0000-4000-8000-${String(++n).padStart(12, '0')}`, claims });

async function score(body: { from: string; to?: string; pai?: string; identity?: string }): Promise<Answer> {
  const res = await app.inject({ method: 'POST', url: '/v1/calls/score', headers: headersFor('switch'), payload: { to: CUSTOMER, callId: `rcd-${++n}`, receivedAt: AT, ...body } });
  expect(res.statusCode).toBe(200);
  return res.json() as Answer;
}
const codes = (a: Answer) => a.reasons.map((r) => r.code);

describe('shaken.rcd and display on the score answer', () => {
  it('a verified PASSporT with rcd nam and crn: shaken.rcd, and display from the rcd', async () => {
    const a = await score({ from: PERSON, identity: signed(PERSON, { rcd: { nam: 'Acme Deliveries' }, crn: 'Your parcel is at the door', rcdi: { '/nam': sri('"Acme Deliveries"') } }) });
    expect([a.shaken.verstat, a.shaken.errors, a.shaken.rcd, a.display]).toEqual([
      'TN-Validation-Passed',
      [],
      { name: 'Acme Deliveries', callReason: 'Your parcel is at the door' },
      { name: 'Acme Deliveries', source: 'rcd' },
    ]);
    expect(codes(a)).toContain('SHAKEN_ATTEST_A');
  });

  it('a jCard by reference (jcl) covered by rcdi: its fn is the name', async () => {
    const a = await score({ from: PERSON, identity: signed(PERSON, { rcd: { jcl: JCL }, rcdi: { '/jcl': sri(CARD) } }) });
    expect([a.shaken.rcd, a.display]).toEqual([{ name: 'Acme Parcels' }, { name: 'Acme Parcels', source: 'rcd' }]);
  });

  it('rich call data failing its integrity check: RCD_INVALID, the attestation still counts, nothing shown', async () => {
    const a = await score({ from: PERSON, identity: signed(PERSON, { rcd: { nam: 'Your Bank Security' }, rcdi: { '/nam': sri('"Acme Deliveries"') } }) });
    expect([a.shaken.verstat, a.shaken.attestation, a.shaken.errors, a.shaken.rcd, a.display]).toEqual(['TN-Validation-Passed', 'A', ['RCD_INVALID'], undefined, undefined]);
    expect(codes(a)).toContain('SHAKEN_ATTEST_A');
    expect(codes(a)).not.toContain('SHAKEN_UNVERIFIED');
  });

  it("a bank's number signed by its carrier (BANK_VERIFIED): display is the registry name, not the PASSporT's", async () => {
    const a = await score({ from: BANK, identity: signed(BANK, { rcd: { nam: 'Somebody Else' } }) });
    expect(codes(a)).toContain('BANK_VERIFIED');
    expect([a.verdict, a.display, a.shaken.rcd]).toEqual(['allow', { name: 'Example Bank', source: 'registry' }, { name: 'Somebody Else' }]);
  });

  it('an announced call (BANK_CALL_EXPECTED), no PASSporT: display is the registry name', async () => {
    const to = '+447400333444';
    const res = await app.inject({ method: 'POST', url: '/v1/calls/expected', headers: headersFor('examplebank'), payload: { from: BANK, to } });
    expect(res.statusCode).toBe(201);
    const a = await score({ from: BANK, to });
    expect(codes(a)).toContain('BANK_CALL_EXPECTED');
    expect(a.display).toEqual({ name: 'Example Bank', source: 'registry' });
  });

  it("the bank's number with nothing to show for it: no display", async () => {
    const a = await score({ from: BANK, to: '+447400555666' });
    expect([codes(a), a.display]).toEqual([expect.not.arrayContaining(['BANK_VERIFIED', 'BANK_CALL_EXPECTED']), undefined]);
  });

  it('an unverified call (no PASSporT, or one that failed) has no display and no rcd', async () => {
    const bare = await score({ from: PERSON });
    expect([bare.display, bare.shaken.rcd]).toEqual([undefined, undefined]);
    const wrongDest = await score({ from: PERSON, identity: signed(PERSON, { rcd: { nam: 'Acme' } }, '+447400999999') });
    expect([wrongDest.shaken.verstat, wrongDest.display, wrongDest.shaken.rcd]).toEqual(['TN-Validation-Failed', undefined, undefined]);
  });

  it('a PASSporT signed for the P-Asserted-Identity: its rich call data says nothing of the From shown', async () => {
    const a = await score({ from: PERSON, pai: '+447400777888', identity: signed('+447400777888', { rcd: { nam: 'Acme Deliveries' } }) });
    expect([a.shaken.verstat, a.shaken.rcd, a.display]).toEqual(['TN-Validation-Passed', undefined, undefined]);
  });

  it('a replayed PASSporT: no display', async () => {
    const token = signed(PERSON, { rcd: { nam: 'Acme Deliveries' } });
    const first = await score({ from: PERSON, identity: token });
    const second = await score({ from: PERSON, identity: token });
    expect(first.display).toEqual({ name: 'Acme Deliveries', source: 'rcd' });
    expect([codes(second).includes('PASSPORT_REPLAY'), second.display]).toEqual([true, undefined]);
  });

  it('hostile names (quotes, angle brackets, control characters, length) reach the answer cleaned', async () => {
    const a = await score({ from: PERSON, identity: signed(PERSON, { rcd: { nam: `"Acme" <sip:x@evil>\r\nVia: 1\u0000\u202e${'Y'.repeat(300)}` }, crn: 'a\nb' }) });
    expect(a.display?.source).toBe('rcd');
    expect(a.display?.name).toMatch(/^Acme sip:x@evil Via: 1 Y+$/);
    expect([...a.display!.name].length).toBeLessThanOrEqual(64);
    expect(a.shaken.rcd?.callReason).toBe('a b');
    const bank = await score({ from: HOSTILE_BANK, identity: signed(HOSTILE_BANK, {}) });
    expect(codes(bank)).toContain('BANK_VERIFIED');
    expect(bank.display?.source).toBe('registry');
    expect(bank.display?.name).toMatch(/^Quote Bank sip:evil@x X-Injected: 1 Z+$/);
    expect([...bank.display!.name].length).toBeLessThanOrEqual(64);
  });
});

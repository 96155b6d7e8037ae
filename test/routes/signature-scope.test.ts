import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { build } from '../helpers/build';
import { tnAuthList } from '../shaken/forge';
import { identity, makePki, mapFetcher, type Issued, type Pki } from '../shaken/helpers';

/**
 * What a signature vouches for, through the whole service: real certificates, real ES256, the
 * registry, the decision. The attacker controls only its own line: its carrier (or a delegate
 * certificate it holds) honestly signs that line with attestation A, and it presents a bank's
 * number in From. None of that may earn the bank's number any credit.
 */
// A minute from now: after the test PKI's certificates are issued (openssl dates them from their making).
const AT = new Date(Date.now() + 60_000).toISOString();
const IAT = Math.floor(Date.parse(AT) / 1000);
const CUSTOMER = '+447400123456';
const ATTACKER_LINE = '+447400999888';
/** A bank that names its carrier (SPC 5678, the test PKI's leaf) and one that names none. */
const NAMED = '+442079460001';
const ANY = '+442079460002';
const SPC_LEAF = 'https://certs.carrier.example/sp5678.pem';
const DELEGATE = 'https://certs.carrier.example/delegate.pem';

let pki: Pki;
let delegate: Issued;
let app: FastifyInstance;

beforeAll(async () => {
  pki = makePki();
  delegate = pki.issueLeaf('delegate', { tnAuthListDer: tnAuthList([{ one: ATTACKER_LINE.slice(1) }, { one: ANY.slice(1) }, { one: NAMED.slice(1) }]).toString('hex') });
  const dir = mkdtempSync(join(tmpdir(), 'callguard-scope-'));
  writeFileSync(join(dir, 'root.pem'), pki.root.certPem);
  writeFileSync(
    join(dir, 'registry.json'),
    JSON.stringify({
      banks: [{ id: 'named', name: 'Named Carrier Bank' }, { id: 'any', name: 'Any Carrier Bank' }],
      numbers: [
        { number: NAMED, bankId: 'named', inboundOnly: false, authorisedSpcs: ['5678'] },
        { number: ANY, bankId: 'any', inboundOnly: false },
      ],
    }),
  );
  app = await build(
    { SHAKEN_TRUST_ANCHORS: join(dir, 'root.pem'), REGISTRY_FILE: join(dir, 'registry.json'), VERDICT_CACHE_TTL_S: '0' },
    { certFetcher: mapFetcher({ [SPC_LEAF]: pki.chainPem, [DELEGATE]: delegate.certPem + pki.intermediate.certPem }) },
  );
}, 60_000);
afterAll(async () => {
  await app?.close();
  pki?.cleanup();
});

interface Answer {
  verdict: string;
  reasons: { code: string; weight: number }[];
  shaken: { verstat: string; attestation: string | null; spc?: string; authority?: string; errors: string[] };
}

let calls = 0;
async function score(from: string, pai: string | undefined, x5u: string, orig: string): Promise<Answer> {
  const signer = x5u === SPC_LEAF ? pki.leaf.key : delegate.key;
  const body = {
    from,
    to: CUSTOMER,
    ...(pai ? { pai } : {}),
    callId: `scope-${calls++}`,
    receivedAt: AT,
    identity: identity({ x5u, key: signer, iat: IAT, orig: orig.slice(1), dest: [CUSTOMER.slice(1)], origid: `00000000-0000-4000-8000-${String(calls).padStart(12, '0')}` }),
  };
  const res = await app.inject({ method: 'POST', url: '/v1/calls/score', payload: body });
  expect(res.statusCode).toBe(200);
  return res.json() as Answer;
}
const codes = (a: Answer) => a.reasons.map((r) => r.code);

describe('a PASSporT vouches for its orig and nothing else', () => {
  it('control: the bank signed for its own number by its carrier is verified', async () => {
    const a = await score(NAMED, undefined, SPC_LEAF, NAMED);
    expect(codes(a)).toEqual(['BANK_VERIFIED', 'SHAKEN_ATTEST_A']);
    expect(a.verdict).toBe('allow');
    expect(a.shaken).toMatchObject({ verstat: 'TN-Validation-Passed', spc: '5678', authority: 'spc' });
  });

  it.each([
    ['a bank that names the carrier', NAMED],
    ['a bank that names no carrier', ANY],
  ])("the attacker's line signed A, a bank's number in From: no credit for %s", async (_what, bank) => {
    const a = await score(bank, ATTACKER_LINE, SPC_LEAF, ATTACKER_LINE);
    expect(a.shaken.verstat).toBe('TN-Validation-Passed');
    expect(codes(a)).not.toContain('BANK_VERIFIED');
    expect(a.reasons.every((r) => r.weight >= 0)).toBe(true);
  });

  it('a delegate certificate for the attacker\'s line lends nothing to a bank number in From', async () => {
    const a = await score(ANY, ATTACKER_LINE, DELEGATE, ATTACKER_LINE);
    expect(a.shaken).toMatchObject({ verstat: 'TN-Validation-Passed', authority: 'tn' });
    expect(a.shaken.spc).toBeUndefined();
    expect(codes(a)).not.toContain('BANK_VERIFIED');
    expect(a.reasons.every((r) => r.weight >= 0)).toBe(true);
  });

  it('a delegate certificate cannot satisfy a bank that names its carriers, even for the bank\'s own number', async () => {
    const a = await score(NAMED, undefined, DELEGATE, NAMED);
    expect(codes(a)).toContain('BANK_UNAUTHORISED_ORIGIN');
    expect(codes(a)).not.toContain('BANK_VERIFIED');
    expect(a.verdict).not.toBe('allow');
  });

  it('a delegate certificate signing a number it does not list fails with TN_NOT_AUTHORISED', async () => {
    const a = await score('+442079460003', undefined, DELEGATE, '+442079460003');
    expect(a.shaken).toMatchObject({ verstat: 'TN-Validation-Failed', errors: ['TN_NOT_AUTHORISED'] });
    expect(codes(a)).toContain('SHAKEN_INVALID');
  });
});

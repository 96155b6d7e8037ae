import { createHash } from 'node:crypto';
import { createShakenVerifier, type CertificateFetcher, type DefaultShakenVerifier } from '../../src/shaken';
import { identity, makePki, mapFetcher, type Pki } from './helpers';

/** The verifier reads rich call data from the PASSporT that passed, under its signature. */

const FROM = '+442079460123';
const TO = '+447400123456';
const X5U = 'https://certs.example/sp.pem';
const JCL = 'https://rcd.example/card.json';
const CARD = Buffer.from(JSON.stringify(['vcard', [['fn', {}, 'text', 'Example Bank Cards']]]));
const sri = (content: string | Buffer) => `sha256-${createHash('sha256').update(content).digest('base64')}`;
// A minute from now: after the test PKI's certificates are issued (openssl dates them from their making).
const IAT = Math.floor(Date.now() / 1000) + 60;

let pki: Pki;
const verifiers: DefaultShakenVerifier[] = [];
beforeAll(() => {
  pki = makePki();
});
afterAll(async () => {
  await Promise.all(verifiers.map((v) => v.close()));
  pki.cleanup();
});

function verifier(rcdFetcher: CertificateFetcher = mapFetcher({ [JCL]: CARD.toString() }), extra: Partial<Parameters<typeof createShakenVerifier>[0]> = {}) {
  const v = createShakenVerifier({ trustAnchors: [pki.root.cert], fetcher: mapFetcher({ [X5U]: pki.chainPem }), rcdFetcher, ...extra });
  verifiers.push(v);
  return v;
}

const call = (claims: Record<string, unknown>, spec: { orig?: string } = {}) => ({
  identity: identity({ x5u: X5U, key: pki.leaf.key, iat: IAT, orig: (spec.orig ?? FROM).slice(1), dest: [TO.slice(1)], claims }),
  origCandidates: [FROM],
  dest: TO,
  receivedAt: new Date(IAT * 1000),
});

describe('rich call data in a verified PASSporT', () => {
  it('nam and crn signed with the call: verified, and given back cleaned', async () => {
    const r = await verifier().verify(call({ rcd: { nam: 'Example "Bank"\r\n' }, crn: 'Card security check', rcdi: { '/nam': sri('"Example \\"Bank\\"\\r\\n"') } }));
    expect([r.verstat, r.attestation, r.errors, r.rcd]).toEqual(['TN-Validation-Passed', 'A', [], { name: 'Example Bank', callReason: 'Card security check' }]);
  });

  it('a tampered nam (rcdi digest of another name): RCD_INVALID, the attestation kept, nothing shown', async () => {
    const r = await verifier().verify(call({ rcd: { nam: 'Evil Corp' }, rcdi: { '/nam': sri('"Example Bank"') } }));
    expect([r.verstat, r.attestation, r.errors, r.rcd]).toEqual(['TN-Validation-Passed', 'A', ['RCD_INVALID'], undefined]);
  });

  it('jcl fetched, its digest checked and its fn read; fetched once for many calls', async () => {
    const fetcher = mapFetcher({ [JCL]: CARD.toString() });
    const v = verifier(fetcher);
    for (let i = 0; i < 3; i++) {
      const r = await v.verify(call({ rcd: { jcl: JCL }, rcdi: { '/jcl': sri(CARD) } }));
      expect([r.errors, r.rcd]).toEqual([[], { name: 'Example Bank Cards' }]);
    }
    expect(fetcher.calls).toEqual([JCL]);
  });

  it('jcl content that changed after it was signed for: RCD_INVALID', async () => {
    const v = verifier(mapFetcher({ [JCL]: JSON.stringify(['vcard', [['fn', {}, 'text', 'Evil Corp']]]) }));
    const r = await v.verify(call({ rcd: { nam: 'Example Bank', jcl: JCL }, rcdi: { '/jcl': sri(CARD) } }));
    expect([r.verstat, r.errors, r.rcd]).toEqual(['TN-Validation-Passed', ['RCD_INVALID'], undefined]);
  });

  it('jcl content that cannot be had (404, or past the deadline) when rcdi covers it: RCD_INVALID', async () => {
    const missing = await verifier(mapFetcher({})).verify(call({ rcd: { nam: 'B', jcl: JCL }, rcdi: { '/jcl': sri(CARD) } }));
    expect(missing.errors).toEqual(['RCD_INVALID']);
    const slow = verifier(mapFetcher({ [JCL]: () => new Promise(() => undefined) }), { rcdFetchTimeoutMs: 50 });
    const started = Date.now();
    const late = await slow.verify(call({ rcd: { nam: 'B', jcl: JCL }, rcdi: { '/jcl': sri(CARD) } }));
    expect([late.errors, Date.now() - started < 1000]).toEqual([['RCD_INVALID'], true]);
  });

  it('the default fetcher keeps its guards: a jcl on a loopback address is never fetched in production', async () => {
    const v = createShakenVerifier({ trustAnchors: [pki.root.cert], fetcher: mapFetcher({ [X5U]: pki.chainPem }) });
    verifiers.push(v);
    const r = await v.verify(call({ rcd: { nam: 'B', jcl: 'https://127.0.0.1:9/card.json' }, rcdi: { '/jcl': sri(CARD) } }));
    expect([r.verstat, r.errors]).toEqual(['TN-Validation-Passed', ['RCD_INVALID']]);
  });

  it('malformed rcd: RCD_INVALID, the call still verified', async () => {
    const r = await verifier().verify(call({ rcd: 'Example Bank' }));
    expect([r.verstat, r.attestation, r.errors]).toEqual(['TN-Validation-Passed', 'A', ['RCD_INVALID']]);
  });

  it('rcd claims of a PASSporT that failed are never read', async () => {
    const fetcher = mapFetcher({ [JCL]: CARD.toString() });
    const r = await verifier(fetcher).verify({ ...call({ rcd: { jcl: JCL } }), origCandidates: ['+442079460999'] });
    expect([r.verstat, r.errors, r.rcd, fetcher.calls]).toEqual(['TN-Validation-Failed', ['ORIG_MISMATCH'], undefined, []]);
  });

  it('a changed rcd breaks the signature itself (the claims are signed with the rest)', async () => {
    const token = identity({ x5u: X5U, key: pki.leaf.key, iat: IAT, orig: FROM.slice(1), dest: [TO.slice(1)], claims: { rcd: { nam: 'Example Bank' } } });
    const first = token.indexOf('.');
    const second = token.indexOf('.', first + 1);
    const payload = JSON.parse(Buffer.from(token.slice(first + 1, second), 'base64url').toString()) as Record<string, unknown>;
    payload.rcd = { nam: 'Evil Corp' };
    const forged = `${token.slice(0, first)}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}${token.slice(second)}`;
    const r = await verifier().verify({ ...call({}), identity: forged });
    expect([r.verstat, r.errors, r.rcd]).toEqual(['TN-Validation-Failed', ['BAD_SIGNATURE'], undefined]);
  });
});

describe('RcdContentCache', () => {
  it('bounds the fetches running at once: past the limit the content is not had, and not remembered as failed', async () => {
    const { RcdContentCache } = await import('../../src/shaken');
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const fetcher = mapFetcher({
      'https://a.example/1': async () => {
        await gate;
        return { body: 'one' };
      },
      'https://a.example/2': async () => ({ body: 'two' }),
    });
    const cache = new RcdContentCache({ fetcher, timeoutMs: 1000, maxInflight: 1 });
    const first = cache.get('https://a.example/1');
    expect(await cache.get('https://a.example/2')).toBeNull();
    release();
    expect((await first)?.toString()).toBe('one');
    expect((await cache.get('https://a.example/2'))?.toString()).toBe('two');
    cache.close();
  });
});

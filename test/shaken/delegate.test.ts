import { createShakenVerifier, DerError, evaluateChain, parseTnAuthList, tnAuthorised, type DefaultShakenVerifier, type TnAuthorisation } from '../../src/shaken';
import { verifyResults } from '../../src/http/routes/stir';
import { derInt, ia5, seq, tlv, tnAuthList } from './forge';
import { identity, makePki, mapFetcher, type Pki } from './helpers';

/** Delegate certificates (RFC 8226 TNAuthList numbers and ranges; ATIS-1000092). */

const IAT = Math.floor(Date.now() / 1000);
const AT = new Date(IAT * 1000 + 2000);
const TO = '+447400123456';

let pki: Pki;
const verifiers: DefaultShakenVerifier[] = [];
beforeAll(() => {
  pki = makePki();
});
afterAll(async () => {
  await Promise.all(verifiers.map((v) => v.close()));
  pki.cleanup();
});

const hex = (b: Buffer) => b.toString('hex').toUpperCase();

describe('TNAuthList numbers and ranges', () => {
  it('reads one numbers and ranges, EXPLICIT (RFC 8226) and IMPLICIT', () => {
    const explicit = tnAuthList([{ one: '442079460123' }, { start: '442079460100', count: 50 }, { spc: '5678' }]);
    expect(parseTnAuthList(explicit)).toEqual({ spcs: ['5678'], tns: ['442079460123'], ranges: [{ start: '442079460100', count: 50 }] });
    // [2] IMPLICIT one, [1] IMPLICIT range { start, count }
    const implicit = seq(tlv(0x82, Buffer.from('447400000001')), tlv(0xa1, ia5('4474000'), derInt(1000)));
    expect(parseTnAuthList(implicit)).toEqual({ spcs: [], tns: ['447400000001'], ranges: [{ start: '4474000', count: 1000 }] });
  });

  it.each([
    ['a # in a number', tnAuthList([{ one: '4420#' }])],
    ['a * in a number', tnAuthList([{ one: '*123' }])],
    ['letters', tnAuthList([{ one: '44abc' }])],
    ['16 digits', tnAuthList([{ one: '4420794601234567' }])],
    ['an empty number', tnAuthList([{ one: '' }])],
    ['count 1', tnAuthList([{ start: '4420', count: 1 }])],
    ['count 0', tnAuthList([{ start: '4420', count: 0 }])],
    ['a negative count', seq(tlv(0xa1, seq(ia5('4420'), tlv(0x02, Buffer.from([0xfe])))))],
    ['a count not minimally encoded', seq(tlv(0xa1, seq(ia5('4420'), tlv(0x02, Buffer.from([0x00, 0x05])))))],
    ['a huge count', seq(tlv(0xa1, seq(ia5('4420'), tlv(0x02, Buffer.from([0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])))))],
    ['a range past its digits ("999" + 2)', tnAuthList([{ start: '999', count: 2 }])],
    ['a range with a third field', seq(tlv(0xa1, seq(ia5('4420'), derInt(10), derInt(1))))],
    ['a range without a count', seq(tlv(0xa1, seq(ia5('4420'))))],
    ['a count that is not an INTEGER', seq(tlv(0xa1, seq(ia5('4420'), ia5('10'))))],
    ['two values inside [2]', seq(tlv(0xa2, ia5('1'), ia5('2')))],
    ['an SPC with a control character', seq(tlv(0xa0, ia5('56\n78')))],
    ['too many entries', tnAuthList(Array.from({ length: 513 }, (_, i) => ({ one: String(1000 + i) })))],
  ])('refuses %s', (_name, der) => {
    expect(() => parseTnAuthList(der)).toThrow(DerError);
  });

  it('a range is start..start+count-1 among numbers of the start\'s length', () => {
    const auth: TnAuthorisation = { tns: new Set(['447400000001']), ranges: [{ length: 12, lo: 442079460100, hi: 442079460149 }, { length: 4, lo: 12, hi: 21 }] };
    expect(tnAuthorised(auth, '447400000001')).toBe(true);
    expect(tnAuthorised(auth, '442079460100')).toBe(true);
    expect(tnAuthorised(auth, '442079460149')).toBe(true);
    expect(tnAuthorised(auth, '442079460150')).toBe(false);
    expect(tnAuthorised(auth, '442079460099')).toBe(false);
    // Leading zeros belong to the number: "0012".."0021" holds neither "12" nor "00120".
    expect(tnAuthorised(auth, '0015')).toBe(true);
    expect(tnAuthorised(auth, '15')).toBe(false);
    expect(tnAuthorised(auth, '00150')).toBe(false);
    expect(tnAuthorised(auth, '')).toBe(false);
  });

  it('a certificate that names only numbers yields no SPC, and its numbers', () => {
    const leaf = pki.issueLeaf('tn-only-chain', { tnAuthListDer: hex(tnAuthList([{ start: '442079460100', count: 50 }])) });
    const info = evaluateChain(leaf.certPem + pki.intermediate.certPem, [pki.root.cert]);
    expect(info.errors).toEqual([]);
    expect(info.spc).toBeUndefined();
    expect(info.tnAuth && tnAuthorised(info.tnAuth, '442079460123')).toBe(true);
  });
});

describe('verifying with a delegate certificate', () => {
  const X5U = 'https://cr.example.net/delegate.pem';
  function verifierFor(tnAuthListDer: Buffer) {
    const leaf = pki.issueLeaf(`d${verifiers.length}`, { tnAuthListDer: hex(tnAuthListDer) });
    const v = createShakenVerifier({ trustAnchors: [pki.root.cert], fetcher: mapFetcher({ [X5U]: leaf.certPem + pki.intermediate.certPem }) });
    verifiers.push(v);
    const call = (orig: string, from = `+${orig}`, ppt?: { div: string; dest: string[] }) =>
      v.verify({
        identity: identity({ x5u: X5U, key: leaf.key, iat: IAT, orig, dest: [TO.slice(1)], ...(ppt ? { ppt: 'div', ...ppt } : {}) }),
        origCandidates: [from],
        dest: TO,
        receivedAt: AT,
      });
    return call;
  }

  it('TN only: a number of the list passes with authority "tn", orig, and no SPC', async () => {
    const call = verifierFor(tnAuthList([{ one: '442079460123' }, { start: '441632960000', count: 1000 }]));
    for (const orig of ['442079460123', '441632960000', '441632960999']) {
      const r = await call(orig);
      expect(r).toMatchObject({ verstat: 'TN-Validation-Passed', attestation: 'A', authority: 'tn', orig, errors: [] });
      expect(r.spc).toBeUndefined();
    }
  });

  it('TN only: a number outside the list fails with TN_NOT_AUTHORISED, and the failure names no SPC', async () => {
    const call = verifierFor(tnAuthList([{ one: '442079460123' }, { start: '441632960000', count: 1000 }]));
    for (const orig of ['442079460124', '441632961000', '44163296000']) {
      const r = await call(orig);
      expect(r).toMatchObject({ verstat: 'TN-Validation-Failed', attestation: null, errors: ['TN_NOT_AUTHORISED'] });
      expect(r.spc).toBeUndefined();
      expect(r.authority).toBeUndefined();
      expect(r.orig).toBeUndefined();
    }
  });

  it('SPC and numbers: the numbers still bound orig; inside them the authority is the SPC', async () => {
    const call = verifierFor(tnAuthList([{ spc: '5678' }, { one: '442079460123' }]));
    expect(await call('442079460123')).toMatchObject({ verstat: 'TN-Validation-Passed', authority: 'spc', spc: '5678', orig: '442079460123' });
    expect((await call('442079460999')).errors).toEqual(['TN_NOT_AUTHORISED']);
  });

  it('an ordinary SPC certificate: authority "spc" and the orig the signature vouches for', async () => {
    const call = verifierFor(tnAuthList([{ spc: '5678' }]));
    expect(await call('442079460123')).toMatchObject({ verstat: 'TN-Validation-Passed', authority: 'spc', spc: '5678', orig: '442079460123' });
  });

  it('the STI-VS route answers TN_NOT_AUTHORISED with 438', () => {
    expect(verifyResults({ verstat: 'TN-Validation-Failed', attestation: null, errors: ['TN_NOT_AUTHORISED'], fingerprints: [] })).toEqual([
      { reasonCode: 438, reasonText: 'Invalid Identity Header', errors: ['TN_NOT_AUTHORISED'] },
    ]);
  });
});

describe('a diversion signed under a delegate certificate', () => {
  // A bank calls the attacker's own line (a callback it asked for): a genuine PASSporT, orig the
  // bank, dest the attacker. Within the freshness window the attacker "diverts" it to a victim
  // with a div PASSporT signed under its own delegate certificate, which covers its line.
  const BANK = '442079460000';
  const ATTACKER = '447400999888';
  const VICTIM = '447400123456';
  const CARRIER = 'https://certs.carrier.example/sp.pem';
  const DELEGATE = 'https://certs.attacker.example/delegate.pem';

  it('still verifies (RFC 8946 allows the shape), and says the diversion was a delegate\'s', async () => {
    const delegate = pki.issueLeaf('laundering-delegate', { tnAuthListDer: hex(tnAuthList([{ one: ATTACKER }])) });
    const v = createShakenVerifier({
      trustAnchors: [pki.root.cert],
      fetcher: mapFetcher({ [CARRIER]: pki.chainPem, [DELEGATE]: delegate.certPem + pki.intermediate.certPem }),
    });
    verifiers.push(v);
    const genuine = identity({ x5u: CARRIER, key: pki.leaf.key, iat: IAT, orig: BANK, dest: [ATTACKER] });
    const diverted = identity({ x5u: DELEGATE, key: delegate.key, iat: IAT, orig: BANK, ppt: 'div', div: ATTACKER, dest: [VICTIM] });
    const r = await v.verify({ identity: [genuine, diverted], origCandidates: [`+${BANK}`], dest: `+${VICTIM}`, receivedAt: AT });
    expect(r).toMatchObject({ verstat: 'TN-Validation-Passed', attestation: 'A', orig: BANK, diversion: 'tn' });

    // The same diversion signed by a carrier (an SPC certificate) is a carrier's.
    const byCarrier = identity({ x5u: CARRIER, key: pki.leaf.key, iat: IAT, orig: BANK, ppt: 'div', div: ATTACKER, dest: [VICTIM] });
    expect(await v.verify({ identity: [genuine, byCarrier], origCandidates: [`+${BANK}`], dest: `+${VICTIM}`, receivedAt: AT })).toMatchObject({ diversion: 'spc' });
    // A call that reached its number directly names no diversion.
    expect((await v.verify({ identity: genuine, origCandidates: [`+${BANK}`], dest: `+${ATTACKER}`, receivedAt: AT })).diversion).toBeUndefined();
  });
});

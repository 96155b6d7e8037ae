import { parseIdentity, parseIdentityHeaders, splitOutside } from '../../src/shaken';

const b64 = (v: object) => Buffer.from(JSON.stringify(v)).toString('base64url');
const H = b64({ alg: 'ES256', ppt: 'shaken', typ: 'passport', x5u: 'https://cr.example/a.pem' });
const HDIV = b64({ alg: 'ES256', ppt: 'div', typ: 'passport', x5u: 'https://cr.example/a.pem' });
const HBASE = b64({ alg: 'ES256', typ: 'passport', x5u: 'https://cr.example/a.pem' });
const P = b64({ iat: 1 });
const SIG = 'c2lnbmF0dXJl';
const tok = (h = H) => `${h}.${P}.${SIG}`;

describe('splitOutside', () => {
  it('splits on commas outside <...> and quotes', () => {
    expect(splitOutside('a;info=<https://x/a,b.pem>,b;x="1,2",c', ',')).toEqual(['a;info=<https://x/a,b.pem>', 'b;x="1,2"', 'c']);
  });
  it('honours backslash escapes inside quotes', () => {
    expect(splitOutside('a;x="q\\",r",b', ',')).toEqual(['a;x="q\\",r"', 'b']);
  });
});

describe('parseIdentity', () => {
  it('reads token and parameters, angle brackets removed', () => {
    const e = parseIdentity(`${tok()};info=<https://cr.example/a.pem>;alg=ES256;ppt=shaken`);
    expect(e).toMatchObject({ kind: 'shaken', token: tok(), info: 'https://cr.example/a.pem', alg: 'ES256', ppt: 'shaken', errors: [] });
    expect(e.signingInput).toBe(`${H}.${P}`);
    expect(e.signaturePart).toBe(SIG);
  });

  it('takes parameter names case-insensitively, quoted or not, with whitespace and folding', () => {
    const e = parseIdentity(`  ${tok()} ;\r\n  INFO = <https://cr.example/a.pem> ; Alg="ES256";PPT="SHAKEN" `);
    expect(e).toMatchObject({ kind: 'shaken', info: 'https://cr.example/a.pem', alg: 'ES256', ppt: 'shaken', errors: [] });
  });

  it('ignores unknown parameters, including ones holding ; or , inside quotes', () => {
    const e = parseIdentity(`${tok()};foo="a;b,c";info=<https://cr.example/a.pem>;bar;ppt=shaken`);
    expect(e).toMatchObject({ kind: 'shaken', info: 'https://cr.example/a.pem', errors: [] });
  });

  it('keeps the first info when one is appended later', () => {
    expect(parseIdentity(`${tok()};info=<https://cr.example/a.pem>;info=<https://evil.example/x.pem>`).info).toBe('https://cr.example/a.pem');
  });

  it('classifies by the ppt parameter, else by the JWS header', () => {
    expect(parseIdentity(`${tok(HDIV)};info=<u>;ppt=div`).kind).toBe('div');
    expect(parseIdentity(`${tok(HDIV)};info=<u>`).kind).toBe('div');
    expect(parseIdentity(`${tok()};info=<u>`).kind).toBe('shaken');
    expect(parseIdentity(`${tok()};info=<u>;ppt=rph`).kind).toBe('other');
    expect(parseIdentity(`${tok(HBASE)};info=<u>`).kind).toBe('other');
  });

  it('MALFORMED: not three base64url parts, a cut token, garbage, or no info', () => {
    expect(parseIdentity('not a token;info=<u>;ppt=shaken').errors).toEqual(['MALFORMED']);
    expect(parseIdentity(`${H}.${P};info=<u>;ppt=shaken`).errors).toEqual(['MALFORMED']);
    expect(parseIdentity(`${H}.${P}.${SIG}.x;info=<u>`).errors).toContain('MALFORMED');
    expect(parseIdentity(`${H}..${SIG};info=<u>`).errors).toContain('MALFORMED');
    expect(parseIdentity(tok()).errors).toEqual(['MALFORMED']);
    expect(parseIdentity(`${tok()};info=<>`).errors).toEqual(['MALFORMED']);
    // A header part that is base64url but not JSON.
    expect(parseIdentity(`${Buffer.from('nope').toString('base64url')}.${P}.${SIG};info=<u>`).errors).toEqual(['MALFORMED']);
  });

  it('an unreadable identity without ppt still counts as shaken, so it surfaces as MALFORMED', () => {
    expect(parseIdentity('garbage').kind).toBe('shaken');
  });

  it('an empty signature part is accepted by the parser (alg none is judged later)', () => {
    expect(parseIdentity(`${H}.${P}.;info=<u>`)).toMatchObject({ errors: [], signaturePart: '' });
  });

  it('UNSUPPORTED_ALG when the alg parameter is not ES256; MALFORMED when ppt parameter and header disagree', () => {
    expect(parseIdentity(`${tok()};info=<u>;alg=HS256`).errors).toEqual(['UNSUPPORTED_ALG']);
    expect(parseIdentity(`${tok()};info=<u>;ppt=div`).errors).toEqual(['MALFORMED']);
  });

  it('refuses an identity over the length limit', () => {
    expect(parseIdentity(`${tok()};info=<u>;x=${'a'.repeat(100)}`, 50)).toMatchObject({ kind: 'shaken', errors: ['MALFORMED'] });
  });
});

describe('parseIdentityHeaders', () => {
  it('takes a string or an array; each may hold comma-joined identities', () => {
    const one = `${tok()};info=<https://cr.example/a,1.pem>;ppt=shaken`;
    const two = `${tok(HDIV)};info=<https://cr.example/b.pem>;ppt=div`;
    expect(parseIdentityHeaders(`${one}, ${two}`).map((e) => e.kind)).toEqual(['shaken', 'div']);
    expect(parseIdentityHeaders([one, two, `${one},${two}`]).map((e) => e.kind)).toEqual(['shaken', 'div', 'shaken', 'div']);
    expect(parseIdentityHeaders(`${one}, ${two}`)[0]!.info).toBe('https://cr.example/a,1.pem');
  });

  it('skips empty elements', () => {
    expect(parseIdentityHeaders(['', ' , ', `${tok()};info=<u>,`])).toHaveLength(1);
    expect(parseIdentityHeaders([])).toEqual([]);
  });

  it('caps the number of identities and flags the excess', () => {
    const many = Array.from({ length: 5 }, () => `${tok()};info=<u>`).join(',');
    const out = parseIdentityHeaders(many, { maxIdentities: 3 });
    expect(out).toHaveLength(4);
    expect(out[3]).toMatchObject({ kind: 'shaken', errors: ['MALFORMED'] });
  });

  it('never throws on junk', () => {
    for (const junk of ['', ';;;', '<<<', '"unterminated', ',,,', '..', 'a.b.c', '\u0000\uffff']) {
      expect(() => parseIdentityHeaders(junk)).not.toThrow();
    }
    expect(() => parseIdentityHeaders([1, null] as unknown as string[])).not.toThrow();
  });
});

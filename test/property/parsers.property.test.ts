import fc from 'fast-check';
import { cliRestriction, parseNumber } from '../../src/numbers';
import { parseIdentityHeaders } from '../../src/shaken';

/** Hostile and random input never throws out of the parsers, and what they return is coherent. */
const numberLike = fc.oneof(
  fc.string({ maxLength: 300 }),
  fc.stringMatching(/^\+?[0-9 ().-]{0,40}$/),
  fc.tuple(fc.constantFrom('sip:', 'sips:', 'tel:', '<sip:', '"x" <sip:'), fc.string({ maxLength: 60 }), fc.constantFrom('', '@host', '@h;user=phone>', ';npdi@h')).map((p) => p.join('')),
  fc.constantFrom('anonymous', 'withheld', '', '159', '999', '+442079460123', '%', 'sip:%ZZ@h', 'tel:;phone-context=+44'),
);

describe('parseNumber', () => {
  it('never throws, and its answer is coherent', () => {
    fc.assert(
      fc.property(numberLike, fc.constantFrom('GB', 'US', 'FR', 'DE'), (input, country) => {
        const n = parseNumber(input, country);
        if (n.withheld) expect(n).toEqual({ e164: null, valid: false, withheld: true });
        if (n.e164 !== null) expect(n.e164).toMatch(/^\+\d{2,17}$/);
        if (n.shortCode) expect(n.valid).toBe(true);
        expect(() => cliRestriction(n)).not.toThrow();
      }),
      { numRuns: 3000 },
    );
  });

  it('reads an E.164 number the same in every input form', () => {
    fc.assert(
      fc.property(fc.constantFrom('+442079460123', '+447400123456', '+443069990100', '+33123456789'), fc.constantFrom('sip', 'tel', 'plain'), (e164, form) => {
        const input = form === 'sip' ? `sip:${e164}@carrier.example;user=phone` : form === 'tel' ? `tel:${e164}` : e164;
        expect(parseNumber(input, 'GB').e164).toBe(e164);
      }),
    );
  });
});

describe('parseIdentityHeaders', () => {
  const b64 = fc.stringMatching(/^[A-Za-z0-9_-]{0,80}$/);
  const identityLike = fc.oneof(
    fc.string({ maxLength: 500 }),
    fc
      .tuple(b64, b64, b64, fc.constantFrom('', ';info=<https://x.example/a.pem>', ';info=<', ';alg=ES256;ppt="shaken"', ';ppt=div', ',', ';;;'))
      .map(([a, b, c, params]) => `${a}.${b}.${c}${params}`),
  );

  it('never throws, whatever arrives as one value or many', () => {
    fc.assert(
      fc.property(fc.oneof(identityLike, fc.array(identityLike, { maxLength: 12 })), (input) => {
        const entries = parseIdentityHeaders(input);
        expect(Array.isArray(entries)).toBe(true);
        for (const e of entries) expect(typeof e.token).toBe('string');
      }),
      { numRuns: 3000 },
    );
  });
});

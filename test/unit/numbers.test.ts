import { cliRestriction, extractNumberText, parseNumber, ukCategory } from '../../src/numbers';

const gb = (s: string) => parseNumber(s, 'GB');

describe('parseNumber: every input form of the contract', () => {
  it.each([
    ['+442079460123', '+442079460123'],
    ['020 7946 0123', '+442079460123'],
    ['(020) 7946-0123', '+442079460123'],
    ['00442079460123', '+442079460123'],
    ['tel:+44-20-7946-0123', '+442079460123'],
    ['tel:7946 0123;phone-context=+44-20', '+442079460123'],
    ['sip:+442079460123@198.51.100.7;user=phone', '+442079460123'],
    ['sips:+442079460123@carrier.example', '+442079460123'],
    ['<sip:+442079460123@host>;tag=abc', '+442079460123'],
    ['"Example Bank" <sip:+442079460123@host;user=phone>', '+442079460123'],
    ['sip:+44-20-7946-0123;npdi;rn=+442079469999@host;user=phone', '+442079460123'],
    ['sip:%2B442079460123@host', '+442079460123'],
  ])('%s -> %s', (input, e164) => {
    const n = gb(input);
    expect(n).toMatchObject({ e164, valid: true, withheld: false, type: 'FIXED_LINE', country: 'GB' });
  });

  it('reads national numbers with the default country it is given', () => {
    expect(parseNumber('01 23 45 67 89', 'FR')).toMatchObject({ e164: '+33123456789', valid: true, country: 'FR' });
  });

  it.each(['anonymous', 'Anonymous', 'unavailable', 'withheld', '', '  ', 'sip:anonymous@anonymous.invalid', 'sip:anonymous@example.com', '"Anonymous" <sip:anonymous@anonymous.invalid>'])(
    '%j is a withheld caller ID',
    (input) => {
      expect(gb(input)).toEqual({ e164: null, valid: false, withheld: true });
    },
  );

  it.each([
    ['159', 'SHORT_CODE', false],
    ['999', 'EMERGENCY', true],
    ['112', 'EMERGENCY', true],
    ['111', 'SHORT_CODE', false],
    ['118118', 'SHORT_CODE', false],
    ['116123', 'SHORT_CODE', false],
    ['tel:999', 'EMERGENCY', true],
  ])('short code %s is recognised as %s', (input, type, emergency) => {
    const n = gb(input);
    expect(n).toMatchObject({ e164: null, valid: true, withheld: false, type });
    expect(n.shortCode?.emergency).toBe(emergency);
  });

  it('knows the emergency codes of the default country', () => {
    expect(parseNumber('911', 'US').shortCode?.emergency).toBe(true);
    expect(gb('911').shortCode).toBeUndefined();
  });

  it.each(['hello', '+44 20 CALL BANK', '1234', '+4420', '+1555123456', 'sip:@host', 'tel:', '0'.repeat(300), '+'.repeat(20)])(
    '%j is not a valid number, and not withheld',
    (input) => {
      const n = gb(input);
      expect(n.valid).toBe(false);
      expect(n.withheld).toBe(false);
    },
  );

  it('classifies number types with the max metadata', () => {
    expect(gb('07400 123456').type).toBe('MOBILE');
    expect(gb('0345 000 0000').type).toBe('UAN');
    expect(gb('0800 111 1111').type).toBe('TOLL_FREE');
    expect(gb('0901 234 5678').type).toBe('PREMIUM_RATE');
    expect(gb('+33123456789')).toMatchObject({ country: 'FR', type: 'FIXED_LINE' });
  });

  it('extracts the user part of SIP URIs without parameters', () => {
    expect(extractNumberText('sip:+447400123456;npdi@host')).toBe('+447400123456');
    expect(extractNumberText('tel:+447400123456;ext=1')).toBe('+447400123456');
  });
});

describe('cliRestriction: numbers never valid as caller ID (Ofcom CLI guidance)', () => {
  it.each([
    ['09012345678', /premium-rate/],
    ['08712345678', /revenue-sharing/],
    ['159', /159/],
    ['999', /emergency/],
    ['112', /emergency/],
    ['118118', /directory enquiries/],
  ])('%s is never a caller ID', (input, why) => {
    expect(cliRestriction(gb(input))).toMatch(why);
  });

  it.each(['02079460123', '07400123456', '03450000000', '08001111111', '+33123456789'])('%s may be presented', (input) => {
    expect(cliRestriction(gb(input))).toBeNull();
  });
});

describe('ukCategory', () => {
  it('tells UK landline and non-geographic numbers from mobiles, and ignores the rest', () => {
    expect(ukCategory(gb('02079460123'))).toBe('domestic');
    expect(ukCategory(gb('03450000000'))).toBe('domestic');
    expect(ukCategory(gb('07400123456'))).toBe('mobile');
    expect(ukCategory(gb('+33123456789'))).toBeNull();
    expect(ukCategory(gb('anonymous'))).toBeNull();
  });
});

import { getCountries, getCountryCallingCode, parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js/max';
import mobileExamples from 'libphonenumber-js/examples.mobile.json';
import { parseNumber } from '../../src/numbers';
import { NumberClassifier } from '../../src/numbers/classify';

/**
 * The classifier is a compiled copy of libphonenumber-js's own type detection: it must give
 * the library's answer for every number, or the copy has drifted (a new library release that
 * changes the rules shows up here first).
 */
const classifier = new NumberClassifier();

/** A small deterministic generator, so that a failure names a number that fails again. */
function digitsFrom(seed: number) {
  let x = seed >>> 0 || 1;
  return (n: number) => {
    let out = '';
    for (let i = 0; i < n; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      out += String((x >>> 0) % 10);
    }
    return out;
  };
}

function libraryAnswer(text: string) {
  const parsed = parsePhoneNumberFromString(text);
  if (!parsed) return null;
  const type = parsed.getType();
  return { parsed, expected: { valid: parsed.isValid(), ...(type ? { type } : {}) } };
}

function expectSameAsLibrary(text: string): boolean {
  const answer = libraryAnswer(text);
  if (!answer) return false;
  const got = classifier.classify(answer.parsed);
  expect({ text, ...got }).toEqual({ text, ...answer.expected });
  return answer.expected.valid;
}

describe('NumberClassifier gives libphonenumber-js its own answers', () => {
  it.each([
    ['+442079460123', 'FIXED_LINE'],
    ['+447400123456', 'MOBILE'],
    ['+449098790123', 'PREMIUM_RATE'],
    ['+448001111111', 'TOLL_FREE'],
    ['+448700123456', 'PREMIUM_RATE'],
    ['+443001234567', 'UAN'],
    ['+445612345678', 'VOIP'],
    ['+447012345678', 'PERSONAL_NUMBER'],
    ['+445512345678', 'UAN'],
    ['+12025550123', 'FIXED_LINE_OR_MOBILE'],
    ['+441624756789', 'FIXED_LINE'], // Isle of Man: the country is settled by a type walk over +44's countries
    ['+61412345678', 'MOBILE'],
  ])('%s is %s', (text, type) => {
    expect(libraryAnswer(text)?.expected.type).toBe(type);
    expectSameAsLibrary(text);
  });

  it('agrees on numbers around every country\'s example mobile, in every country', () => {
    const next = digitsFrom(20261124);
    let valid = 0;
    let checked = 0;
    for (const country of getCountries()) {
      const example = (mobileExamples as Record<string, string>)[country];
      const cc = getCountryCallingCode(country as CountryCode);
      const bases = example ? [example] : [];
      // Random national numbers of every plausible length, and the example with its tail changed.
      for (let len = 4; len <= 13; len++) bases.push(next(len));
      for (const base of bases) {
        for (let tail = 0; tail < 12; tail++) {
          const national = base.length > 4 ? base.slice(0, base.length - 3) + next(3) : base;
          if (expectSameAsLibrary(`+${cc}${national}`)) valid++;
          checked++;
        }
      }
    }
    // The sample reaches the interesting branches: many valid numbers, many invalid ones.
    expect(valid).toBeGreaterThan(2000);
    expect(checked - valid).toBeGreaterThan(10000);
  });

  it('agrees on non-geographic calling codes and calling codes shared by several countries', () => {
    const next = digitsFrom(7);
    for (const cc of ['800', '808', '870', '878', '881', '882', '883', '888', '979', '1', '7', '44', '61', '262', '590', '599']) {
      for (let i = 0; i < 300; i++) expectSameAsLibrary(`+${cc}${next(6 + (i % 8))}`);
    }
  });

  it('says a number is invalid when its plan is unknown', () => {
    expect(classifier.classify({ country: undefined, countryCallingCode: '999', nationalNumber: '123456' } as never)).toEqual({ valid: false });
  });
});

/** What parseNumber answered before it read `+` and digits itself: the library's parse, then its own validity and type. */
function libraryParse(text: string) {
  const parsed = parsePhoneNumberFromString(text, 'GB');
  if (!parsed) return { e164: null, valid: false };
  const type = parsed.isValid() ? parsed.getType() : undefined;
  return { e164: parsed.number, valid: parsed.isValid(), ...(type ? { type } : {}), ...(parsed.country ? { country: parsed.country } : {}) };
}

function ours(text: string) {
  const n = parseNumber(text, 'GB');
  return { e164: n.e164, valid: n.valid, ...(n.type ? { type: n.type } : {}), ...(n.country ? { country: n.country } : {}) };
}

describe('parseNumber reads + and digits as the library does', () => {
  it('for numbers of every calling code, national prefixes and odd lengths included', () => {
    const next = digitsFrom(44);
    const inputs: string[] = [];
    for (const country of getCountries()) {
      const cc = getCountryCallingCode(country as CountryCode);
      const example = (mobileExamples as Record<string, string>)[country];
      if (example) inputs.push(`+${cc}${example}`, `+${cc}0${example}`, `+${cc}${example.slice(0, -3)}${next(3)}`);
      for (let len = 1; len <= 16 - cc.length; len += 2) inputs.push(`+${cc}${next(len)}`, `+${cc}0${next(len)}`, `+${cc}1${next(len)}`);
    }
    for (const cc of ['800', '808', '870', '878', '881', '882', '883', '888', '979', '0', '00', '999', '28']) {
      for (let len = 1; len <= 15; len++) inputs.push(`+${cc}${next(len)}`);
    }
    inputs.push('+', '+4', '+44', '+440', '+4420', '+44207946012345678901', '+1', '+12');
    let valid = 0;
    for (const text of inputs) {
      const expected = libraryParse(text);
      expect({ text, ...ours(text) }).toEqual({ text, ...expected });
      if (expected.valid) valid++;
    }
    expect(valid).toBeGreaterThan(300);
  });
});

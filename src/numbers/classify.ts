import { Metadata, type NumberType } from 'libphonenumber-js/core';
import metadataMax from 'libphonenumber-js/metadata.max.json';

/**
 * libphonenumber-js's number-type detection (`getNumberType`) and its reading of `+` and digits,
 * over the same `max` metadata, with each pattern compiled once.
 *
 * Why our own copy of a library function: the library's `matchesEntirely` builds a
 * `new RegExp('^(?:' + pattern + ')$')` on every test, and a UK number is tested against a
 * dozen patterns, some hundreds of characters long. `isValid()` and `getType()` each run the
 * whole walk again. Together that was a third of the CPU of scoring a never-seen number.
 * Here the walk runs once per number against compiled patterns, and gives validity and type
 * together. The rules are the library's, line for line (build/helpers/getNumberType.js,
 * build/isValid.js, build/helpers/getCountryByNationalNumber.js and the international branch of
 * build/parse.js in libphonenumber-js 1.13), and test/unit/classify.test.ts checks both against
 * the library's own answers for numbers of every calling code: an upgrade of the library that
 * changes a rule fails there first. Anything unusual is left to the library's full parse.
 */

/** The order the library tries the types in, after FIXED_LINE. */
const NON_FIXED_LINE_TYPES = ['MOBILE', 'PREMIUM_RATE', 'TOLL_FREE', 'SHARED_COST', 'VOIP', 'PERSONAL_NUMBER', 'PAGER', 'UAN', 'VOICEMAIL'] as const;

interface CompiledType {
  pattern: RegExp;
  /** Absent: any length the plan allows. */
  lengths?: readonly number[];
}

interface CompiledPlan {
  national: RegExp;
  hasTypes: boolean;
  fixedLine?: CompiledType;
  mobile?: CompiledType;
  /**
   * The plan has no MOBILE type, or one with an empty pattern: its fixed-line and mobile
   * numbers can't be told apart.
   */
  mobileUndistinguished: boolean;
  others: Array<[NumberType, CompiledType]>;
  /** Where a national prefix would be stripped from a number: anchored at its start. */
  prefixForParsing?: RegExp;
  /** Numbers of this country of a shared calling code start so (tested at the start). */
  leadingDigits?: RegExp;
}

/** The parts of the library's `Metadata` used here: present at runtime, missing from its typings. */
interface PlanMetadata {
  selectNumberingPlan(countryOrCallingCode: string): void;
  hasCallingCode(callingCode: string): boolean;
  getCountryCodesForCallingCode(callingCode: string): string[] | undefined;
  nationalNumberPattern(): string;
  nationalPrefixForParsing(): string | undefined;
  leadingDigits(): string | undefined;
  hasTypes(): boolean;
  type(name: NumberType): { pattern(): string | undefined; possibleLengths(): number[] | undefined } | undefined;
}

/** What the library's parse gives for a number, as far as we use it. */
export interface ParsedInternational {
  country?: string;
  countryCallingCode: string;
  nationalNumber: string;
}

export interface Classification {
  valid: boolean;
  /** Undefined when the number is not valid (or its plan has no types). */
  type?: NumberType;
}

const whole = (pattern: string) => new RegExp(`^(?:${pattern})$`);

export class NumberClassifier {
  private readonly metadata = new (Metadata as unknown as new (json: object) => PlanMetadata)(metadataMax);
  private readonly plans = new Map<string, CompiledPlan | null>();

  /**
   * Reads `+` and digits as the library's parse does, when that is simple: the calling code is
   * the shortest prefix of one to three digits that is one, and the rest is the national number.
   * The library's country choice among a calling code's countries (getCountryByNationalNumber)
   * is copied too. Returns undefined when the library must be asked: a number the calling code's
   * national prefix could be stripped from (`+44 0 20...`), unknown calling codes, odd lengths.
   */
  readInternational(digits: string): ParsedInternational | undefined {
    if (digits.length < 3 || digits.length > 18 || digits[0] === '0') return undefined;
    for (let len = 1; len <= 3; len++) {
      const callingCode = digits.slice(0, len);
      const countries = this.countriesOf(callingCode);
      if (countries === null) continue;
      const nationalNumber = digits.slice(len);
      // The library's limits on a national number (MIN/MAX_LENGTH_FOR_NSN).
      if (nationalNumber.length < 2 || nationalNumber.length > 17) return undefined;
      const plan = this.plan(callingCode);
      if (!plan || plan.prefixForParsing?.test(nationalNumber)) return undefined;
      const country = this.countryOf(countries, nationalNumber);
      return country ? { country, countryCallingCode: callingCode, nationalNumber } : { countryCallingCode: callingCode, nationalNumber };
    }
    return undefined;
  }

  /** Per calling code: its countries, undefined for a non-geographic one, null when it is none. */
  private readonly callingCodes = new Map<string, readonly string[] | undefined | null>();
  private countriesOf(callingCode: string): readonly string[] | undefined | null {
    let countries = this.callingCodes.get(callingCode);
    if (countries === undefined && !this.callingCodes.has(callingCode)) {
      countries = this.metadata.hasCallingCode(callingCode) ? this.metadata.getCountryCodesForCallingCode(callingCode) : null;
      this.callingCodes.set(callingCode, countries);
    }
    return countries;
  }

  /** The library's getCountryByCallingCode: the first country whose leading digits or number types fit. */
  private countryOf(countries: readonly string[] | undefined, nationalNumber: string): string | undefined {
    if (!countries) return undefined;
    if (countries.length === 1) return countries[0];
    for (const country of countries) {
      const plan = this.plan(country);
      if (!plan) continue;
      if (plan.leadingDigits) {
        if (plan.leadingDigits.test(nationalNumber)) return country;
      } else if (plan.national.test(nationalNumber) && this.typeOf(plan, nationalNumber)) {
        return country;
      }
    }
    return undefined;
  }

  /** Validity and type of a number parsed by libphonenumber-js (`max` metadata). */
  classify(parsed: { country?: string; countryCallingCode: string; nationalNumber: string }): Classification {
    const plan = this.plan(parsed.country ?? parsed.countryCallingCode);
    const national = parsed.nationalNumber;
    if (!plan || !plan.national.test(national)) return { valid: false };
    if (!plan.hasTypes) return { valid: true };
    const type = this.typeOf(plan, national);
    return type ? { valid: true, type } : { valid: false };
  }

  private typeOf(plan: CompiledPlan, national: string): NumberType | undefined {
    if (plan.fixedLine && matches(plan.fixedLine, national)) {
      if (plan.mobileUndistinguished || (plan.mobile && matches(plan.mobile, national))) return 'FIXED_LINE_OR_MOBILE';
      return 'FIXED_LINE';
    }
    for (const [type, compiled] of plan.others) if (matches(compiled, national)) return type;
    return undefined;
  }

  /** Keyed by country, or by calling code when the library left the country open (as it selects the plan). */
  private plan(key: string | undefined): CompiledPlan | null {
    if (!key) return null;
    let plan = this.plans.get(key);
    if (plan === undefined) {
      plan = this.compile(key);
      this.plans.set(key, plan);
    }
    return plan;
  }

  private compile(key: string): CompiledPlan | null {
    const m = this.metadata;
    try {
      m.selectNumberingPlan(key);
    } catch {
      return null;
    }
    const compiledType = (name: NumberType): CompiledType | undefined => {
      const t = m.type(name);
      const pattern = t?.pattern();
      if (!t || !pattern) return undefined;
      const lengths = t.possibleLengths();
      return { pattern: whole(pattern), ...(lengths ? { lengths } : {}) };
    };
    const mobileType = m.type('MOBILE');
    const prefixForParsing = m.nationalPrefixForParsing();
    const leadingDigits = m.leadingDigits();
    return {
      ...(prefixForParsing ? { prefixForParsing: new RegExp(`^(?:${prefixForParsing})`) } : {}),
      ...(leadingDigits ? { leadingDigits: new RegExp(`^(?:${leadingDigits})`) } : {}),
      national: whole(m.nationalNumberPattern()),
      hasTypes: m.hasTypes(),
      fixedLine: compiledType('FIXED_LINE'),
      mobile: compiledType('MOBILE'),
      mobileUndistinguished: mobileType === undefined || mobileType.pattern() === '',
      others: NON_FIXED_LINE_TYPES.flatMap((t) => {
        const c = compiledType(t);
        return c ? [[t, c] as [NumberType, CompiledType]] : [];
      }),
    };
  }
}

function matches(t: CompiledType, national: string): boolean {
  if (t.lengths && !t.lengths.includes(national.length)) return false;
  return t.pattern.test(national);
}

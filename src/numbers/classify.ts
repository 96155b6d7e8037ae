import { Metadata, type NumberType, type PhoneNumber as LibPhoneNumber } from 'libphonenumber-js/core';
import metadataMax from 'libphonenumber-js/metadata.max.json';

/**
 * libphonenumber-js's number-type detection (`getNumberType`), over the same `max` metadata,
 * with each pattern compiled once.
 *
 * Why our own copy of a library function: the library's `matchesEntirely` builds a
 * `new RegExp('^(?:' + pattern + ')$')` on every test, and a UK number is tested against a
 * dozen patterns, some hundreds of characters long. `isValid()` and `getType()` each run the
 * whole walk again. Together that was a third of the CPU of scoring a never-seen number.
 * Here the walk runs once per number against compiled patterns, and gives validity and type
 * together. The rules are the library's, line for line (build/helpers/getNumberType.js,
 * build/isValid.js in libphonenumber-js 1.13), and test/unit/classify.test.ts checks this
 * against the library's own answers for numbers of every calling code.
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
}

/** The parts of the library's `Metadata` used here: present at runtime, missing from its typings. */
interface PlanMetadata {
  selectNumberingPlan(countryOrCallingCode: string): void;
  nationalNumberPattern(): string;
  hasTypes(): boolean;
  type(name: NumberType): { pattern(): string | undefined; possibleLengths(): number[] | undefined } | undefined;
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

  /** Validity and type of a number parsed by libphonenumber-js (`max` metadata). */
  classify(parsed: Pick<LibPhoneNumber, 'country' | 'countryCallingCode' | 'nationalNumber'>): Classification {
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
    return {
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

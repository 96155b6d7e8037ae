import { displayOf } from '../../src/scoring';
import type { ShakenSignal } from '../../src/scoring';

/** displayOf: the caller name a switch may show, from the decision and the call's facts alone. */

const caller = { e164: '+447400111222', valid: true, withheld: false };
const registry = { bankId: 'b', bankName: 'Example Bank', inboundOnly: false, match: 'number' as const, key: '+447400111222' };
const passed: ShakenSignal = { source: 'passport', verstat: 'TN-Validation-Passed', attestation: 'A', orig: '447400111222', rcd: { name: 'Acme' }, errors: [] };
const reasons = (...codes: string[]) => codes.map((code) => ({ code, weight: 0, message: '' })) as never;

describe('displayOf', () => {
  it('registry name for BANK_VERIFIED or BANK_CALL_EXPECTED, unless blocked', () => {
    for (const code of ['BANK_VERIFIED', 'BANK_CALL_EXPECTED']) {
      expect(displayOf({ caller, registry, shaken: passed }, { verdict: 'flag', reasons: reasons(code) })).toEqual({ name: 'Example Bank', source: 'registry' });
      expect(displayOf({ caller, registry, shaken: passed }, { verdict: 'block', reasons: reasons(code) })).toBeUndefined();
    }
  });

  it('the registry alone earns nothing: the rcd name, when verified, else nothing', () => {
    expect(displayOf({ caller, registry, shaken: passed }, { verdict: 'allow', reasons: reasons('SHAKEN_ATTEST_A') })).toEqual({ name: 'Acme', source: 'rcd' });
    expect(displayOf({ caller, registry, shaken: { ...passed, rcd: {} } }, { verdict: 'allow', reasons: reasons() })).toBeUndefined();
  });

  it('no rcd name for a call not verified for the caller ID shown, replayed, or blocked', () => {
    const allow = { verdict: 'allow' as const, reasons: reasons() };
    expect(displayOf({ caller, registry: null, shaken: { ...passed, verstat: 'TN-Validation-Failed' } }, allow)).toBeUndefined();
    expect(displayOf({ caller, registry: null, shaken: { ...passed, orig: '447400999999' } }, allow)).toBeUndefined();
    expect(displayOf({ caller, registry: null, shaken: { ...passed, diversion: 'tn' } }, allow)).toBeUndefined();
    expect(displayOf({ caller, registry: null, shaken: { ...passed, source: 'upstream' } }, allow)).toBeUndefined();
    expect(displayOf({ caller, registry: null, shaken: passed }, { verdict: 'allow', reasons: reasons('PASSPORT_REPLAY') })).toBeUndefined();
    expect(displayOf({ caller, registry: null, shaken: passed }, { verdict: 'block', reasons: reasons() })).toBeUndefined();
  });

  it('cleans what it shows', () => {
    const hostile = { ...registry, bankName: '"Bank"\r\n<x>' };
    expect(displayOf({ caller, registry: hostile, shaken: passed }, { verdict: 'allow', reasons: reasons('BANK_VERIFIED') })).toEqual({ name: 'Bank x', source: 'registry' });
  });
});

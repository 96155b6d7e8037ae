import { Behaviour } from '../../src/calls/behaviour';
import type { Evidence } from '../../src/calls/evidence';
import { parseNumber } from '../../src/numbers';
import type { RegistryMatch } from '../../src/registry';
import { decide, DEFAULT_POLICY, failsChecks, type BehaviourSignals, type CallSignals, type ObservedCall } from '../../src/scoring';
import { MemoryCallState } from '../../src/state/memory/call-state';

/** BANK_CALL_EXPECTED and BANK_CALL_UNEXPECTED: the rules, and what the call state is asked for them. */

const n = (s: string) => parseNumber(s, 'GB');
const NO_SHAKEN: CallSignals['shaken'] = { source: 'none', verstat: 'No-TN-Validation', attestation: null, errors: [] };
const signedA = (orig: string): CallSignals['shaken'] => ({
  source: 'passport', verstat: 'TN-Validation-Passed', attestation: 'A', spc: '1234', authority: 'spc', orig: orig.slice(1), errors: [],
});

const BANK_NUMBER = '+442079460000';
const CUSTOMER = '+447400123456';
const outbound: RegistryMatch = { bankId: 'examplebank', bankName: 'Example Bank', inboundOnly: false, authorisedSpcs: ['1234'], match: 'number', key: BANK_NUMBER };
const announcing: RegistryMatch = { ...outbound, announcesCalls: true };
const inbound: RegistryMatch = { bankId: 'examplebank', bankName: 'Example Bank', inboundOnly: true, match: 'number', key: '+443450000000' };

function call(over: Partial<CallSignals> = {}): CallSignals {
  return { caller: n(BANK_NUMBER), callee: n(CUSTOMER), origin: {}, registry: outbound, shaken: NO_SHAKEN, ...over };
}
const decided = (over: Partial<CallSignals>, behaviour: BehaviourSignals | undefined) => decide(call({ ...over, behaviour }), DEFAULT_POLICY);
const codes = (over: Partial<CallSignals>, behaviour: BehaviourSignals | undefined) => decided(over, behaviour).reasons.map((r) => r.code);

describe('BANK_CALL_EXPECTED', () => {
  it("a bank's outbound number calling the number it announced: a strong credit, and allow", () => {
    const d = decided({}, { announced: true });
    expect(d.reasons.map((r) => r.code)).toEqual(['SHAKEN_ABSENT', 'BANK_CALL_EXPECTED']);
    expect(d.reasons[1]!.weight).toBe(DEFAULT_POLICY.weights.BANK_CALL_EXPECTED);
    expect(DEFAULT_POLICY.weights.BANK_CALL_EXPECTED).toBeLessThan(0);
    expect(d.reasons[1]!.message).toMatch(/Example Bank announced this call \(\+442079460000 to \+447400123456\)/);
    expect(d).toMatchObject({ verdict: 'allow', score: 0 });
  });

  it('not without an announcement, nor when the call state was not asked', () => {
    expect(codes({}, { announced: false })).toEqual(['SHAKEN_ABSENT']);
    expect(codes({}, {})).toEqual(['SHAKEN_ABSENT']);
    expect(codes({}, undefined)).toEqual(['SHAKEN_ABSENT']);
  });

  it('never for a number that is not an outbound registry number', () => {
    expect(codes({ registry: null }, { announced: true })).toEqual(['SHAKEN_ABSENT']);
    expect(codes({ caller: n('+443450000000'), registry: inbound }, { announced: true })).toEqual(['CLI_DNO', 'SHAKEN_ABSENT']);
  });

  it.each([
    ['a carrier the bank does not authorise', { origin: { carrier: '9999' } }, 'BANK_UNAUTHORISED_ORIGIN'],
    ['signed by a carrier the bank does not authorise', { shaken: { ...signedA(BANK_NUMBER), spc: '9999' } }, 'BANK_UNAUTHORISED_ORIGIN'],
    ['a UK landline number from abroad', { origin: { international: true, country: 'NG' } }, 'CLI_DOMESTIC_FROM_ABROAD'],
    ['a UK mobile number from abroad', { caller: n('+447400900123'), registry: { ...outbound, key: '+447400900123' }, origin: { international: true } }, 'CLI_MOBILE_FROM_ABROAD'],
    ['a PASSporT that failed verification', { shaken: { source: 'passport', verstat: 'TN-Validation-Failed', attestation: null, errors: ['BAD_SIGNATURE'] } }, 'SHAKEN_INVALID'],
  ] as const)('no credit when the call says otherwise: %s', (_what, over, contrary) => {
    for (const registry of [outbound, announcing]) {
      const c = codes({ registry, ...over } as Partial<CallSignals>, { announced: true });
      expect(c).toContain(contrary);
      // Announced all the same: not unexpected either.
      expect(c).not.toEqual(expect.arrayContaining([expect.stringMatching(/^BANK_CALL_/)]));
    }
  });

  it('no credit for a call whose PASSporT was replayed', () => {
    const d = decided({ shaken: signedA(BANK_NUMBER) }, { announced: true, replayed: true });
    expect(d.reasons.map((r) => r.code)).toEqual(['PASSPORT_REPLAY']);
    expect(d.verdict).not.toBe('allow');
  });

  it('nothing signature-based turns into it: a verified bank call that was not announced gets no BANK_CALL_EXPECTED', () => {
    expect(codes({ shaken: signedA(BANK_NUMBER) }, { announced: false })).toEqual(['BANK_VERIFIED', 'SHAKEN_ATTEST_A']);
    // Signed for the PAI: the From number earns nothing from the signature, with or without an announcement.
    const viaPai = { network: n('+447400999888'), shaken: signedA('+447400999888') };
    expect(codes(viaPai, { announced: false })).toEqual(['SHAKEN_ATTEST_A']);
    expect(codes({ ...viaPai, registry: announcing }, { announced: false })).toEqual(['SHAKEN_ATTEST_A', 'BANK_CALL_UNEXPECTED']);
    // The announcement named the From number, which is what was matched: its credit stands, the signature's does not.
    const d = decided(viaPai, { announced: true });
    expect(d.reasons.map((r) => [r.code, r.weight])).toEqual([
      ['SHAKEN_ATTEST_A', 0],
      ['BANK_CALL_EXPECTED', DEFAULT_POLICY.weights.BANK_CALL_EXPECTED],
    ]);
  });

  it("is the bank's own evidence: what spoofers of its number did does not weigh on the call, and it never feeds a campaign", () => {
    const crowd: BehaviourSignals = {
      distinctDestinations: [{ seconds: 60, count: 500 }],
      campaign: { bankId: 'examplebank', bankName: 'Example Bank', failedCalls: 40, since: '2026-12-07T10:00:00Z' },
      reports: { count: 3, newestAgeS: 60, categories: ['spoof'] },
    };
    const announced = decided({}, { ...crowd, announced: true });
    expect(announced.reasons.map((r) => r.code)).toEqual(['SHAKEN_ABSENT', 'BANK_CALL_EXPECTED']);
    expect(announced.verdict).toBe('allow');
    expect(failsChecks(announced)).toBe(false);
    const unannounced = decided({}, { ...crowd, announced: false });
    expect(unannounced.reasons.map((r) => r.code)).toEqual(expect.arrayContaining(['VELOCITY_HIGH', 'CAMPAIGN_ACTIVE', 'REPORTED_FRAUD']));
    expect(failsChecks(unannounced)).toBe(true);
  });
});

describe('BANK_CALL_UNEXPECTED', () => {
  it('an organisation that announces every call, and announced not this one: at least flag, even when its carrier signed it', () => {
    const plain = decided({ registry: announcing }, { announced: false });
    expect(plain.reasons.map((r) => r.code)).toEqual(['SHAKEN_ABSENT', 'BANK_CALL_UNEXPECTED']);
    expect(plain.reasons[1]!.message).toMatch(/Example Bank announces every call/);
    expect(plain.verdict).toBe('flag');
    const signed = decided({ registry: announcing, shaken: signedA(BANK_NUMBER) }, { announced: false });
    expect(signed.reasons.map((r) => r.code)).toEqual(['BANK_VERIFIED', 'SHAKEN_ATTEST_A', 'BANK_CALL_UNEXPECTED']);
    expect(signed.score).toBeLessThan(DEFAULT_POLICY.thresholds.flag);
    expect(signed.verdict).toBe('flag');
  });

  it('not when the call was announced, nor for an organisation that does not announce its calls', () => {
    expect(codes({ registry: announcing }, { announced: true })).toEqual(['SHAKEN_ABSENT', 'BANK_CALL_EXPECTED']);
    expect(codes({ registry: outbound }, { announced: false })).toEqual(['SHAKEN_ABSENT']);
  });

  it('not when the call state was not asked (no announcement could be looked up)', () => {
    expect(codes({ registry: announcing }, {})).toEqual(['SHAKEN_ABSENT']);
  });

  it('emergency calls are left as they are', () => {
    const d = decided({ registry: announcing, callee: n('999') }, { announced: false });
    expect(d.reasons.map((r) => r.code)).toEqual(['EMERGENCY_CALL', 'SHAKEN_ABSENT']);
    expect(d.verdict).toBe('allow');
    expect(codes({ callee: n('999') }, { announced: true })).toEqual(['EMERGENCY_CALL', 'SHAKEN_ABSENT']);
  });
});

describe('the decision on cached facts', () => {
  it('follows the announcement read with each call, never the facts it was first decided on', () => {
    const facts = call({ registry: announcing });
    for (const announced of [true, false, true]) {
      const fresh = decide({ ...facts, behaviour: { announced } }, DEFAULT_POLICY);
      expect(decide(facts, DEFAULT_POLICY, { announced }, true)).toEqual(fresh);
    }
  });
});

describe('what a call asks the call state (Behaviour)', () => {
  const behaviour = new Behaviour<Evidence>(new MemoryCallState<Evidence>(), DEFAULT_POLICY);
  const observed = (over: Partial<ObservedCall> = {}): ObservedCall => ({ caller: n(BANK_NUMBER), callee: n(CUSTOMER), registry: outbound, fingerprints: [], at: Date.parse('2026-12-07T10:00:00Z'), ...over });
  const asked = (c: ObservedCall) => behaviour.readOf(c, 't', null).announcement;

  it('the From number and the called number, for an outbound registry number', () => {
    expect(asked(observed())).toEqual({ caller: BANK_NUMBER, callee: CUSTOMER });
    expect(asked(observed({ registry: announcing }))).toEqual({ caller: BANK_NUMBER, callee: CUSTOMER });
  });

  it('nothing for a number no organisation calls from, or a called number with no E.164 form', () => {
    expect(asked(observed({ registry: null }))).toBeNull();
    expect(asked(observed({ registry: inbound }))).toBeNull();
    expect(asked(observed({ callee: n('999') }))).toBeNull();
  });

  it('the answer becomes the signal; not asked, no signal', () => {
    const reading = { destinations: null, presenters: [], reports: null, campaign: null, cached: undefined };
    expect(behaviour.signals(observed(), 't', { ...reading, announced: true }).announced).toBe(true);
    expect(behaviour.signals(observed(), 't', { ...reading, announced: false }).announced).toBe(false);
    expect(behaviour.signals(observed(), 't', { ...reading, announced: null })).not.toHaveProperty('announced');
  });
});

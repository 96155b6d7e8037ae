import { parseNumber } from '../../src/numbers';
import type { RegistryMatch } from '../../src/registry';
import { decide, DEFAULT_POLICY, failsChecks, REASON_CODES, type CallSignals, type Policy, type ReasonCode } from '../../src/scoring';

const n = (s: string) => parseNumber(s, 'GB');
const NO_SHAKEN: CallSignals['shaken'] = { source: 'none', verstat: 'No-TN-Validation', attestation: null, errors: [] };
/** A verified attestation A, its PASSporT signed for `orig` (the default caller's number unless given). */
const signedA = (orig = '+442079460123'): CallSignals['shaken'] => ({
  source: 'passport', verstat: 'TN-Validation-Passed', attestation: 'A', spc: '1234', authority: 'spc', orig: orig.slice(1), errors: [],
});
const VERIFIED_A = signedA();

const bankOutbound: RegistryMatch = {
  bankId: 'examplebank', bankName: 'Example Bank', inboundOnly: false, authorisedSpcs: ['1234'], match: 'number', key: '+442079460000',
};
const bankDno: RegistryMatch = { bankId: 'examplebank', bankName: 'Example Bank', inboundOnly: true, match: 'number', key: '+443450000000' };

function call(over: Partial<CallSignals> = {}): CallSignals {
  return { caller: n('+442079460123'), callee: n('+447400123456'), origin: {}, registry: null, shaken: NO_SHAKEN, ...over };
}
const codes = (s: CallSignals, policy: Policy = DEFAULT_POLICY) => decide(s, policy).reasons.map((r) => r.code);

describe('decide: the verdicts the service promises', () => {
  it('allows an ordinary valid UK number with no attestation (most UK calls today)', () => {
    const d = decide(call(), DEFAULT_POLICY);
    expect(d.verdict).toBe('allow');
    expect(d.reasons.map((r) => r.code)).toEqual(['SHAKEN_ABSENT']);
    expect(d.score).toBe(DEFAULT_POLICY.baseScore + DEFAULT_POLICY.weights.SHAKEN_ABSENT);
  });

  it('blocks a bank inbound-only number used as caller ID, whatever else the call carries', () => {
    const d = decide(call({ caller: n('+443450000000'), registry: bankDno, shaken: VERIFIED_A }), DEFAULT_POLICY);
    expect(d.verdict).toBe('block');
    expect(d.reasons.map((r) => r.code)).toContain('CLI_DNO');
    expect(d.reasons.map((r) => r.code)).not.toContain('BANK_VERIFIED');
  });

  it('blocks a UK landline number arriving from abroad: the iSpoof pattern', () => {
    const d = decide(call({ caller: n('+442079460000'), registry: bankOutbound, origin: { international: true, country: 'NG' } }), DEFAULT_POLICY);
    expect(d.verdict).toBe('block');
    expect(d.reasons.map((r) => r.code)).toEqual(expect.arrayContaining(['CLI_DOMESTIC_FROM_ABROAD', 'SHAKEN_ABSENT']));
    expect(d.reasons.find((r) => r.code === 'CLI_DOMESTIC_FROM_ABROAD')?.message).toMatch(/from NG/);
  });

  it('flags, not blocks, a UK mobile from abroad: its owner may be roaming', () => {
    const d = decide(call({ caller: n('07400 123456'), callee: n('02079460123'), origin: { international: true } }), DEFAULT_POLICY);
    expect(d.verdict).toBe('flag');
    expect(d.reasons.map((r) => r.code)).toContain('CLI_MOBILE_FROM_ABROAD');
  });

  it('does not treat a foreign number from abroad as suspicious', () => {
    expect(codes(call({ caller: n('+33123456789'), origin: { international: true } }))).toEqual(['SHAKEN_ABSENT']);
  });

  it('verifies a genuine bank call: attestation A by an authorised SPC', () => {
    const d = decide(call({ caller: n('+442079460000'), registry: bankOutbound, shaken: signedA('+442079460000') }), DEFAULT_POLICY);
    expect(d.reasons.map((r) => r.code)).toEqual(['BANK_VERIFIED', 'SHAKEN_ATTEST_A']);
    expect(d.reasons[0]?.weight).toBeLessThan(0);
    expect(d).toMatchObject({ verdict: 'allow', score: 0 });
  });

  it('a bank number signed by a carrier the bank does not authorise', () => {
    const d = decide(call({ caller: n('+442079460000'), registry: bankOutbound, shaken: { ...VERIFIED_A, spc: '9999' } }), DEFAULT_POLICY);
    expect(d.reasons.map((r) => r.code)).toContain('BANK_UNAUTHORISED_ORIGIN');
    expect(d.reasons.map((r) => r.code)).not.toContain('BANK_VERIFIED');
    expect(d.reasons.find((r) => r.code === 'BANK_UNAUTHORISED_ORIGIN')?.message).toMatch(/carrier 9999/);
    expect(d.verdict).not.toBe('allow');
  });

  it('a bank number arriving from a carrier (origin.carrier) the bank does not authorise is blocked', () => {
    const d = decide(call({ caller: n('+442079460000'), registry: bankOutbound, origin: { carrier: '7777' } }), DEFAULT_POLICY);
    expect(d.reasons.map((r) => r.code)).toContain('BANK_UNAUTHORISED_ORIGIN');
    expect(d.verdict).toBe('block');
  });

  it('an authorised carrier with an upstream attestation A verifies the bank number', () => {
    const d = decide(
      call({ caller: n('+442079460000'), registry: bankOutbound, origin: { carrier: '1234' }, shaken: { source: 'upstream', verstat: 'TN-Validation-Passed', attestation: 'A', errors: [] } }),
      DEFAULT_POLICY,
    );
    expect(d.reasons.map((r) => r.code)).toEqual(['BANK_VERIFIED', 'SHAKEN_ATTEST_A']);
  });

  it('a bank number that allows any carrier is verified by any attestation A', () => {
    const anyCarrier: RegistryMatch = { ...bankOutbound, authorisedSpcs: undefined } as RegistryMatch;
    delete (anyCarrier as { authorisedSpcs?: string[] }).authorisedSpcs;
    expect(codes(call({ registry: anyCarrier, shaken: { ...VERIFIED_A, spc: '4242' } }))).toEqual(['BANK_VERIFIED', 'SHAKEN_ATTEST_A']);
  });

  it('always allows emergency calls, even from a spoofed bank number', () => {
    const d = decide(call({ caller: n('+443450000000'), callee: n('999'), registry: bankDno, origin: { international: true } }), DEFAULT_POLICY);
    expect(d.verdict).toBe('allow');
    expect(d.reasons[0]?.code).toBe('EMERGENCY_CALL');
    expect(d.score).toBeGreaterThan(DEFAULT_POLICY.thresholds.block); // the risk is still reported
  });

  it.each([
    ['withheld', 'anonymous', 'CLI_WITHHELD', 'allow'],
    ['invalid', '+4420', 'CLI_INVALID', 'block'],
    ['premium rate', '09012345678', 'CLI_NOT_ALLOWED_TYPE', 'block'],
    ['159', '159', 'CLI_NOT_ALLOWED_TYPE', 'block'],
    ['999 as caller ID', '999', 'CLI_NOT_ALLOWED_TYPE', 'block'],
  ])('%s caller ID gives %s', (_what, from, code, verdict) => {
    const d = decide(call({ caller: n(from) }), DEFAULT_POLICY);
    expect(d.reasons.map((r) => r.code)).toContain(code);
    expect(d.verdict).toBe(verdict);
  });

  it('an invalid caller ID is blocked even with attestation A (verdict floor)', () => {
    const d = decide(call({ caller: n('+4420'), shaken: signedA('+4420') }), DEFAULT_POLICY);
    expect(d.score).toBeLessThan(DEFAULT_POLICY.thresholds.block);
    expect(d.verdict).toBe('block');
  });

  it('a valid number in a block Ofcom lists as not allocated is invalid, naming the status', () => {
    const d = decide(call({ caller: n('+441134962000'), numbering: { status: 'free' } }), DEFAULT_POLICY);
    expect(d.reasons.find((r) => r.code === 'CLI_INVALID')?.message).toMatch(/Ofcom lists as free \(not allocated\)/);
    expect(d.verdict).toBe('block');
    expect(codes(call({ caller: n('+441134961000'), numbering: { status: 'allocated', operator: 'Example Telecom Ltd' } }))).toEqual(['SHAKEN_ABSENT']);
  });

  it('checks the network number (PAI) too', () => {
    expect(codes(call({ network: n('+4420') }))).toContain('CLI_INVALID');
    expect(codes(call({ network: n('09012345678') }))).toContain('CLI_NOT_ALLOWED_TYPE');
    expect(codes(call({ network: n('+442079460999') }))).toEqual(['SHAKEN_ABSENT']);
  });
});

describe('decide: a signature vouches for its orig and nothing else', () => {
  const bank = n('+442079460000');
  const anyCarrier = { ...bankOutbound } as RegistryMatch;
  delete (anyCarrier as { authorisedSpcs?: string[] }).authorisedSpcs;

  it.each([
    ['an authorised carrier', bankOutbound],
    ['any carrier', anyCarrier],
  ])('a PASSporT signed for the PAI earns a bank number in From nothing (%s)', (_what, registry) => {
    // The attacker's own line, honestly signed A by its carrier, presenting a bank's number in From.
    const d = decide(call({ caller: bank, network: n('+447400999888'), registry, shaken: signedA('+447400999888') }), DEFAULT_POLICY);
    expect(d.reasons.map((r) => r.code)).not.toContain('BANK_VERIFIED');
    const attest = d.reasons.find((r) => r.code === 'SHAKEN_ATTEST_A');
    expect(attest?.weight).toBe(0);
    expect(attest?.message).toMatch(/vouches for \+447400999888, not for the caller ID/);
    expect(d.score).toBeGreaterThanOrEqual(DEFAULT_POLICY.baseScore);
  });

  it('a verified PASSporT that carries no orig is credit to nobody', () => {
    const { orig: _orig, ...noOrig } = signedA('+442079460000');
    expect(codes(call({ caller: bank, registry: anyCarrier, shaken: noOrig }))).not.toContain('BANK_VERIFIED');
  });

  it('a risk an attestation carries still counts when it is for another number', () => {
    const d = decide(call({ network: n('+447400999888'), shaken: { ...signedA('+447400999888'), attestation: 'C' } }), DEFAULT_POLICY);
    expect(d.reasons.find((r) => r.code === 'SHAKEN_ATTEST_C')?.weight).toBe(DEFAULT_POLICY.weights.SHAKEN_ATTEST_C);
  });

  it("a diversion signed under a delegate certificate lends the bank's number nothing", () => {
    // See test/shaken/delegate.test.ts: a genuine bank PASSporT to the attacker's line, "diverted" by it.
    const laundered: CallSignals['shaken'] = { ...signedA('+442079460000'), diversion: 'tn' };
    const d = decide(call({ caller: bank, registry: anyCarrier, shaken: laundered }), DEFAULT_POLICY);
    expect(d.reasons.map((r) => r.code)).not.toContain('BANK_VERIFIED');
    expect(d.reasons.find((r) => r.code === 'SHAKEN_ATTEST_A')?.message).toMatch(/diversion signed under a delegate certificate/);
    expect(d.reasons.every((r) => r.weight >= 0)).toBe(true);
    // Diverted by a carrier, the bank's call keeps its credit.
    expect(codes(call({ caller: bank, registry: anyCarrier, shaken: { ...signedA('+442079460000'), diversion: 'spc' } }))).toContain('BANK_VERIFIED');
  });

  it('a bank number in From with a signer the bank does not authorise is unauthorised, whatever number was signed', () => {
    const d = decide(call({ caller: bank, network: n('+447400999888'), registry: bankOutbound, shaken: { ...signedA('+447400999888'), spc: '9999' } }), DEFAULT_POLICY);
    expect(d.reasons.map((r) => r.code)).toContain('BANK_UNAUTHORISED_ORIGIN');
    expect(d.verdict).not.toBe('allow');
  });

  it('a delegate certificate (no SPC) cannot satisfy authorisedSpcs', () => {
    const delegate: CallSignals['shaken'] = { source: 'passport', verstat: 'TN-Validation-Passed', attestation: 'A', authority: 'tn', orig: '442079460000', errors: [] };
    const d = decide(call({ caller: bank, registry: bankOutbound, shaken: delegate }), DEFAULT_POLICY);
    expect(d.reasons.map((r) => r.code)).toContain('BANK_UNAUTHORISED_ORIGIN');
    expect(d.reasons.map((r) => r.code)).not.toContain('BANK_VERIFIED');
    expect(d.reasons.find((r) => r.code === 'BANK_UNAUTHORISED_ORIGIN')?.message).toMatch(/delegate certificate/);
    // Where the bank names no carriers, a delegate certificate for its number verifies it.
    expect(codes(call({ caller: bank, registry: anyCarrier, shaken: delegate }))).toContain('BANK_VERIFIED');
  });
});

describe('decide: a certificate that could not be had is not a forgery', () => {
  it.each([['X5U_FETCH_FAILED'], ['X5U_POLICY']] as const)('%s scores as unverified, never as SHAKEN_INVALID', (code) => {
    const d = decide(call({ shaken: { source: 'passport', verstat: 'No-TN-Validation', attestation: null, errors: [code] } }), DEFAULT_POLICY);
    expect(d.reasons.map((r) => r.code)).toEqual(['SHAKEN_UNVERIFIED']);
    expect(d.score).toBe(decide(call(), DEFAULT_POLICY).score);
    expect(d.verdict).toBe('allow');
  });

  it('a check that failed is still SHAKEN_INVALID', () => {
    const d = decide(call({ shaken: { source: 'passport', verstat: 'TN-Validation-Failed', attestation: null, errors: ['X5U_FETCH_FAILED', 'BAD_SIGNATURE'] } }), DEFAULT_POLICY);
    expect(d.reasons.map((r) => r.code)).toEqual(['SHAKEN_INVALID']);
  });
});

describe('decide: replay', () => {
  it('a replayed PASSporT outweighs a bank verification: never allow, and no credit from the signature', () => {
    const genuine = call({ caller: n('+442079460000'), registry: bankOutbound, shaken: signedA('+442079460000') });
    expect(decide(genuine, DEFAULT_POLICY).verdict).toBe('allow');
    const d = decide({ ...genuine, behaviour: { replayed: true } }, DEFAULT_POLICY);
    expect(d.verdict).not.toBe('allow');
    expect(d.reasons.map((r) => r.code)).toEqual(['PASSPORT_REPLAY']);
    expect(d.score).toBe(DEFAULT_POLICY.baseScore + DEFAULT_POLICY.weights.PASSPORT_REPLAY);
  });
});

describe("decide: a call with the bank's own evidence is not judged by what spoofers of its number did", () => {
  const bank = n('+442079460000');
  const crowd: CallSignals['behaviour'] = {
    distinctDestinations: [{ seconds: 60, count: 500 }],
    campaign: { bankId: 'examplebank', bankName: 'Example Bank', failedCalls: 40, since: '2026-12-07T10:00:00Z' },
    reports: { count: 3, newestAgeS: 60, categories: ['spoof'] },
  };

  it.each([
    ['unsigned, from a carrier the bank names', { origin: { carrier: '1234' } }],
    ['signed A for the number by its carrier', { shaken: signedA('+442079460000') }],
  ])('%s: no VELOCITY_HIGH, CAMPAIGN_ACTIVE or REPORTED_FRAUD', (_what, over) => {
    const d = decide(call({ caller: bank, registry: bankOutbound, behaviour: crowd, ...over }), DEFAULT_POLICY);
    expect(d.reasons.map((r) => r.code)).not.toEqual(expect.arrayContaining([expect.stringMatching(/^(VELOCITY_HIGH|CAMPAIGN_ACTIVE|REPORTED_FRAUD)$/)]));
    expect(d.verdict).toBe('allow');
  });

  it.each([
    ['no evidence at all', {}],
    ['a carrier the bank does not name', { origin: { carrier: '9999' } }],
    ['its carrier named by the switch, but signed by another', { origin: { carrier: '1234' }, shaken: { ...signedA('+442079460000'), spc: '9999' } }],
    ['an authorised carrier signing another number (the PAI)', { network: n('+447400999888'), shaken: signedA('+447400999888'), origin: {} }],
  ])('%s: the campaign weighs on the call as before', (_what, over) => {
    const d = decide(call({ caller: bank, registry: bankOutbound, behaviour: crowd, ...over }), DEFAULT_POLICY);
    expect(d.reasons.map((r) => r.code)).toContain('CAMPAIGN_ACTIVE');
    expect(d.verdict).not.toBe('allow');
  });

  it("during a campaign, the number's velocity and reports are the campaign counted again: a call with no evidence either way is flagged, not blocked", () => {
    const d = decide(call({ caller: bank, registry: bankOutbound, behaviour: crowd }), DEFAULT_POLICY);
    expect(d.reasons.map((r) => [r.code, r.weight])).toEqual([
      ['SHAKEN_ABSENT', 5],
      ['CAMPAIGN_ACTIVE', 30],
      ['VELOCITY_HIGH', 0],
      ['REPORTED_FRAUD', 0],
    ]);
    expect(d.verdict).toBe('flag');
    // Shown, the velocity still counts as a failed check: it keeps the campaign going.
    expect(failsChecks(d)).toBe(true);
    // Without a campaign, each counts on its own.
    const quiet = decide(call({ caller: bank, registry: bankOutbound, behaviour: { ...crowd, campaign: null } }), DEFAULT_POLICY);
    expect(quiet.reasons.map((r) => r.code)).toEqual(expect.arrayContaining(['VELOCITY_HIGH', 'REPORTED_FRAUD']));
    expect(quiet.verdict).toBe('block');
  });

  it('a bank that names no carriers has no carrier evidence to show: only a verified signature counts', () => {
    const anyCarrier = { ...bankOutbound } as RegistryMatch;
    delete (anyCarrier as { authorisedSpcs?: string[] }).authorisedSpcs;
    expect(decide(call({ caller: bank, registry: anyCarrier, behaviour: crowd, origin: { carrier: '1234' } }), DEFAULT_POLICY).reasons.map((r) => r.code)).toContain('CAMPAIGN_ACTIVE');
    expect(decide(call({ caller: bank, registry: anyCarrier, behaviour: crowd, shaken: signedA('+442079460000') }), DEFAULT_POLICY).reasons.map((r) => r.code)).not.toContain('CAMPAIGN_ACTIVE');
  });

  it('a replay still counts against a call that shows evidence', () => {
    const d = decide(call({ caller: bank, registry: bankOutbound, origin: { carrier: '1234' }, shaken: signedA('+442079460000'), behaviour: { replayed: true } }), DEFAULT_POLICY);
    expect(d.reasons.map((r) => r.code)).toContain('PASSPORT_REPLAY');
    expect(d.verdict).not.toBe('allow');
  });
});

describe('decide: attestation', () => {
  it.each(['A', 'B', 'C'] as const)('attestation %s from a verified PASSporT', (level) => {
    expect(codes(call({ shaken: { ...VERIFIED_A, attestation: level } }))).toEqual([`SHAKEN_ATTEST_${level}`]);
  });

  it.each(['A', 'B', 'C'] as const)('attestation %s from an upstream verifier', (level) => {
    const d = decide(call({ shaken: { source: 'upstream', verstat: 'TN-Validation-Passed', attestation: level, errors: [] } }), DEFAULT_POLICY);
    expect(d.reasons.map((r) => r.code)).toEqual([`SHAKEN_ATTEST_${level}`]);
    expect(d.reasons[0]?.message).toMatch(/upstream/);
  });

  it('a PASSporT that failed verification, with the errors in the message', () => {
    const d = decide(call({ shaken: { source: 'passport', verstat: 'TN-Validation-Failed', attestation: null, errors: ['BAD_SIGNATURE', 'STALE'] } }), DEFAULT_POLICY);
    expect(d.reasons.map((r) => r.code)).toEqual(['SHAKEN_INVALID']);
    expect(d.reasons[0]?.message).toMatch(/BAD_SIGNATURE, STALE/);
    expect(d.verdict).toBe('flag');
  });

  it('an upstream TN-Validation-Failed', () => {
    expect(codes(call({ shaken: { source: 'upstream', verstat: 'TN-Validation-Failed', attestation: null, errors: [] } }))).toEqual(['SHAKEN_INVALID']);
  });
});

describe('decide: behaviour across calls', () => {
  it('velocity over the policy limit', () => {
    const limit = DEFAULT_POLICY.velocity.windows[0]!;
    expect(codes(call({ behaviour: { distinctDestinations: [{ seconds: limit.seconds, count: limit.maxDistinct }] } }))).not.toContain('VELOCITY_HIGH');
    expect(codes(call({ behaviour: { distinctDestinations: [{ seconds: limit.seconds, count: limit.maxDistinct + 1 }] } }))).toContain('VELOCITY_HIGH');
  });

  it('replay and campaign', () => {
    const c = codes(call({ behaviour: { replayed: true, campaign: { bankId: 'b', bankName: 'B', failedCalls: 40, since: '2026-11-24T10:00:00Z' } } }));
    expect(c).toEqual(expect.arrayContaining(['PASSPORT_REPLAY', 'CAMPAIGN_ACTIVE']));
  });

  it('fraud reports fade with time and stop counting after their maximum age', () => {
    const weightAt = (ageS: number) =>
      decide(call({ behaviour: { reports: { count: 1, newestAgeS: ageS, categories: ['spoof'] } } }), DEFAULT_POLICY).reasons.find((r) => r.code === 'REPORTED_FRAUD')?.weight;
    expect(weightAt(0)).toBe(DEFAULT_POLICY.weights.REPORTED_FRAUD);
    expect(weightAt(DEFAULT_POLICY.reports.halfLifeS)).toBe(Math.round(DEFAULT_POLICY.weights.REPORTED_FRAUD / 2));
    expect(weightAt(DEFAULT_POLICY.reports.maxAgeS + 1)).toBeUndefined();
  });
});

describe('decide: properties of the policy', () => {
  const riskCodes = REASON_CODES.filter((c) => DEFAULT_POLICY.weights[c] > 0);

  it('every reason has a readable message', () => {
    const d = decide(call({ caller: n('+443450000000'), registry: bankDno, origin: { international: true }, behaviour: { replayed: true } }), DEFAULT_POLICY);
    for (const r of d.reasons) expect(r.message.length).toBeGreaterThan(10);
  });

  it('adding a risk signal never lowers the score or the verdict', () => {
    const severity = { allow: 0, flag: 1, block: 2 };
    // Every risk weight raised from zero to its value, over a few base calls.
    const bases = [call(), call({ shaken: VERIFIED_A }), call({ caller: n('+442079460000'), registry: bankOutbound, shaken: signedA('+442079460000') })];
    for (const base of bases) {
      for (const code of riskCodes) {
        const without: Policy = { ...DEFAULT_POLICY, weights: { ...DEFAULT_POLICY.weights, [code]: 0 } };
        const more = { ...base, behaviour: { replayed: true, reports: { count: 1, newestAgeS: 0, categories: ['scam'] } } };
        const a = decide(more, without);
        const b = decide(more, DEFAULT_POLICY);
        expect(b.score).toBeGreaterThanOrEqual(a.score);
        expect(severity[b.verdict]).toBeGreaterThanOrEqual(severity[a.verdict]);
      }
    }
  });

  it('scores stay within 0-100', () => {
    const worst = decide(
      call({ caller: n('09012345678'), network: n('+4420'), registry: bankDno, origin: { international: true }, shaken: { source: 'passport', verstat: 'TN-Validation-Failed', attestation: null, errors: ['STALE'] }, behaviour: { replayed: true, distinctDestinations: [{ seconds: 60, count: 1000 }] } }),
      DEFAULT_POLICY,
    );
    expect(worst.score).toBe(100);
    expect(decide(call({ registry: bankOutbound, shaken: VERIFIED_A }), DEFAULT_POLICY).score).toBe(0);
  });

  it('every weight of the policy names a known reason', () => {
    expect(Object.keys(DEFAULT_POLICY.weights).sort()).toEqual([...REASON_CODES].sort() as ReasonCode[]);
  });
});

describe('decide: the same facts, decided again', () => {
  it('gives what a fresh computation gives, whatever behaviour and policy come with them', () => {
    const facts = call({ caller: n('+442079460000'), registry: bankOutbound, shaken: signedA('+442079460000') });
    const stricter: Policy = { ...DEFAULT_POLICY, weights: { ...DEFAULT_POLICY.weights, BANK_VERIFIED: -10 } };
    const behaviours: CallSignals['behaviour'][] = [undefined, { replayed: true }, { distinctDestinations: [{ seconds: 60, count: 500 }] }, undefined];
    for (const policy of [DEFAULT_POLICY, stricter, DEFAULT_POLICY]) {
      for (const behaviour of behaviours) {
        // A fresh object each time is never remembered: the answer to compare with.
        const fresh = decide({ ...facts, behaviour }, policy);
        expect(decide(facts, policy, behaviour, true)).toEqual(fresh);
      }
    }
    // The reasons handed out are the caller's to keep: changing one does not change the next answer.
    const first = decide(facts, DEFAULT_POLICY, undefined, true);
    first.reasons.push({ code: 'CLI_DNO', weight: 90, message: 'x' });
    expect(decide(facts, DEFAULT_POLICY, undefined, true).reasons.map((r) => r.code)).toEqual(['BANK_VERIFIED', 'SHAKEN_ATTEST_A']);
  });
});

describe('decide: presentation', () => {
  const abroad = { international: true, country: 'FR' };
  it.each([
    ['a UK mobile from abroad', { caller: n('+447400123456'), origin: abroad }, 'withheld'],
    ['a confirmed roamer', { caller: n('+447400123456'), origin: { ...abroad, roamingVerified: true } }, 'allowed'],
    ['a UK mobile at home', { caller: n('+447400123456') }, 'allowed'],
    ['a UK landline from abroad (blocked, not hidden)', { caller: n('+442079460123'), origin: abroad }, 'allowed'],
    ['a foreign number from abroad', { caller: n('+33612345678'), origin: abroad }, 'allowed'],
  ] as const)('%s: %s', (_what, over, expected) => {
    expect(decide(call(over as Partial<CallSignals>), DEFAULT_POLICY).presentation).toBe(expected);
  });

  it('follows the policy for unconfirmed UK mobiles from abroad', () => {
    const show: Policy = { ...DEFAULT_POLICY, presentation: { ukMobileFromAbroad: 'allowed' } };
    expect(decide(call({ caller: n('+447400123456'), origin: abroad }), show).presentation).toBe('allowed');
  });

  it('a confirmed roamer is not CLI_MOBILE_FROM_ABROAD', () => {
    expect(codes(call({ caller: n('+447400123456'), origin: { ...abroad, roamingVerified: true } }))).toEqual(['SHAKEN_ABSENT']);
  });
});

describe('decide: a UK organisation calling from abroad through a trunk or carrier it names (overseasOrigins)', () => {
  const offshore: RegistryMatch = {
    bankId: 'brightwater', bankName: 'Brightwater Energy', bankKind: 'utility', inboundOnly: false,
    authorisedSpcs: ['4601', '7788'], overseasOrigins: ['trunk-offshore-in', '7788', '6600'], match: 'number', key: '+441614960400',
  };
  const caller = n('+441614960400');
  const abroad = { international: true, country: 'IN' };
  const decideAbroad = (over: Partial<CallSignals> = {}, origin: CallSignals['origin'] = {}) =>
    decide(call({ caller, registry: offshore, ...over, origin: { ...abroad, ...origin } }), DEFAULT_POLICY);
  const codesOf = (d: ReturnType<typeof decide>) => d.reasons.map((r) => r.code);

  it('a trunk it names: CLI_OVERSEAS_AUTHORISED, naming the organisation and the trunk, and no CLI_DOMESTIC_FROM_ABROAD', () => {
    const d = decideAbroad({}, { trunk: 'trunk-offshore-in' });
    expect(codesOf(d)).toEqual(['CLI_OVERSEAS_AUTHORISED', 'SHAKEN_ABSENT']);
    const reason = d.reasons[0]!;
    expect(reason.weight).toBe(DEFAULT_POLICY.weights.CLI_OVERSEAS_AUTHORISED);
    expect(reason.weight).toBeLessThanOrEqual(0);
    expect(reason.message).toMatch(/Brightwater Energy/);
    expect(reason.message).toMatch(/trunk trunk-offshore-in/);
    expect(reason.message).toMatch(/from IN/);
    expect(d).toMatchObject({ verdict: 'allow', presentation: 'allowed' });
  });

  it('a carrier it names, and authorises in authorisedSpcs: CLI_OVERSEAS_AUTHORISED', () => {
    const d = decideAbroad({}, { carrier: '7788' });
    expect(codesOf(d)).toEqual(['CLI_OVERSEAS_AUTHORISED', 'SHAKEN_ABSENT']);
    expect(d.reasons[0]!.message).toMatch(/carrier 7788/);
    expect(d.verdict).toBe('allow');
  });

  it('a carrier it names as an overseas origin but not in authorisedSpcs is an unauthorised origin, not the exception', () => {
    const d = decideAbroad({}, { carrier: '6600' });
    expect(codesOf(d)).toEqual(expect.arrayContaining(['BANK_UNAUTHORISED_ORIGIN', 'CLI_DOMESTIC_FROM_ABROAD']));
    expect(codesOf(d)).not.toContain('CLI_OVERSEAS_AUTHORISED');
    expect(d.verdict).toBe('block');
  });

  it('a carrier it names, when the entry authorises any carrier: CLI_OVERSEAS_AUTHORISED', () => {
    const anyCarrier: RegistryMatch = { ...offshore };
    delete anyCarrier.authorisedSpcs;
    const d = decide(call({ caller, registry: anyCarrier, origin: { ...abroad, carrier: '6600' } }), DEFAULT_POLICY);
    expect(codesOf(d)).toEqual(['CLI_OVERSEAS_AUTHORISED', 'SHAKEN_ABSENT']);
  });

  it('a trunk it names stands on its own; a carrier on the call it does not authorise still counts against the call', () => {
    const d = decideAbroad({}, { trunk: 'trunk-offshore-in', carrier: '9999' });
    expect(codesOf(d)).toEqual(expect.arrayContaining(['CLI_OVERSEAS_AUTHORISED', 'BANK_UNAUTHORISED_ORIGIN']));
    expect(codesOf(d)).not.toContain('CLI_DOMESTIC_FROM_ABROAD');
    expect(d.verdict).not.toBe('allow');
  });

  it.each([
    ['a trunk it does not name', { trunk: 'trunk-other' }],
    ['no trunk or carrier at all', {}],
    ['a name that differs only in case', { trunk: 'TRUNK-OFFSHORE-IN' }],
  ])('%s: CLI_DOMESTIC_FROM_ABROAD as for any UK number from abroad', (_what, origin) => {
    const d = decideAbroad({}, origin);
    expect(codesOf(d)).toContain('CLI_DOMESTIC_FROM_ABROAD');
    expect(codesOf(d)).not.toContain('CLI_OVERSEAS_AUTHORISED');
    expect(d.verdict).toBe('block');
  });

  it('an inbound-only number never calls, from anywhere: CLI_DNO and CLI_DOMESTIC_FROM_ABROAD, whatever trunk it names', () => {
    const d = decide(call({ caller, registry: { ...offshore, inboundOnly: true }, origin: { ...abroad, trunk: 'trunk-offshore-in' } }), DEFAULT_POLICY);
    expect(codesOf(d)).toEqual(expect.arrayContaining(['CLI_DNO', 'CLI_DOMESTIC_FROM_ABROAD']));
    expect(codesOf(d)).not.toContain('CLI_OVERSEAS_AUTHORISED');
  });

  it('a call that is not from abroad has nothing to be excepted from', () => {
    expect(codes(call({ caller, registry: offshore, origin: { trunk: 'trunk-offshore-in' } }))).toEqual(['SHAKEN_ABSENT']);
  });

  it('a foreign number is not the UK exception: nothing is said of it from abroad', () => {
    const foreign = n('+33123456789');
    expect(codes(call({ caller: foreign, registry: { ...offshore, key: '+33123456789' }, origin: { ...abroad, trunk: 'trunk-offshore-in' } }))).toEqual(['SHAKEN_ABSENT']);
  });

  it('a UK mobile it names the trunk for: CLI_OVERSEAS_AUTHORISED instead of CLI_MOBILE_FROM_ABROAD, and shown', () => {
    const mobile = n('+447400123456');
    const registry: RegistryMatch = { ...offshore, key: '+447400123456' };
    const named = decide(call({ caller: mobile, registry, origin: { ...abroad, trunk: 'trunk-offshore-in' } }), DEFAULT_POLICY);
    expect(codesOf(named)).toEqual(['CLI_OVERSEAS_AUTHORISED', 'SHAKEN_ABSENT']);
    expect(named.reasons[0]!.message).toMatch(/UK mobile number/);
    expect(named.presentation).toBe('allowed');
    const other = decide(call({ caller: mobile, registry, origin: { ...abroad, trunk: 'trunk-other' } }), DEFAULT_POLICY);
    expect(codesOf(other)).toContain('CLI_MOBILE_FROM_ABROAD');
    expect(other.presentation).toBe('withheld');
  });

  describe("is the organisation's own evidence: what spoofers of its number did does not weigh on it", () => {
    const crowd: CallSignals['behaviour'] = {
      distinctDestinations: [{ seconds: 60, count: 500 }],
      campaign: { bankId: 'brightwater', bankName: 'Brightwater Energy', failedCalls: 40, since: '2026-12-07T10:00:00Z' },
      reports: { count: 3, newestAgeS: 60, categories: ['spoof'] },
    };
    const counted = /^(VELOCITY_HIGH|CAMPAIGN_ACTIVE|REPORTED_FRAUD)$/;

    it.each([
      ['through a trunk it names', { trunk: 'trunk-offshore-in' }],
      ['through a carrier it names and authorises', { carrier: '7788' }],
    ])('%s: no VELOCITY_HIGH, CAMPAIGN_ACTIVE or REPORTED_FRAUD', (_what, origin) => {
      const d = decideAbroad({ behaviour: crowd }, origin);
      expect(codesOf(d).filter((c) => counted.test(c))).toEqual([]);
      expect(d.verdict).toBe('allow');
    });

    it.each([
      ['through a trunk it does not name', { trunk: 'trunk-other' }],
      ['through a trunk it names, with a carrier it does not authorise', { trunk: 'trunk-offshore-in', carrier: '9999' }],
    ])('%s: the campaign weighs on the call as before', (_what, origin) => {
      const d = decideAbroad({ behaviour: crowd }, origin);
      expect(codesOf(d)).toContain('CAMPAIGN_ACTIVE');
    });
  });
});

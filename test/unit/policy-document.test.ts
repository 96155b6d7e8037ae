import { DEFAULT_POLICY, policyVersion } from '../../src/scoring';
import { documentVersion, policyFor, readPolicyDocument, type PolicyDocument } from '../../src/scoring/policy-document';

function ok(raw: unknown): PolicyDocument {
  const r = readPolicyDocument(raw);
  if ('problems' in r) throw new Error(r.problems.join('; '));
  return r.document;
}
function problems(raw: unknown): string[] {
  const r = readPolicyDocument(raw);
  return 'problems' in r ? r.problems : [];
}

describe('policy document', () => {
  it('an empty document is the built-in policy, with its version', () => {
    const doc = ok({});
    expect(doc.policy).toEqual(DEFAULT_POLICY);
    expect(documentVersion(doc)).toBe(policyVersion(DEFAULT_POLICY));
  });

  it('merges what the operator writes over the built-in policy', () => {
    const doc = ok({
      baseScore: 5,
      thresholds: { block: 80 },
      weights: { VELOCITY_HIGH: 60, BANK_VERIFIED: -40 },
      verdictFloors: { PASSPORT_REPLAY: 'block', CLI_DNO: null },
      velocity: { windows: [{ seconds: 30, maxDistinct: 10 }] },
      presentation: { ukMobileFromAbroad: 'allowed' },
    });
    expect(doc.policy.baseScore).toBe(5);
    expect(doc.policy.thresholds).toEqual({ flag: 40, block: 80 });
    expect(doc.policy.weights.VELOCITY_HIGH).toBe(60);
    expect(doc.policy.weights.BANK_VERIFIED).toBe(-40);
    expect(doc.policy.weights.CLI_INVALID).toBe(DEFAULT_POLICY.weights.CLI_INVALID);
    expect(doc.policy.verdictFloors.PASSPORT_REPLAY).toBe('block');
    expect(doc.policy.verdictFloors.CLI_DNO).toBeUndefined();
    expect(doc.policy.verdictFloors.CLI_INVALID).toBe('block');
    expect(doc.policy.velocity.windows).toEqual([{ seconds: 30, maxDistinct: 10 }]);
    expect(doc.policy.presentation.ukMobileFromAbroad).toBe('allowed');
    expect(doc.policy.campaign).toEqual(DEFAULT_POLICY.campaign);
    expect(documentVersion(doc)).not.toBe(policyVersion(DEFAULT_POLICY));
  });

  it.each([
    [{ bogus: 1 }, /bogus/],
    [{ weights: { NOT_A_REASON: 5 } }, /^weights: .*NOT_A_REASON/],
    [{ weights: { VELOCITY_HIGH: 101 } }, /^weights\.VELOCITY_HIGH: /],
    [{ weights: { VELOCITY_HIGH: 2.5 } }, /^weights\.VELOCITY_HIGH: /],
    [{ weights: { VELOCITY_HIGH: -5 } }, /^weights\.VELOCITY_HIGH: VELOCITY_HIGH is a risk/],
    [{ weights: { BANK_VERIFIED: 5 } }, /^weights\.BANK_VERIFIED: BANK_VERIFIED is a credit/],
    [{ weights: { CLI_OVERSEAS_AUTHORISED: 1 } }, /^weights\.CLI_OVERSEAS_AUTHORISED: /],
    [{ weights: { BANK_CALL_EXPECTED: 1 } }, /^weights\.BANK_CALL_EXPECTED: /],
    [{ thresholds: { flag: 80, block: 60 } }, /^thresholds: flag \(80\) must not exceed block \(60\)/],
    [{ thresholds: { flag: -1 } }, /^thresholds\.flag: /],
    [{ verdictFloors: { CLI_DNO: 'deny' } }, /^verdictFloors\.CLI_DNO: /],
    [{ velocity: { windows: [] } }, /^velocity\.windows: /],
    [{ velocity: { windows: Array.from({ length: 11 }, () => ({ seconds: 1, maxDistinct: 1 })) } }, /^velocity\.windows: /],
    [{ velocity: { windows: [{ seconds: 0, maxDistinct: 1 }] } }, /^velocity\.windows\.0\.seconds: /],
    [{ campaign: { windowS: -1 } }, /^campaign\.windowS: /],
    [{ presentation: { ukMobileFromAbroad: 'shown' } }, /^presentation\.ukMobileFromAbroad: /],
    [{ profiles: { t1: { weights: { VELOCITY_HIGH: -1 } } } }, /^profiles\.t1\.weights\.VELOCITY_HIGH: /],
    [{ profiles: { t1: { velocity: { windows: [{ seconds: 1, maxDistinct: 1 }] } } } }, /^profiles\.t1\.velocity: .*base policy/],
    [{ profiles: { t1: { campaign: { windowS: 5 } } } }, /^profiles\.t1\.campaign: /],
    [{ profiles: { t1: { thresholds: { flag: 90 } } } }, /^profiles\.t1\.thresholds: flag \(90\) must not exceed block/],
    [{ profiles: { t1: { nope: true } } }, /^profiles\.t1: .*nope/],
    [{ profiles: Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`t${i}`, {}])) }, /^profiles: at most 100/],
    [JSON.parse('{"profiles":{"__proto__":{"baseScore":1}}}'), /^profiles\.__proto__: /],
    [[], /object/],
  ])('rejects bad document %# naming the path', (raw, message) => {
    const found = problems(raw);
    expect(found.length).toBeGreaterThan(0);
    expect(found.join('\n')).toMatch(message);
  });

  it('merges each profile over the file base and picks it by trunk', () => {
    const doc = ok({ baseScore: 20, weights: { SHAKEN_ABSENT: 10 }, profiles: { 'intl-1': { weights: { CLI_MOBILE_FROM_ABROAD: 60 }, presentation: { ukMobileFromAbroad: 'allowed' } } } });
    const p = doc.profiles['intl-1']!;
    expect(p.baseScore).toBe(20);
    expect(p.weights.SHAKEN_ABSENT).toBe(10);
    expect(p.weights.CLI_MOBILE_FROM_ABROAD).toBe(60);
    expect(p.presentation.ukMobileFromAbroad).toBe('allowed');
    expect(doc.policy.weights.CLI_MOBILE_FROM_ABROAD).toBe(DEFAULT_POLICY.weights.CLI_MOBILE_FROM_ABROAD);
    expect(policyFor(doc, 'intl-1')).toBe(p);
    expect(policyFor(doc, 'other')).toBe(doc.policy);
    expect(policyFor(doc, undefined)).toBe(doc.policy);
    expect(policyFor(doc, 'constructor')).toBe(doc.policy);
  });

  it('the version covers the profiles', () => {
    const a = documentVersion(ok({ profiles: { t: { baseScore: 1 } } }));
    const b = documentVersion(ok({ profiles: { t: { baseScore: 2 } } }));
    expect(a).not.toBe(b);
    expect(a).not.toBe(documentVersion(ok({})));
  });
});

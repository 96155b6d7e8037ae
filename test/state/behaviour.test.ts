import { decide, DEFAULT_POLICY, type CallSignals, type Policy } from '../../src/scoring';
import { callToken, CAMPAIGN_FAILING_REASONS, campaignSignal, failsChecks, isReplay, reportsSignal, summariseCampaign, velocityKeys, velocitySignal } from '../../src/scoring';
import { Backlog } from '../../src/state/backlog';
import { campaignMember, campaignMemberNumber } from '../../src/state/campaign-member';
import { historyEntry } from '../../src/calls/behaviour';
import { checkPrefix, taggedKey, tagSafe } from '../../src/state/redis/keyspace';
import { replyScored } from '../../src/state/redis/ops';
import { mergeReportSummaries } from '../../src/state/reports';
import { BANK, call, CLEAN, decision, FAILING, NO_SHAKEN, T0 } from './support';

/** The pure half of behaviour tracking: no store, only counts in and signals out. */

const policy: Policy = DEFAULT_POLICY;

describe('what a call counts as', () => {
  it('velocity counts a caller by E.164 and skips withheld and invalid callers', () => {
    expect(velocityKeys(call({ from: '+442079460123', to: '+447700900001' }))).toEqual({
      caller: '+442079460123',
      destination: '+447700900001',
    });
    expect(velocityKeys(call({ from: 'anonymous' }))).toBeNull();
    expect(velocityKeys(call({ from: '12' }))).toBeNull(); // parses to +4412, but is not a valid number
    // A short code is not a destination, but the caller's other destinations still count.
    expect(velocityKeys(call({ to: '999' }))).toEqual({ caller: '+442079460123', destination: null });
  });

  it('a call scored again is the same token; a call without a callId is always new', () => {
    const c = call({ callId: 'abc' });
    expect(callToken(c)).toMatch(/^c:/);
    expect(callToken(call({ callId: 'abc' }))).toBe(callToken(c));
    const a = callToken(call({}));
    const b = callToken(call({}));
    expect(a).toMatch(/^u:/);
    expect(a).not.toBe(b);
  });

  it("a replay under the original callId is another call: the token covers numbers and route, not the caller's callId alone", () => {
    const original = call({ callId: 'C1' });
    expect(callToken({ ...original, route: JSON.stringify([null, 'other-trunk', null]) })).not.toBe(callToken(original));
    expect(callToken(call({ callId: 'C1', to: '+447700900002' }))).not.toBe(callToken(original));
    expect(callToken(call({ callId: 'C1', from: '+442079460124' }))).not.toBe(callToken(original));
  });

  it('campaign members carry the number and the call, so a rescored call is one call', () => {
    const m = campaignMember('+442079460123', 'c:x y');
    expect(m).toBe(campaignMember('+442079460123', 'c:x y'));
    expect(campaignMemberNumber(m)).toBe('+442079460123');
  });

  it('only the reasons that say "this caller ID is not genuine" count towards a campaign', () => {
    expect([...CAMPAIGN_FAILING_REASONS].sort()).toEqual(
      ['BANK_UNAUTHORISED_ORIGIN', 'CLI_DNO', 'CLI_DOMESTIC_FROM_ABROAD', 'CLI_MOBILE_FROM_ABROAD', 'PASSPORT_REPLAY', 'SHAKEN_INVALID', 'VELOCITY_HIGH'].sort(),
    );
    expect(failsChecks(FAILING)).toBe(true);
    expect(failsChecks(CLEAN)).toBe(false);
    // Would let a campaign keep itself alive.
    expect(failsChecks(decision(['CAMPAIGN_ACTIVE', 'REPORTED_FRAUD']))).toBe(false);
  });

  it('history keeps what an investigator needs, and no more', () => {
    const e = historyEntry(call({ callId: 'k1', registry: BANK, at: T0 }), FAILING, 'id1');
    expect(e).toEqual({
      id: 'id1',
      callId: 'k1',
      caller: '+442079460123',
      callee: '+447700900001',
      at: new Date(T0).toISOString(),
      verdict: 'block',
      score: FAILING.score,
      reasons: ['CLI_DOMESTIC_FROM_ABROAD', 'SHAKEN_ABSENT'],
      bankId: 'examplebank',
    });
    const emergency = historyEntry(call({ from: 'anonymous', to: '999' }), CLEAN, 'id2');
    expect(emergency).toMatchObject({ caller: null, callee: '999' });
    expect(emergency).not.toHaveProperty('callId');
    expect(emergency).not.toHaveProperty('bankId');
  });
});

describe('counts into signals', () => {
  it('velocity: one entry per policy window, in the policy order', () => {
    expect(velocitySignal(policy, [3, 40])).toEqual([
      { seconds: 60, count: 3 },
      { seconds: 3600, count: 40 },
    ]);
    expect(velocitySignal(policy, [])).toEqual([
      { seconds: 60, count: 0 },
      { seconds: 3600, count: 0 },
    ]);
  });

  it('replay: another call presenting the token is a replay, the same call again is not', () => {
    expect(isReplay(null, 'c:a')).toBe(false);
    expect(isReplay('c:a', 'c:a')).toBe(false);
    expect(isReplay('c:a', 'c:b')).toBe(true);
    expect(isReplay('u:x', 'u:y')).toBe(true);
  });

  it('reports: age in whole seconds, nothing when absent or too old', () => {
    const summary = { count: 2, newestAt: T0 - 3_600_500, categories: ['spoof', 'scam'] as const };
    expect(reportsSignal({ ...summary, categories: [...summary.categories] }, T0, 86400)).toEqual({
      count: 2,
      newestAgeS: 3600,
      categories: ['scam', 'spoof'],
    });
    expect(reportsSignal(null, T0, 86400)).toBeNull();
    expect(reportsSignal({ count: 0, newestAt: T0, categories: [] }, T0, 86400)).toBeNull();
    expect(reportsSignal({ count: 1, newestAt: T0 - 86_401_000, categories: ['scam'] }, T0, 86400)).toBeNull();
    // A report stamped a little after the call (clock skew) is fresh, not negative.
    expect(reportsSignal({ count: 1, newestAt: T0 + 5000, categories: ['scam'] }, T0, 86400)?.newestAgeS).toBe(0);
  });

  it('reports: two partial views merge without double counting', () => {
    const a = { count: 3, newestAt: T0 - 1000, categories: ['scam' as const] };
    const b = { count: 1, newestAt: T0, categories: ['spoof' as const] };
    expect(mergeReportSummaries(a, b)).toEqual({ count: 3, newestAt: T0, categories: ['scam', 'spoof'] });
    expect(mergeReportSummaries(null, b)).toBe(b);
    expect(mergeReportSummaries(a, null)).toBe(a);
  });

  it('campaign: active from minFailedCalls failing calls, since the first of them', () => {
    const min = policy.campaign.minFailedCalls;
    expect(campaignSignal(policy, BANK, min - 1, T0)).toBeNull();
    expect(campaignSignal(policy, BANK, min, T0)).toEqual({
      bankId: 'examplebank',
      bankName: 'Example Bank',
      failedCalls: min,
      since: new Date(T0).toISOString(),
    });
    expect(campaignSignal(policy, BANK, min, null)).toBeNull();
  });

  it('campaign summary: numbers by use, capped at 50, with first and last call', () => {
    const calls = [];
    for (let i = 0; i < 60; i++) calls.push({ number: `+4420794600${String(i).padStart(2, '0')}`, at: T0 + i * 1000 });
    for (let i = 0; i < 5; i++) calls.push({ number: '+442079460059', at: T0 + 100_000 + i });
    calls.push({ number: '+442079460007', at: T0 + 200_000 });
    const s = summariseCampaign(policy, BANK, calls);
    expect(s).not.toBeNull();
    expect(s!.failedCalls).toBe(66);
    expect(s!.numbers).toHaveLength(50);
    expect(s!.numbers[0]).toEqual({ number: '+442079460059', calls: 6 });
    expect(s!.numbers[1]).toEqual({ number: '+442079460007', calls: 2 });
    expect(s!.numbers[2]).toEqual({ number: '+442079460000', calls: 1 });
    expect(s!.since).toBe(new Date(T0).toISOString());
    expect(s!.lastSeen).toBe(new Date(T0 + 200_000).toISOString());
    expect(summariseCampaign(policy, BANK, calls.slice(0, policy.campaign.minFailedCalls - 1))).toBeNull();
  });
});

describe('the signals drive the decision as the policy says', () => {
  const base: CallSignals = {
    caller: call().caller,
    callee: call().callee,
    origin: {},
    registry: null,
    shaken: NO_SHAKEN,
  };
  const codes = (behaviour: CallSignals['behaviour']) => decide({ ...base, behaviour }, policy).reasons.map((r) => r.code);

  it('VELOCITY_HIGH only above a window limit', () => {
    expect(codes({ distinctDestinations: velocitySignal(policy, [20, 20]) })).not.toContain('VELOCITY_HIGH');
    expect(codes({ distinctDestinations: velocitySignal(policy, [21, 21]) })).toContain('VELOCITY_HIGH');
    expect(codes({ distinctDestinations: velocitySignal(policy, [5, 151]) })).toContain('VELOCITY_HIGH');
  });

  it('PASSPORT_REPLAY, CAMPAIGN_ACTIVE and REPORTED_FRAUD from their signals', () => {
    const campaign = campaignSignal(policy, BANK, 12, T0);
    const reports = reportsSignal({ count: 1, newestAt: T0, categories: ['scam'] }, T0, policy.reports.maxAgeS);
    expect(codes({ replayed: true, campaign, reports })).toEqual(
      expect.arrayContaining(['PASSPORT_REPLAY', 'CAMPAIGN_ACTIVE', 'REPORTED_FRAUD']),
    );
    expect(codes({ replayed: false, campaign: null, reports: null })).toEqual(['SHAKEN_ABSENT']);
  });
});

describe('redis plumbing', () => {
  it('keys carry their entity in a hash tag; braces in ids cannot move a key', () => {
    expect(taggedKey('callguard:', 'v', '+442079460123')).toBe('callguard:v:{+442079460123}');
    expect(taggedKey('p:', 'h', '+44', ':+33')).toBe('p:h:{+44}:+33');
    expect(tagSafe('a{b}c%')).toBe('a%7Bb%7Dc%25');
    expect(tagSafe('a{')).not.toBe(tagSafe('a%7B'));
    expect(() => checkPrefix('x{y}:')).toThrow(/must not contain/);
    expect(checkPrefix('callguard:')).toBe('callguard:');
  });

  it('reads WITHSCORES replies flat (RESP2, legacy mapping) or paired (RESP3)', () => {
    expect(replyScored(['a', '1', 'b', '2.5'])).toEqual([
      ['a', 1],
      ['b', 2.5],
    ]);
    expect(replyScored([['a', 1], ['b', 2.5]])).toEqual([
      ['a', 1],
      ['b', 2.5],
    ]);
    expect(() => replyScored('nope')).toThrow();
  });

  it('the outage backlog is bounded and gives back what could not be sent first', () => {
    const b = new Backlog<number>(3);
    [1, 2, 3, 4].forEach((n) => b.push(n));
    expect(b.size).toBe(3);
    expect(b.dropped).toBe(1);
    const taken = b.take(2);
    expect(taken).toEqual([2, 3]);
    b.push(5);
    b.restore(taken);
    // Over the bound again: the oldest goes, even if it was just given back.
    expect(b.take(10)).toEqual([3, 4, 5]);
  });
});

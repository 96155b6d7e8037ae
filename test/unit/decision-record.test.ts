import { Behaviour } from '../../src/calls/behaviour';
import { decisionRecord, type DecisionContext } from '../../src/calls/decision-record';
import type { Evidence } from '../../src/calls/evidence';
import { DEFAULT_POLICY } from '../../src/scoring';
import { decisionEntry } from '../../src/state/decisions';
import { MemoryCallState } from '../../src/state/memory/call-state';
import { BANK, call, FAILING, T0 } from '../state/support';

const CONTEXT: DecisionContext = {
  facts: {
    shaken: {
      source: 'passport',
      verstat: 'TN-Validation-Failed',
      attestation: null,
      spc: '5678',
      origid: '123e4567-e89b-12d3-a456-426614174000',
      x5u: 'https://certs.example/sp.pem',
      // Not kept: what the decision read, not who signed.
      authority: 'spc',
      errors: ['BAD_SIGNATURE'],
    },
    origin: { trunk: 't-lon-1', carrier: '5678', country: 'NG', international: true },
  },
  cached: true,
  decidedAt: T0 + 5,
  policyVersion: 'p1',
  registryVersion: 'r1',
};

describe('decisionRecord: what a call with a callId leaves behind', () => {
  it('keeps the decision, every reason, who signed, where it came in, and under which versions', () => {
    const c = call({ callId: 'c-1', from: '+442079460123', to: '+447700900001', registry: BANK, at: T0 });
    // What is kept: the record as the store bounds it.
    expect(decisionEntry(decisionRecord(c, 'c-1', FAILING, CONTEXT), 'id-1')).toEqual({
      id: 'id-1',
      callId: 'c-1',
      at: T0,
      decidedAt: T0 + 5,
      from: '+442079460123',
      to: '+447700900001',
      bankId: 'examplebank',
      verdict: 'block',
      score: FAILING.score,
      presentation: 'allowed',
      reasons: FAILING.reasons.map(({ code, weight, message }) => ({ code, weight, message })),
      cached: true,
      shaken: {
        source: 'passport',
        verstat: 'TN-Validation-Failed',
        attestation: null,
        spc: '5678',
        origid: '123e4567-e89b-12d3-a456-426614174000',
        x5u: 'https://certs.example/sp.pem',
        errors: ['BAD_SIGNATURE'],
      },
      origin: { trunk: 't-lon-1', carrier: '5678', country: 'NG', international: true },
      policyVersion: 'p1',
      registryVersion: 'r1',
    });
  });

  it('names a withheld caller null, a short code by its code, and leaves out what the call did not have', () => {
    const c = call({ callId: 'c-2', from: 'anonymous', to: '999' });
    const r = decisionEntry(decisionRecord(c, 'c-2', FAILING, { ...CONTEXT, facts: { shaken: { source: 'none', verstat: 'No-TN-Validation', attestation: null, errors: [] }, origin: {} } }));
    expect(r).toMatchObject({ from: null, to: '999', shaken: { source: 'none', verstat: 'No-TN-Validation', attestation: null, errors: [] } });
    expect(r).not.toHaveProperty('origin');
    expect(r).not.toHaveProperty('bankId');
    expect(r.shaken).not.toHaveProperty('x5u');
  });

  it('is written only for a call that names itself, and only when the orchestrator gives the context', () => {
    const b = new Behaviour<Evidence>(new MemoryCallState<Evidence>(), DEFAULT_POLICY);
    expect(b.writeOf(call({ callId: 'c-3' }), 't', FAILING, null, CONTEXT).decision).toMatchObject({ callId: 'c-3', verdict: 'block' });
    expect(b.writeOf(call({}), 't', FAILING, null, CONTEXT).decision).toBeNull();
    expect(b.writeOf(call({ callId: 'c-3' }), 't', FAILING, null).decision).toBeNull();
  });
});

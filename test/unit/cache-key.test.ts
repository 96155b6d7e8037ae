import { cacheKey } from '../../src/calls/assess';
import type { CallInput } from '../../src/calls/types';

const base: CallInput = { from: '+447400123456', to: '+442079460999' };

describe('cacheKey', () => {
  it('changes with every input that can change the verdict, and with the registry and policy versions', () => {
    const variants: CallInput[] = [
      base,
      { ...base, from: '+447400123457' },
      { ...base, to: '+442079460998' },
      { ...base, pai: '+447400123456' },
      { ...base, identity: 'x.y.z' },
      { ...base, identity: ['x.y.z'] },
      { ...base, attestation: 'A' },
      { ...base, verstat: 'TN-Validation-Failed' },
      { ...base, origin: { international: true } },
      { ...base, origin: { country: 'FR' } },
      { ...base, origin: { carrier: '1234' } },
      { ...base, origin: { trunk: 't1' } },
      { ...base, origin: { roamingVerified: true } },
      { ...base, receivedAt: '2026-11-24T10:00:00Z' },
    ];
    const keys = variants.map((v) => cacheKey(v, 'r1', 'p1'));
    expect(new Set(keys).size).toBe(variants.length - 1); // a single identity and a one-element array are the same call
    expect(cacheKey(base, 'r2', 'p1')).not.toBe(keys[0]);
    expect(cacheKey(base, 'r1', 'p2')).not.toBe(keys[0]);
  });

  it('no choice of switch-supplied strings makes two different calls share a key', () => {
    const pairs: [CallInput, CallInput][] = [
      // Today's separators inside the values themselves.
      [{ ...base, from: '+447400123456\u0000+44', to: '7400' }, { ...base, from: '+447400123456', to: '+44\u00007400' }],
      [{ ...base, origin: { trunk: 'a|b', carrier: 'c' } }, { ...base, origin: { trunk: 'a', carrier: 'b|c' } }],
      [{ ...base, identity: ['h1', 'h2'] }, { ...base, identity: 'h1\nh2' }],
      [{ ...base, identity: ['h1', 'h2'] }, { ...base, identity: ['h1\nh2'] }],
      [{ ...base, pai: '' }, base],
      [{ ...base, origin: { trunk: '' } }, { ...base, origin: {} }],
      [{ ...base, origin: {} }, base],
      [{ ...base, origin: { international: false } }, { ...base, origin: { trunk: 'false' } }],
    ];
    for (const [a, b] of pairs) expect(cacheKey(a, 'r', 'p')).not.toBe(cacheKey(b, 'r', 'p'));
  });

  it('ignores the callId, which changes nothing but the echo', () => {
    expect(cacheKey({ ...base, callId: 'a' }, 'r', 'p')).toBe(cacheKey({ ...base, callId: 'b' }, 'r', 'p'));
  });

  it('keeps keys short whatever the input: long ones are hashed', () => {
    const long = cacheKey({ ...base, identity: Array.from({ length: 10 }, () => 'x'.repeat(8000)) }, 'r', 'p');
    expect(long.length).toBeLessThanOrEqual(64);
    expect(cacheKey({ ...base, identity: Array.from({ length: 10 }, () => 'y'.repeat(8000)) }, 'r', 'p')).not.toBe(long);
  });
});

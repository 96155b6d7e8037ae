import { createHash } from 'node:crypto';
import { EVIDENCE_VERSION, type Evidence } from '../../src/calls/evidence';

/**
 * Every field, however deep, required and not null: a field added to `Evidence` (or to a type
 * it holds) makes this sample fail to compile until it is filled in, and filling it in changes
 * the shape, and so the digest the version must carry.
 */
type Full<T> = T extends readonly (infer U)[] ? Full<U>[] : T extends object ? { [K in keyof T]-?: Full<NonNullable<T[K]>> } : NonNullable<T>;

const SAMPLE: Full<Evidence> = {
  signals: {
    caller: { e164: '+442079460123', valid: true, withheld: false, type: 'FIXED_LINE', country: 'GB', shortCode: { code: '999', service: 'emergency services', emergency: true } },
    network: { e164: '+442079460124', valid: true, withheld: false, type: 'FIXED_LINE', country: 'GB', shortCode: { code: '999', service: 'emergency services', emergency: true } },
    callee: { e164: '+447700900001', valid: true, withheld: false, type: 'MOBILE', country: 'GB', shortCode: { code: '999', service: 'emergency services', emergency: true } },
    origin: { international: true, carrier: '1234', country: 'FR', trunk: 't1', roamingVerified: true },
    registry: { bankId: 'b', bankName: 'B', inboundOnly: false, authorisedSpcs: ['1234'], overseasOrigins: ['t1'], bankKind: 'government', announcesCalls: true, match: 'number', key: '+442079460123' },
    numbering: { status: 'allocated', operator: 'Op' },
    shaken: { source: 'passport', verstat: 'TN-Validation-Passed', attestation: 'A', spc: '1234', orig: '442079460123', authority: 'spc', diversion: 'spc', origid: 'o', x5u: 'https://certs.example/sp.pem', rcd: { name: 'Bank', callReason: 'Fraud check' }, errors: ['BAD_SIGNATURE'] },
  },
  fingerprints: ['fp'],
  iat: 1,
};

/** Keys (sorted) and the kinds of values, all the way down; an array by its first element. */
function shapeOf(v: unknown): unknown {
  if (Array.isArray(v)) return [shapeOf(v[0])];
  if (v !== null && typeof v === 'object')
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, shapeOf((v as Record<string, unknown>)[k])]),
    );
  return typeof v;
}

describe('EVIDENCE_VERSION', () => {
  it("carries the digest of Evidence's shape: a change to the type changes the version", () => {
    const digest = createHash('sha256').update(JSON.stringify(shapeOf(SAMPLE))).digest('hex').slice(0, 10);
    // On failure: bump the number and put the new digest in EVIDENCE_VERSION (src/calls/evidence.ts).
    expect(EVIDENCE_VERSION.slice(EVIDENCE_VERSION.indexOf('-') + 1)).toBe(digest);
  });
});

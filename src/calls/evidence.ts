import type { CallSignals } from '../scoring/signals';

/**
 * What the verdict cache holds: everything about a call that follows from its inputs alone
 * (parsed numbers, origin, registry match, numbering status, PASSporT verification), as plain
 * data. Behaviour across calls (velocity, replay, reports, campaigns) changes from one call to
 * the next, so it is read fresh on every call, hit or miss, and `decide` runs on every call: the
 * cache keeps evidence, never reasons, messages or response views, so a rule or a response
 * field can change without touching what is cached.
 */
export interface Evidence {
  signals: Omit<CallSignals, 'behaviour'>;
  /** Fingerprints of the PASSporTs checked, for replay detection. */
  fingerprints: string[];
  /** `iat` of a PASSporT that verified: bounds how long the evidence stays true. */
  iat?: number;
}

/**
 * The shape of a cached `Evidence`, part of every cache key, so that instances of two releases
 * sharing one Redis never read each other's entries. Its tail is a digest of the type's shape,
 * which test/unit/evidence-version.test.ts recomputes from a full sample of the type: a field
 * added, removed or retyped fails that test until this line is changed with it.
 */
export const EVIDENCE_VERSION = 'e6-b60ead0e05';

import type { PhoneNumber } from '../numbers';
import type { RegistryMatch } from '../registry/registry-index';
import type { Attestation, ShakenErrorCode, Verstat } from '../shaken/types';

/**
 * Everything the decision looks at, gathered by the orchestrator. Plain data: the decision
 * never does I/O, so every rule is a unit test with values like these.
 */
export interface CallSignals {
  caller: PhoneNumber;
  /** P-Asserted-Identity (network number), when the switch sent one. */
  network?: PhoneNumber;
  callee: PhoneNumber;
  origin: {
    international?: boolean;
    carrier?: string;
    country?: string;
    trunk?: string;
    /** The caller's home network confirmed this UK mobile caller ID is its customer roaming abroad. */
    roamingVerified?: boolean;
  };
  registry: RegistryMatch | null;
  /** Ofcom's status of the number block holding the caller ID, when numbering data is loaded. */
  numbering?: { status: string; operator?: string };
  shaken: ShakenSignal;
  behaviour?: BehaviourSignals;
}

export interface ShakenSignal {
  /** Where the attestation came from: our own PASSporT verification, an upstream verifier, or nowhere. */
  source: 'passport' | 'upstream' | 'none';
  verstat: Verstat;
  attestation: Attestation | null;
  /** SPC of the verified signing certificate (passport) or the carrier the switch named (upstream). */
  spc?: string;
  /**
   * Passport only: the E.164 digits (no '+') of the verified PASSporT's `orig`, the one number
   * its signature vouches for, and what its certificate authorised (an SPC, or telephone numbers).
   */
  orig?: string;
  authority?: 'spc' | 'tn';
  /** Passport only: reached the called number through a diversion, and who signed it (see ShakenVerification). */
  diversion?: 'spc' | 'tn';
  origid?: string;
  /** Passport only: the certificate URL of the PASSporT judged (see ShakenVerification.x5u), for traceback. */
  x5u?: string;
  /**
   * Passport only: verified rich call data (RFC 9795), cleaned and bounded; kept only when the
   * PASSporT that passed vouches for the caller ID shown (its orig is the From number).
   */
  rcd?: { name?: string; callReason?: string };
  /** RCD_INVALID beside TN-Validation-Passed: the call verified, its rich call data did not (and is gone). */
  errors: ShakenErrorCode[];
}

export interface BehaviourSignals {
  /** Distinct destinations reached per velocity window, in the policy's window order. */
  distinctDestinations?: { seconds: number; count: number }[];
  /** The PASSporT was already seen on another call. */
  replayed?: boolean;
  /** A running spoofing campaign presents this bank's numbers. */
  campaign?: { bankId: string; bankName: string; failedCalls: number; since: string } | null;
  /** Fraud reports against the caller ID: count and age of the newest, in seconds. */
  reports?: { count: number; newestAgeS: number; categories: string[] } | null;
  /**
   * An announcement by the caller ID's organisation of a call from this number to the called one
   * is in its window (true) or none is (false); absent when not asked (the caller ID matched no
   * outbound registry entry, or the called number has no E.164 form).
   */
  announced?: boolean;
}

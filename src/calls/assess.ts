import { hash } from 'node:crypto';
import { parseNumber, type PhoneNumber } from '../numbers';
import type { RegistryIndex } from '../registry';
import { decide, type BehaviourSignals, type CallSignals, type Decision, type Policy, type ShakenSignal } from '../scoring';
import type { ShakenVerification, ShakenVerifier } from '../shaken/types';
import type { VerdictCache } from '../state/verdict-cache';
import type { CallAssessment, CallInput } from './types';

/**
 * What the verdict cache holds: everything about a call that follows from its inputs alone
 * (parsed numbers, registry match, PASSporT verification). Behaviour across calls (velocity,
 * replay, reports, campaigns) changes from one call to the next, so it is gathered fresh on
 * every call, hit or miss, and the decision is always re-run: it is pure and takes a few
 * microseconds, and the answer on a hit is exactly the answer a fresh computation gives.
 */
export interface StaticAssessment {
  signals: Omit<CallSignals, 'behaviour'>;
  /** Fingerprints of the PASSporTs checked, for replay detection. */
  fingerprints: string[];
  /** `iat` of a PASSporT that verified: bounds how long the assessment stays true. */
  iat?: number;
}

/** Behaviour across calls (issue: shared state). Observes the call and reports what stands out. */
export interface BehaviourTracker {
  observe(call: ObservedCall): Promise<BehaviourSignals>;
  /** Keeps the verdict in the history, after the decision. Must not throw. */
  record(call: ObservedCall, decision: Decision): Promise<void>;
}

export interface ObservedCall {
  callId?: string;
  caller: PhoneNumber;
  callee: PhoneNumber;
  registry: CallSignals['registry'];
  shaken: ShakenSignal;
  fingerprints: string[];
  at: number;
}

export interface AssessorDeps {
  defaultCountry: string;
  registry: () => RegistryIndex;
  verifier: ShakenVerifier;
  cache: VerdictCache<StaticAssessment>;
  cacheTtlMs: number;
  policy: Policy;
  policyVersion: string;
  maxPassportAgeS: number;
  now: () => number;
  behaviour?: BehaviourTracker;
}

const NO_SHAKEN: ShakenSignal = { source: 'none', verstat: 'No-TN-Validation', attestation: null, errors: [] };

/** The one orchestrator: all I/O for a call happens here; the decision itself is pure. */
export class CallAssessor {
  constructor(private readonly deps: AssessorDeps) {}

  async assess(input: CallInput): Promise<CallAssessment> {
    const { deps } = this;
    const receivedAtMs = input.receivedAt !== undefined ? Date.parse(input.receivedAt) : deps.now();
    const registry = deps.registry();
    const key = cacheKey(input, registry.version, deps.policyVersion);

    let cached = true;
    let stat = deps.cacheTtlMs > 0 ? await deps.cache.get(key) : undefined;
    if (!stat) {
      cached = false;
      stat = await this.computeStatic(input, registry, receivedAtMs);
      const ttl = this.cacheTtl(input, stat, receivedAtMs);
      if (ttl > 0) void deps.cache.set(key, stat, ttl);
    }

    const observed: ObservedCall = {
      ...(input.callId !== undefined ? { callId: input.callId } : {}),
      caller: stat.signals.caller,
      callee: stat.signals.callee,
      registry: stat.signals.registry,
      shaken: stat.signals.shaken,
      fingerprints: stat.fingerprints,
      at: receivedAtMs,
    };
    const behaviour = deps.behaviour ? await deps.behaviour.observe(observed) : undefined;
    const decision = decide(behaviour ? { ...stat.signals, behaviour } : stat.signals, deps.policy);
    if (deps.behaviour) void deps.behaviour.record(observed, decision);
    return toResponse(input.callId, stat, decision, cached);
  }

  private async computeStatic(input: CallInput, registry: RegistryIndex, receivedAtMs: number): Promise<StaticAssessment> {
    const { defaultCountry } = this.deps;
    const caller = parseNumber(input.from, defaultCountry);
    const callee = parseNumber(input.to, defaultCountry);
    const network = input.pai !== undefined ? parseNumber(input.pai, defaultCountry) : undefined;
    const origin = normaliseOrigin(input.origin, defaultCountry);

    let shaken: ShakenSignal = NO_SHAKEN;
    let fingerprints: string[] = [];
    let iat: number | undefined;
    const identities = input.identity === undefined ? [] : ([] as string[]).concat(input.identity);
    if (identities.length > 0) {
      const verification = await this.deps.verifier.verify({
        identity: identities,
        origCandidates: [caller.e164, network?.e164].filter((n): n is string => typeof n === 'string'),
        dest: callee.e164,
        receivedAt: new Date(receivedAtMs),
      });
      shaken = fromVerification(verification);
      fingerprints = verification.fingerprints;
      if (verification.verstat === 'TN-Validation-Passed') iat = verification.iat;
    } else if (input.attestation !== undefined || input.verstat !== undefined) {
      shaken = {
        source: 'upstream',
        verstat: input.verstat ?? 'TN-Validation-Passed',
        // An upstream "failed" verdict outranks the attestation it came with.
        attestation: input.verstat === 'TN-Validation-Failed' ? null : (input.attestation ?? null),
        errors: [],
      };
    }

    const registryMatch = caller.e164 ? registry.lookup(caller.e164) : null;
    return {
      signals: { caller, callee, ...(network ? { network } : {}), origin, registry: registryMatch, shaken },
      fingerprints,
      ...(iat !== undefined ? { iat } : {}),
    };
  }

  /**
   * How long a static assessment may be reused. A PASSporT verified against "now" goes
   * stale, so its entry lives no longer than the token is fresh; a transient failure (the
   * certificate could not be fetched, a token from the future) is never cached.
   */
  private cacheTtl(input: CallInput, stat: StaticAssessment, receivedAtMs: number): number {
    const ttl = this.deps.cacheTtlMs;
    if (input.identity === undefined) return ttl;
    const errors = stat.signals.shaken.errors;
    if (errors.includes('X5U_FETCH_FAILED') || errors.includes('FUTURE_IAT')) return 0;
    // With an explicit receivedAt the verification is a function of the inputs alone.
    if (input.receivedAt !== undefined) return ttl;
    // A failed verification stays failed; a passed one holds only while the token is fresh.
    if (stat.iat === undefined) return errors.length > 0 ? ttl : 0;
    return Math.min(ttl, (stat.iat + this.deps.maxPassportAgeS) * 1000 - receivedAtMs);
  }
}

function normaliseOrigin(origin: CallInput['origin'], defaultCountry: string): CallSignals['origin'] {
  if (!origin) return {};
  const country = origin.country?.toUpperCase();
  // A call whose origin country is not ours came from abroad, even if the switch did not say so.
  const international = origin.international ?? (country !== undefined ? country !== defaultCountry : undefined);
  return {
    ...(origin.trunk !== undefined ? { trunk: origin.trunk } : {}),
    ...(origin.carrier !== undefined ? { carrier: origin.carrier } : {}),
    ...(country !== undefined ? { country } : {}),
    ...(international !== undefined ? { international } : {}),
  };
}

function fromVerification(v: ShakenVerification): ShakenSignal {
  return {
    source: 'passport',
    verstat: v.verstat,
    attestation: v.attestation,
    ...(v.spc !== undefined ? { spc: v.spc } : {}),
    ...(v.origid !== undefined ? { origid: v.origid } : {}),
    errors: v.errors,
  };
}

/**
 * Covers every input that can change the static assessment, and the registry's and policy's
 * versions. `callId` is left out (it changes nothing but the echo); `receivedAt` is in only
 * when the switch gave it, because then PASSporT freshness is judged against it.
 */
export function cacheKey(input: CallInput, registryVersion: string, policyVersion: string): string {
  const o = input.origin;
  const parts = [
    registryVersion,
    policyVersion,
    input.from,
    input.to,
    input.pai ?? '',
    Array.isArray(input.identity) ? input.identity.join('\n') : (input.identity ?? ''),
    input.attestation ?? '',
    input.verstat ?? '',
    o ? `${o.trunk ?? ''}|${o.carrier ?? ''}|${o.international ?? ''}|${o.country ?? ''}` : '',
    input.receivedAt ?? '',
  ];
  return hash('sha256', parts.join('\u0000'), 'base64url');
}

function toResponse(callId: string | undefined, stat: StaticAssessment, decision: Decision, cached: boolean): CallAssessment {
  const { caller, registry, shaken } = stat.signals;
  return {
    ...(callId !== undefined ? { callId } : {}),
    score: decision.score,
    verdict: decision.verdict,
    reasons: decision.reasons,
    caller: {
      e164: caller.e164,
      valid: caller.valid,
      withheld: caller.withheld,
      ...(caller.type !== undefined ? { type: caller.type } : {}),
      ...(caller.country !== undefined ? { country: caller.country } : {}),
      ...(caller.shortCode ? { shortCode: caller.shortCode.code } : {}),
    },
    registry: registry
      ? { bankId: registry.bankId, bankName: registry.bankName, inboundOnly: registry.inboundOnly, match: registry.match }
      : null,
    shaken: {
      verstat: shaken.verstat,
      attestation: shaken.attestation,
      ...(shaken.origid !== undefined ? { origid: shaken.origid } : {}),
      ...(shaken.spc !== undefined ? { spc: shaken.spc } : {}),
      errors: shaken.errors,
    },
    cached,
  };
}

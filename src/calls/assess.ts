import { hash } from 'node:crypto';
import { createNumberParser, type PhoneNumber } from '../numbers';
import type { NumberingIndex } from '../numbering';
import type { RegistryIndex } from '../registry';
import { callToken, decide, policyFor, type CallSignals, type Decision, type ObservedCall, type PolicyDocument, type ShakenSignal } from '../scoring';
import type { IdentityReading, ShakenVerification, ShakenVerifier } from '../shaken/types';
import type { Behaviour } from './behaviour';
import { EVIDENCE_VERSION, type Evidence } from './evidence';
import type { CallInput, CallOutcome } from './types';

export interface AssessorDeps {
  defaultCountry: string;
  registry: () => RegistryIndex;
  verifier: ShakenVerifier;
  cacheTtlMs: number;
  /**
   * The policy in force and its version, read once a call (a reload swaps it whole); the call's
   * `origin.trunk` picks its profile.
   */
  policy: () => { document: PolicyDocument; version: string };
  /**
   * Names the STI-CA roots in force (their fingerprint). A call that carries PASSporTs has it in
   * its verdict-cache key, so that once the anchors change no instance answers from evidence
   * judged under the old ones, in memory or shared in Redis.
   */
  trustVersion?: () => string;
  maxPassportAgeS: number;
  /** False where the operator says PASSporTs are not verified (SHAKEN_VERIFY=false): Identity is ignored. */
  verifyPassports?: boolean;
  now: () => number;
  /** Behaviour across calls and the verdict cache, over one store: one read and one write a call. */
  behaviour: Behaviour<Evidence>;
  /** Ofcom's number block statuses, when NUMBERING_DATA_DIR holds them. */
  numbering?: NumberingIndex | null;
  /** A candidate policy decided beside the live one, never changing the answer. */
  shadow?: ShadowJudge;
}

/** The shadow policy as a call sees it: no I/O, read and told once a call (usecases/shadow-policy.ts). */
export interface ShadowJudge {
  candidate(): { document: PolicyDocument; version: string } | null;
  record(version: string, callId: string | undefined, at: number, live: Decision, shadow: Decision): void;
}

const NO_SHAKEN: ShakenSignal = { source: 'none', verstat: 'No-TN-Validation', attestation: null, errors: [] };

/**
 * What is known of a call before its PASSporTs are verified: enough to observe its behaviour.
 * The Identity header is read here once, for its fingerprints, and the reading handed on to
 * the verification.
 */
type Prepared = Omit<Evidence, 'signals' | 'iat'> & {
  signals: Omit<CallSignals, 'behaviour' | 'shaken'>;
  identity?: IdentityReading;
};

/**
 * The one orchestrator: all I/O for a call happens here; the decision itself is pure.
 *
 * A call reads top to bottom: facts, one state read, verification on a miss, one decision, one
 * state write, the answer. The store is reached at most twice a call (on Redis, one command
 * each): the read carries the shared verdict cache's lookup, unless the in-process level
 * already had the evidence, and the write carries its new entry.
 */
export class CallAssessor {
  /** One memory for every number of a call: a caller today is a callee tomorrow. */
  private readonly parseNumber: (input: string) => PhoneNumber;

  constructor(private readonly deps: AssessorDeps) {
    this.parseNumber = createNumberParser(deps.defaultCountry);
  }

  async assess(input: CallInput): Promise<CallOutcome> {
    const { deps } = this;
    const { behaviour } = deps;
    const receivedAtMs = input.receivedAt !== undefined ? Date.parse(input.receivedAt) : deps.now();
    const registry = deps.registry();
    const policy = deps.policy();
    const key = cacheKey(input, registry.version, this.passportsOf(input) !== undefined && deps.trustVersion ? `${policy.version}+${deps.trustVersion()}` : policy.version);
    const useCache = deps.cacheTtlMs > 0;

    // Facts: from the in-process cache (no I/O), else from the inputs.
    let evidence = useCache ? behaviour.state.peekCached(key) : undefined;
    const prepared = evidence ? null : this.prepare(input, registry);
    const call = observe(input, evidence ?? prepared!, receivedAtMs);
    const token = tokenOf(call);

    // One read: the behaviour counts and, on an in-process miss, the shared cache entry.
    const lookUp = useCache && prepared !== null;
    const reading = await behaviour.state.read(behaviour.readOf(call, token, lookUp ? key : null));
    const cached = evidence !== undefined || reading.cached !== undefined;
    evidence ??= reading.cached ?? (await this.verify(input, prepared!, receivedAtMs));

    const signals = behaviour.signals(call, token, reading);
    const decision = decide(evidence.signals, policyFor(policy.document, input.origin?.trunk), signals, cached);
    const candidate = deps.shadow?.candidate();
    if (candidate) deps.shadow!.record(candidate.version, input.callId, receivedAtMs, decision, decide(evidence.signals, policyFor(candidate.document, input.origin?.trunk), signals, cached));

    // One write, after the decision and not awaited: the record, and the evidence when it is new.
    const ttl = !cached && useCache ? this.cacheTtl(input, evidence, receivedAtMs) : 0;
    // A call that names itself also leaves its decision record, for "why?" and traceback.
    const context =
      call.callId !== undefined
        ? { facts: evidence.signals, cached, decidedAt: deps.now(), policyVersion: policy.version, registryVersion: registry.version }
        : undefined;
    void behaviour.state.write(behaviour.writeOf(call, token, decision, ttl > 0 ? { key, value: evidence, ttlMs: ttl } : null, context));

    const outcome: CallOutcome = { decision, evidence, cached };
    if (input.callId !== undefined) outcome.callId = input.callId;
    return outcome;
  }

  /** Everything but the PASSporT verification: numbers, origin, registry, fingerprints. */
  private prepare(input: CallInput, registry: RegistryIndex): Prepared {
    const caller = this.parseNumber(input.from);
    const callee = this.parseNumber(input.to);
    const network = input.pai !== undefined ? this.parseNumber(input.pai) : undefined;
    const range = caller.e164 ? (this.deps.numbering?.rangeStatus(caller.e164) ?? null) : null;
    const passports = this.passportsOf(input);
    const identity = passports !== undefined ? this.deps.verifier.read(passports) : undefined;
    return {
      signals: {
        caller,
        callee,
        ...(network ? { network } : {}),
        origin: normaliseOrigin(input.origin, this.deps.defaultCountry),
        registry: caller.e164 ? registry.lookup(caller.e164) : null,
        ...(range ? { numbering: range } : {}),
      },
      ...(identity ? { identity } : {}),
      fingerprints: identity?.fingerprints ?? [],
    };
  }

  private async verify(input: CallInput, prepared: Prepared, receivedAtMs: number): Promise<Evidence> {
    const { caller, callee, network } = prepared.signals;
    let shaken: ShakenSignal = NO_SHAKEN;
    let iat: number | undefined;
    const passports = this.passportsOf(input);
    if (passports !== undefined) {
      const verification = await this.deps.verifier.verify({
        identity: passports,
        origCandidates: [caller.e164, network?.e164].filter((n): n is string => typeof n === 'string'),
        dest: callee.e164,
        receivedAt: new Date(receivedAtMs),
        ...(prepared.identity ? { reading: prepared.identity } : {}),
      });
      shaken = fromVerification(verification, caller.e164);
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
    // Object.assign, not a spread: V8 gives each `{ ...x, y }` made here a hidden class of its
    // own (about 200 bytes more per verdict cache entry), where assign reuses one.
    const signals: Evidence['signals'] = Object.assign({}, prepared.signals, { shaken });
    // The reading stays behind: the cache keeps only what a hit needs.
    const stat: Evidence = { signals, fingerprints: prepared.fingerprints };
    if (iat !== undefined) stat.iat = iat;
    return stat;
  }

  /** The call's Identity values, unless PASSporTs are not verified here. */
  private passportsOf(input: CallInput): CallInput['identity'] {
    return this.deps.verifyPassports === false ? undefined : input.identity;
  }

  /**
   * How long evidence may be reused. A PASSporT verified against "now" goes
   * stale, so its entry lives no longer than the token is fresh; a transient failure (the
   * certificate could not be fetched, a token from the future) is never cached.
   */
  private cacheTtl(input: CallInput, stat: Evidence, receivedAtMs: number): number {
    const ttl = this.deps.cacheTtlMs;
    if (this.passportsOf(input) === undefined) return ttl;
    const errors = stat.signals.shaken.errors;
    // RCD_INVALID may come of a jCard that could not be fetched just now: judged again next call.
    if (errors.includes('X5U_FETCH_FAILED') || errors.includes('FUTURE_IAT') || errors.includes('RCD_INVALID')) return 0;
    // With an explicit receivedAt the verification is a function of the inputs alone.
    if (input.receivedAt !== undefined) return ttl;
    // A failed verification stays failed; a passed one holds only while the token is fresh.
    if (stat.iat === undefined) return errors.length > 0 ? ttl : 0;
    return Math.min(ttl, (stat.iat + this.deps.maxPassportAgeS) * 1000 - receivedAtMs);
  }
}

/**
 * The call's token (see callToken) only where it is read: a PASSporT's first presenter, or a
 * bank's campaign count. Hashing it for every other call would cost more than its decision.
 */
function tokenOf(call: ObservedCall): string {
  return call.fingerprints.length > 0 || call.registry !== null ? callToken(call) : UNNAMED;
}
const UNNAMED = 'n:';

function observe(input: CallInput, known: Pick<Evidence, 'fingerprints'> & { signals: Pick<CallSignals, 'caller' | 'callee' | 'registry' | 'network' | 'origin'> }, at: number): ObservedCall {
  const { caller, callee, registry, network, origin } = known.signals;
  const call: ObservedCall = { caller, callee, registry, fingerprints: known.fingerprints, at };
  if (input.callId !== undefined) {
    call.callId = input.callId;
    // Only a call that names itself is told apart from a replay (see callToken): only it needs a route.
    if (network || origin.trunk !== undefined || origin.carrier !== undefined)
      call.route = JSON.stringify([network?.e164 ?? null, origin.trunk ?? null, origin.carrier ?? null]);
  }
  return call;
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
    ...(origin.roamingVerified !== undefined ? { roamingVerified: origin.roamingVerified } : {}),
  };
}

function fromVerification(v: ShakenVerification, callerE164: string | null): ShakenSignal {
  // Rich call data describes the number its PASSporT signed: shown for another (a PASSporT
  // signed for the PAI), it would put a verified name on a caller ID nobody verified.
  const rcd = v.rcd !== undefined && v.orig !== undefined && callerE164 === `+${v.orig}` ? v.rcd : undefined;
  return {
    source: 'passport',
    verstat: v.verstat,
    attestation: v.attestation,
    ...(v.spc !== undefined ? { spc: v.spc } : {}),
    ...(v.orig !== undefined ? { orig: v.orig } : {}),
    ...(v.authority !== undefined ? { authority: v.authority } : {}),
    ...(v.diversion !== undefined ? { diversion: v.diversion } : {}),
    ...(v.origid !== undefined ? { origid: v.origid } : {}),
    ...(v.x5u !== undefined ? { x5u: v.x5u } : {}),
    ...(rcd !== undefined ? { rcd } : {}),
    errors: v.errors,
  };
}

/**
 * Covers every input that can change the evidence, and the registry's and policy's
 * versions. `callId` is left out (it changes nothing but the echo); `receivedAt` is in only
 * when the switch gave it, because then PASSporT freshness is judged against it.
 *
 * The key is the JSON text of those inputs, in a fixed order: JSON quotes every string and
 * keeps an array apart from a string, so no choice of switch-supplied strings (separators,
 * NULs, an Identity list against the same values joined) can make two different calls share a
 * key, and with it a verdict.
 */
const MAX_PLAIN_KEY = 256;

export function cacheKey(input: CallInput, registryVersion: string, policyVersion: string): string {
  const o = input.origin;
  const joined = JSON.stringify([
    EVIDENCE_VERSION,
    registryVersion,
    policyVersion,
    input.from,
    input.to,
    input.pai ?? null,
    // One value or a list of one are the same call.
    typeof input.identity === 'string' ? [input.identity] : (input.identity ?? null),
    input.attestation ?? null,
    input.verstat ?? null,
    o ? [o.trunk ?? null, o.carrier ?? null, o.international ?? null, o.country ?? null, o.roamingVerified ?? null] : null,
    input.receivedAt ?? null,
  ]);
  // Short keys (calls without an Identity header, most of them) stay as they are: hashing every
  // call would cost more than the in-process lookup it serves. Long ones are hashed, so that a
  // hundred thousand cached calls carrying 80 KB of Identity headers cannot fill the memory.
  // The '#' cannot begin a JSON array, so a digest never meets a plain key.
  return joined.length <= MAX_PLAIN_KEY ? joined : `#${hash('sha256', joined, 'base64url')}`;
}

import { cliRestriction, ukCategory, type PhoneNumber } from '../numbers';
import type { Policy, Presentation } from './policy';
import type { Reason, ReasonCode, Verdict } from './reasons';
import type { BehaviourSignals, CallSignals } from './signals';

export interface Decision {
  score: number;
  verdict: Verdict;
  reasons: Reason[];
  presentation: Presentation;
}

const SEVERITY: Record<Verdict, number> = { allow: 0, flag: 1, block: 2 };

/** The call's facts: everything the decision reads but behaviour across calls. */
export type CallFacts = Omit<CallSignals, 'behaviour'>;

/**
 * The decision: signals in, reasons, score and verdict out. Pure and synchronous; the
 * orchestrator gathers the signals. Each rule below reads one kind of evidence and adds at
 * most one reason; a new rule goes here with its weight in the policy.
 *
 * `behaviour` defaults to `facts.behaviour`; the orchestrator hands it apart, with `reused`, when
 * `facts` is a cached evidence's own object, the same for every call that hits it: the reasons
 * that follow from the facts alone are then worked out once per object and policy, not once per
 * call (a cache hit's own rules cost more than the rest of its decision). Facts seen once are not
 * remembered. Whatever is passed, the answer is the one a fresh computation gives.
 */
export function decide(
  facts: CallFacts & Pick<CallSignals, 'behaviour'>,
  policy: Policy,
  behaviour: BehaviourSignals | undefined = facts.behaviour,
  reused = false,
): Decision {
  return decideFrom(reused ? rememberedReasons(facts, policy) : callReasons(facts, policy), facts, behaviour, policy);
}

/**
 * A reused call's own reasons, per policy: two, so that a call decided under the live policy and
 * a shadow candidate (usecases/shadow-policy.ts) keeps both, instead of each evicting the other.
 */
interface Remembered {
  policy: Policy;
  reasons: readonly Reason[];
  other?: { policy: Policy; reasons: readonly Reason[] };
}
const factReasons = new WeakMap<CallFacts, Remembered>();

function rememberedReasons(facts: CallFacts, policy: Policy): readonly Reason[] {
  const known = factReasons.get(facts);
  if (known?.policy === policy) return known.reasons;
  if (known?.other?.policy === policy) return known.other.reasons;
  const reasons = callReasons(facts, policy);
  factReasons.set(facts, { policy, reasons, ...(known ? { other: { policy: known.policy, reasons: known.reasons } } : {}) });
  return reasons;
}

/** The reasons that follow from the call itself (numbers, registry, attestation): everything but behaviour across calls. */
function callReasons(signals: CallFacts, policy: Policy): Reason[] {
  const reasons: Reason[] = [];
  const add = (code: ReasonCode, message: string, weight = policy.weights[code]) =>
    reasons.push({ code, weight, message });
  if (isEmergency(signals)) add('EMERGENCY_CALL', `call to emergency number ${signals.callee.shortCode?.code}: always connected`);
  callerIdRules(signals, add);
  bankRules(signals, add);
  abroadRules(signals, add);
  shakenRules(signals, add, policy);
  return reasons;
}

/** The call's own reasons plus its behaviour's, turned into a score and a verdict. */
function decideFrom(own: readonly Reason[], facts: CallFacts, behaviour: BehaviourSignals | undefined, policy: Policy): Decision {
  // A replayed signature vouches for a call that already happened: whatever it earned this one goes.
  const reasons = behaviour?.replayed === true ? own.filter((r) => !isSignatureCredit(r)) : [...own];
  const add: Add = (code, message, weight = policy.weights[code]) => reasons.push({ code, weight, message });
  announcementRules(facts, behaviour, reasons, add);
  behaviourRules(behaviour, bankOriginShown(facts, reasons), policy, add);

  const total = reasons.reduce((sum, r) => sum + r.weight, policy.baseScore);
  const score = Math.max(0, Math.min(100, Math.round(total)));
  let verdict: Verdict = score >= policy.thresholds.block ? 'block' : score >= policy.thresholds.flag ? 'flag' : 'allow';
  for (const r of reasons) {
    const floor = policy.verdictFloors[r.code];
    if (floor && SEVERITY[floor] > SEVERITY[verdict]) verdict = floor;
  }
  // Nothing may stand between a caller and the emergency services, spoofed or not.
  if (isEmergency(facts)) verdict = 'allow';
  return { score, verdict, reasons, presentation: presentationOf(facts, policy) };
}

/**
 * A UK mobile caller ID from abroad, not confirmed as a roamer, is shown or withheld as the
 * policy says; one its organisation authorises from this trunk or carrier (an offshore call
 * centre) is shown.
 */
function presentationOf(facts: CallFacts, policy: Policy): Presentation {
  const { caller, origin } = facts;
  if (origin.international === true && origin.roamingVerified !== true && ukCategory(caller) === 'mobile' && !overseasOrigin(facts))
    return policy.presentation.ukMobileFromAbroad;
  return 'allowed';
}

/**
 * The trunk or carrier through which the caller ID's own organisation presents it from abroad
 * (its entry's `overseasOrigins`), when this call from abroad came through one; else undefined.
 * Ofcom's exception to blocking UK caller IDs from abroad: a UK organisation calling from an
 * overseas network or call centre.
 *
 * A trunk is where the call entered this network, which the switch knows first hand: listed, it
 * is enough. A carrier is also judged by `authorisedSpcs` (bankRules): one the entry names as an
 * overseas origin but not as an authorised carrier is an unauthorised origin, not an exception,
 * so an offshore carrier must be listed in both. An inbound-only number never makes calls, from
 * anywhere.
 */
function overseasOrigin({ caller, origin, registry }: Pick<CallSignals, 'caller' | 'origin' | 'registry'>): { via: 'trunk' | 'carrier'; name: string } | undefined {
  if (origin.international !== true || !registry?.overseasOrigins || registry.inboundOnly || ukCategory(caller) === null) return undefined;
  const listed = registry.overseasOrigins;
  if (origin.trunk !== undefined && listed.includes(origin.trunk)) return { via: 'trunk', name: origin.trunk };
  const { carrier } = origin;
  if (carrier !== undefined && listed.includes(carrier) && (registry.authorisedSpcs === undefined || registry.authorisedSpcs.includes(carrier)))
    return { via: 'carrier', name: carrier };
  return undefined;
}

const SIGNATURE_CODES: ReadonlySet<ReasonCode> = new Set<ReasonCode>(['BANK_VERIFIED', 'SHAKEN_ATTEST_A', 'SHAKEN_ATTEST_B', 'SHAKEN_ATTEST_C']);

function isSignatureCredit(r: Reason): boolean {
  return r.weight < 0 && SIGNATURE_CODES.has(r.code);
}

/**
 * Whether the call's attestation is about the caller ID the called party will see. A PASSporT
 * vouches for its `orig` and nothing else: signed for the P-Asserted-Identity, it says nothing
 * of a From number that differs. An upstream verifier's attestation carries no `orig`, so it is
 * taken to be about the caller ID, as the switch that passed it on presents it.
 */
export function attestsCaller({ shaken, caller }: Pick<CallSignals, 'shaken' | 'caller'>): boolean {
  if (shaken.source !== 'passport') return true;
  // Carried to this called number by a diversion a delegate certificate signed: its holder can
  // "divert" a PASSporT it received (a bank's call to its own line, say) to anyone, so the
  // signature says nothing of this call.
  if (shaken.diversion === 'tn') return false;
  return shaken.orig !== undefined && caller.e164 !== null && caller.e164 === `+${shaken.orig}`;
}

/**
 * Whether the call carries its organisation's own evidence of where it came from: a verified
 * signature for the number (BANK_VERIFIED), its announcement of this very call
 * (BANK_CALL_EXPECTED), a carrier it names in authorisedSpcs, or, on a call from abroad, a trunk
 * or carrier it names in overseasOrigins, with nothing on the call contradicting it. Counts across
 * calls are kept per presented number, so a spoofer presenting an organisation's number fills them
 * (velocity, the organisation's campaign, reports against the number) as much as the organisation
 * does: such counts describe the spoofers, and a call that shows the organisation's evidence is
 * evidence against them, not one of them.
 */
function bankOriginShown(facts: CallFacts, reasons: readonly Reason[]): boolean {
  const { registry, origin } = facts;
  if (!registry || registry.inboundOnly) return false;
  if (reasons.some((r) => r.code === 'BANK_UNAUTHORISED_ORIGIN')) return false;
  if (reasons.some((r) => r.code === 'BANK_VERIFIED' || r.code === 'BANK_CALL_EXPECTED')) return true;
  if (registry.authorisedSpcs !== undefined && origin.carrier !== undefined && registry.authorisedSpcs.includes(origin.carrier)) return true;
  return overseasOrigin(facts) !== undefined;
}

function isEmergency({ callee }: Pick<CallSignals, 'callee'>): boolean {
  return callee.shortCode?.emergency === true;
}

type Add = (code: ReasonCode, message: string, weight?: number) => void;

function describe(n: PhoneNumber): string {
  return n.e164 ?? n.shortCode?.code ?? 'the number';
}

function callerIdRules({ caller, network, numbering }: CallSignals, add: Add): void {
  if (caller.withheld) {
    add('CLI_WITHHELD', 'caller ID is withheld');
  } else {
    const restriction = cliRestriction(caller);
    if (restriction) add('CLI_NOT_ALLOWED_TYPE', restriction);
    else if (!caller.valid) add('CLI_INVALID', `caller ID ${describe(caller)} is not a valid, diallable number`);
    // Valid by the numbering plan, but in a block no provider holds: nobody can be calling from it.
    else if (numbering && numbering.status !== 'allocated')
      add('CLI_INVALID', `caller ID ${describe(caller)} is in a range Ofcom lists as ${numbering.status} (not allocated)`);
  }
  // The network number (PAI) is what the originating network vouches for: it must be valid too.
  if (network && !network.withheld && !caller.withheld && caller.valid) {
    const restriction = cliRestriction(network);
    if (restriction) add('CLI_NOT_ALLOWED_TYPE', `network number (P-Asserted-Identity): ${restriction}`);
    else if (!network.valid)
      add('CLI_INVALID', `network number (P-Asserted-Identity) ${describe(network)} is not a valid, diallable number`);
  }
}

function bankRules(signals: CallSignals, add: Add): void {
  const { registry, shaken, origin } = signals;
  if (!registry) return;
  const bank = `${registry.bankName}'s`;
  if (registry.inboundOnly) {
    add('CLI_DNO', `${registry.key} is one of ${bank} inbound-only numbers and never makes calls`);
    return;
  }
  const authorised = registry.authorisedSpcs;
  const isAuthorised = (spc: string) => authorised === undefined || authorised.includes(spc);
  // Evidence of the originating carrier: the verified signer, whatever number it signed (a
  // carrier the bank does not use is on the call either way), and what the switch says.
  const verified = shaken.verstat === 'TN-Validation-Passed';
  const signerSpc = verified ? shaken.spc : undefined;
  const carriers = [signerSpc, origin.carrier].filter((c): c is string => typeof c === 'string' && c !== '');
  const unauthorised = carriers.find((c) => !isAuthorised(c));
  if (unauthorised !== undefined) {
    add(
      'BANK_UNAUTHORISED_ORIGIN',
      `${registry.key} is ${bank} number but carrier ${unauthorised} is not authorised to originate its calls`,
    );
    return;
  }
  // A delegate certificate names telephone numbers, no carrier: it cannot be one the bank authorised.
  if (verified && shaken.source === 'passport' && shaken.authority === 'tn' && authorised !== undefined) {
    add(
      'BANK_UNAUTHORISED_ORIGIN',
      `${registry.key} is ${bank} number but it was signed under a delegate certificate that names no authorised carrier`,
    );
    return;
  }
  if (!attestsCaller(signals)) return;
  const verifiedSpc = signerSpc ?? (shaken.source === 'upstream' ? origin.carrier : undefined);
  if (shaken.attestation === 'A' && shaken.verstat !== 'TN-Validation-Failed' && (verifiedSpc !== undefined || authorised === undefined)) {
    add(
      'BANK_VERIFIED',
      `${registry.key} is ${bank} number, signed with full attestation${verifiedSpc ? ` by authorised carrier ${verifiedSpc}` : ''}`,
    );
  }
}

function abroadRules(signals: CallSignals, add: Add): void {
  const { caller, origin, registry } = signals;
  if (origin.international !== true) return;
  const category = ukCategory(caller);
  const from = origin.country ? ` (from ${origin.country})` : '';
  const authorised = overseasOrigin(signals);
  if (authorised && registry)
    add(
      'CLI_OVERSEAS_AUTHORISED',
      `UK ${category === 'mobile' ? 'mobile ' : ''}number ${caller.e164} presented on a call arriving from abroad${from} through ${authorised.via} ${authorised.name}, which ${registry.bankName} authorises to present it from abroad`,
    );
  else if (category === 'domestic')
    add('CLI_DOMESTIC_FROM_ABROAD', `UK number ${caller.e164} presented on a call arriving from abroad${from}`);
  // A roamer its home network vouches for is one of the legitimate cases Ofcom names.
  else if (category === 'mobile' && origin.roamingVerified !== true)
    add('CLI_MOBILE_FROM_ABROAD', `UK mobile number ${caller.e164} presented on a call arriving from abroad${from}; the owner may be roaming`);
}

function shakenRules(signals: CallSignals, add: Add, policy: Policy): void {
  const { shaken } = signals;
  if (shaken.verstat === 'TN-Validation-Failed') {
    const why = shaken.errors.length > 0 ? shaken.errors.join(', ') : 'upstream verifier reported TN-Validation-Failed';
    add('SHAKEN_INVALID', `caller ID attestation failed verification: ${why}`);
    return;
  }
  // RCD_INVALID is about the rich call data alone: the signature still verified the call (its
  // attestation counts), and the data that failed its integrity check is already gone.
  const unchecked = shaken.errors.filter((e) => e !== 'RCD_INVALID');
  if (unchecked.length > 0) {
    // The certificate could not be had: nothing was proven, neither the signature nor a forgery.
    add('SHAKEN_UNVERIFIED', `a PASSporT could not be checked (${unchecked.join(', ')}): scored as unverified`);
    return;
  }
  if (shaken.attestation) {
    const via = shaken.source === 'passport' ? 'verified PASSporT' : 'upstream verifier';
    const meaning = { A: 'full', B: 'partial', C: 'gateway' }[shaken.attestation];
    const code = `SHAKEN_ATTEST_${shaken.attestation}` as const;
    if (attestsCaller(signals)) {
      add(code, `${meaning} attestation (${shaken.attestation}) from ${via}`);
    } else {
      // Signed for another number (the P-Asserted-Identity): it earns the caller ID no credit,
      // while a risk it carries (a gateway's C) still counts.
      const weight = Math.max(0, policy.weights[code]);
      const why =
        shaken.diversion === 'tn'
          ? 'reached this number through a diversion signed under a delegate certificate'
          : `vouches for +${shaken.orig ?? '?'}, not for the caller ID presented`;
      add(code, `${meaning} attestation (${shaken.attestation}) from ${via} ${why}: no credit`, weight);
    }
    return;
  }
  add('SHAKEN_ABSENT', 'no STIR/SHAKEN attestation on the call');
}

/**
 * What on the call says it did not come from where the organisation calls from: a carrier it does
 * not use, a UK number arriving from abroad, a PASSporT that failed. An announcement is no
 * credit against these: a spoofer who times a call to an announced one must not borrow it.
 */
const CONTRARY_TO_ANNOUNCEMENT: ReadonlySet<ReasonCode> = new Set<ReasonCode>(['BANK_UNAUTHORISED_ORIGIN', 'CLI_DOMESTIC_FROM_ABROAD', 'CLI_MOBILE_FROM_ABROAD', 'SHAKEN_INVALID']);

/**
 * Announced calls. An organisation that told the network it is calling this number from this
 * one now gave evidence a spoofer presenting its number cannot give; one that announces every
 * call and did not announce this one gave evidence against it. The announcement is about the From
 * number, and that is what was matched (see Behaviour): no signature enters into it, so a
 * PASSporT signed for the PAI cannot turn into this credit. A replayed PASSporT, or a reason in
 * CONTRARY_TO_ANNOUNCEMENT, withholds the credit. Emergency calls are left as they are.
 */
function announcementRules(facts: CallFacts, behaviour: BehaviourSignals | undefined, reasons: readonly Reason[], add: Add): void {
  const { registry, caller, callee } = facts;
  if (!registry || registry.inboundOnly || behaviour?.announced === undefined || isEmergency(facts)) return;
  const call = `${describe(caller)} to ${describe(callee)}`;
  if (behaviour.announced) {
    if (behaviour.replayed === true || reasons.some((r) => CONTRARY_TO_ANNOUNCEMENT.has(r.code))) return;
    add('BANK_CALL_EXPECTED', `${registry.bankName} announced this call (${call}) and its announcement is still in its window`);
  } else if (registry.announcesCalls === true) {
    add('BANK_CALL_UNEXPECTED', `${registry.bankName} announces every call it makes, and announced no call ${call} in force now`);
  }
}

function behaviourRules(behaviour: BehaviourSignals | undefined, bankOrigin: boolean, policy: Policy, add: Add): void {
  if (!behaviour) return;
  // A replayed signature is about this call's own evidence, whoever else presents the number.
  if (behaviour.replayed) add('PASSPORT_REPLAY', 'this PASSporT was already presented on another call: its signature earns this call no credit');
  if (bankOrigin) return;
  // A campaign against the organisation is the one signal that others present its numbers: a
  // number of it reaching many people, or reported by them, is that same campaign counted again
  // (the organisation's own calls reach many people too). Summed, they would block its genuine
  // calls that carry no evidence either way; under a campaign they are shown at weight 0, and
  // the campaign alone flags the call. Shown, they still count as the call's failed checks.
  const campaign = behaviour.campaign;
  if (campaign)
    add('CAMPAIGN_ACTIVE', `a spoofing campaign presenting ${campaign.bankName}'s numbers is running (${campaign.failedCalls} failing calls since ${campaign.since})`);
  const within = campaign ? ' (part of the campaign: no weight of its own)' : '';
  const over = behaviour.distinctDestinations?.find((d) => {
    const limit = policy.velocity.windows.find((w) => w.seconds === d.seconds)?.maxDistinct;
    return limit !== undefined && d.count > limit;
  });
  if (over) add('VELOCITY_HIGH', `caller ID reached ${over.count} distinct numbers in ${over.seconds} s${within}`, campaign ? 0 : undefined);
  const reports = behaviour.reports;
  if (reports && reports.count > 0 && reports.newestAgeS <= policy.reports.maxAgeS) {
    // Reports fade: full weight when fresh, halved every half-life.
    const weight = Math.round(policy.weights.REPORTED_FRAUD * Math.pow(0.5, reports.newestAgeS / policy.reports.halfLifeS));
    if (weight > 0)
      add('REPORTED_FRAUD', `caller ID reported for fraud ${reports.count} time(s) (${reports.categories.join(', ')})${within}`, campaign ? 0 : weight);
  }
}

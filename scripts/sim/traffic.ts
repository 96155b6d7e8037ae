import { parsePhoneNumberFromString } from 'libphonenumber-js/max';

/**
 * A UK network's traffic over a simulated stretch of time, legitimate and fraudulent at once,
 * as the switch would describe each call to the service. Seeded: the same seed and size give the
 * same calls, in the same order, at the same times.
 *
 * The organisations are those of registry.json beside this file: a bank with an offshore call
 * centre, a bank that announces every call, a government body and a utility, each with inbound-
 * only numbers (do-not-originate) and outbound numbers it calls from through its own carrier.
 */

/** Every kind of call, and whether it is fraud. */
export const KINDS = {
  // Legitimate traffic.
  'domestic caller': false,
  'foreign caller': false,
  'UK mobile roaming (verified)': false,
  'withheld caller': false,
  'organisation, own carrier': false,
  'organisation via transit, carrier unknown': false,
  'contact centre, not in the registry': false,
  'bank, offshore call centre': false,
  'bank, announced call': false,
  'emergency call': false,
  // iSpoof-style fraud.
  'DNO number from domestic VoIP': true,
  'organisation number via unauthorised carrier': true,
  'organisation number from abroad': true,
  'UK mobile spoofed from abroad': true,
  'invalid caller ID': true,
  'campaign rotating a bank\'s numbers': true,
  'unannounced call from an announcing bank': true,
  'organisation number via transit, carrier unknown': true,
} as const;

export type Kind = keyof typeof KINDS;

export interface ScoreRequest {
  from: string;
  to: string;
  callId: string;
  receivedAt: string;
  origin?: { trunk?: string; carrier?: string; international?: boolean; country?: string; roamingVerified?: boolean };
}

export type SimEvent =
  | { at: number; type: 'score'; kind: Kind; body: ScoreRequest }
  /** A bank announcing the call it is about to make (POST /v1/calls/expected). */
  | { at: number; type: 'announce'; body: { from: string; to: string; validForS: number; reference: string } }
  /** A called party reporting a fraud call (POST /v1/reports). */
  | { at: number; type: 'report'; body: { number: string; category: 'spoof'; callId: string } };

export interface TrafficOptions {
  seed: number;
  /** Calls scored in all (announcements and reports come on top). */
  calls: number;
  /** Simulated duration, in seconds. */
  durationS: number;
  /** Simulated start (ms since the epoch). */
  start: number;
}

/** A call's mix, in parts per thousand of all calls. */
const MIX: Record<Kind, number> = {
  'domestic caller': 430,
  'foreign caller': 60,
  'UK mobile roaming (verified)': 25,
  'withheld caller': 50,
  'organisation, own carrier': 80,
  'organisation via transit, carrier unknown': 10,
  'contact centre, not in the registry': 30,
  'bank, offshore call centre': 30,
  'bank, announced call': 40,
  'emergency call': 10,
  'DNO number from domestic VoIP': 40,
  'organisation number via unauthorised carrier': 40,
  'organisation number from abroad': 30,
  'UK mobile spoofed from abroad': 25,
  'invalid caller ID': 20,
  "campaign rotating a bank's numbers": 40,
  'unannounced call from an announcing bank': 10,
  'organisation number via transit, carrier unknown': 10,
};

// The organisations of registry.json: their numbers and their carriers.
const ALBION = { outbound: '+4411349605', carrier: '4101', offshoreTrunk: 'trunk-albion-offshore', inbound: ['+443069990500', '+448081570500'] };
const THISTLE = { outbound: '+4413149606', carrier: '4202', inbound: ['+443069990600'] };
const REVENUE = { outbound: '+4412149607', carrier: '4303', inbound: ['+443069990700'] };
const NORTHGRID = { outbound: '+4416149608', carrier: '4404', inbound: ['+448081570800'] };
const OWN_CARRIER_CALLERS = [ALBION, REVENUE, NORTHGRID];
const ORGANISATIONS = [ALBION, THISTLE, REVENUE, NORTHGRID];

/** UK networks' interconnect carriers (service provider codes), and a VoIP provider spoofers use. */
const DOMESTIC_CARRIERS = ['5001', '5002', '5003', '5004', '5005'];
const VOIP_CARRIERS = ['6601', '6602'];
const FOREIGN = [
  { country: 'FR', prefix: '+336', digits: 8 },
  { country: 'US', prefix: '+1212', digits: 7 },
  { country: 'DE', prefix: '+49151', digits: 8 },
  { country: 'IN', prefix: '+9198', digits: 8 },
  { country: 'ES', prefix: '+346', digits: 8 },
];
const FRAUD_COUNTRIES = ['NG', 'IN', 'PK', 'GH', 'US', 'NL'];
const INVALID_CLIS = ['+4420123', '00000000000', '+4407', '+449098790123', '159', '+44999', '+44700000'];

/** mulberry32: small, fast, and the same sequence on every machine for a seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function generateTraffic(opts: TrafficOptions): SimEvent[] {
  const rnd = prng(opts.seed);
  const int = (n: number) => Math.floor(rnd() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  const digits = (n: number) => Array.from({ length: n }, () => int(10)).join('');

  /** A number that libphonenumber (max metadata) holds valid, as the service will. */
  const validNumber = (make: () => string): string => {
    for (let tries = 0; tries < 1000; tries++) {
      const n = make();
      if (parsePhoneNumberFromString(n)?.isValid()) return n;
    }
    throw new Error(`no valid number from ${make.toString()}`);
  };
  const ukMobile = () => validNumber(() => `+447${pick(['4', '5', '7', '8', '9'])}${digits(8)}`);
  const ukLandline = () => validNumber(() => pick([`+4420${pick(['7', '8'])}${digits(7)}`, `+44161${digits(7)}`, `+44113${digits(7)}`, `+44131${digits(7)}`, `+44121${digits(7)}`]));
  // Callers and customers come from pools, so that numbers recur as they do on a network.
  const customers = Array.from({ length: Math.max(50, Math.round(opts.calls / 8)) }, () => (rnd() < 0.7 ? ukMobile() : ukLandline()));
  const callers = Array.from({ length: Math.max(50, Math.round(opts.calls / 4)) }, () => (rnd() < 0.6 ? ukMobile() : ukLandline()));
  const contactCentre = Array.from({ length: 4 }, ukLandline);
  const roamers = Array.from({ length: Math.max(10, Math.round(opts.calls / 100)) }, ukMobile);
  // A UK number is +44 and ten digits: the organisations' prefixes leave the last two.
  const outboundOf = (org: { outbound: string }) => `${org.outbound}${digits(13 - org.outbound.length)}`;

  const kinds = Object.keys(MIX) as Kind[];
  const total = kinds.reduce((s, k) => s + MIX[k], 0);
  const kindAt = (): Kind => {
    let r = rnd() * total;
    for (const k of kinds) if ((r -= MIX[k]) < 0) return k;
    return kinds[0]!;
  };

  const events: SimEvent[] = [];
  const span = opts.durationS * 1000;
  // One campaign, running through the middle third: the bank's own calls keep coming meanwhile.
  const campaign = { from: opts.start + span / 3, to: opts.start + (2 * span) / 3 };
  for (let i = 0; i < opts.calls; i++) {
    const kind = kindAt();
    let at = opts.start + int(span);
    if (kind === "campaign rotating a bank's numbers") at = campaign.from + int(campaign.to - campaign.from);
    const callId = `sim-${opts.seed}-${i}`;
    const to = pick(customers);
    const base = { callId, receivedAt: new Date(at).toISOString() };
    const domestic = () => ({ trunk: `trunk-uk-${int(8)}`, carrier: pick(DOMESTIC_CARRIERS), international: false });
    let body: ScoreRequest;
    switch (kind) {
      case 'domestic caller':
        body = { ...base, from: pick(callers), to, origin: domestic() };
        break;
      case 'foreign caller': {
        const f = pick(FOREIGN);
        body = { ...base, from: validNumber(() => `${f.prefix}${digits(f.digits)}`), to, origin: { trunk: 'trunk-intl-1', international: true, country: f.country } };
        break;
      }
      case 'UK mobile roaming (verified)':
        body = { ...base, from: pick(roamers), to, origin: { trunk: 'trunk-intl-1', international: true, country: pick(FOREIGN).country, roamingVerified: true } };
        break;
      case 'withheld caller':
        body = { ...base, from: 'anonymous', to, origin: domestic() };
        break;
      case 'organisation, own carrier': {
        const org = pick(OWN_CARRIER_CALLERS);
        body = { ...base, from: outboundOf(org), to, origin: { trunk: `trunk-uk-${int(8)}`, carrier: org.carrier, international: false } };
        break;
      }
      case 'organisation via transit, carrier unknown': {
        // Handed over by a transit network: the switch cannot name the originating carrier.
        const org = pick(OWN_CARRIER_CALLERS);
        body = { ...base, from: outboundOf(org), to, origin: { trunk: `trunk-uk-${int(8)}`, international: false } };
        break;
      }
      case 'contact centre, not in the registry':
        // A courier's or a surgery's outbound team: a few numbers, each agent a call a minute or so.
        body = { ...base, from: pick(contactCentre), to, origin: domestic() };
        break;
      case 'bank, offshore call centre':
        body = { ...base, from: outboundOf(ALBION), to, origin: { trunk: ALBION.offshoreTrunk, international: true, country: 'IN' } };
        break;
      case 'bank, announced call': {
        const from = outboundOf(THISTLE);
        // The agent announces the call a little before dialling, for the default ten minutes.
        events.push({ at: at - 5_000 - int(55_000), type: 'announce', body: { from, to, validForS: 600, reference: `case-${i}` } });
        body = { ...base, from, to, origin: { trunk: `trunk-uk-${int(8)}`, carrier: THISTLE.carrier, international: false } };
        break;
      }
      case 'emergency call':
        body = { ...base, from: rnd() < 0.1 ? 'anonymous' : pick(callers), to: pick(['999', '112']), origin: domestic() };
        break;
      case 'DNO number from domestic VoIP':
        body = { ...base, from: pick(ORGANISATIONS.flatMap((o) => o.inbound)), to, origin: { trunk: `trunk-uk-${int(8)}`, carrier: pick(VOIP_CARRIERS), international: false } };
        break;
      case 'organisation number via unauthorised carrier':
        body = { ...base, from: outboundOf(pick(OWN_CARRIER_CALLERS)), to, origin: { trunk: `trunk-uk-${int(8)}`, carrier: pick(VOIP_CARRIERS), international: false } };
        break;
      case 'organisation number from abroad': {
        const org = pick(ORGANISATIONS);
        body = { ...base, from: rnd() < 0.5 ? outboundOf(org) : pick(org.inbound), to, origin: { trunk: 'trunk-intl-1', international: true, country: pick(FRAUD_COUNTRIES) } };
        break;
      }
      case 'UK mobile spoofed from abroad':
        body = { ...base, from: ukMobile(), to, origin: { trunk: 'trunk-intl-1', international: true, country: pick(FRAUD_COUNTRIES) } };
        break;
      case 'invalid caller ID':
        body = { ...base, from: pick(INVALID_CLIS), to, origin: domestic() };
        break;
      case "campaign rotating a bank's numbers":
        // Albion's numbers, one after another, through whatever carrier the spoofers rent.
        body = { ...base, from: outboundOf(ALBION), to, origin: { trunk: `trunk-uk-${int(8)}`, carrier: pick([...VOIP_CARRIERS, ...DOMESTIC_CARRIERS]), international: false } };
        break;
      case 'organisation number via transit, carrier unknown':
        // A spoofer's call handed over by a transit network: nothing names its carrier.
        body = { ...base, from: outboundOf(pick(OWN_CARRIER_CALLERS)), to, origin: { trunk: `trunk-uk-${int(8)}`, international: false } };
        break;
      case 'unannounced call from an announcing bank':
        // The switch could not tell the carrier: only the missing announcement gives it away.
        body = { ...base, from: outboundOf(THISTLE), to, origin: { trunk: `trunk-uk-${int(8)}`, international: false } };
        break;
      default:
        kind satisfies never;
        throw new Error(`unknown kind ${String(kind)}`);
    }
    events.push({ at, type: 'score', kind, body });
    // Some of the people a fraud reached report it, a little later (a number that is no number
    // cannot be reported).
    if (KINDS[kind] && kind !== 'invalid caller ID' && rnd() < 0.05)
      events.push({ at: at + 60_000 + int(600_000), type: 'report', body: { number: body.from, category: 'spoof', callId } });
  }
  // Time order; among events at the same millisecond, the order they were made in.
  return events.map((e, i) => ({ e, i })).sort((a, b) => a.e.at - b.e.at || a.i - b.i).map(({ e }) => e);
}

/**
 * Every Redis key the service's state uses, in one place (prefix default `callguard:`). Every
 * key of the call path carries a hash tag naming its entity, and every op of the call script
 * (see ops.ts) touches keys of one tag only, so the layout works unchanged on Redis Cluster:
 * keys of one number share a slot (velocity, reports and history of a caller live together).
 *
 *   {p}v:{<caller>}               ZSET  velocity: member = destination E.164, score = last call (ms)
 *   {p}r:{<fingerprint>}          STR   replay: token of the call that first presented the
 *                                       PASSporT (`c:<callId>`, or `u:<random>`), EX replayTtlS
 *   {p}rep:{<number>}             ZSET  fraud reports: member = report JSON, score = time (ms)
 *   {p}repc:{<number>}            ZSET  report categories: member = category, score = newest (ms)
 *                                       (both: reports that count against the number, not `genuine`)
 *   {p}repall:{reports}           ZSET  every report, for review (GET /v1/reports): member = report
 *                                       JSON, score = time (ms); trimmed to the reports' max age and
 *                                       the newest REVIEW_INDEX_MAX (state/reports.ts)
 *   {p}c:{b:<bankId>}             ZSET  a bank's failing calls: member = `<number> <token>`,
 *                                       score = time (ms)
 *   {p}cidx:{campaigns}           ZSET  banks with failing calls: member = bankId, score = last (ms)
 *   {p}cname:{campaigns}          HASH  bankId -> bankName, for the campaign list
 *   {p}h:{<caller>}               ZSET  verdict history of a caller: member = compact JSON, score = ms
 *   {p}h:{<caller>}:<callee>      ZSET  verdict history of a caller to one callee
 *   {p}hw:{<callee>}              ZSET  verdict history of withheld/invalid callers to a callee
 *   {p}ann:{<caller>}:<callee>    ZSET  announced calls from caller to callee: member = announcement id,
 *                                       score = end of its window (ms); counted by the call's read
 *   {p}anid:{<id>}                STR   an announcement (JSON), until its window ends + retention
 *   {p}anb:{b:<bankId>}           ZSET  a bank's active announcements: member = JSON, score = end of window
 *   {p}anc:{<callee>}             ZSET  announcements to a number, past ones kept for the retention
 *                                       (callback answers): member = JSON, score = end of window
 *   {p}d:{<callId>}               LIST  decision records of one call id, newest first: compact
 *                                       JSON each, at most 20 (LTRIM), PEXPIRE = history retention
 *   {p}verdict:<digest>           STR   the shared verdict cache: {e: expiry ms, v: Evidence}
 *                                       (no hash tag: its own group on a Cluster)
 *   {p}x5u:<sha256 of the URL>    STR   a judged certificate chain (PEM with its expiry)
 *   {p}crl:<sha256 of the URL>    STR   a CRL (base64 DER with its expiry), PX until its nextUpdate
 *   {p}rl:*                             the rate limiter's counters
 *   {p}{registry}:*                     the registry (see registryKeys below)
 *
 * The prefix is REDIS_KEY_PREFIX (default `callguard:`): one deployment's instances share it.
 *
 * Every sorted set is trimmed by time (and size where a spammer could grow it) on write and
 * carries a PEXPIRE of its window, so idle entities cost nothing. Braces in bank ids and
 * fingerprints are escaped so that they cannot move a key to another slot.
 */

export const DEFAULT_PREFIX = 'callguard:';

/** `{prefix}{kind}:{tag}{rest}`: the tag decides the slot, so keys of one entity share it. */
export function taggedKey(prefix: string, kind: string, tag: string, rest = ''): string {
  return `${prefix}${kind}:{${tag}}${rest}`;
}

/** Makes arbitrary text usable inside a hash tag, keeping distinct inputs distinct. */
export function tagSafe(s: string): string {
  return s.replace(/[%{}]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

export function checkPrefix(prefix: string): string {
  // A brace in the prefix would become the hash tag of every key and put them all in one slot.
  if (/[{}]/.test(prefix)) throw new Error(`redis key prefix must not contain { or }: ${prefix}`);
  return prefix;
}

/** The keys of one prefix, by kind. */
export function keyspace(prefix: string = DEFAULT_PREFIX) {
  checkPrefix(prefix);
  return {
    prefix,
    velocity: (callerTag: string) => taggedKey(prefix, 'v', callerTag),
    presenter: (fingerprintTag: string) => taggedKey(prefix, 'r', fingerprintTag),
    reports: (numberTag: string) => taggedKey(prefix, 'rep', numberTag),
    reportCategories: (numberTag: string) => taggedKey(prefix, 'repc', numberTag),
    /** Every report, for review across numbers; off the call path. */
    reportIndex: () => taggedKey(prefix, 'repall', 'reports'),
    campaign: (bankTag: string) => taggedKey(prefix, 'c', bankTag),
    campaignIndex: () => taggedKey(prefix, 'cidx', 'campaigns'),
    campaignNames: () => taggedKey(prefix, 'cname', 'campaigns'),
    history: (callerTag: string, callee?: string) => taggedKey(prefix, 'h', callerTag, callee !== undefined ? `:${callee}` : ''),
    withheldHistory: (calleeTag: string) => taggedKey(prefix, 'hw', calleeTag),
    /** Tagged by the caller, as its velocity and history keys are: the call's read counts it in the same script call. */
    announced: (callerTag: string, callee: string) => taggedKey(prefix, 'ann', callerTag, `:${callee}`),
    announcement: (idTag: string) => taggedKey(prefix, 'anid', idTag),
    bankAnnouncements: (bankTag: string) => taggedKey(prefix, 'anb', bankTag),
    announcementsTo: (calleeTag: string) => taggedKey(prefix, 'anc', calleeTag),
    decisions: (callIdTag: string) => taggedKey(prefix, 'd', callIdTag),
    /** The shared verdict cache: `{verdict}<digest of the cache key>`. */
    verdict: `${prefix}verdict:`,
    /** Judged certificate chains: `{certificates}<sha256 of the x5u URL>`. */
    certificates: `${prefix}x5u:`,
    /** CRLs of certificate chains: `{crls}<sha256 of the CRL URL>`. */
    crls: `${prefix}crl:`,
    /** The rate limiter's counters (its own namespace). */
    rateLimit: `${prefix}rl:`,
    /** The registry: every key under one hash tag, so that a change is one script on a Cluster too. */
    registry: registryKeys(`${prefix}{registry}:`),
  };
}

export type Keyspace = ReturnType<typeof keyspace>;

/**
 * The registry's keys (registry/redis-backend.ts writes them):
 *   banks    HASH  bank id -> Bank JSON
 *   entries  HASH  "number:+44..." | "prefix:+44..." -> RegistryEntry JSON
 *   version  STR   the registry's version; seq STR, the change count
 *   log      STREAM the change log the instances follow; audit STREAM the audit log
 *   seeding  STR   held while one instance seeds an empty Redis
 *   stage:*  LIST  a large change's pieces, staged before its script applies them (TTL)
 */
function registryKeys(p: string) {
  return { banks: `${p}banks`, entries: `${p}entries`, version: `${p}version`, seq: `${p}seq`, log: `${p}log`, audit: `${p}audit`, seeding: `${p}seeding`, stage: `${p}stage:` };
}

/** The hash tag of a bank's keys. */
export function bankTag(bankId: string): string {
  return `b:${tagSafe(bankId)}`;
}

/** The tag the campaign index and names share. */
export const CAMPAIGNS_TAG = 'campaigns';

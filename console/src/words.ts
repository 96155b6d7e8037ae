/** What the API's codes mean, in words an agent can read out to a customer. */

export type Verdict = 'allow' | 'flag' | 'block';

export const VERDICT_WORDS: Record<Verdict, string> = {
  allow: 'Put through',
  flag: 'Put through, marked suspicious',
  block: 'Blocked',
};

const REASON_WORDS: Record<string, string> = {
  CLI_WITHHELD: 'The caller hid their number',
  CLI_INVALID: 'The number shown is not a real number',
  CLI_NOT_ALLOWED_TYPE: 'The number shown is of a kind that never makes calls',
  CLI_DNO: 'The number shown only ever receives calls, so whoever used it was pretending',
  CLI_DOMESTIC_FROM_ABROAD: 'A UK landline number shown on a call that came from abroad',
  CLI_MOBILE_FROM_ABROAD: 'A UK mobile number shown on a call that came from abroad',
  CLI_OVERSEAS_AUTHORISED: "From abroad, through a route the bank has approved",
  BANK_UNAUTHORISED_ORIGIN: "The bank's number came through a phone company the bank does not use",
  BANK_VERIFIED: "The bank's number, confirmed by the phone network",
  BANK_CALL_EXPECTED: 'The bank said beforehand it would make this call',
  BANK_CALL_UNEXPECTED: 'The bank announces its calls, and had not announced this one',
  SHAKEN_ABSENT: 'The phone network gave no proof of who was calling',
  SHAKEN_UNVERIFIED: "The network's proof of the caller could not be checked",
  SHAKEN_ATTEST_A: 'The network vouched fully for the caller and the number',
  SHAKEN_ATTEST_B: 'The network knew the caller but not that the number was theirs',
  SHAKEN_ATTEST_C: 'The network only knew where the call came in',
  SHAKEN_INVALID: "The network's proof of the caller was wrong or forged",
  VELOCITY_HIGH: 'The number made unusually many calls in a short time',
  PASSPORT_REPLAY: 'The proof of the caller was copied from another call',
  CAMPAIGN_ACTIVE: "Someone is pretending to be the bank on many calls right now",
  REPORTED_FRAUD: 'The number was recently reported for fraud',
  EMERGENCY_CALL: 'An emergency call, always put through',
};

/** A reason code in words; a code this console does not know is shown as it is. */
export const reasonWords = (code: string): string => REASON_WORDS[code] ?? code;

export function when(iso: string, now = Date.now()): string {
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return iso;
  const minutes = Math.round((now - t) / 60_000);
  const at = new Date(t).toLocaleString('en-GB', { dateStyle: 'medium', timeStyle: 'short' });
  if (minutes < 0) return at;
  if (minutes < 1) return `${at} (just now)`;
  if (minutes < 120) return `${at} (${minutes} min ago)`;
  return at;
}

/** Reason codes of the service contract, plus the ones this service adds. */
export const REASON_CODES = [
  'CLI_WITHHELD',
  'CLI_INVALID',
  'CLI_NOT_ALLOWED_TYPE',
  'CLI_DNO',
  'CLI_DOMESTIC_FROM_ABROAD',
  'CLI_MOBILE_FROM_ABROAD',
  'CLI_OVERSEAS_AUTHORISED',
  'BANK_UNAUTHORISED_ORIGIN',
  'BANK_VERIFIED',
  'BANK_CALL_EXPECTED',
  'BANK_CALL_UNEXPECTED',
  'SHAKEN_ABSENT',
  'SHAKEN_UNVERIFIED',
  'SHAKEN_ATTEST_A',
  'SHAKEN_ATTEST_B',
  'SHAKEN_ATTEST_C',
  'SHAKEN_INVALID',
  'VELOCITY_HIGH',
  'PASSPORT_REPLAY',
  'CAMPAIGN_ACTIVE',
  'REPORTED_FRAUD',
  'EMERGENCY_CALL',
] as const;

export type ReasonCode = (typeof REASON_CODES)[number];

export interface Reason {
  code: ReasonCode;
  /** > 0 raises the risk, < 0 lowers it. */
  weight: number;
  message: string;
}

export type Verdict = 'allow' | 'flag' | 'block';
export const VERDICTS: readonly Verdict[] = ['allow', 'flag', 'block'];

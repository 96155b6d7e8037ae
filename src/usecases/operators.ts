import { ForbiddenError, ValidationError } from '../errors';
import { parseNumber } from '../numbers';
import type { CampaignSummary } from '../scoring';
import type { FraudReport, ReportCategory, ReportQuery, ReportStore } from '../state/reports';
import { bankOfNumber, type BankLookup } from './numbers';
import type { Principal } from './principal';

export interface OperatorDeps {
  /** The registry as it is now (it is replaced as it changes). */
  registry: () => BankLookup;
  listCampaigns: (now: number) => Promise<CampaignSummary[]>;
  reports: Pick<ReportStore, 'addReport' | 'listAll'>;
  now: () => number;
  defaultCountry: string;
}

export interface FraudReportInput {
  number: string;
  category: ReportCategory;
  callId?: string;
  note?: string;
}

export interface ReportReview {
  category?: ReportCategory;
  /** Milliseconds since the epoch. */
  since?: number;
  limit: number;
}

/** What operators and fraud teams do: read the spoofing campaigns running now, report numbers for fraud. */
export class Operators {
  constructor(private readonly deps: OperatorDeps) {}

  /** The campaigns running now; a bank key sees its own bank's. */
  async campaigns(principal: Principal): Promise<CampaignSummary[]> {
    const campaigns = await this.deps.listCampaigns(this.deps.now());
    return principal.role === 'bank' ? campaigns.filter((c) => c.bankId === principal.bankId) : campaigns;
  }

  /**
   * Reports for review, newest first: an administrator sees every report, a bank key those
   * about numbers the registry gives to its bank now (what it may act on; reports it made about
   * numbers that are no bank's stay with the administrators).
   */
  async reports(principal: Principal, review: ReportReview): Promise<FraudReport[]> {
    const query: ReportQuery = { ...review };
    if (principal.role === 'bank') {
      const registry = this.deps.registry();
      query.about = (number) => bankOfNumber(registry, number) === principal.bankId;
    }
    return this.deps.reports.listAll(query, this.deps.now());
  }

  /**
   * Takes a fraud report; the reporter is the key's name. A bank key may report its own bank's
   * numbers and numbers that are no bank's, not another bank's: a report flags that bank's
   * genuine calls, and only it or an administrator may say its number is abused.
   */
  async report(principal: Principal, input: FraudReportInput): Promise<FraudReport> {
    const { number, category, callId, note } = input;
    const parsed = parseNumber(number, this.deps.defaultCountry);
    // Calls from a number that is not diallable are blocked already; a report against one
    // would only be noise, and the store takes E.164 alone.
    if (parsed.e164 === null || !parsed.valid) {
      const why = parsed.withheld ? 'is a withheld caller ID marker, not a number' : 'is not a valid, diallable phone number';
      throw new ValidationError('number', `number: ${JSON.stringify(number.slice(0, 64))} ${why}`, { details: [{ field: 'number', message: why }] });
    }
    if (principal.role === 'bank') {
      const owner = bankOfNumber(this.deps.registry(), parsed.e164);
      if (owner !== null && owner !== principal.bankId) {
        throw new ForbiddenError(
          `number: ${parsed.e164} is a number of bank "${owner}" in the registry: a bank key may not report another bank's number (its genuine calls would be flagged); that bank or an administrator may`,
        );
      }
    }
    return this.deps.reports.addReport({
      number: parsed.e164,
      category,
      ...(callId !== undefined ? { callId } : {}),
      ...(note !== undefined ? { note } : {}),
      reporter: principal.name,
      at: this.deps.now(),
    });
  }
}

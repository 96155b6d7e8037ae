import { ValidationError } from '../errors';
import type { Announcement, AnnouncementStore } from '../state/announcements';
import type { HistoryEntry, HistoryQuery, HistoryStore } from '../state/history';
import { callbackBankOf, requireNumber, type BankLookup } from './numbers';
import type { Principal } from './principal';

const DEFAULT_LOOKBACK_MS = 7 * 86400_000;
const RECENT_CALLS_LIMIT = 100;
const EXPECTED_CALLS_LIMIT = 100;

export interface CallbackVerificationDeps {
  /** The registry as it is now (it is replaced as it changes). */
  registry: () => BankLookup;
  history: Pick<HistoryStore, 'query'>;
  announcements: Pick<AnnouncementStore, 'toNumber'>;
  now: () => number;
  defaultCountry: string;
}

export interface CallbackQuestion {
  number: string;
  customer?: string;
  /** RFC 3339; default 7 days ago. */
  since?: string;
}

export interface CallbackAnswer {
  number: { e164: string; valid: boolean };
  genuine: boolean;
  bank: { id: string; name: string } | null;
  inboundOnly: boolean;
  callbackNumbers: string[];
  /** Only when a customer is given: the calls from the number to the customer, newest first. */
  recentCalls?: HistoryEntry[];
  /** Only when a customer is given: the bank's announced calls to the customer, newest first. */
  expectedCalls?: Announcement[];
}

/**
 * A bank call centre asks whether a number is genuinely a bank's, what became of recent calls
 * presenting it, and which calls the bank announced to the customer.
 */
export class CallbackVerification {
  constructor(private readonly deps: CallbackVerificationDeps) {}

  async verify(principal: Principal, q: CallbackQuestion): Promise<CallbackAnswer> {
    const { registry: currentRegistry, now, defaultCountry } = this.deps;
    const number = requireNumber('number', q.number, defaultCountry);
    const customer = q.customer !== undefined ? requireNumber('customer', q.customer, defaultCountry) : null;
    const sinceMs = q.since !== undefined ? Date.parse(q.since) : now() - DEFAULT_LOOKBACK_MS;
    // The schema checks the shape; should Date.parse still disagree, NaN must not quietly
    // become "the whole retention" in the history query.
    if (!Number.isFinite(sinceMs)) throw new ValidationError('since', 'since: is not a real date and time', { details: [{ field: 'since', message: 'is not a real date and time' }] });

    const registry = currentRegistry();
    const match = registry.lookup(number.e164);
    const callbackBank = callbackBankOf(registry, number.e164);
    const bankId = match?.bankId ?? callbackBank?.id ?? null;
    const bank = bankId !== null ? (registry.bank(bankId) ?? null) : null;

    const answer: CallbackAnswer = {
      number: { e164: number.e164, valid: number.valid },
      genuine: bankId !== null,
      bank: bankId !== null ? { id: bankId, name: bank?.name ?? match?.bankName ?? bankId } : null,
      inboundOnly: match?.inboundOnly ?? false,
      callbackNumbers: bank?.callbackNumbers ?? [],
    };
    if (!customer) return answer;
    const [recentCalls, expectedCalls] = await Promise.all([
      this.recentCalls(principal, { caller: number.e164, callee: customer.e164, since: sinceMs, limit: RECENT_CALLS_LIMIT }),
      this.expectedCalls(principal, bankId, customer.e164, sinceMs),
    ]);
    return { ...answer, recentCalls, expectedCalls };
  }

  /**
   * The calls the number's bank announced to the customer (from any of its numbers: the customer
   * may have been called from another line of the bank), in their window at any time since
   * `since`. A bank key sees its own bank's announcements only: for another bank's number, none.
   */
  private expectedCalls(principal: Principal, bankId: string | null, customer: string, since: number): Promise<Announcement[]> {
    if (bankId === null) return Promise.resolve([]);
    if (principal.role === 'bank' && principal.bankId !== bankId) return Promise.resolve([]);
    return this.deps.announcements.toNumber({ to: customer, bankId, since, limit: EXPECTED_CALLS_LIMIT });
  }

  /**
   * The recent calls a principal may see. A bank key sees only calls that presented its own
   * bank's numbers when they were scored: the history records which bank a call's caller ID
   * matched then, and that alone is filtered on. What the registry says of the number today does
   * not count: a number given to the bank later (or one it holds only as a callback number, with
   * no registry entry) was someone else's, or nobody's, when those calls were made, and their
   * callers' history is not the bank's to read.
   */
  private recentCalls(principal: Principal, q: HistoryQuery): Promise<HistoryEntry[]> {
    const { history } = this.deps;
    if (principal.role !== 'bank') return history.query(q);
    // Fails closed: a bank key is always scoped (the key file requires its bankId), and no
    // scope must never read as "every call".
    if (principal.bankId === null) return Promise.resolve([]);
    return history.query({ ...q, bankId: principal.bankId });
  }
}

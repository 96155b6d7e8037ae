import type { FastifyPluginAsyncZod } from '@fastify/type-provider-zod';
import { parseNumber, type PhoneNumber } from '../../numbers';
import type { Bank } from '../../registry';
import type { HistoryEntry, HistoryQuery, HistoryStore } from '../../state/history';
import type { Principal } from '../auth';
import { HttpError } from '../errors';
import {
  authErrorResponses,
  CallbackVerifyRequestSchema,
  CallbackVerifyResponseSchema,
  errorResponses,
  rateLimitedResponses,
} from '../schemas';

const DEFAULT_LOOKBACK_MS = 7 * 86400_000;
const RECENT_CALLS_LIMIT = 100;

/** A number that cannot be looked up answers 400 naming the field, never an empty answer. */
function requireNumber(field: string, input: string, country: string): PhoneNumber & { e164: string } {
  const n = parseNumber(input, country);
  if (n.e164 !== null) return n as PhoneNumber & { e164: string };
  const why = n.withheld
    ? 'is a withheld caller ID marker, not a number'
    : n.shortCode
      ? `is the short code ${n.shortCode.code}, not a number a bank calls from`
      : 'is not a phone number (E.164, national, tel: or sip: URI)';
  throw new HttpError(400, 'validation_failed', `${field}: ${JSON.stringify(input.slice(0, 64))} ${why}`, [{ field, message: why }]);
}

export const callbackRoutes: FastifyPluginAsyncZod = async (app) => {
  const { config, now } = app.services;
  const country = config.defaultCountry;

  /** Which bank lists the number among its official callback numbers. */
  function callbackBankOf(e164: string): Bank | null {
    for (const bank of app.services.registryStore.index.allBanks()) if (bank.callbackNumbers.includes(e164)) return bank;
    return null;
  }

  /**
   * The recent calls a principal may see. A bank key sees only calls that presented its own
   * bank's numbers when they were scored: the history records which bank a call's caller ID
   * matched then, and that alone is filtered on. What the registry says of the number today does
   * not count: a number given to the bank later (or one it holds only as a callback number, with
   * no registry entry) was someone else's, or nobody's, when those calls were made, and their
   * callers' history is not the bank's to read.
   */
  function recentCalls(history: HistoryStore, principal: Principal, q: HistoryQuery): Promise<HistoryEntry[]> {
    if (principal.role !== 'bank') return history.query(q);
    // Fails closed: a bank key is always scoped (the key file requires its bankId), and no
    // scope must never read as "every call".
    if (principal.bankId === null) return Promise.resolve([]);
    return history.query({ ...q, bankId: principal.bankId });
  }

  app.post(
    '/v1/callbacks/verify',
    {
      config: { roles: ['switch', 'bank', 'admin'] },
      schema: {
        tags: ['callbacks'],
        summary: "Is this number genuinely a bank's, and what became of recent calls presenting it?",
        description:
          "For a call-centre agent (or the bank's app) whose customer says \"my bank just called me from this number\". " +
          '`genuine`, `bank`, `inboundOnly` and `callbackNumbers` are told to every key, a bank key asking about another ' +
          "bank's number included: which bank a published number belongs to is what a customer may be told anyway, and " +
          "\"no, that is not our number, but it is Example Bank's\" is a legitimate answer. `recentCalls` (only with " +
          '`customer`) is scoped: a bank key sees only calls that presented its own bank\'s numbers as the registry stood ' +
          "when each call was scored, so for another bank's number it is empty, and so it is for calls made before a number became the bank's.",
        security: [{ bearer: [] }],
        body: CallbackVerifyRequestSchema,
        response: { 200: CallbackVerifyResponseSchema, ...errorResponses, ...authErrorResponses, ...rateLimitedResponses },
      },
    },
    async (request) => {
      const { body, principal } = request;
      const number = requireNumber('number', body.number, country);
      const customer = body.customer !== undefined ? requireNumber('customer', body.customer, country) : null;
      const sinceMs = body.since !== undefined ? Date.parse(body.since) : now() - DEFAULT_LOOKBACK_MS;
      // The schema checks the shape; should Date.parse still disagree, NaN must not quietly
      // become "the whole retention" in the history query.
      if (!Number.isFinite(sinceMs)) throw new HttpError(400, 'validation_failed', 'since: is not a real date and time', [{ field: 'since', message: 'is not a real date and time' }]);

      const registry = app.services.registryStore.index;
      const match = registry.lookup(number.e164);
      const callbackBank = callbackBankOf(number.e164);
      const bankId = match?.bankId ?? callbackBank?.id ?? null;
      const bank = bankId !== null ? (registry.bank(bankId) ?? null) : null;

      const answer = {
        number: { e164: number.e164, valid: number.valid },
        genuine: bankId !== null,
        bank: bankId !== null ? { id: bankId, name: bank?.name ?? match?.bankName ?? bankId } : null,
        inboundOnly: match?.inboundOnly ?? false,
        callbackNumbers: bank?.callbackNumbers ?? [],
      };
      if (!customer) return answer;

      const { history } = app.services.behaviour;
      const entries = await recentCalls(history, principal, { caller: number.e164, callee: customer.e164, since: sinceMs, limit: RECENT_CALLS_LIMIT });
      return {
        ...answer,
        recentCalls: entries.map((e) => ({
          ...(e.callId !== undefined ? { callId: e.callId } : {}),
          at: e.at,
          verdict: e.verdict,
          score: e.score,
          reasons: e.reasons,
        })),
      };
    },
  );
};

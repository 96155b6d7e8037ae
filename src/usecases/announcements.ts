import { randomUUID } from 'node:crypto';
import { ForbiddenError, NotFoundError, ValidationError } from '../errors';
import { MAX_ANNOUNCEMENT_WINDOW_S, type Announcement, type AnnouncementStore } from '../state/announcements';
import { bankOfNumber, requireNumber, type BankLookup } from './numbers';
import type { Principal } from './principal';

export const DEFAULT_VALID_FOR_S = 600;
export const MAX_VALID_FOR_S = MAX_ANNOUNCEMENT_WINDOW_S;
export const MAX_REFERENCE_CHARS = 128;
export const DEFAULT_LIST_LIMIT = 100;
export const MAX_LIST_LIMIT = 1000;

export interface AnnouncementDeps {
  /** The registry as it is now (it is replaced as it changes). */
  registry: () => BankLookup;
  store: AnnouncementStore;
  now: () => number;
  defaultCountry: string;
}

export interface AnnouncementInput {
  from: string;
  to: string;
  /** Seconds, 1 to 86,400; default 600. */
  validForS?: number;
  reference?: string;
}

export interface AnnouncementFilter {
  from?: string;
  to?: string;
  /** 1 to 1000; default 100. */
  limit?: number;
}

/**
 * Announced bank calls: an organisation tells the network, just before it calls a customer, which
 * of its numbers will call which number; the call then earns BANK_CALL_EXPECTED, and where the
 * organisation announces every call, a call it did not announce gets BANK_CALL_UNEXPECTED.
 *
 * Authority: a `bank` key announces only from its own organisation's outbound numbers (an
 * announcement is a credit on that number's calls, so another bank's number is 403, and a number
 * the bank only receives calls on, or holds no entry for, is 400); an `admin` announces for the
 * organisation the number's entry names; a `switch` key does neither. A bank key lists and
 * withdraws its own bank's announcements only, and another bank's id is answered as unknown.
 */
export class CallAnnouncements {
  constructor(private readonly deps: AnnouncementDeps) {}

  async announce(principal: Principal, input: AnnouncementInput): Promise<Announcement> {
    const { registry: currentRegistry, defaultCountry, now } = this.deps;
    announcer(principal);
    const from = requireNumber('from', input.from, defaultCountry);
    if (!from.valid) throw invalid('from', input.from, 'is not a valid, diallable number');
    const to = requireNumber('to', input.to, defaultCountry);
    if (!to.valid) throw invalid('to', input.to, 'is not a valid, diallable number');
    const validForS = input.validForS ?? DEFAULT_VALID_FOR_S;
    if (!Number.isInteger(validForS) || validForS < 1 || validForS > MAX_VALID_FOR_S) {
      throw invalid('validForS', String(input.validForS), `must be a whole number of seconds from 1 to ${MAX_VALID_FOR_S}`);
    }
    if (input.reference !== undefined && input.reference.length > MAX_REFERENCE_CHARS) {
      throw invalid('reference', input.reference, `is longer than ${MAX_REFERENCE_CHARS} characters`);
    }

    const registry = currentRegistry();
    if (principal.role === 'bank') {
      const owner = bankOfNumber(registry, from.e164);
      if (owner !== null && owner !== principal.bankId) {
        throw new ForbiddenError(`from: ${from.e164} is a number of bank "${owner}" in the registry: a bank key announces calls from its own bank's numbers only`);
      }
    }
    const entry = registry.lookup(from.e164);
    const whose = principal.role === 'bank' ? `bank "${principal.bankId}"` : 'any organisation';
    if (!entry) throw invalid('from', input.from, `is not an outbound number of ${whose} in the registry`);
    if (entry.inboundOnly) throw invalid('from', input.from, `is an inbound-only number of bank "${entry.bankId}": no call is ever made from it`);

    const at = now();
    const announcement: Announcement = {
      id: randomUUID(),
      from: from.e164,
      to: to.e164,
      bankId: entry.bankId,
      at,
      expiresAt: at + validForS * 1000,
      ...(input.reference !== undefined ? { reference: input.reference } : {}),
    };
    await this.deps.store.add(announcement);
    return announcement;
  }

  /** The announcements in their window now, newest first: a bank key's own bank's, an admin's of every bank. */
  async list(principal: Principal, filter: AnnouncementFilter = {}): Promise<Announcement[]> {
    const { registry: currentRegistry, defaultCountry, now } = this.deps;
    announcer(principal);
    const from = filter.from !== undefined ? requireNumber('from', filter.from, defaultCountry).e164 : undefined;
    const to = filter.to !== undefined ? requireNumber('to', filter.to, defaultCountry).e164 : undefined;
    const limit = filter.limit ?? DEFAULT_LIST_LIMIT;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) throw invalid('limit', String(filter.limit), `must be a whole number from 1 to ${MAX_LIST_LIMIT}`);
    let bankIds: string[];
    if (principal.role === 'bank') {
      // Fails closed: a bank key without its bank sees nothing, never everything.
      if (principal.bankId === null) return [];
      bankIds = [principal.bankId];
    } else {
      const registry = currentRegistry();
      // A number's own bank is the one place its announcements can be, unless it changed hands.
      const owner = from !== undefined ? registry.lookup(from)?.bankId : undefined;
      bankIds = owner !== undefined ? [owner] : registry.allBanks().map((b) => b.id);
    }
    return this.deps.store.active({ bankIds, ...(from !== undefined ? { from } : {}), ...(to !== undefined ? { to } : {}), now: now(), limit });
  }

  /** Withdraws one. Unknown, and another bank's (to a bank key), are alike: 404, so ids say nothing of other banks. */
  async withdraw(principal: Principal, id: string): Promise<Announcement> {
    announcer(principal);
    const found = await this.deps.store.get(id);
    if (!found || (principal.role === 'bank' && found.bankId !== principal.bankId)) throw new NotFoundError(`no announcement ${JSON.stringify(id.slice(0, 64))}`);
    await this.deps.store.remove(found);
    return found;
  }
}

/** Banks and administrators announce; a switch only scores the calls. */
function announcer(principal: Principal): void {
  if (principal.role === 'switch') throw new ForbiddenError('a switch key may not announce calls, list or withdraw announcements');
}

function invalid(field: string, input: string, why: string): ValidationError {
  return new ValidationError(field, `${field}: ${JSON.stringify(input.slice(0, 64))} ${why}`, { details: [{ field, message: why }] });
}

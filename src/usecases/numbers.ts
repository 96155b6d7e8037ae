import { ValidationError } from '../errors';
import { parseNumber, type PhoneNumber } from '../numbers';
import type { Bank, RegistryIndex } from '../registry';

/** What these use cases read of the registry. */
export type BankLookup = Pick<RegistryIndex, 'lookup' | 'bank' | 'allBanks'>;

/** A number that cannot be looked up is a ValidationError naming the field, never an empty answer. */
export function requireNumber(field: string, input: string, country: string): PhoneNumber & { e164: string } {
  const n = parseNumber(input, country);
  if (n.e164 !== null) return n as PhoneNumber & { e164: string };
  const why = n.withheld
    ? 'is a withheld caller ID marker, not a number'
    : n.shortCode
      ? `is the short code ${n.shortCode.code}, not a number an organisation calls from`
      : 'is not a phone number (E.164, national, tel: or sip: URI)';
  throw new ValidationError(field, `${field}: ${JSON.stringify(input.slice(0, 64))} ${why}`, { details: [{ field, message: why }] });
}

/** The bank a number is given to: its registry entry or prefix, else the bank listing it as a callback number. */
export function bankOfNumber(registry: BankLookup, e164: string): string | null {
  return registry.lookup(e164)?.bankId ?? callbackBankOf(registry, e164)?.id ?? null;
}

/** Which bank lists the number among its official callback numbers. */
export function callbackBankOf(registry: BankLookup, e164: string): Bank | null {
  return registry.allBanks().find((b) => b.callbackNumbers.includes(e164)) ?? null;
}


/**
 * Short codes have no E.164 form and libphonenumber-js carries no short-number metadata, so
 * the ones that matter for caller ID live here. Sources: Ofcom's National Telephone Numbering
 * Plan (UK 1xx codes), the harmonised European 116 range, and each country's emergency codes.
 */

export interface ShortCode {
  code: string;
  service: string;
  emergency: boolean;
}

/** Emergency codes by country; 112 works across the EU and on every GSM network. */
const EMERGENCY: Record<string, readonly string[]> = {
  GB: ['999', '112'],
  IE: ['999', '112'],
  US: ['911', '112'],
  CA: ['911', '112'],
  AU: ['000', '112'],
  NZ: ['111', '112'],
  IN: ['112', '100', '101', '102'],
};
const DEFAULT_EMERGENCY = ['112'];

/** UK short codes worth naming (Ofcom numbering plan, part B). */
const GB_SHORT_CODES: Record<string, string> = {
  '100': 'operator',
  '101': 'police non-emergency',
  '105': 'electricity power cut line',
  '111': 'NHS non-emergency',
  '119': 'NHS COVID-19 services',
  '123': 'speaking clock',
  '141': 'withhold caller ID prefix',
  '150': 'provider customer service',
  '151': 'provider fault reporting',
  '152': 'provider customer service',
  '154': 'provider customer service',
  '155': 'international operator',
  '159': 'bank fraud line (Stop Scams UK)',
  '195': 'call barring service',
  '1471': 'last caller ID service',
  '17070': 'line test',
};

export function emergencyCodes(country: string): readonly string[] {
  return EMERGENCY[country] ?? DEFAULT_EMERGENCY;
}

/** Looks a digit string up as a short code of `country`; null when it is not one. */
export function lookupShortCode(digits: string, country: string): ShortCode | null {
  if (emergencyCodes(country).includes(digits)) {
    return { code: digits, service: 'emergency services', emergency: true };
  }
  if (country === 'GB' || country === 'GG' || country === 'JE' || country === 'IM') {
    const service = GB_SHORT_CODES[digits];
    if (service) return { code: digits, service, emergency: false };
    // 116xxx: harmonised European services of social value (e.g. 116 123 Samaritans).
    if (/^116\d{3}$/.test(digits)) return { code: digits, service: 'harmonised European service (116)', emergency: false };
    // 118xxx: directory enquiries, charged at premium rates.
    if (/^118\d{3}$/.test(digits)) return { code: digits, service: 'directory enquiries (118)', emergency: false };
  }
  return null;
}

/**
 * JSON Canonicalization Scheme (RFC 8785): object members sorted by their UTF-16 code units, no
 * white space, strings and numbers as ECMAScript serialises them (which is what RFC 8785 asks).
 * It is also the canonical form RFC 8225 section 9 asks of a PASSporT's header and claims
 * (lexicographic key order, no white space), so one function serves signing and the rich call
 * data digests. Members whose value is undefined are left out, as JSON.stringify leaves them.
 */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const record = value as Record<string, unknown>;
    const keys = Object.keys(record)
      .filter((k) => record[k] !== undefined)
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(record[k])}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

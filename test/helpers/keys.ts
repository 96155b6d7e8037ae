import { resolve } from 'node:path';

/** test/fixtures/keys.json holds the SHA-256 of these keys. */
export const KEYS_FILE = resolve(__dirname, '../fixtures/keys.json');
export const KEYS = {
  switch: 'test-switch-key',
  examplebank: 'test-examplebank-key',
  northwind: 'test-northwind-key',
  admin: 'test-admin-key',
} as const;
export const bearer = (who: keyof typeof KEYS) => ({ authorization: `Bearer ${KEYS[who]}` });

/** Who a test request comes from: a key of the fixtures, no key at all, or a key nobody issued. */
export type Who = keyof typeof KEYS | 'none' | 'bad';
export const headersFor = (who: Who): Record<string, string> =>
  who === 'none' ? {} : who === 'bad' ? { authorization: 'Bearer not-a-key' } : bearer(who);

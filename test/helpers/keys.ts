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

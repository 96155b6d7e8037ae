/**
 * The registry room's public surface: what other rooms use. Its own tests reach its modules
 * directly.
 */
export {
  BankBodySchema,
  BankSchema,
  EntryBodySchema,
  ImportResultSchema,
  LoggedAuditRecordSchema,
  RegistryEntrySchema,
  RegistryFileSchema,
  type Bank,
  type RegistryEntry,
  type RegistryMatch,
} from './model';
export { RegistryAdministration, type ImportBody } from './administration';
export { REJECTED_SHOWN, type Actor } from './admin';
export { RegistryStore, type RegistryBackend } from './store';
export type { RegistryIndex } from './registry-index';
export { FileRegistryBackend } from './file-backend';
export { RedisRegistryBackend } from './redis-backend';
export { loadRegistryFile } from './load';
export { findInvalidNumbers } from './format';
export type { NumberTable } from './number-table';

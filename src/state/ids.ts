import { randomBytes } from 'node:crypto';

/**
 * Ids of stored records (history entries, fraud reports): short and unique across instances, a
 * random prefix drawn once per process and a counter. Drawing random bytes for every call cost
 * more than the rest of recording it.
 */
const ID_PREFIX = randomBytes(6).toString('base64url');
let idCounter = 0;
export function newId(): string {
  idCounter = (idCounter + 1) % Number.MAX_SAFE_INTEGER;
  return `${ID_PREFIX}${idCounter.toString(36)}`;
}

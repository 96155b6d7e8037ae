import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { StartupError } from '../errors';
import type { Principal } from './principal';

const KeyFileSchema = z.array(
  z
    .strictObject({
      name: z.string().min(1).max(100),
      role: z.enum(['switch', 'bank', 'admin']),
      bankId: z.string().min(1).max(64).optional(),
      sha256: z.string().regex(/^[0-9a-fA-F]{64}$/, { error: 'sha256 must be 64 hex digits (the SHA-256 of the key)' }),
    })
    .refine((k) => (k.role === 'bank') === (k.bankId !== undefined), { error: 'a bank key names its bankId; other roles have none' }),
);

interface StoredKey {
  principal: Principal;
  hash: Buffer;
}

export class KeyFileError extends StartupError {}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/**
 * API keys, kept only as SHA-256 hashes. A presented key is hashed and compared with every
 * stored hash in constant time, without stopping at a match, so timing tells nothing about
 * which keys exist.
 */
export class KeyRing {
  private constructor(private readonly keys: StoredKey[]) {}

  static open(): KeyRing {
    return new KeyRing([]);
  }

  static fromFile(file: string): KeyRing {
    let doc: unknown;
    try {
      doc = JSON.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new KeyFileError(`API_KEYS_FILE ${file} cannot be read as JSON: ${(err as Error).message}`);
    }
    const parsed = KeyFileSchema.safeParse(doc);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new KeyFileError(`API_KEYS_FILE ${file} is invalid: [${issue?.path.join('.')}] ${issue?.message}`);
    }
    return new KeyRing(
      parsed.data.map((k) => ({
        principal: { name: k.name, role: k.role, bankId: k.bankId ?? null },
        hash: Buffer.from(k.sha256.toLowerCase(), 'hex'),
      })),
    );
  }

  /** No keys: the service runs open (only ever on a loopback address). */
  get isOpen(): boolean {
    return this.keys.length === 0;
  }

  get size(): number {
    return this.keys.length;
  }

  /** Who holds a key, in the file's order: what the start-up summary shows (never a hash). */
  holders(): Principal[] {
    return this.keys.map((k) => ({ ...k.principal }));
  }

  identify(key: string): Principal | null {
    const presented = createHash('sha256').update(key).digest();
    let found: Principal | null = null;
    for (const stored of this.keys) {
      if (timingSafeEqual(presented, stored.hash) && found === null) found = stored.principal;
    }
    return found;
  }
}

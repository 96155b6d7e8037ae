import { createHash, type Hash } from 'node:crypto';
import type { RegistryProblem } from './model';
import { openFileSource } from './json-scan';
import type { CompactRegistry } from './number-table';
import { readRegistry, readRegistryBuffer, type ReadResult } from './read-document';
import sample from './sample-registry.json';
import { StartupError } from '../errors';

export class RegistryLoadError extends StartupError {
  constructor(
    readonly source: string,
    readonly problems: RegistryProblem[],
  ) {
    const shown = problems.slice(0, 20).map((p) => `  - ${p.at}: ${p.error}`);
    const more = problems.length > 20 ? [`  ... and ${problems.length - 20} more`] : [];
    super([`registry ${source} is invalid:`, ...shown, ...more].join('\n'));
  }
}

/**
 * The registry's content version: a hash of the file. Of its bytes, as they are read: for a
 * UTF-8 file (a JSON file is one) the same value as the hash of its text, which it was before.
 */
export function contentVersion(content: string | Buffer): string {
  return versionOf(createHash('sha256').update(content));
}

function versionOf(hash: Hash): string {
  return hash.digest('base64url').slice(0, 16);
}

/**
 * Loads the registry file (or the shipped sample) into the compact form. Any invalid entry stops
 * the start: a registry missing a bank's do-not-originate numbers would let their spoofs through.
 */
export function loadRegistryFile(
  file: string | undefined,
  defaultCountry: string,
): { data: CompactRegistry; version: string; source: string } {
  const source = file ?? 'sample registry (src/registry/sample-registry.json)';
  const cannotRead = (err: unknown) => new RegistryLoadError(source, [{ at: '$', error: `cannot read the file: ${(err as Error).message}` }]);
  // Numbers already in E.164 are checked against the numbering plan after start (see
  // findInvalidNumbers): a million of them would otherwise hold the start for many seconds.
  const opts = { deferPlanCheck: true };
  let read: ReadResult;
  let version: string;
  if (file === undefined) {
    const text = JSON.stringify(sample);
    read = readRegistryBuffer(Buffer.from(text), defaultCountry, opts);
    version = contentVersion(text);
  } else {
    let src;
    try {
      src = openFileSource(file);
    } catch (err) {
      throw cannotRead(err);
    }
    // The reader's scan passes over every byte once: the hash is made on the way. (When it stops
    // early, the file is invalid and the version unused.)
    const hash = createHash('sha256');
    try {
      read = readRegistry(src, defaultCountry, { ...opts, onBytes: (bytes) => hash.update(bytes) });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== undefined) throw cannotRead(err);
      throw err;
    } finally {
      src.close();
    }
    version = versionOf(hash);
  }
  if (read.problems.length > 0) throw new RegistryLoadError(source, read.problems);
  return { data: read.data, version, source };
}

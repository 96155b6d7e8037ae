import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseRegistryDocument, type RegistryData, type RegistryProblem } from './format';
import sample from './sample-registry.json';

export class RegistryLoadError extends Error {
  constructor(
    readonly source: string,
    readonly problems: RegistryProblem[],
  ) {
    const shown = problems.slice(0, 20).map((p) => `  - ${p.at}: ${p.error}`);
    const more = problems.length > 20 ? [`  ... and ${problems.length - 20} more`] : [];
    super([`registry ${source} is invalid:`, ...shown, ...more].join('\n'));
    this.name = 'RegistryLoadError';
  }
}

export function contentVersion(text: string): string {
  return createHash('sha256').update(text).digest('base64url').slice(0, 16);
}

/**
 * Loads the registry file (or the shipped sample). Any invalid entry stops the start: a
 * registry missing a bank's do-not-originate numbers would let their spoofs through.
 */
export function loadRegistryFile(
  file: string | undefined,
  defaultCountry: string,
): { data: RegistryData; version: string; source: string } {
  const source = file ?? 'sample registry (src/registry/sample-registry.json)';
  let text: string;
  let doc: unknown;
  if (file === undefined) {
    text = JSON.stringify(sample);
    doc = sample;
  } else {
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new RegistryLoadError(source, [{ at: '$', error: `cannot read the file: ${(err as Error).message}` }]);
    }
    try {
      doc = JSON.parse(text);
    } catch (err) {
      throw new RegistryLoadError(source, [{ at: '$', error: `not valid JSON: ${(err as Error).message}` }]);
    }
  }
  // Numbers already in E.164 are checked against the numbering plan after start (see
  // findInvalidNumbers): a million of them would otherwise hold the start for many seconds.
  const { data, problems } = parseRegistryDocument(doc, defaultCountry, { deferPlanCheck: true });
  if (problems.length > 0) throw new RegistryLoadError(source, problems);
  return { data, version: contentVersion(text), source };
}

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A registry of the announced-calls tests' own (the sample registry may change under them):
 * Example Bank does not announce its calls, Northwind announces every call. Bank ids match the
 * bank keys of test/fixtures/keys.json.
 */
export const ANNOUNCING_REGISTRY = {
  banks: [
    { id: 'examplebank', name: 'Example Bank', callbackNumbers: ['+443450000000'] },
    { id: 'northwind', name: 'Northwind Building Society', announcesCalls: true, callbackNumbers: ['+443069990100'] },
  ],
  numbers: [
    { number: '+443450000000', bankId: 'examplebank', inboundOnly: true },
    { number: '+442079460000', bankId: 'examplebank', inboundOnly: false, authorisedSpcs: ['1234'] },
    { prefix: '+4420794601', bankId: 'examplebank', inboundOnly: true },
    { number: '+443069990100', bankId: 'northwind', inboundOnly: true },
    { prefix: '+44161496020', bankId: 'northwind', inboundOnly: false },
  ],
};

/** Example Bank's outbound number; Northwind's outbound numbers are +44161496020x. */
export const EXAMPLE_OUT = '+442079460000';
export const NORTHWIND_OUT = '+441614960201';

/** Writes the registry to a file of its own and returns its path, for REGISTRY_FILE. */
export function announcingRegistryFile(): string {
  const file = join(mkdtempSync(join(tmpdir(), 'callguard-announcing-')), 'registry.json');
  writeFileSync(file, JSON.stringify(ANNOUNCING_REGISTRY));
  return file;
}

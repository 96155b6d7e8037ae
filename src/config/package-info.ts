import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

/**
 * The service's name, version and licence, as package.json gives them: one read, for the
 * start-up summary, GET /v1/status, every log line and the OpenAPI document.
 * src/config and dist/config both sit two levels below the package root.
 */
export const PACKAGE_INFO: { readonly name: string; readonly version: string; readonly license: string } = (() => {
  const { name, version, license } = JSON.parse(readFileSync(resolve(__dirname, '../../package.json'), 'utf8')) as { name: string; version: string; license: string };
  return { name, version, license };
})();

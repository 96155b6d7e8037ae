import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp, type BuildOptions } from '../../src/app';
import { loadConfig } from '../../src/config';
import type { CertificateFetcher } from '../../src/shaken/types';

/** The independent STIR/SHAKEN fixtures that sit beside the repo. */
export const VECTORS_DIR = resolve(__dirname, '../../../shared/shaken-vectors');

/** Serves `https://certs.vectors.example/<name>.pem` from the vectors' certs folder. */
export function vectorsFetcher(): CertificateFetcher & { urls: string[] } {
  const urls: string[] = [];
  return {
    urls,
    async fetch(url: string) {
      urls.push(url);
      const m = /^https:\/\/certs\.vectors\.example\/([\w-]+\.pem)$/.exec(url);
      if (!m) throw new Error(`no fixture for ${url}`);
      return { body: readFileSync(resolve(VECTORS_DIR, 'certs', m[1]!)) };
    },
  };
}

/**
 * The app as the tests see it: silent, on the embedded defaults unless `env` says otherwise,
 * with the vectors' certificates served instead of the network. Closed after each test file.
 */
export async function build(env: Record<string, string> = {}, opts: Omit<BuildOptions, 'config'> = {}): Promise<FastifyInstance> {
  const config = loadConfig({ LOG_LEVEL: 'silent', REGISTRY_DATA_DIR: mkdtempSync(join(tmpdir(), 'callguard-data-')), ...env });
  const app = await buildApp({ logger: false, certFetcher: vectorsFetcher(), ...opts, config });
  await app.ready();
  return app;
}

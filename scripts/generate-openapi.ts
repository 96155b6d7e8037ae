/**
 * Writes openapi/openapi.json from the running app's own route schemas, so the committed
 * document cannot drift from the code (a test compares them). `npm run openapi`.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { buildApp } from '../src/app';
import { loadConfig } from '../src/config';

export async function generateOpenApi(): Promise<string> {
  // A throwaway data folder: generating the document must not touch the real registry.
  const dataDir = mkdtempSync(join(tmpdir(), 'callguard-openapi-'));
  const app = await buildApp({ config: loadConfig({ LOG_LEVEL: 'silent', REGISTRY_DATA_DIR: dataDir }), logger: false });
  await app.ready();
  const doc = app.swagger();
  await app.close();
  rmSync(dataDir, { recursive: true, force: true });
  return `${JSON.stringify(doc, null, 2)}\n`;
}

export const OPENAPI_PATH = resolve(__dirname, '../openapi/openapi.json');

if (require.main === module) {
  generateOpenApi().then(
    (text) => {
      writeFileSync(OPENAPI_PATH, text);
      process.stdout.write(`wrote ${OPENAPI_PATH}\n`);
    },
    (err: unknown) => {
      process.stderr.write(`${String(err)}\n`);
      process.exit(1);
    },
  );
}

/**
 * Writes openapi/openapi.json from the running app's own route schemas, so the committed
 * document cannot drift from the code (a test compares them). `npm run openapi`.
 */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { buildApp } from '../src/app';
import { loadConfig } from '../src/config';

export async function generateOpenApi(): Promise<string> {
  const app = await buildApp({ config: loadConfig({ LOG_LEVEL: 'silent' }), logger: false });
  await app.ready();
  const doc = app.swagger();
  await app.close();
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

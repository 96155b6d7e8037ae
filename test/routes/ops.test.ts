import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { generateOpenApi, OPENAPI_PATH } from '../../scripts/generate-openapi';
import { build } from '../helpers/build';

let app: FastifyInstance;
beforeAll(async () => {
  app = await build();
});
afterAll(() => app.close());

describe('health and docs', () => {
  it('GET /healthz', async () => {
    const res = await app.inject('/healthz');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ok' });
  });

  it('GET /readyz says ready on the embedded store, with the registry loaded', async () => {
    const res = await app.inject('/readyz');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ status: 'ready', redis: null, registry: { version: expect.any(String), banks: 3 } });
  });

  it('serves Swagger UI at /docs and the OpenAPI document', async () => {
    const ui = await app.inject('/docs/');
    expect(ui.statusCode).toBe(200);
    expect(ui.body).toMatch(/swagger/i);
    const doc = (await app.inject('/docs/json')).json();
    expect(doc.openapi).toBe('3.0.3');
    expect(doc.paths['/v1/calls/score'].post.requestBody.content['application/json'].schema).toBeDefined();
  });

  it('the committed openapi/openapi.json is current (run `npm run openapi` after changing routes)', async () => {
    expect(readFileSync(OPENAPI_PATH, 'utf8')).toBe(await generateOpenApi());
  });
});

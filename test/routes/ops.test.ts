import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { generateOpenApi, OPENAPI_PATH } from '../../scripts/generate-openapi';
import { build } from '../helpers/build';
import { until } from '../../scripts/lib/process';

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
    expect(res.json()).toMatchObject({ status: 'ready', redis: null, registry: { version: expect.any(String), banks: 5 } });
  });

  it('GET /readyz says how many trust anchors are in force: none without SHAKEN_TRUST_ANCHORS', async () => {
    const res = await app.inject('/readyz');
    expect(res.json().shaken).toEqual({ trustAnchors: 0, trustAnchorsFingerprint: expect.any(String), trustAnchorsExpireAt: null });
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

describe('metrics', () => {
  it('GET /metrics needs no key and counts verdicts, reasons, cache lookups and request latency per route', async () => {
    await app.inject({ method: 'POST', url: '/v1/calls/score', payload: { from: '+443450000000', to: '+447400123456' } });
    await app.inject({ method: 'POST', url: '/v1/calls/score', payload: { from: '+443450000000', to: '+447400123456' } });
    const res = await app.inject('/metrics');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/text\/plain/);
    const text = res.body;
    expect(text).toMatch(/callguard_verdicts_total\{verdict="block"\} 2/);
    expect(text).toMatch(/callguard_reasons_total\{code="CLI_DNO"\} 2/);
    expect(text).toMatch(/callguard_verdict_cache_lookups_total\{result="hit"\} 1/);
    expect(text).toMatch(/callguard_verdict_cache_lookups_total\{result="miss"\} 1/);
    expect(text).toMatch(/callguard_http_request_duration_seconds_count\{method="POST",route="\/v1\/calls\/score",status_code="200"\} 2/);
    expect(text).toMatch(/callguard_registry_banks 5/); // the sample registry's five organisations
  });
});

describe('a registry file with a number the numbering plan does not allow', () => {
  it('starts, and /readyz reports the number once the background check ends', async () => {
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const file = join(mkdtempSync(join(tmpdir(), 'callguard-reg-')), 'registry.json');
    writeFileSync(file, JSON.stringify({ banks: [{ id: 'b', name: 'B' }], numbers: [{ number: '+4420794600001', bankId: 'b', inboundOnly: true }, { number: '+442079460000', bankId: 'b', inboundOnly: true }] }));
    const other = await build({ REGISTRY_FILE: file });
    await until(() => other.services.registryCheck.invalidNumbers !== null, 1000, 'the numbering-plan check');
    expect((await other.inject('/readyz')).json().registry).toMatchObject({ numbers: 2, invalidNumbers: 1 });
    await other.close();
  });
});

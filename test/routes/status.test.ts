import { Writable } from 'node:stream';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { loggerOptions } from '../../src/ops/logger';
import pino from 'pino';
import { loadConfig } from '../../src/config';
import { importOfcomFolder, writeNumbering } from '../../src/numbering';
import { build, VECTORS_DIR } from '../helpers/build';
import { headersFor, KEYS_FILE, type Who } from '../helpers/keys';

/** Every line the app logs, parsed. */
function capture() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { lines, log: pino(loggerOptions('info'), stream) };
}

const ANCHORS = join(VECTORS_DIR, 'certs/root.pem');
let app: FastifyInstance;
let logged: Record<string, unknown>[];
beforeAll(async () => {
  const numbering = mkdtempSync(join(tmpdir(), 'callguard-numbering-'));
  writeNumbering(numbering, importOfcomFolder(resolve(__dirname, '../fixtures/ofcom')).document);
  const { lines, log } = capture();
  logged = lines;
  app = await build({ API_KEYS_FILE: KEYS_FILE, SHAKEN_TRUST_ANCHORS: ANCHORS, NUMBERING_DATA_DIR: numbering }, { log });
});
afterAll(() => app.close());

const status = (who: Who) => app.inject({ method: 'GET', url: '/v1/status', headers: headersFor(who) });

describe('GET /v1/status', () => {
  it('admin: 200 with the version, keys by role, registry, roots, numbering data and policy', async () => {
    const res = await status('admin');
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.service).toEqual({ name: 'callguard', version: expect.any(String), node: process.version });
    expect(body.keys).toEqual({
      open: false,
      count: 4,
      byRole: {
        switch: { count: 1, names: ['test-switch'] },
        bank: { count: 2, names: ['test-examplebank', 'test-northwind'] },
        admin: { count: 1, names: ['test-admin'] },
      },
    });
    expect(body.registry).toMatchObject({ source: 'data-directory', dataDir: expect.any(String), seed: expect.stringMatching(/sample/), banks: expect.any(Number) });
    expect(body.registry.numbers).toBeGreaterThan(0);
    expect(body.trustAnchors).toMatchObject({ path: ANCHORS, count: 1, soonestExpiry: expect.any(String), anchors: [{ subject: expect.any(String), fingerprint256: expect.any(String) }] });
    expect(body.numbering).toMatchObject({ version: expect.any(String), generatedAt: expect.any(String), sources: expect.arrayContaining([{ file: 'S1.csv', sha256: expect.stringMatching(/^[0-9a-f]{64}$/) }]) });
    expect(body.numbering.ranges).toBeGreaterThan(0);
    expect(body.policy).toMatchObject({ version: app.services.policySource.current().version, source: 'built-in', path: null, shadowVersion: null });
  });

  it('shows every setting of the configuration (a new one cannot go missing from the response)', async () => {
    const body = (await status('admin')).json();
    const keysOf = (o: object, at = ''): string[] =>
      Object.entries(o).flatMap(([k, v]) => (v && typeof v === 'object' && !Array.isArray(v) ? keysOf(v as object, `${at}${k}.`) : [`${at}${k}`]));
    const everySetting = keysOf(loadConfig({ REDIS_URL: 'redis://h', REGISTRY_FILE: 'r', SHAKEN_TRUST_ANCHORS: 'a', SHAKEN_CRL_SIGNERS: 's', SHAKEN_SIGNING_KEY: 'k', SHAKEN_SIGNING_X5U: 'https://x/y', SHAKEN_SIGNING_CERT: 'c', API_KEYS_FILE: 'f', POLICY_FILE: 'p', NUMBERING_DATA_DIR: 'n' }));
    const shown = new Set(keysOf(body.config));
    // Unset paths are left out; REDIS_URL is shown as null when unset.
    const unsetHere = ['registryFile', 'shaken.crlSigners', 'shaken.signingKey', 'shaken.signingX5u', 'shaken.signingCert', 'policyFile', 'metricsPort', 'buildCommit'];
    expect(everySetting.filter((k) => !shown.has(k) && !unsetHere.includes(k))).toEqual([]);
  });

  it('shows the shadow policy being tried', async () => {
    const put = await app.inject({ method: 'PUT', url: '/v1/policy/shadow', headers: headersFor('admin'), payload: { thresholds: { flag: 35, block: 75 } } });
    expect(put.statusCode).toBe(200);
    try {
      expect((await status('admin')).json().policy.shadowVersion).toBe(put.json().version);
    } finally {
      await app.inject({ method: 'DELETE', url: '/v1/policy/shadow', headers: headersFor('admin') });
    }
  });

  it.each([
    ['switch', 403, 'forbidden'],
    ['examplebank', 403, 'forbidden'],
    ['none', 401, 'unauthorized'],
    ['bad', 401, 'unauthorized'],
  ] as const)('%s key: %i', async (who, code, error) => {
    const res = await status(who);
    expect(res.statusCode).toBe(code);
    expect(res.json()).toMatchObject({ error });
  });
});

describe('the start-up line', () => {
  it('is logged once, with the same summary GET /v1/status answers', async () => {
    const startups = logged.filter((l) => l.event === 'startup');
    expect(startups).toHaveLength(1);
    const line = startups[0]!;
    expect(line).toMatchObject({ level: 30, msg: 'callguard started' });
    const now = (await status('admin')).json();
    expect(line).toMatchObject({ service: 'callguard', version: now.service.version, node: now.service.node });
    for (const part of ['config', 'keys', 'trustAnchors', 'numbering', 'policy'] as const) expect([part, line[part]]).toEqual([part, now[part]]);
    expect(line.registry).toMatchObject({ source: 'data-directory', seed: now.registry.seed });
  });
});

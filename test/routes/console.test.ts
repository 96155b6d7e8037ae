import Fastify, { type FastifyInstance } from 'fastify';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildConsole } from '../../scripts/build-console';
import { CONSOLE_HEADERS, consoleRoutes } from '../../src/http/console';
import { build } from '../helpers/build';
import { bearer, headersFor, KEYS_FILE, type Who } from '../helpers/keys';

/** The console's files and headers (the page itself is driven in test/e2e/console.browser.test.ts), /v1/me and GET /v1/calls. */

describe('the console at /console', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'callguard-console-'));
    await buildConsole(dir);
    app = Fastify();
    await app.register(consoleRoutes, { dir });
    await app.ready();
  }, 30_000);
  afterAll(async () => app?.close());

  it('serves the page, its script and its stylesheet, with a strict CSP and no key needed', async () => {
    const page = await app.inject({ url: '/console/' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.body).toContain('<script src="main.js" defer></script>');
    // No inline script or style: everything the page runs or wears is a file of its own.
    expect(page.body).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(page.body).not.toMatch(/<style|style=/);
    for (const [name, value] of Object.entries(CONSOLE_HEADERS)) expect(page.headers[name]).toBe(value);
    expect(page.headers['content-security-policy']).toContain("script-src 'self';");
    expect(page.headers['content-security-policy']).toContain("frame-ancestors 'none'");

    const js = await app.inject({ url: '/console/main.js' });
    expect(js.statusCode).toBe(200);
    expect(js.headers['content-type']).toMatch(/javascript/);
    expect(js.headers['x-content-type-options']).toBe('nosniff');
    const css = await app.inject({ url: '/console/main.css' });
    expect(css.statusCode).toBe(200);
    expect(css.headers['content-type']).toMatch(/^text\/css/);
  });

  it('puts text on the page as text: no source file of the console writes markup', () => {
    const src = join(__dirname, '../../console/src');
    for (const file of readdirSync(src)) {
      expect(readFileSync(join(src, file), 'utf8')).not.toMatch(/dangerouslySetInnerHTML|innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function/);
    }
  });

  it('sends /console to /console/, and answers nothing else from the folder', async () => {
    const bare = await app.inject({ url: '/console' });
    expect(bare.statusCode).toBe(301);
    expect(bare.headers.location).toBe('/console/');
    const missing = await app.inject({ url: '/console/../package.json' });
    expect(missing.statusCode).toBe(404);
    expect((await app.inject({ url: '/console/nothing.js' })).statusCode).toBe(404);
  });

  it('says how to build it when it is not built', async () => {
    const unbuilt = Fastify();
    await unbuilt.register(consoleRoutes, { dir: mkdtempSync(join(tmpdir(), 'callguard-console-empty-')) });
    const res = await unbuilt.inject({ url: '/console/' });
    expect(res.statusCode).toBe(503);
    expect(res.body).toMatch(/npm run build/);
    expect(res.headers['content-security-policy']).toBe(CONSOLE_HEADERS['content-security-policy']);
    await unbuilt.close();
  });
});

describe('the API the console uses', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await build({ API_KEYS_FILE: KEYS_FILE });
  });
  afterAll(async () => app?.close());

  it('keeps the CSP off /docs: Swagger UI runs inline script', async () => {
    const res = await app.inject({ url: '/docs/' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-security-policy']).toBeUndefined();
  });

  it.each([
    ['switch', { name: 'test-switch', role: 'switch', bankId: null }],
    ['examplebank', { name: 'test-examplebank', role: 'bank', bankId: 'examplebank' }],
    ['admin', { name: 'test-admin', role: 'admin', bankId: null }],
  ] as const)('GET /v1/me tells a %s key who it is', async (who, me) => {
    const res = await app.inject({ url: '/v1/me', headers: bearer(who) });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual(me);
  });

  it.each([['none', 401], ['bad', 401]] as [Who, number][])('GET /v1/me with %s key is %d', async (who, status) => {
    expect((await app.inject({ url: '/v1/me', headers: headersFor(who) })).statusCode).toBe(status);
  });

  const score = (callId: string, from: string) =>
    app.inject({ method: 'POST', url: '/v1/calls/score', headers: bearer('switch'), payload: { from, to: '+447400123456', callId } });

  it('GET /v1/calls lists the latest decisions newest first, at most limit, for an admin key only', async () => {
    const tag = `recent-${process.pid}-${Date.now()}`;
    for (let i = 0; i < 3; i++) expect((await score(`${tag}-${i}`, '+443450000000')).statusCode).toBe(200);
    // A call without a callId has no decision record, and is not listed.
    await app.inject({ method: 'POST', url: '/v1/calls/score', headers: bearer('switch'), payload: { from: '+443450000000', to: '+447400123456' } });
    const res = await app.inject({ url: '/v1/calls?limit=2', headers: bearer('admin') });
    expect(res.statusCode).toBe(200);
    const { decisions } = res.json() as { decisions: { callId: string; verdict: string; reasons: string[]; from: string }[] };
    expect(decisions.map((d) => d.callId)).toEqual([`${tag}-2`, `${tag}-1`]);
    expect(decisions[0]).toMatchObject({ verdict: 'block', from: '+443450000000' });
    expect(decisions[0]?.reasons).toContain('CLI_DNO');

    for (const who of ['examplebank', 'switch', 'none'] as Who[]) expect((await app.inject({ url: '/v1/calls', headers: headersFor(who) })).statusCode).toBe(who === 'none' ? 401 : 403);
    expect((await app.inject({ url: '/v1/calls?limit=201', headers: bearer('admin') })).statusCode).toBe(400);
  });
});

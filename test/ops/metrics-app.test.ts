import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { freePort, sleep, startRedisServer, until, type Child } from '../../scripts/lib/process';
import { build } from '../helpers/build';
import { bearer, KEYS_FILE } from '../helpers/keys';
import { forgeCert, tnAuthList } from '../shaken/forge';
import { identity } from '../shaken/helpers';
import { startServer, type TestServer } from '../shaken/server';

/**
 * Every metric the README names, moved by driving the app itself (build() + inject, and a real
 * x5u server and redis-server where the metric is about them), not by calling the metrics
 * object: a metric that nothing in the app feeds fails here. test/ops/metrics.test.ts covers
 * the exposition itself (formats, labels at 0, several registries).
 */

/** The sample line for `name{labels}`, or undefined; labels are given in prom-client's order. */
function sample(text: string, name: string, labels = ''): number | undefined {
  const head = labels ? `${name}{${labels}} ` : `${name} `;
  const line = text.split('\n').find((l) => l.startsWith(head));
  return line === undefined ? undefined : Number(line.slice(head.length));
}

async function scrape(app: FastifyInstance): Promise<string> {
  const res = await app.inject('/metrics');
  expect(res.statusCode).toBe(200);
  return res.body;
}

const score = (app: FastifyInstance, body: Record<string, unknown>) => app.inject({ method: 'POST', url: '/v1/calls/score', payload: body });

describe('the app feeds the metrics of its requests, scores and registry', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await build({ API_KEYS_FILE: KEYS_FILE });
  });
  afterAll(() => app.close());

  it('times requests by route template, counts verdicts, reasons and verdict cache lookups', async () => {
    const call = { from: '+443450000000', to: '+447400123456', callId: 'metrics-1' }; // Example Bank's inbound-only number
    const headers = bearer('switch');
    expect((await app.inject({ method: 'POST', url: '/v1/calls/score', payload: call, headers })).json()).toMatchObject({ verdict: 'block', cached: false });
    expect((await app.inject({ method: 'POST', url: '/v1/calls/score', payload: call, headers })).json()).toMatchObject({ verdict: 'block', cached: true });
    expect((await app.inject({ method: 'POST', url: '/v1/calls/score', payload: { from: '+447400123456', to: '+442079460999' }, headers })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/v1/registry/numbers/+443450000000', headers: bearer('admin') })).statusCode).toBe(200);
    const text = await scrape(app);

    const count = 'callguard_http_request_duration_seconds_count';
    expect(sample(text, count, 'method="POST",route="/v1/calls/score",status_code="200"')).toBe(3);
    expect(sample(text, count, 'method="GET",route="/v1/registry/numbers/:number",status_code="200"')).toBe(1);
    expect(sample(text, 'callguard_verdicts_total', 'verdict="block"')).toBe(2);
    expect(sample(text, 'callguard_verdicts_total', 'verdict="allow"')! + sample(text, 'callguard_verdicts_total', 'verdict="flag"')!).toBe(1);
    expect(sample(text, 'callguard_reasons_total', 'code="CLI_DNO"')).toBe(2);
    expect(sample(text, 'callguard_reasons_total', 'code="SHAKEN_ABSENT"')).toBe(3);
    expect(sample(text, 'callguard_verdict_cache_lookups_total', 'result="hit"')).toBe(1);
    expect(sample(text, 'callguard_verdict_cache_lookups_total', 'result="miss"')).toBe(2);
  });

  it('reports the registry size, following changes', async () => {
    const before = await scrape(app);
    const size = app.services.registryStore.index.size;
    expect(sample(before, 'callguard_registry_banks')).toBe(size.banks);
    expect(sample(before, 'callguard_registry_numbers')).toBe(size.numbers);
    expect(sample(before, 'callguard_registry_prefixes')).toBe(size.prefixes);
    expect(size.numbers).toBeGreaterThan(0);

    const put = await app.inject({ method: 'PUT', url: '/v1/registry/numbers/+441174960900', payload: { bankId: 'harbour', inboundOnly: true }, headers: bearer('admin') });
    expect(put.statusCode).toBe(201);
    const after = await scrape(app);
    expect(sample(after, 'callguard_registry_numbers')).toBe(size.numbers + 1);
  });

  it('exposes the process metrics (memory, event-loop lag, GC)', async () => {
    const text = await scrape(app);
    expect(sample(text, 'process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(sample(text, 'nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
    expect(sample(text, 'nodejs_eventloop_lag_p99_seconds')).toBeGreaterThanOrEqual(0);
    expect(text).toContain('# TYPE nodejs_gc_duration_seconds histogram');
  });
});

/**
 * x5u fetches through the app's own fetcher, against a local server (SHAKEN_X5U_ALLOW_INSECURE
 * lets it fetch over http from 127.0.0.1): one fetch per URL, each ending a different way.
 */
describe('callguard_shaken_cert_fetches_total', () => {
  const FETCH_TIMEOUT_MS = 200;
  const key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const ca = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const chain =
    forgeCert({ subject: 'Metrics Leaf', issuer: 'Metrics CA', publicKey: key.publicKey, ca: false, tnAuthList: tnAuthList([{ spc: '1234' }]), signWith: { key: ca.privateKey, alg: 'ecdsa-sha256' } }).pem +
    forgeCert({ subject: 'Metrics CA', issuer: 'Metrics CA', publicKey: ca.publicKey, ca: true, signWith: { key: ca.privateKey, alg: 'ecdsa-sha256' } }).pem;
  let server: TestServer;
  let app: FastifyInstance;

  beforeAll(async () => {
    server = await startServer({
      '/good.pem': (_req, res) => res.end(chain),
      '/garbage.pem': (_req, res) => res.end('this is no certificate'),
      '/slow.pem': (_req, res) => void sleep(FETCH_TIMEOUT_MS + 300).then(() => res.end(chain)),
    });
    // certFetcher undefined: the app's own x5u fetcher, over the network, instead of the vectors' fixtures.
    app = await build({ SHAKEN_X5U_ALLOW_INSECURE: 'true', SHAKEN_FETCH_TIMEOUT_MS: String(FETCH_TIMEOUT_MS) }, { certFetcher: undefined });
  });
  afterAll(async () => {
    await app.close();
    await server.close();
  });

  /** Call `i` goes to a number of its own, so no two calls share a verdict cache entry. */
  const signedCall = (path: string, i: number) => {
    const to = `4474001234${String(50 + i)}`;
    return score(app, {
      from: '+442079460123',
      to: `+${to}`,
      callId: `fetch-${i}`,
      identity: identity({ x5u: `${server.url}${path}`, key: key.privateKey, iat: Math.floor(Date.now() / 1000), dest: [to] }),
    });
  };

  it('counts each fetch by outcome: ok, error (non-2xx), invalid (no certificate), timeout (slower than SHAKEN_FETCH_TIMEOUT_MS)', async () => {
    const before = await scrape(app);
    for (const outcome of ['ok', 'error', 'invalid', 'timeout']) expect(sample(before, 'callguard_shaken_cert_fetches_total', `outcome="${outcome}"`)).toBe(0);

    const paths = ['/good.pem', '/missing.pem', '/garbage.pem', '/slow.pem'];
    const answers = await Promise.all(paths.map((p, i) => signedCall(p, i)));
    expect(answers.map((r) => r.statusCode)).toEqual([200, 200, 200, 200]);
    // The slow fetch finishes in the background, after its call gave up on it, and is counted when
    // its answer comes (FETCH_TIMEOUT_MS + 300 after the request): waited for, not slept through.
    await until(() => server.hits.includes('/slow.pem'), 2000, 'the slow fetch to be made');
    await until(async () => sample(await scrape(app), 'callguard_shaken_cert_fetches_total', 'outcome="timeout"') === 1, 5000, 'the slow fetch to be counted', 50);
    // A certificate in the cache is no fetch.
    expect((await signedCall('/good.pem', 9)).statusCode).toBe(200);

    const text = await scrape(app);
    expect(sample(text, 'callguard_shaken_cert_fetches_total', 'outcome="ok"')).toBe(1);
    expect(sample(text, 'callguard_shaken_cert_fetches_total', 'outcome="error"')).toBe(1);
    expect(sample(text, 'callguard_shaken_cert_fetches_total', 'outcome="invalid"')).toBe(1);
    expect(sample(text, 'callguard_shaken_cert_fetches_total', 'outcome="timeout"')).toBe(1);
    expect(server.hits.filter((h) => h === '/good.pem')).toHaveLength(1);
  });

  it('counts each verification by verstat and each error code it gave, a cached verdict being no verification', async () => {
    const before = await scrape(app);
    const delta = (text: string, name: string, labels: string) => sample(text, name, labels)! - sample(before, name, labels)!;

    // The chain is fetched, but its CA is no trust anchor here: a failed verification.
    expect((await signedCall('/good.pem', 20)).json().shaken).toMatchObject({ verstat: 'TN-Validation-Failed', errors: ['CERT_UNTRUSTED'] });
    const garbled = { from: '+442079460123', to: '+447400123499', callId: 'garbled', identity: 'not a passport' };
    expect((await score(app, garbled)).json().shaken).toMatchObject({ verstat: 'TN-Validation-Failed', errors: ['MALFORMED'] });
    expect((await score(app, garbled)).json()).toMatchObject({ cached: true });
    const text = await scrape(app);

    expect(delta(text, 'callguard_shaken_verifications_total', 'verstat="TN-Validation-Failed"')).toBe(2);
    expect(delta(text, 'callguard_shaken_verifications_total', 'verstat="TN-Validation-Passed"')).toBe(0);
    expect(delta(text, 'callguard_shaken_verification_errors_total', 'code="CERT_UNTRUSTED"')).toBe(1);
    expect(delta(text, 'callguard_shaken_verification_errors_total', 'code="MALFORMED"')).toBe(1);
  });
});

/** Requests refused before any work: for their key (401, 403), their key's rate limit (429). */
describe('refusals: authentication failures and rate limits', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await build({ API_KEYS_FILE: KEYS_FILE, RATE_LIMIT_BANK_PER_MIN: '2' });
  });
  afterAll(() => app.close());

  it('counts authentication failures by reason: missing, invalid, forbidden', async () => {
    const call = { from: '+447400123456', to: '+442079460999' };
    expect((await score(app, call)).statusCode).toBe(401);
    expect((await app.inject({ method: 'POST', url: '/v1/calls/score', payload: call, headers: { authorization: 'Bearer no-such-key' } })).statusCode).toBe(401);
    expect((await app.inject({ method: 'POST', url: '/v1/calls/score', payload: call, headers: { authorization: 'Bearer no-such-key' } })).statusCode).toBe(401);
    expect((await app.inject({ method: 'POST', url: '/v1/calls/score', payload: call, headers: bearer('examplebank') })).statusCode).toBe(403);
    const text = await scrape(app);
    expect(sample(text, 'callguard_auth_failures_total', 'reason="missing"')).toBe(1);
    expect(sample(text, 'callguard_auth_failures_total', 'reason="invalid"')).toBe(2);
    expect(sample(text, 'callguard_auth_failures_total', 'reason="forbidden"')).toBe(1);
    // Public routes ask for no key, and refuse none.
    expect((await app.inject('/healthz')).statusCode).toBe(200);
    expect(sample(await scrape(app), 'callguard_auth_failures_total', 'reason="missing"')).toBe(1);
  });

  it('counts requests refused for their rate limit, by the key\'s role', async () => {
    const codes: number[] = [];
    for (let i = 0; i < 4; i++) codes.push((await app.inject({ method: 'GET', url: '/v1/campaigns', headers: bearer('northwind') })).statusCode);
    expect(codes).toEqual([200, 200, 429, 429]);
    const text = await scrape(app);
    expect(sample(text, 'callguard_rate_limited_total', 'role="bank"')).toBe(2);
    expect(sample(text, 'callguard_rate_limited_total', 'role="admin"')).toBe(0);
  });
});

describe('callguard_build_info', () => {
  it('is 1, labelled with the version in package.json, the Node version and BUILD_COMMIT', async () => {
    const app = await build({ BUILD_COMMIT: '0123456789abcdef0123456789abcdef01234567' });
    try {
      const { version } = JSON.parse(readFileSync(resolve(__dirname, '../../package.json'), 'utf8')) as { version: string };
      expect(sample(await scrape(app), 'callguard_build_info', `version="${version}",node="${process.version}",commit="0123456789abcdef0123456789abcdef01234567"`)).toBe(1);
    } finally {
      await app.close();
    }
  });
});

/**
 * Redis errors and degraded time, against a redis-server of the test's own that stops answering
 * (CLIENT PAUSE): the connection stays up, so commands are sent and time out.
 */
describe('Redis metrics', () => {
  let redis: Child;
  let port: number;
  let app: FastifyInstance;

  beforeAll(async () => {
    port = await freePort();
    redis = await startRedisServer(port);
    app = await build({ REDIS_URL: `redis://127.0.0.1:${port}`, REDIS_COMMAND_TIMEOUT_MS: '50' });
    await until(() => app.services.redisGuard?.client.status === 'ready', 5000, 'the app to reach Redis');
  });
  afterAll(async () => {
    await app?.close();
    await redis?.kill();
  });

  it('counts failed commands, shows degraded while Redis does not answer, and adds up the time', async () => {
    const before = await scrape(app);
    expect(sample(before, 'callguard_redis_errors_total')).toBe(0);
    expect(sample(before, 'callguard_redis_degraded')).toBe(0);
    expect(sample(before, 'callguard_redis_degraded_seconds_total')).toBe(0);

    const pause = await import('ioredis').then(({ default: Redis }) => new Redis(port, '127.0.0.1'));
    await pause.call('CLIENT', 'PAUSE', '1500', 'ALL');
    pause.disconnect();
    for (let i = 0; i < 5; i++) expect((await score(app, { from: '+447400123456', to: `+4474009000${i}`, callId: `redis-${i}` })).statusCode).toBe(200);
    const during = await scrape(app);
    expect(sample(during, 'callguard_redis_errors_total')).toBeGreaterThanOrEqual(3);
    expect(sample(during, 'callguard_redis_degraded')).toBe(1);

    // Redis answers again: the next command that gets through ends the episode.
    await sleep(1600);
    await until(
      async () => ((await score(app, { from: '+447400123456', to: '+447400900999', callId: `back-${Date.now()}` })), !app.services.redisGuard!.degraded),
      5000,
      'the guard to see Redis back',
      100,
    );
    const after = await scrape(app);
    expect(sample(after, 'callguard_redis_degraded')).toBe(0);
    expect(sample(after, 'callguard_redis_degraded_seconds_total')).toBeGreaterThan(0.5);
  });
});

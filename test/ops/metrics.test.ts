import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { createMetrics, metricsRoutes, type Metrics } from '../../src/ops/metrics';

/** The sample line for `name{labels}`, or undefined; labels are given in prom-client's order. */
function sample(text: string, name: string, labels = ''): number | undefined {
  const head = labels ? `${name}{${labels}} ` : `${name} `;
  const line = text.split('\n').find((l) => l.startsWith(head));
  return line === undefined ? undefined : Number(line.slice(head.length));
}

describe('metrics', () => {
  let app: FastifyInstance;
  let metrics: Metrics;
  let clock = Date.parse('2025-01-01T00:00:10Z');

  beforeAll(async () => {
    metrics = createMetrics({ now: () => clock });
    app = Fastify({ logger: false });
    await app.register(metricsRoutes, { metrics });
    app.get('/ping', async () => ({ ok: true }));
    app.get('/items/:id', async (request, reply) =>
      (request.params as { id: string }).id === 'missing' ? reply.code(404).send({ error: 'not_found' }) : { ok: true },
    );
    app.post('/boom', async () => {
      throw new Error('boom');
    });
    await app.ready();
  });
  afterAll(() => app.close());

  async function scrape(): Promise<string> {
    const res = await app.inject('/metrics');
    expect(res.statusCode).toBe(200);
    return res.body;
  }

  it('serves Prometheus text with the registry content type', async () => {
    const res = await app.inject('/metrics');
    expect(res.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(res.body).toContain('# TYPE callguard_http_request_duration_seconds histogram');
    expect(res.body).toContain('# TYPE callguard_verdicts_total counter');
  });

  it('times each request under its route template, and 404s without a route as "unmatched"', async () => {
    await app.inject('/ping');
    await app.inject('/ping');
    await app.inject('/items/1');
    await app.inject('/items/2');
    await app.inject('/items/missing');
    await app.inject('/no/such/path/1');
    await app.inject('/no/such/path/2');
    await app.inject({ method: 'POST', url: '/boom' });
    const text = await scrape();

    const count = 'callguard_http_request_duration_seconds_count';
    expect(sample(text, count, 'method="GET",route="/ping",status_code="200"')).toBe(2);
    expect(sample(text, count, 'method="GET",route="/items/:id",status_code="200"')).toBe(2);
    expect(sample(text, count, 'method="GET",route="/items/:id",status_code="404"')).toBe(1);
    expect(sample(text, count, 'method="GET",route="unmatched",status_code="404"')).toBe(2);
    expect(sample(text, count, 'method="POST",route="/boom",status_code="500"')).toBe(1);
    expect(text).not.toContain('/no/such/path');
    expect(text).not.toContain('/items/1');
    // Every request here answers far below a second: all of them fall in the 1 s bucket.
    expect(sample(text, 'callguard_http_request_duration_seconds_bucket', 'le="1",method="GET",route="/ping",status_code="200"')).toBe(2);
    expect(sample(text, 'callguard_http_request_duration_seconds_bucket', 'le="0.0005",method="GET",route="/ping",status_code="200"')).toBeDefined();
  });

  it('counts verdicts, reasons and verdict cache hits, with every known label at 0 from the start', async () => {
    const before = await scrape();
    expect(sample(before, 'callguard_verdicts_total', 'verdict="flag"')).toBe(0);
    expect(sample(before, 'callguard_reasons_total', 'code="EMERGENCY_CALL"')).toBe(0);
    expect(sample(before, 'callguard_verdict_cache_lookups_total', 'result="hit"')).toBe(0);

    metrics.observeDecision({ verdict: 'block', reasons: [{ code: 'CLI_DNO' }, { code: 'SHAKEN_ABSENT' }], cached: false });
    metrics.observeDecision({ verdict: 'block', reasons: [{ code: 'CLI_DNO' }, { code: 'SHAKEN_ABSENT' }], cached: true });
    metrics.observeDecision({ verdict: 'allow', reasons: [{ code: 'SHAKEN_ABSENT' }], cached: false });
    metrics.observeDecision({ verdict: 'allow', reasons: [{ code: 'SOME_FUTURE_CODE' }], cached: false });
    const text = await scrape();

    expect(sample(text, 'callguard_verdicts_total', 'verdict="block"')).toBe(2);
    expect(sample(text, 'callguard_verdicts_total', 'verdict="allow"')).toBe(2);
    expect(sample(text, 'callguard_verdicts_total', 'verdict="flag"')).toBe(0);
    expect(sample(text, 'callguard_reasons_total', 'code="CLI_DNO"')).toBe(2);
    expect(sample(text, 'callguard_reasons_total', 'code="SHAKEN_ABSENT"')).toBe(3);
    expect(sample(text, 'callguard_reasons_total', 'code="SOME_FUTURE_CODE"')).toBe(1);
    expect(sample(text, 'callguard_verdict_cache_lookups_total', 'result="hit"')).toBe(1);
    expect(sample(text, 'callguard_verdict_cache_lookups_total', 'result="miss"')).toBe(3);
  });

  it('counts certificate fetches by outcome and Redis errors', async () => {
    metrics.certFetch('ok');
    metrics.certFetch('timeout');
    metrics.certFetch('timeout');
    metrics.redisError();
    const text = await scrape();
    expect(sample(text, 'callguard_shaken_cert_fetches_total', 'outcome="ok"')).toBe(1);
    expect(sample(text, 'callguard_shaken_cert_fetches_total', 'outcome="timeout"')).toBe(2);
    expect(sample(text, 'callguard_shaken_cert_fetches_total', 'outcome="error"')).toBe(0);
    expect(sample(text, 'callguard_shaken_cert_fetches_total', 'outcome="invalid"')).toBe(0);
    expect(sample(text, 'callguard_redis_errors_total')).toBe(1);
  });

  it('reads registry size and Redis state through the bound readers at scrape time', async () => {
    let unbound = await scrape();
    expect(sample(unbound, 'callguard_redis_degraded')).toBe(0);
    expect(sample(unbound, 'callguard_redis_degraded_seconds_total')).toBe(0);

    let size = { banks: 3, numbers: 10, prefixes: 2 };
    let redis: { degraded: boolean; degradedMsTotal: number; degradedSince?: string | null } | null = null;
    metrics.bind({ registrySize: () => size, redis: () => redis });
    unbound = await scrape();
    expect(sample(unbound, 'callguard_registry_banks')).toBe(3);
    expect(sample(unbound, 'callguard_registry_numbers')).toBe(10);
    expect(sample(unbound, 'callguard_registry_prefixes')).toBe(2);
    expect(sample(unbound, 'callguard_redis_degraded')).toBe(0);

    size = { banks: 4, numbers: 12, prefixes: 2 };
    // Degraded for 4 s now, after 1.5 s in an earlier episode.
    redis = { degraded: true, degradedMsTotal: 1500, degradedSince: '2025-01-01T00:00:06Z' };
    let text = await scrape();
    expect(sample(text, 'callguard_registry_banks')).toBe(4);
    expect(sample(text, 'callguard_registry_numbers')).toBe(12);
    expect(sample(text, 'callguard_redis_degraded')).toBe(1);
    expect(sample(text, 'callguard_redis_degraded_seconds_total')).toBe(5.5);

    clock += 2000;
    text = await scrape();
    expect(sample(text, 'callguard_redis_degraded_seconds_total')).toBe(7.5);

    // The episode ends; the guard's own clock makes it a little shorter: the counter holds.
    redis = { degraded: false, degradedMsTotal: 7400 };
    text = await scrape();
    expect(sample(text, 'callguard_redis_degraded')).toBe(0);
    expect(sample(text, 'callguard_redis_degraded_seconds_total')).toBe(7.5);
    expect(text).toContain('# TYPE callguard_redis_degraded_seconds_total counter');
  });

  it("exposes Node's process metrics under prom-client's own names, without the service's prefix", async () => {
    const text = await scrape();
    expect(text).toContain('# TYPE process_cpu_user_seconds_total counter');
    expect(text).toContain('# TYPE process_resident_memory_bytes gauge');
    expect(text).toContain('# TYPE nodejs_heap_size_used_bytes gauge');
    expect(text).toContain('# TYPE nodejs_eventloop_lag_p99_seconds gauge');
    expect(text).not.toMatch(/callguard_(process|nodejs)_/);
  });

  it('says which build runs: callguard_build_info is 1, labelled with the version, Node and, when known, the commit', async () => {
    const text = await scrape();
    const version = (JSON.parse(readFileSync(resolve(__dirname, '../../package.json'), 'utf8')) as { version: string }).version;
    expect(sample(text, 'callguard_build_info', `version="${version}",node="${process.version}"`)).toBe(1);
    const built = createMetrics({ defaultMetrics: false, build: { version: '1.2.3', commit: '49d7f7c' } });
    expect(sample((await built.render()).body, 'callguard_build_info', `version="1.2.3",node="${process.version}",commit="49d7f7c"`)).toBe(1);
  });

  it('counts load shedding, rate limiting by role and authentication failures by reason, every known label at 0 first', async () => {
    const before = await scrape();
    expect(sample(before, 'callguard_load_shed_total')).toBe(0);
    for (const role of ['bank', 'admin', 'none']) expect(sample(before, 'callguard_rate_limited_total', `role="${role}"`)).toBe(0);
    for (const reason of ['missing', 'invalid', 'forbidden']) expect(sample(before, 'callguard_auth_failures_total', `reason="${reason}"`)).toBe(0);

    metrics.loadShed();
    metrics.loadShed();
    metrics.rateLimited('bank');
    metrics.authFailure('invalid');
    metrics.authFailure('forbidden');
    metrics.authFailure('forbidden');
    const text = await scrape();
    expect(sample(text, 'callguard_load_shed_total')).toBe(2);
    expect(sample(text, 'callguard_rate_limited_total', 'role="bank"')).toBe(1);
    expect(sample(text, 'callguard_rate_limited_total', 'role="admin"')).toBe(0);
    expect(sample(text, 'callguard_auth_failures_total', 'reason="missing"')).toBe(0);
    expect(sample(text, 'callguard_auth_failures_total', 'reason="invalid"')).toBe(1);
    expect(sample(text, 'callguard_auth_failures_total', 'reason="forbidden"')).toBe(2);
  });

  it('counts PASSporT verifications by verstat and their error codes by code', async () => {
    const before = await scrape();
    expect(sample(before, 'callguard_shaken_verifications_total', 'verstat="TN-Validation-Passed"')).toBe(0);
    expect(sample(before, 'callguard_shaken_verification_errors_total', 'code="RCD_INVALID"')).toBe(0);

    metrics.shakenVerification({ verstat: 'TN-Validation-Passed', errors: [] });
    metrics.shakenVerification({ verstat: 'TN-Validation-Failed', errors: ['BAD_SIGNATURE', 'STALE'] });
    metrics.shakenVerification({ verstat: 'TN-Validation-Failed', errors: ['STALE'] });
    metrics.shakenVerification({ verstat: 'No-TN-Validation', errors: ['X5U_FETCH_FAILED'] });
    const text = await scrape();
    expect(sample(text, 'callguard_shaken_verifications_total', 'verstat="TN-Validation-Passed"')).toBe(1);
    expect(sample(text, 'callguard_shaken_verifications_total', 'verstat="TN-Validation-Failed"')).toBe(2);
    expect(sample(text, 'callguard_shaken_verifications_total', 'verstat="No-TN-Validation"')).toBe(1);
    expect(sample(text, 'callguard_shaken_verification_errors_total', 'code="STALE"')).toBe(2);
    expect(sample(text, 'callguard_shaken_verification_errors_total', 'code="BAD_SIGNATURE"')).toBe(1);
    expect(sample(text, 'callguard_shaken_verification_errors_total', 'code="X5U_FETCH_FAILED"')).toBe(1);
    expect(sample(text, 'callguard_shaken_verification_errors_total', 'code="MALFORMED"')).toBe(0);
  });

  it('keeps each app on its own registry, so several apps live in one process', async () => {
    const other = createMetrics({ defaultMetrics: false });
    const again = createMetrics();
    other.observeDecision({ verdict: 'flag', reasons: [], cached: false });
    again.redisError();
    const otherText = (await other.render()).body;
    expect(sample(otherText, 'callguard_verdicts_total', 'verdict="flag"')).toBe(1);
    expect(otherText).not.toContain('process_cpu_user_seconds_total');
    expect(sample(otherText, 'callguard_redis_errors_total')).toBe(0);
    // Process metrics are the process's: every app that asks for them shows the same ones.
    const againText = (await again.render()).body;
    expect(sample(againText, 'callguard_redis_errors_total')).toBe(1);
    expect(againText).toContain('# TYPE process_cpu_user_seconds_total counter');
    expect(sample(await scrape(), 'callguard_verdicts_total', 'verdict="flag"')).toBe(0);
  });
});

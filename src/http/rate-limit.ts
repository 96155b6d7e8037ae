import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type Redis from 'ioredis';
import { HttpError } from './errors';
import type { Metrics } from '../ops/metrics';
import { keyspace } from '../state/redis/keyspace';

export interface RateLimitOptions {
  /** Requests a minute for one `bank` key; 0: unlimited. */
  bankPerMin: number;
  /** Requests a minute for one `admin` key; 0: unlimited. */
  adminPerMin: number;
  /** No keys configured: the service runs open on loopback, and nothing is limited. */
  open: boolean;
  /** Counts shared by every instance; without it each instance counts on its own. */
  redis?: Redis | null;
  /** Redis key prefix of the counters. */
  nameSpace?: string;
  /** Counts each request refused with 429. */
  metrics?: Pick<Metrics, 'rateLimited'>;
}

const WINDOW_MS = 60_000;

/**
 * Per-key request limits for the people-facing API (bank call centres, operators). Keyed by
 * the API key's name, so a bank's agents share their key's budget wherever they come from.
 *
 * Switch keys are exempt before anything is counted: a switch scores every call, a limit would
 * drop calls on the floor under a legitimate peak, and a counter round trip per call would
 * break the score route's latency budget. The open local mode is exempt for the same reason
 * (it is what the benchmark runs against).
 *
 * Call it on the API's own instance (not as a child plugin, whose hooks would not reach the
 * routes), after the authentication hook and before the routes: the limiter hooks each route as
 * it is added, and runs after the instance's onRequest hooks, so the principal is known.
 */
export async function registerRateLimit(app: FastifyInstance, opts: RateLimitOptions): Promise<void> {
  const perMin = (request: FastifyRequest): number =>
    request.principal?.role === 'admin' ? opts.adminPerMin : opts.bankPerMin;

  await app.register(rateLimit, {
    global: true,
    timeWindow: WINDOW_MS,
    hook: 'onRequest',
    allowList: (request) => opts.open || request.principal?.role === 'switch' || perMin(request) === 0,
    max: (request) => perMin(request),
    // A route without roles has no principal: the caller's address is all there is to count.
    keyGenerator: (request) => (request.principal ? `key:${request.principal.name}` : `ip:${request.ip}`),
    ...(opts.redis ? { redis: opts.redis, nameSpace: opts.nameSpace ?? keyspace().rateLimit } : {}),
    onExceeded: (request) => opts.metrics?.rateLimited(request.principal?.role ?? 'none'),
    // Limits protect the service; a Redis outage must not turn into refused requests.
    skipOnError: true,
    errorResponseBuilder: (_request, context) =>
      new HttpError(429, 'rate_limited', `this API key may make ${context.max} requests a minute; retry in ${context.after}`),
  });
}

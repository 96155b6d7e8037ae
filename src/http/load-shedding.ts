import underPressure from '@fastify/under-pressure';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Metrics } from '../ops/metrics';

/**
 * Sheds load before the event loop drowns: when the mean event-loop delay passes the limit, API
 * requests get an immediate 503 with Retry-After instead of queueing behind work that will
 * answer too late for any switch. A switch that gets the 503 fails open or tries another
 * instance at once. Registered inside the API plugin only, so health, readiness and metrics
 * keep answering while the API sheds.
 */
export async function registerLoadShedding(app: FastifyInstance, maxEventLoopDelayMs: number, metrics?: Pick<Metrics, 'loadShed'>): Promise<void> {
  if (maxEventLoopDelayMs <= 0) return;
  await app.register(underPressure, {
    maxEventLoopDelay: maxEventLoopDelayMs,
    retryAfter: 1,
    exposeStatusRoute: false,
    pressureHandler: shedOrPass(metrics),
  });
}

/**
 * under-pressure's pressure handler: a 503 with Retry-After, counted; or nothing (the request
 * goes on) when the value is no measurement at all.
 */
export function shedOrPass(metrics?: Pick<Metrics, 'loadShed'>) {
  return (_request: FastifyRequest, reply: FastifyReply, type: string, value: number | undefined): void => {
    // A loop blocked across a whole sample (a start, a large reload) leaves the delay histogram
    // empty, which under-pressure reports as an infinite delay: no measurement is no evidence
    // of overload, and the next sample, a second later, decides. Returning nothing lets the
    // request through.
    if (value !== undefined && !Number.isFinite(value)) return;
    metrics?.loadShed();
    reply
      .status(503)
      .header('retry-after', '1')
      .send({ error: 'overloaded', message: `the service is overloaded (${type}${value !== undefined ? ` ${Math.round(value)}` : ''}); retry in a second` });
  };
}

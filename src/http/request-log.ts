import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Bindings, ChildLoggerOptions, LogFn, Logger } from 'pino';
import type { Config } from '../config';
import { logRefusal, refusalOf } from './security-events';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The request id: the caller's `x-request-id` when it is a UUID, so a switch's or a bank's own id
 * follows the call through our logs; anything else is replaced by a fresh one, so no caller can
 * write arbitrary text into every line of a request or pass one id off for many.
 */
export function requestIdOf(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && UUID.test(given) ? given : randomUUID();
}

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;
type Level = (typeof LEVELS)[number];

/**
 * A request's logger that becomes a pino child (with the request id bound) only when a line is
 * written at a level in force. Fastify makes a child for every request, and binding it costs a
 * serialisation of its bindings through the redaction paths: a few microseconds on every call,
 * for lines that the busy routes' sampled access log almost never writes.
 */
class RequestLogger {
  #child: Logger | undefined;
  constructor(
    private readonly parent: Logger,
    private readonly own: Bindings,
  ) {}
  private get logger(): Logger {
    return (this.#child ??= this.parent.child(this.own));
  }
  get level(): string {
    return this.#child?.level ?? this.parent.level;
  }
  set level(level: string) {
    this.logger.level = level;
  }
  child(bindings: Bindings, options?: ChildLoggerOptions): Logger {
    return this.logger.child(bindings, options);
  }
  isLevelEnabled(level: string): boolean {
    return (this.#child ?? this.parent).isLevelEnabled(level);
  }
  // The rest of a pino child's own members, for any caller that reaches past the level methods.
  get levelVal(): number {
    return (this.#child ?? this.parent).levelVal;
  }
  get levels(): Logger['levels'] {
    return this.parent.levels;
  }
  get msgPrefix(): string | undefined {
    return (this.#child ?? this.parent).msgPrefix;
  }
  bindings(): Bindings {
    return this.logger.bindings();
  }
  setBindings(bindings: Bindings): void {
    this.logger.setBindings(bindings);
  }
  flush(cb?: (err?: Error) => void): void {
    this.parent.flush(cb);
  }
  declare fatal: LogFn;
  declare error: LogFn;
  declare warn: LogFn;
  declare info: LogFn;
  declare debug: LogFn;
  declare trace: LogFn;
  declare silent: LogFn;
}
for (const level of LEVELS) {
  RequestLogger.prototype[level] = function (this: RequestLogger, ...args: unknown[]) {
    if (this.isLevelEnabled(level)) (this as unknown as { logger: Record<Level, (...a: unknown[]) => void> }).logger[level](...args);
  } as LogFn;
}
RequestLogger.prototype.silent = (() => undefined) as LogFn;

/**
 * Fastify's `childLoggerFactory`: a lazy RequestLogger, or the plain child when a route sets a
 * level of its own.
 */
export function requestLogger(this: unknown, logger: FastifyBaseLogger, bindings: Bindings, options: ChildLoggerOptions): FastifyBaseLogger {
  if (Object.keys(options).length > 0) return logger.child(bindings, options);
  return new RequestLogger(logger as Logger, bindings) as unknown as FastifyBaseLogger;
}

/**
 * The busy routes: a switch calls them for every call, tens of thousands a second, and probes
 * poll the health and metrics routes every few seconds. A line for each of their successes would
 * cost more than the work and drown every other line; metrics count them instead.
 */
const BUSY_ROUTES = new Set([
  'POST /v1/calls/score',
  'POST /stir/v1/verification',
  'POST /stir/v1/signing',
  'GET /healthz',
  'GET /readyz',
  'GET /metrics',
]);

/**
 * Whether a request gets an access line: every 4xx and 5xx does; a success on a busy route with
 * probability `sample`; any other success (people at work: registry, reports, policy) always.
 */
export function wantsAccessLine(method: string, route: string | undefined, status: number, sample: number, random: () => number = Math.random): boolean {
  if (status >= 400) return true;
  if (route === undefined || !BUSY_ROUTES.has(`${method} ${route}`)) return true;
  return sample > 0 && random() < sample;
}

/** The message of the error a request was answered with, kept for its security event. */
const refusalReasons = new WeakMap<FastifyRequest, string>();

/**
 * One access line per request (ACCESS_LOG_LEVEL, ACCESS_LOG_SAMPLE): method, route, URL, status,
 * time taken and who called (the key's name and role, never the key); the request id is on every
 * line of the request. A 401, 403 or 429 is also a security event (security-events.ts), whatever
 * the sampling. Register on the root instance, before the plugins, so every route and the 404s
 * are covered.
 */
export function registerRequestLogging(app: FastifyInstance, { level, sample }: Config['accessLog']): void {
  app.addHook('onError', (request, _reply, error, done) => {
    refusalReasons.set(request, error.message);
    done();
  });
  app.addHook('onResponse', (request: FastifyRequest, reply: FastifyReply, done) => {
    const status = reply.statusCode;
    const route = request.routeOptions.url;
    if (wantsAccessLine(request.method, route, status, sample)) {
      const who = request.principal;
      request.log[level](
        {
          method: request.method,
          route,
          url: request.url,
          status,
          ms: Math.round(reply.elapsedTime * 100) / 100,
          ...(who ? { key: who.name, role: who.role } : {}),
        },
        'access',
      );
    }
    const refusal = refusalOf(status);
    if (refusal) logRefusal(request, refusal, refusalReasons.get(request));
    done();
  });
}

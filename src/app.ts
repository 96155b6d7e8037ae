import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import pino from 'pino';
import { compose, type Composition, type Overrides, type Services } from './composition';
import { loadConfig, type Config } from './config';
import { api } from './http/api';
import { consoleRoutes } from './http/console';
import { registerDocs } from './http/docs';
import { registerErrorHandling } from './http/errors';
import { registerRequestLogging, requestIdOf, requestLogger } from './http/request-log';
import { healthRoutes } from './ops/health';
import { loggerOptions } from './ops/logger';
import { metricsRoutes } from './ops/metrics';

export type { Services } from './composition';
export { reloadPolicy } from './composition';

declare module 'fastify' {
  interface FastifyInstance {
    services: Services;
  }
}

/** Everything a test, the bench or the server may hand in instead of the defaults (see Overrides). */
export interface BuildOptions extends Overrides {
  /** Defaults to `loadConfig(env)`. */
  config?: Config;
  env?: NodeJS.ProcessEnv;
  /** Pino options, `false` for silence (tests). Defaults to the config's log level. Ignored when `log` is given. */
  logger?: boolean | object;
}

/** The app, used alike by the server, the tests and the benchmark: composes the services, then wires them. */
export async function buildApp(opts: BuildOptions = {}): Promise<FastifyInstance> {
  const { config: given, env, logger, ...overrides } = opts;
  const config = given ?? loadConfig(env ?? process.env);
  const log = overrides.log ?? (logger === undefined ? undefined : logger === false ? pino({ enabled: false }) : pino((logger === true ? loggerOptions(config.logLevel) : logger) as pino.LoggerOptions));
  return wireApp(await compose(config, { ...overrides, ...(log ? { log } : {}) }));
}

/**
 * Wires composed services into fastify: the instance, its plugins and routes, and the close that
 * releases the services. Builds nothing of its own; on a failure the services are released.
 */
export async function wireApp(composition: Composition): Promise<FastifyInstance> {
  const { services } = composition;
  const { config } = services;
  try {
    const app = Fastify({
      // The services' own logger: what they log and what the app logs go to one place.
      loggerInstance: services.log as FastifyBaseLogger,
      bodyLimit: config.bodyLimitBytes,
      // The request id is the caller's x-request-id when it is a UUID (see requestIdOf).
      requestIdHeader: false,
      genReqId: requestIdOf,
      // Fastify's own two lines a request are off: one access line, sampled on the busy routes,
      // is written instead (registerRequestLogging).
      logController: new LogController({ disableRequestLogging: true }),
      childLoggerFactory: requestLogger,
      // Switches keep connections open for hours; keep them alive longer than their pools do.
      keepAliveTimeout: 75_000,
      requestTimeout: config.requestTimeoutMs,
      // Node enforces requestTimeout only when it sweeps its connections, every 30 s by default:
      // a body trickled in a byte at a time would hold its socket and its parser three times the
      // promise. Swept every second, a request that has not fully arrived is cut off (408) on time.
      http: { requestTimeout: config.requestTimeoutMs, headersTimeout: config.requestTimeoutMs, connectionsCheckingInterval: 1000 },
      return503OnClosing: true,
      ajv: { customOptions: { coerceTypes: false } },
      // A path parameter as long as a callId the score route takes (256 characters), percent-encoded
      // (up to 9 characters each), reaches its route and its schema's 400 rather than a bare 414.
      routerOptions: { maxParamLength: 256 * 9 },
    });
    // Set as the request arrives, so every answer carries it, errors and refusals included; a
    // callback hook, not an async one: no promise per request.
    app.addHook('onRequest', (request, reply, done) => {
      reply.header('x-request-id', request.id);
      done();
    });
    app.decorate('services', services);
    registerRequestLogging(app, config.accessLog);
    app.addHook('onReady', async () => composition.start());
    app.addHook('onClose', async () => {
      await composition.close();
    });

    registerErrorHandling(app);
    await registerDocs(app);
    await app.register(metricsRoutes, {
      metrics: services.metrics,
      ...(config.metricsPort !== undefined ? { ownListener: { host: config.host, port: config.metricsPort } } : {}),
    });
    await app.register(healthRoutes);
    await app.register(api);
    await app.register(consoleRoutes);
    return app;
  } catch (err) {
    await composition.close();
    throw err;
  }
}

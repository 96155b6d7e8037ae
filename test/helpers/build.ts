import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp, type BuildOptions } from '../../src/app';
import { loadConfig } from '../../src/config';
import { vectorsFetcher } from '../shaken/helpers';
import { capturingLogger } from './log-lines';
import { TEST_REDIS_URL } from './redis';

export { VECTORS_DIR } from '../shaken/helpers';

/**
 * The app as the tests see it: on the embedded defaults unless `env` says otherwise, with the
 * vectors' certificates served instead of the network, its log lines captured rather than
 * printed and held to the logging rules after each test (test/setup/log-lines.ts), unless the
 * test hands in a logger of its own. Closed after each test file.
 */
export async function build(env: Record<string, string> = {}, opts: Omit<BuildOptions, 'config'> = {}): Promise<FastifyInstance> {
  // Load shedding off unless a test turns it on: a suite running beside others on a busy machine
  // would otherwise get 503s for event-loop delay that is the machine's, not the app's.
  // A test app on the shared Redis keeps to keys of its own, unless the test names a prefix (a
  // test with a redis-server of its own reads the default keys).
  const redisKeyPrefix = env.REDIS_URL === TEST_REDIS_URL ? { REDIS_KEY_PREFIX: `test:callguard:${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}:` } : {};
  const config = loadConfig({ LOG_LEVEL: 'silent', REGISTRY_DATA_DIR: mkdtempSync(join(tmpdir(), 'callguard-data-')), LOAD_SHED_EVENT_LOOP_DELAY_MS: '0', ...redisKeyPrefix, ...env });
  const log = opts.log === undefined && opts.logger === undefined ? { log: capturingLogger() } : {};
  const app = await buildApp({ certFetcher: vectorsFetcher(), ...log, ...opts, config });
  await app.ready();
  return app;
}

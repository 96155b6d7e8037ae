import type { FastifyInstance } from 'fastify';
import { until } from '../../scripts/lib/process';
import { connect, deleteByPrefix } from '../state/support';
import { build } from './build';
import { requireRedis, TEST_REDIS_URL } from './redis';

/** Two instances of one deployment: one REDIS_KEY_PREFIX on the test Redis, of this test run's own. */
export interface TwoInstances {
  a: FastifyInstance;
  b: FastifyInstance;
  prefix: string;
  /** Closes both and deletes every key under the prefix. */
  close(): Promise<void>;
}

/** Builds both once Redis answers, and waits until each is connected. */
export async function twoInstances(name: string, env: Record<string, string> = {}): Promise<TwoInstances> {
  await requireRedis();
  const prefix = `test:callguard:${name}-${process.pid}-${Date.now().toString(36)}:`;
  const settings = { REDIS_URL: TEST_REDIS_URL, REDIS_KEY_PREFIX: prefix, ...env };
  const a = await build(settings);
  const b = await build(settings);
  for (const app of [a, b]) await until(() => app.services.redisGuard?.client.status === 'ready', 5000, 'redis');
  return {
    a,
    b,
    prefix,
    close: async () => {
      await a.close();
      await b.close();
      const client = await connect();
      await deleteByPrefix(client, prefix);
      client.disconnect();
    },
  };
}

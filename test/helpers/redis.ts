import Redis from 'ioredis';
import { createRedisClient } from '../../src/state/redis/client';
import { freePort, startRedisServer, until, type Child } from '../../scripts/lib/process';

/** The Redis the shared-Redis tests use; each test keeps to a key prefix of its own. */
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

const HOW_TO_START =
  'start one with `redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no`, ' +
  'or point TEST_REDIS_URL at one';

const answered = new Map<string, Promise<void>>();

/**
 * Fails within seconds, saying what to start, when no Redis answers at TEST_REDIS_URL: without
 * it a Redis test would wait on a client that reconnects forever until jest's timeouts ran out,
 * test after test. Asked once per URL and test file.
 */
export function requireRedis(url = TEST_REDIS_URL): Promise<void> {
  let probe = answered.get(url);
  if (!probe) {
    probe = ask(url);
    answered.set(url, probe);
  }
  return probe;
}

async function ask(url: string): Promise<void> {
  const probe = new Redis(url, { lazyConnect: true, connectTimeout: 2000, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
  let lastError = '';
  probe.on('error', (err: Error) => (lastError = err.message));
  try {
    await probe.connect();
    await probe.ping();
  } catch (err) {
    const why = lastError || (err instanceof Error ? err.message : String(err));
    throw new Error(`no Redis answers at ${url} (${why}): ${HOW_TO_START}`, { cause: err });
  } finally {
    probe.disconnect();
  }
}

/**
 * A redis-server of the test file's own, on a free port, and a registry client on it (commands
 * may take 10 s: the registry tests make large changes). The caller stops both.
 */
export async function startRegistryRedis(): Promise<{ port: number; server: Child; client: Redis }> {
  const port = await freePort();
  const server = await startRedisServer(port);
  const client = createRedisClient(`redis://127.0.0.1:${port}`, { commandTimeoutMs: 10_000 });
  client.on('error', () => undefined);
  await until(() => client.status === 'ready', 5000, 'the registry client');
  return { port, server, client };
}

import { buildApp } from './app';
import { ConfigError, loadConfig } from './config';
import { KeyFileError } from './http/auth';
import { NumberingDataError } from './numbering';
import { RegistryLoadError } from './registry';

/** Process entry: configuration, the app, the listening socket, and a clean shutdown. */
async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`callguard: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }

  let app;
  try {
    app = await buildApp({ config });
  } catch (err) {
    if (err instanceof RegistryLoadError || err instanceof ConfigError || err instanceof KeyFileError || err instanceof NumberingDataError) {
      process.stderr.write(`callguard: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }

  if (!config.apiKeysFile) {
    if (!config.hostIsLoopback) {
      app.log.fatal({ host: config.host }, 'no API keys configured (API_KEYS_FILE): refusing to listen on a non-loopback address');
      process.stderr.write(`callguard: no API keys configured (API_KEYS_FILE) and HOST=${config.host} is not a loopback address: refusing to start open\n`);
      process.exit(2);
    }
    app.log.warn({ host: config.host }, 'no API keys configured: running OPEN, reachable only on loopback');
  }

  let closing = false;
  const shutdown = (signal: string) => {
    if (closing) return;
    closing = true;
    app.log.info({ signal }, 'shutting down: finishing in-flight requests');
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    app.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));

  await app.listen({ port: config.port, host: config.host });
}

main().catch((err: unknown) => {
  process.stderr.write(`callguard: failed to start: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});

import { ConfigError, isLoopbackHost, loadConfig } from '../../src/config';

describe('loadConfig', () => {
  it('has the contract defaults', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      port: 8080,
      host: '127.0.0.1',
      hostIsLoopback: true,
      redisUrl: undefined,
      registryFile: undefined,
      defaultCountry: 'GB',
      shaken: { trustAnchors: undefined, allowInsecureX5u: false, maxAgeS: 60 },
    });
  });

  it('reads every variable of the contract', () => {
    const c = loadConfig({
      PORT: '9000',
      HOST: '0.0.0.0',
      REDIS_URL: 'redis://127.0.0.1:6379/2',
      REGISTRY_FILE: '/etc/callguard/registry.json',
      DEFAULT_COUNTRY: 'FR',
      SHAKEN_TRUST_ANCHORS: '/etc/callguard/anchors',
      SHAKEN_X5U_ALLOW_INSECURE: 'true',
      SHAKEN_MAX_AGE_S: '30',
    });
    expect(c).toMatchObject({
      port: 9000,
      host: '0.0.0.0',
      hostIsLoopback: false,
      redisUrl: 'redis://127.0.0.1:6379/2',
      registryFile: '/etc/callguard/registry.json',
      defaultCountry: 'FR',
      shaken: { trustAnchors: '/etc/callguard/anchors', allowInsecureX5u: true, maxAgeS: 30 },
    });
  });

  it.each([
    [{ PORT: 'eighty' }, /PORT must be a whole number/],
    [{ PORT: '70000' }, /PORT must be at most 65535/],
    [{ DEFAULT_COUNTRY: 'gbr' }, /DEFAULT_COUNTRY must be an ISO 3166-1 alpha-2 code/],
    [{ SHAKEN_X5U_ALLOW_INSECURE: 'maybe' }, /SHAKEN_X5U_ALLOW_INSECURE must be one of true, false/],
    [{ SHAKEN_MAX_AGE_S: '0' }, /SHAKEN_MAX_AGE_S must be at least 1/],
    [{ REDIS_URL: 'localhost:6379' }, /REDIS_URL must be a redis:\/\/ or rediss:\/\/ URL/],
  ])('%j stops the start with a message naming the variable', (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });

  it('treats empty values as unset', () => {
    expect(loadConfig({ REDIS_URL: '', PORT: '' })).toMatchObject({ redisUrl: undefined, port: 8080 });
  });

  it('knows loopback hosts', () => {
    expect(['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost'].every(isLoopbackHost)).toBe(true);
    expect(['0.0.0.0', '10.0.0.1', '::', 'example.com'].some(isLoopbackHost)).toBe(false);
  });
});

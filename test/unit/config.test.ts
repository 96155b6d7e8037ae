import { ConfigError, isLoopbackHost, loadConfig, productionSafetyProblems } from '../../src/config';

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

  it('serves metrics on PORT unless METRICS_PORT names a port of their own, which must not be PORT', () => {
    expect(loadConfig({}).metricsPort).toBeUndefined();
    expect(loadConfig({ METRICS_PORT: '9464' }).metricsPort).toBe(9464);
    expect(() => loadConfig({ METRICS_PORT: '8080' })).toThrow(/METRICS_PORT must differ from PORT/);
    expect(() => loadConfig({ PORT: '9000', METRICS_PORT: '9000' })).toThrow(ConfigError);
    expect(() => loadConfig({ METRICS_PORT: '0' })).toThrow(/METRICS_PORT must be at least 1/);
  });

  it('takes BUILD_COMMIT only as a commit hash (it becomes a metric label)', () => {
    expect(loadConfig({ BUILD_COMMIT: '49d7f7c' }).buildCommit).toBe('49d7f7c');
    expect(loadConfig({}).buildCommit).toBeUndefined();
    expect(() => loadConfig({ BUILD_COMMIT: 'main; rm -rf' })).toThrow(/BUILD_COMMIT must be a git commit hash/);
  });

  it('treats empty values as unset', () => {
    expect(loadConfig({ REDIS_URL: '', PORT: '' })).toMatchObject({ redisUrl: undefined, port: 8080 });
  });

  it('knows loopback hosts', () => {
    expect(['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost'].every(isLoopbackHost)).toBe(true);
    expect(['0.0.0.0', '10.0.0.1', '::', 'example.com'].some(isLoopbackHost)).toBe(false);
  });
  it('access lines: at info, no success of a busy route sampled, unless ACCESS_LOG_LEVEL and ACCESS_LOG_SAMPLE say otherwise', () => {
    expect(loadConfig({}).accessLog).toEqual({ level: 'info', sample: 0 });
    expect(loadConfig({ ACCESS_LOG_LEVEL: 'debug', ACCESS_LOG_SAMPLE: '0.01' }).accessLog).toEqual({ level: 'debug', sample: 0.01 });
    expect(() => loadConfig({ ACCESS_LOG_SAMPLE: '2' })).toThrow(/ACCESS_LOG_SAMPLE must be a number from 0 to 1/);
    expect(() => loadConfig({ ACCESS_LOG_SAMPLE: 'some' })).toThrow(/ACCESS_LOG_SAMPLE must be a number from 0 to 1/);
    expect(() => loadConfig({ ACCESS_LOG_LEVEL: 'silent' })).toThrow(/ACCESS_LOG_LEVEL must be one of/);
  });
});

describe('productionSafetyProblems', () => {
  const problems = (env: Record<string, string>) => productionSafetyProblems(loadConfig(env));

  it('asks nothing of a developer on loopback without keys', () => {
    expect(problems({})).toEqual([]);
  });

  it.each([
    ['API keys', { API_KEYS_FILE: '/etc/callguard/keys.json' }],
    ['a non-loopback HOST', { HOST: '0.0.0.0', API_KEYS_FILE: '/etc/callguard/keys.json' }],
  ])('with %s, wants trust anchors (or SHAKEN_VERIFY=false) and a REGISTRY_FILE', (_what, env) => {
    const found = problems(env);
    expect(found).toHaveLength(2);
    expect(found[0]).toMatch(/SHAKEN_TRUST_ANCHORS is unset.*SHAKEN_VERIFY=false/);
    expect(found[1]).toMatch(/REGISTRY_FILE is unset.*sample registry/);
    expect(problems({ ...env, SHAKEN_TRUST_ANCHORS: '/etc/sti-ca', REGISTRY_FILE: '/etc/registry.json' })).toEqual([]);
    expect(problems({ ...env, SHAKEN_VERIFY: 'false', REGISTRY_FILE: '/etc/registry.json' })).toEqual([]);
  });

  it('refuses to be open on a non-loopback address', () => {
    expect(problems({ HOST: '0.0.0.0', SHAKEN_VERIFY: 'false', REGISTRY_FILE: '/etc/registry.json' })).toEqual([
      expect.stringMatching(/no API keys configured.*refusing to start open/),
    ]);
  });
});

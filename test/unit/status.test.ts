import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../src/config';
import { PACKAGE_INFO } from '../../src/config';
import { redactRedisUrl, statusSummary, type StatusFacts } from '../../src/ops/status';
import { trustAnchorSet } from '../../src/shaken';
import { VECTORS_DIR } from '../helpers/build';

const root = new X509Certificate(readFileSync(join(VECTORS_DIR, 'certs/root.pem')));
const facts = (env: Record<string, string>, more: Partial<StatusFacts> = {}): StatusFacts => ({
  version: '1.2.3',
  node: 'v20.0.0',
  config: loadConfig(env),
  keys: [
    { name: 'sbc-b', role: 'switch', bankId: null },
    { name: 'noc', role: 'admin', bankId: null },
    { name: 'sbc-a', role: 'switch', bankId: null },
    { name: 'examplebank-cc', role: 'bank', bankId: 'examplebank' },
  ],
  registry: { backend: 'redis', seed: '/etc/callguard/registry.json', version: 'v1', size: { banks: 2, numbers: 10, prefixes: 1 } },
  trustAnchors: trustAnchorSet([root]),
  numbering: null,
  policy: { version: 'p1', source: 'built-in', loadedAt: Date.parse('2026-12-07T08:00:00Z') },
  shadowPolicyVersion: null,
  ...more,
});

describe('statusSummary keeps secrets out', () => {
  it('a password in REDIS_URL (user part and query) appears nowhere in the summary; the host does', () => {
    const summary = statusSummary(
      facts({ REDIS_URL: 'redis://callguard:s3cr3t-Pa55@redis.internal:6380/2?password=0therS3cret&family=6', SHAKEN_SIGNING_KEY: '/etc/callguard/signing.key' }),
    );
    const text = JSON.stringify(summary);
    expect(text).not.toContain('s3cr3t-Pa55');
    expect(text).not.toContain('0therS3cret');
    expect(summary.config.redisUrl).toBe('redis://callguard:***@redis.internal:6380/2?password=***&family=6');
    // A path to key material is shown; the key itself is never read into the summary.
    expect(summary.config.shaken.signingKey).toBe('/etc/callguard/signing.key');
  });
  it('keys are shown by role and name, never by hash', () => {
    const { keys } = statusSummary(facts({}));
    expect(keys).toEqual({
      open: false,
      count: 4,
      byRole: { switch: { count: 2, names: ['sbc-a', 'sbc-b'] }, bank: { count: 1, names: ['examplebank-cc'] }, admin: { count: 1, names: ['noc'] } },
    });
  });
});

describe('redactRedisUrl', () => {
  it.each([
    ['redis://127.0.0.1:6379', 'redis://127.0.0.1:6379'],
    ['redis://:pw@h:6379', 'redis://:***@h:6379'],
    ['rediss://user:p%40ss@h:6380/1', 'rediss://user:***@h:6380/1'],
    // No colon: as often a password in the wrong place as a user name.
    ['redis://lonely@h', 'redis://***@h'],
    ['redis://a:x@h1:7000, redis://a:y@h2:7001', 'redis://a:***@h1:7000,redis://a:***@h2:7001'],
    ['redis://h?auth_token=zz&db=3', 'redis://h?auth_token=***&db=3'],
  ])('%s -> %s', (url, shown) => {
    expect(redactRedisUrl(url)).toBe(shown);
  });
});

describe('statusSummary', () => {
  it('names the build, the registry source and size, the roots with their expiry, the numbering data and the policies', () => {
    const s = statusSummary(
      facts(
        { SHAKEN_TRUST_ANCHORS: '/etc/callguard/sti-ca', NUMBERING_DATA_DIR: '/var/numbering', POLICY_FILE: '/etc/callguard/policy.json' },
        {
          numbering: { version: 'n1', ranges: 42, generatedAt: '2026-11-02T09:14:00.000Z', sources: [{ file: 'S1.csv', sha256: 'ab' }] },
          policy: { version: 'p2', source: 'file', path: '/etc/callguard/policy.json', loadedAt: 0 },
          shadowPolicyVersion: 'p3',
        },
      ),
    );
    expect(s.service).toEqual({ name: 'callguard', version: '1.2.3', node: 'v20.0.0' });
    expect(s.registry).toEqual({ source: 'redis', seed: '/etc/callguard/registry.json', version: 'v1', banks: 2, numbers: 10, prefixes: 1 });
    expect(s.trustAnchors).toMatchObject({
      path: '/etc/callguard/sti-ca',
      count: 1,
      fingerprint: trustAnchorSet([root]).fingerprint,
      soonestExpiry: new Date(root.validTo).toISOString(),
      anchors: [{ subject: root.subject.replace(/\n/g, ', '), fingerprint256: root.fingerprint256, notAfter: new Date(root.validTo).toISOString() }],
    });
    expect(s.numbering).toEqual({ dataDir: '/var/numbering', version: 'n1', ranges: 42, generatedAt: '2026-11-02T09:14:00.000Z', sources: [{ file: 'S1.csv', sha256: 'ab' }] });
    expect(s.policy).toEqual({ version: 'p2', source: 'file', path: '/etc/callguard/policy.json', loadedAt: '1970-01-01T00:00:00.000Z', shadowVersion: 'p3' });
  });
  it('the embedded registry names its data directory; no keys means open', () => {
    const s = statusSummary(facts({ REGISTRY_DATA_DIR: '/var/lib/callguard' }, { keys: [], registry: { backend: 'file', seed: 'sample', version: 'v', size: { banks: 0, numbers: 0, prefixes: 0 } } }));
    expect(s.registry).toMatchObject({ source: 'data-directory', dataDir: '/var/lib/callguard' });
    expect(s.keys.open).toBe(true);
    expect(s.config.redisUrl).toBeNull();
  });
  it("the service version is package.json's", () => {
    expect(PACKAGE_INFO.version).toBe((JSON.parse(readFileSync(join(__dirname, '../../package.json'), 'utf8')) as { version: string }).version);
  });
});

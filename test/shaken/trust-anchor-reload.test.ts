import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CertCache,
  createShakenVerifier,
  readTrustAnchorSet,
  trustAnchorSet,
  TrustAnchorSource,
  type RedisLike,
  type TrustAnchorSet,
  type TrustAnchorSourceOptions,
} from '../../src/shaken';
import { calmestStallWithin } from '../helpers/stall';
import { identity, makePki, mapFetcher, type Pki } from './helpers';

/**
 * Two PKIs whose roots share a name but not a key: a chain under one is untrusted under the
 * other, exactly as when an STI-CA rolls its root.
 */
let a: Pki;
let b: Pki;
let dir: string;
const URL_A = 'https://certs.a.example/sp.pem';
const URL_B = 'https://certs.b.example/sp.pem';

beforeAll(() => {
  a = makePki();
  b = makePki();
}, 60_000);
afterAll(() => {
  a?.cleanup();
  b?.cleanup();
});
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'callguard-anchor-reload-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

interface LogLine {
  level: 'info' | 'warn' | 'error';
  obj: Record<string, unknown>;
  msg: string;
}
function recordingLogger() {
  const lines: LogLine[] = [];
  const at = (level: LogLine['level']) => (obj: object, msg: string) => void lines.push({ level, obj: obj as Record<string, unknown>, msg });
  return { lines, logger: { info: at('info'), warn: at('warn'), error: at('error') } };
}

function sourceFor(path: string, initial: TrustAnchorSet, extra: Partial<TrustAnchorSourceOptions> = {}) {
  const applied: TrustAnchorSet[] = [];
  const outcomes: string[] = [];
  const log = recordingLogger();
  const source = new TrustAnchorSource({
    path,
    initial,
    apply: (set) => void applied.push(set),
    logger: log.logger,
    pollMs: 0,
    watch: false,
    onReload: (o) => void outcomes.push(o),
    ...extra,
  });
  return { source, applied, outcomes, log };
}

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  for (const end = Date.now() + ms; !cond(); ) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('readTrustAnchorSet: a new set is checked whole', () => {
  it('reads a good file and names the set by its roots, whatever the files', async () => {
    const file = join(dir, 'roots.pem');
    writeFileSync(file, a.root.certPem + b.root.certPem);
    const set = await readTrustAnchorSet(file, Date.now());
    expect(set.certs).toHaveLength(2);
    writeFileSync(join(dir, 'x.pem'), b.root.certPem);
    writeFileSync(join(dir, 'y.crt'), a.root.certPem);
    rmSync(file);
    expect((await readTrustAnchorSet(dir, Date.now())).fingerprint).toBe(set.fingerprint);
    expect(trustAnchorSet([a.root.cert]).fingerprint).not.toBe(set.fingerprint);
  });

  it.each([
    ['a missing path', () => join(dir, 'gone.pem'), /cannot read/],
    ['an empty folder', () => dir, /no certificate/],
    ['a file with no certificate', () => (writeFileSync(join(dir, 'r.pem'), 'hello'), join(dir, 'r.pem')), /no PEM certificate/],
    ['a block that does not parse', () => (writeFileSync(join(dir, 'r.pem'), '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'), join(dir, 'r.pem')), /r\.pem/],
    ['a truncated file (BEGIN without END)', () => (writeFileSync(join(dir, 'r.pem'), a.root.certPem + b.root.certPem.slice(0, 200)), join(dir, 'r.pem')), /without an END/],
    ['a leaf among the roots', () => (writeFileSync(join(dir, 'r.pem'), a.root.certPem + a.leaf.certPem), join(dir, 'r.pem')), /not a CA certificate/],
  ])('refuses %s', async (_name, make, reason) => {
    await expect(readTrustAnchorSet(make(), Date.now())).rejects.toThrow(reason);
  });

  it('refuses a set whose every root has expired', async () => {
    const file = join(dir, 'roots.pem');
    writeFileSync(file, a.root.certPem);
    await expect(readTrustAnchorSet(file, Date.parse('2100-01-01T00:00:00Z'))).rejects.toThrow(/every certificate .* has expired/);
  });
});

describe('TrustAnchorSource: reloads', () => {
  it('puts a good new set in force in one step, and says so', async () => {
    const file = join(dir, 'roots.pem');
    writeFileSync(file, a.root.certPem);
    const { source, applied, outcomes, log } = sourceFor(file, trustAnchorSet([a.root.cert]));
    writeFileSync(file, b.root.certPem);
    const r = await source.reload('SIGHUP');
    expect(r).toMatchObject({ outcome: 'ok', count: 1 });
    expect(applied).toHaveLength(1);
    expect(applied[0]!.certs[0]!.fingerprint256).toBe(b.root.cert.fingerprint256);
    expect(source.current()).toBe(applied[0]);
    expect(outcomes).toEqual(['ok']);
    expect(log.lines.some((l) => l.level === 'info' && /reloaded/.test(l.msg))).toBe(true);
  });

  it('re-reading the same roots changes nothing', async () => {
    const file = join(dir, 'roots.pem');
    writeFileSync(file, a.root.certPem);
    const initial = trustAnchorSet([a.root.cert]);
    const { source, applied } = sourceFor(file, initial);
    expect((await source.reload('SIGHUP')).outcome).toBe('unchanged');
    expect(applied).toHaveLength(0);
    expect(source.current()).toBe(initial);
  });

  it('a broken new set keeps the old one, and logs why at error level with the path', async () => {
    const file = join(dir, 'roots.pem');
    writeFileSync(file, a.root.certPem);
    const initial = trustAnchorSet([a.root.cert]);
    const { source, applied, outcomes, log } = sourceFor(file, initial);
    writeFileSync(file, a.root.certPem + '-----BEGIN CERTIFICATE-----\nMIIB');
    const r = await source.reload('SIGHUP');
    expect(r.outcome).toBe('rejected');
    expect(r.reason).toMatch(/without an END/);
    expect(applied).toHaveLength(0);
    expect(source.current()).toBe(initial);
    expect(outcomes).toEqual(['rejected']);
    const err = log.lines.find((l) => l.level === 'error');
    expect(err?.obj).toMatchObject({ path: file, trigger: 'SIGHUP', reason: expect.stringMatching(/without an END/) });
    // A missing file too: the old set stays.
    rmSync(file);
    expect((await source.reload('SIGHUP')).outcome).toBe('rejected');
    expect(source.current()).toBe(initial);
  });

  it('reloads that overlap run one after the other, the last one reading the latest files', async () => {
    const file = join(dir, 'roots.pem');
    writeFileSync(file, a.root.certPem);
    const { source, applied } = sourceFor(file, trustAnchorSet([a.root.cert]));
    writeFileSync(file, b.root.certPem);
    const first = source.reload('SIGHUP');
    const second = source.reload('SIGHUP');
    const third = source.reload('SIGHUP');
    expect(third).toBe(second);
    await Promise.all([first, second]);
    expect(applied).toHaveLength(1);
  });

  it('a reload of a folder of 150 roots never holds the event loop for long', async () => {
    for (let i = 0; i < 150; i++) writeFileSync(join(dir, `root-${String(i).padStart(3, '0')}.pem`), i % 2 === 0 ? a.root.certPem : b.root.certPem);
    // Files are parsed one a turn; the swap (a chain judge over every root) is one piece, about a
    // tenth of the reload's CPU time (15 ms on a fast machine). Read and parsed in one piece, the
    // folder holds the event loop for most of it (55 ms on a fast machine). The bound follows the
    // machine: 30 ms, or 30 % of the reload's own CPU time when that is more, judged on the calmest
    // of three reloads (see calmestStallWithin). Each run reloads from the same first set into a
    // cache of its own, so each is the same work, swap included.
    const { stall, bound } = await calmestStallWithin(30, 0.3, 3, async () => {
      const cache = new CertCache({ fetcher: mapFetcher({}), trustAnchors: [a.root.cert] });
      const applied: number[] = [];
      const { source } = sourceFor(dir, trustAnchorSet([a.root.cert]), { apply: (set) => void applied.push(cache.setTrustAnchors(set.certs) ?? set.certs.length) });
      try {
        expect((await source.reload('SIGHUP')).count).toBe(150);
        expect(applied).toHaveLength(1);
      } finally {
        cache.close();
      }
    });
    expect(stall).toBeLessThan(bound);
  }, 30_000);

  it('reloads when the file is replaced (fs.watch, debounced)', async () => {
    const file = join(dir, 'roots.pem');
    writeFileSync(file, a.root.certPem);
    const { source, applied } = sourceFor(file, trustAnchorSet([a.root.cert]), { watch: true, debounceMs: 50 });
    await source.start();
    try {
      // As editors and ConfigMaps do it: a new file renamed into place.
      writeFileSync(join(dir, 'roots.pem.tmp'), b.root.certPem);
      renameSync(join(dir, 'roots.pem.tmp'), file);
      await until(() => applied.length === 1);
      expect(source.current().certs[0]!.fingerprint256).toBe(b.root.cert.fingerprint256);
    } finally {
      source.close();
    }
  });

  it('reloads when a file is added to the folder (fs.watch)', async () => {
    writeFileSync(join(dir, 'a.pem'), a.root.certPem);
    const { source, applied } = sourceFor(dir, trustAnchorSet([a.root.cert]), { watch: true, debounceMs: 50 });
    await source.start();
    try {
      writeFileSync(join(dir, 'b.pem'), b.root.certPem);
      await until(() => applied.length === 1);
      expect(source.current().certs).toHaveLength(2);
    } finally {
      source.close();
    }
  });

  it('without fs.watch, the periodic stat finds the change', async () => {
    const file = join(dir, 'roots.pem');
    writeFileSync(file, a.root.certPem);
    const { source, applied, log } = sourceFor(file, trustAnchorSet([a.root.cert]), { watch: false, pollMs: 40 });
    await source.start();
    try {
      writeFileSync(file, b.root.certPem + a.root.certPem);
      await until(() => applied.length === 1);
      expect(source.current().certs).toHaveLength(2);
      // No change, no reload: the poll reads stats only.
      await new Promise((r) => setTimeout(r, 200));
      expect(applied).toHaveLength(1);
      expect(log.lines.filter((l) => /re-read|reloaded|refused/.test(l.msg))).toHaveLength(1);
    } finally {
      source.close();
    }
  });
});

describe('TrustAnchorSource: anchors close to expiry', () => {
  it('warns about an anchor within 30 days of its end once a day, not on every look', async () => {
    const file = join(dir, 'roots.pem');
    writeFileSync(file, a.root.certPem);
    const end = Date.parse(a.root.cert.validTo);
    const clock = { t: end - 10 * 86_400_000 };
    const { source, log } = sourceFor(file, trustAnchorSet([a.root.cert]), { now: () => clock.t });
    const warnings = () => log.lines.filter((l) => l.level === 'warn' && /trust anchor/.test(l.msg));
    source.warnExpiring();
    source.warnExpiring();
    expect(warnings()).toHaveLength(1);
    expect(warnings()[0]!.obj).toMatchObject({ path: file, daysLeft: 10, subject: expect.stringContaining('Test STI-CA Root') });
    clock.t += 86_400_000;
    source.warnExpiring();
    expect(warnings()).toHaveLength(2);
  });

  it('says nothing about an anchor far from its end', () => {
    const { source, log } = sourceFor(join(dir, 'x.pem'), trustAnchorSet([a.root.cert]));
    source.warnExpiring();
    expect(log.lines).toHaveLength(0);
  });
});

function fakeRedis(): RedisLike {
  const store = new Map<string, string>();
  return {
    async get(key) {
      return store.get(key) ?? null;
    },
    async set(key, value) {
      store.set(key, value);
      return 'OK';
    },
  };
}

describe('CertCache.setTrustAnchors: chains judged under the old anchors are not reused', () => {
  const fetcher = () => mapFetcher({ [URL_A]: a.chainPem, [URL_B]: b.chainPem });
  const trusted = (r: Awaited<ReturnType<CertCache['get']>>) => r.ok && !r.info.errors.includes('CERT_UNTRUSTED');

  it('a chain trusted under the old anchors is untrusted right after a swap that removed its root', async () => {
    const cache = new CertCache({ fetcher: fetcher(), trustAnchors: [a.root.cert] });
    expect(trusted(await cache.get(URL_A))).toBe(true);
    expect(trusted(await cache.get(URL_B))).toBe(false);
    cache.setTrustAnchors([b.root.cert]);
    expect(cache.peek(URL_A)).toBeUndefined();
    expect(trusted(await cache.get(URL_A))).toBe(false);
    expect(trusted(await cache.get(URL_B))).toBe(true);
    cache.close();
  });

  it('a load begun under the old anchors answers its caller but is not stored', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const slow = { fetch: async () => (await gate, { body: a.chainPem }) };
    const cache = new CertCache({ fetcher: slow, trustAnchors: [a.root.cert] });
    const before = cache.get(URL_A);
    cache.setTrustAnchors([b.root.cert]);
    release();
    expect(trusted(await before)).toBe(true);
    expect(cache.peek(URL_A)).toBeUndefined();
    expect(trusted(await cache.get(URL_A))).toBe(false);
    cache.close();
  });

  it('Redis holds certificates, not judgements: an instance with the new anchors judges a shared chain afresh', async () => {
    const redis = fakeRedis();
    const old = new CertCache({ fetcher: fetcher(), trustAnchors: [a.root.cert], redis });
    expect(trusted(await old.get(URL_A))).toBe(true);
    await new Promise((r) => setImmediate(r));
    const noFetch = mapFetcher({});
    const renewed = new CertCache({ fetcher: noFetch, trustAnchors: [b.root.cert], redis });
    const r = await renewed.get(URL_A);
    expect(r.ok).toBe(true);
    expect(trusted(r)).toBe(false);
    expect(noFetch.calls).toHaveLength(0);
    old.close();
    renewed.close();
  });

  it('expiryStats counts trusted chains and the soonest end of their validity', async () => {
    const cache = new CertCache({ fetcher: fetcher(), trustAnchors: [a.root.cert] });
    await cache.get(URL_A);
    await cache.get(URL_B);
    const now = Date.now();
    const stats = cache.expiryStats(now, 7 * 86_400_000);
    expect(stats.trusted).toBe(1);
    expect(stats.soonestExpiryMs).toBe(Math.min(...[a.leaf, a.intermediate, a.root].map((c) => Date.parse(c.cert.validTo))));
    expect(stats.expiringSoon).toBe(0);
    expect(cache.expiryStats(now, stats.soonestExpiryMs! - now + 1).expiringSoon).toBe(1);
    cache.close();
  });
});

describe('calls scored while the anchors swap', () => {
  it('each call is judged under one set: a call signed under both roots always passes, whichever is in force', async () => {
    const verifier = createShakenVerifier({ trustAnchors: [a.root.cert], fetcher: mapFetcher({ [URL_A]: a.chainPem, [URL_B]: b.chainPem }) });
    const iat = Math.floor(Date.now() / 1000) + 60;
    const receivedAt = new Date(iat * 1000);
    // Under {A} the first PASSporT passes, under {B} the second; only a call that saw a mix of
    // the two sets (A's chain judged under B, B's under A) could fail.
    const header = [identity({ x5u: URL_A, key: a.leaf.key, iat }), identity({ x5u: URL_B, key: b.leaf.key, iat })];
    const results: string[] = [];
    const calls: Promise<void>[] = [];
    for (let i = 0; i < 300; i++) {
      calls.push(
        verifier
          .verify({ identity: header, origCandidates: ['442079460123'], dest: '447400123456', receivedAt })
          .then((v) => void results.push(`${v.verstat}:${v.errors.join(',')}`)),
      );
      if (i % 7 === 0) verifier.setTrustAnchors(i % 14 === 0 ? [b.root.cert] : [a.root.cert]);
      if (i % 25 === 0) await new Promise((r) => setImmediate(r));
    }
    await Promise.all(calls);
    expect(new Set(results)).toEqual(new Set(['TN-Validation-Passed:']));
    await verifier.close();
  });
});

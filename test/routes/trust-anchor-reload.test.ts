import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { build } from '../helpers/build';
import { identity, makePki, mapFetcher, type Pki } from '../shaken/helpers';

/**
 * SHAKEN_TRUST_ANCHORS changing under a running app: the reload SIGHUP calls, what /readyz and
 * /metrics say of the anchors, and calls scored while the set swaps. Two PKIs whose roots share
 * a name but not a key, as when an STI-CA rolls its root.
 */
const AT = new Date(Date.now() + 60_000).toISOString();
const IAT = Math.floor(Date.parse(AT) / 1000);
const CALLER = '+442079460123';
const CALLEE = '+447400123456';
const URL_A = 'https://certs.a.example/sp.pem';
const URL_B = 'https://certs.b.example/sp.pem';

let a: Pki;
let b: Pki;
let dir: string;
let anchorsFile: string;
let app: FastifyInstance;

beforeAll(async () => {
  a = makePki();
  b = makePki();
  dir = mkdtempSync(join(tmpdir(), 'callguard-anchors-app-'));
  anchorsFile = join(dir, 'roots.pem');
  writeFileSync(anchorsFile, a.root.certPem);
  app = await build(
    // The verdict cache stays on: a verdict cached under the old anchors must not outlive them.
    { SHAKEN_TRUST_ANCHORS: anchorsFile, LOG_LEVEL: 'silent' },
    { certFetcher: mapFetcher({ [URL_A]: a.chainPem, [URL_B]: b.chainPem }) },
  );
}, 60_000);
afterAll(async () => {
  await app?.close();
  a?.cleanup();
  b?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

let n = 0;
async function score(which: 'a' | 'b') {
  const pki = which === 'a' ? a : b;
  const body = {
    from: CALLER,
    to: CALLEE,
    callId: `anchors-${n++}`,
    receivedAt: AT,
    identity: identity({ x5u: which === 'a' ? URL_A : URL_B, key: pki.leaf.key, iat: IAT, orig: CALLER.slice(1), dest: [CALLEE.slice(1)] }),
  };
  return app.inject({ method: 'POST', url: '/v1/calls/score', payload: body });
}
const verstatOf = (res: { json(): unknown }) => (res.json() as { shaken: { verstat: string; errors: string[] } }).shaken;

async function metric(name: string): Promise<string | undefined> {
  const text = (await app.inject({ method: 'GET', url: '/metrics' })).body;
  return text.split('\n').find((l) => l.startsWith(name + ' ') || l.startsWith(name + '{'));
}

async function readyz() {
  const res = await app.inject({ method: 'GET', url: '/readyz' });
  expect(res.statusCode).toBe(200);
  return res.json() as { shaken: { trustAnchors: number; trustAnchorsFingerprint: string; trustAnchorsExpireAt: string | null } };
}

describe('trust anchors reloaded under a running app', () => {
  it('SIGHUP: a call signed under the new root passes and one under the old root fails; /readyz and /metrics follow', async () => {
    expect(verstatOf(await score('a')).verstat).toBe('TN-Validation-Passed');
    expect(verstatOf(await score('b')).errors).toContain('CERT_UNTRUSTED');
    const before = await readyz();
    expect(before.shaken.trustAnchors).toBe(1);
    expect(before.shaken.trustAnchorsExpireAt).toBe(new Date(a.root.cert.validTo).toISOString());
    expect(await metric('callguard_shaken_trust_anchors')).toBe('callguard_shaken_trust_anchors 1');

    // The very call that passed, asked again: the verdict cache must not answer it from the old anchors.
    const fixed = {
      from: CALLER,
      to: CALLEE,
      receivedAt: AT,
      identity: identity({ x5u: URL_A, key: a.leaf.key, iat: IAT, orig: CALLER.slice(1), dest: [CALLEE.slice(1)] }),
    };
    // (ECDSA signatures differ each time: the same call is the same signed header, made once.)
    const again = () => app.inject({ method: 'POST', url: '/v1/calls/score', payload: fixed });
    expect(verstatOf(await again()).verstat).toBe('TN-Validation-Passed');
    expect((await again()).json()).toMatchObject({ cached: true, shaken: { verstat: 'TN-Validation-Passed' } });

    writeFileSync(anchorsFile, b.root.certPem + a.intermediate.certPem);
    const result = await app.services.trustAnchors.reload('SIGHUP');
    expect(result).toMatchObject({ outcome: 'ok', count: 2 });

    expect(verstatOf(await score('b')).verstat).toBe('TN-Validation-Passed');
    // The intermediate of A is now an anchor, so A's leaf still chains; drop it too.
    writeFileSync(anchorsFile, b.root.certPem);
    expect((await app.services.trustAnchors.reload('SIGHUP')).outcome).toBe('ok');
    const old = verstatOf(await score('a'));
    expect(old.verstat).toBe('TN-Validation-Failed');
    expect(old.errors).toContain('CERT_UNTRUSTED');
    expect((await again()).json()).toMatchObject({ cached: false, shaken: { errors: ['CERT_UNTRUSTED'] } });

    const after = await readyz();
    expect(after.shaken.trustAnchors).toBe(1);
    expect(after.shaken.trustAnchorsFingerprint).not.toBe(before.shaken.trustAnchorsFingerprint);
    expect(await metric('callguard_shaken_trust_anchor_reloads_total{outcome="ok"}')).toBe('callguard_shaken_trust_anchor_reloads_total{outcome="ok"} 2');
    const expiry = Number((await metric('callguard_shaken_trust_anchor_expiry_seconds'))?.split(' ')[1]);
    expect(Math.abs(expiry - (Date.parse(b.root.cert.validTo) - Date.now()) / 1000)).toBeLessThan(60);
    // The swap forgot every judged chain; B's is judged (and cached) again on its next call.
    expect(await metric('callguard_shaken_cached_certs')).toBe('callguard_shaken_cached_certs 0');
    expect(verstatOf(await score('b')).verstat).toBe('TN-Validation-Passed');
    expect(await metric('callguard_shaken_cached_certs')).toBe('callguard_shaken_cached_certs 1');
    expect(await metric('callguard_shaken_cached_certs_expiring_soon')).toBe('callguard_shaken_cached_certs_expiring_soon 0');
    expect(Number((await metric('callguard_shaken_cached_cert_expiry_seconds'))?.split(' ')[1])).toBeGreaterThan(86_400);
  });

  it('a broken new set keeps the old one: calls go on as before, and the refusal is counted', async () => {
    const kept = await readyz();
    writeFileSync(anchorsFile, 'this is not a certificate');
    const result = await app.services.trustAnchors.reload('SIGHUP');
    expect(result.outcome).toBe('rejected');
    expect((await readyz()).shaken).toEqual(kept.shaken);
    expect(verstatOf(await score('b')).verstat).toBe('TN-Validation-Passed');
    expect(await metric('callguard_shaken_trust_anchor_reloads_total{outcome="rejected"}')).toBe('callguard_shaken_trust_anchor_reloads_total{outcome="rejected"} 1');
    writeFileSync(anchorsFile, b.root.certPem);
  });

  it('calls scored while the set swaps back and forth: every answer is a 200 consistent with one set', async () => {
    const answers: Promise<{ statusCode: number; json(): unknown }>[] = [];
    const swaps: Promise<unknown>[] = [];
    for (let i = 0; i < 200; i++) {
      answers.push(score(i % 2 === 0 ? 'a' : 'b'));
      if (i % 20 === 0) {
        writeFileSync(anchorsFile, (i / 20) % 2 === 0 ? a.root.certPem : b.root.certPem);
        swaps.push(app.services.trustAnchors.reload('SIGHUP'));
        await new Promise((r) => setImmediate(r));
      }
    }
    const results = await Promise.all(answers);
    await Promise.all(swaps);
    for (const res of results) {
      expect(res.statusCode).toBe(200);
      const s = verstatOf(res);
      // Trusted under the set in force, or untrusted and nothing else wrong.
      if (s.verstat !== 'TN-Validation-Passed') expect(s.errors).toEqual(['CERT_UNTRUSTED']);
    }
    writeFileSync(anchorsFile, b.root.certPem);
    await app.services.trustAnchors.reload('SIGHUP');
  });
});

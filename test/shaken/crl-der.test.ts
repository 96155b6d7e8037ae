import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { DerError, parseCrl, serialKey } from '../../src/shaken';
import { buildCrl, manySerials, tlv } from './crl-builder';
import { VECTORS_DIR } from './helpers';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The CRL reader on hostile bytes: strict, and linear in what it is given. */
const issuer = new X509Certificate(readFileSync(join(VECTORS_DIR, 'certs', 'root.pem')));
const { privateKey: key } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const NOW = Date.parse('2026-12-01T12:00:00Z');
const good = () => buildCrl({ issuer, key, revoked: ['03E9', '00FF'], thisUpdateMs: NOW, nextUpdateMs: NOW + 3_600_000 });

describe('parseCrl', () => {
  it('reads dates, algorithm and serials (normalised: upper case, no leading zeros)', () => {
    const crl = parseCrl(good());
    expect(crl.thisUpdateMs).toBe(NOW);
    expect(crl.nextUpdateMs).toBe(NOW + 3_600_000);
    expect(crl.digest).toBe('sha256');
    expect([...crl.revoked].sort()).toEqual(['3E9', 'FF']);
    expect(crl.revoked.has(serialKey('03e9'))).toBe(true);
  });

  it.each([
    ['truncated', (d: Buffer) => d.subarray(0, d.length - 5)],
    ['trailing bytes', (d: Buffer) => Buffer.concat([d, Buffer.from([0])])],
    ['indefinite length (BER)', (d: Buffer) => Buffer.concat([Buffer.from([0x30, 0x80]), d.subarray(d[1]! & 0x80 ? 2 + (d[1]! & 0x7f) : 2), Buffer.from([0, 0])])],
    ['not a SEQUENCE', (d: Buffer) => Buffer.concat([Buffer.from([0x31]), d.subarray(1)])],
    ['empty', () => Buffer.alloc(0)],
    ['a lone SEQUENCE', () => tlv(0x30)],
  ])('refuses %s with a DerError', (_what, mangle) => {
    expect(() => parseCrl(mangle(good()))).toThrow(DerError);
  });

  it('refuses a serial longer than RFC 5280 allows', () => {
    expect(() => parseCrl(buildCrl({ issuer, key, revoked: ['01'.repeat(22)], thisUpdateMs: NOW, nextUpdateMs: NOW + 1 }))).toThrow(/serial/);
  });

  it('refuses a nextUpdate before thisUpdate', () => {
    expect(() => parseCrl(buildCrl({ issuer, key, thisUpdateMs: NOW, nextUpdateMs: NOW - 1000 }))).toThrow(/nextUpdate/);
  });

  it('reads a CRL at the size cap (about ten thousand serials) in time that grows with its size, not faster', () => {
    const big = buildCrl({ issuer, key, revoked: manySerials(11_000), thisUpdateMs: NOW, nextUpdateMs: NOW + 1 });
    const small = buildCrl({ issuer, key, revoked: manySerials(1_100), thisUpdateMs: NOW, nextUpdateMs: NOW + 1 });
    expect(big.length).toBeLessThan(256 * 1024);
    expect(parseCrl(big).revoked.size).toBe(11_000);
    // Ten times the serials: about ten times the time when each serial costs the same (11-12 here),
    // a hundred when each costs in proportion to those before it. Ratios of the quickest of five
    // runs each, so that a busy machine (whose speed is not what is tested) weighs on both alike.
    const quickest = (der: Buffer) => {
      let best = Infinity;
      for (let i = 0; i < 5; i++) {
        const started = performance.now();
        parseCrl(der);
        best = Math.min(best, performance.now() - started);
      }
      return best;
    };
    expect(quickest(big) / quickest(small)).toBeLessThan(30);
  });
});

import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { CertificateFetcher } from '../../src/shaken';
import { build } from '../helpers/build';
import { sleep } from '../../scripts/lib/process';
import { forgeCert, rsaHugeExponentKeyPair, tnAuthList, type SigAlg } from './forge';
import { identity } from './helpers';

/**
 * A real listening server, hostile calls in flight: each names its own x5u, answered with
 * certificates made to be expensive to judge (mutually issuing CAs, RSA keys with 3072-bit
 * exponents). Liveness must not wait for them. The bound is generous on purpose: this is not a
 * speed measurement (bench/shaken-worst-case.ts is), only "the event loop was not held".
 */

interface Pair {
  privateKey: KeyObject;
  publicKey: KeyObject;
}
const p256 = (): Pair => generateKeyPairSync('ec', { namedCurve: 'P-256' });
const SPC = tnAuthList([{ spc: '1234' }]);
const leafKey = p256();

function mesh(caKey: Pair, cas: number, alg: SigAlg): string {
  const name = `Mesh ${Math.random()}`;
  let pem = forgeCert({ subject: 'Leaf', issuer: name, publicKey: leafKey.publicKey, ca: false, tnAuthList: SPC, signWith: { key: caKey.privateKey, alg } }).pem;
  for (let i = 0; i < cas; i++) pem += forgeCert({ subject: name, issuer: name, publicKey: caKey.publicKey, ca: true, signWith: { key: caKey.privateKey, alg } }).pem;
  return pem;
}

let app: FastifyInstance;
let base: string;
const bodies: string[] = [];

beforeAll(async () => {
  const hugeE = rsaHugeExponentKeyPair(3072);
  for (let i = 0; i < 20; i++) bodies.push(i % 2 === 0 ? mesh(p256(), 7, 'ecdsa-sha256') : mesh(hugeE, 3, 'rsa-sha256'));
  const fetcher: CertificateFetcher = {
    async fetch(url) {
      const n = Number(/\/(\d+)\.pem$/.exec(url)?.[1] ?? 0);
      return { body: bodies[n % bodies.length]! };
    },
  };
  app = await build({}, { certFetcher: fetcher });
  await app.listen({ port: 0, host: '127.0.0.1' });
  base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
});
afterAll(() => app.close());

it('/healthz answers promptly while hostile calls are being verified', async () => {
  const iat = Math.floor(Date.now() / 1000);
  const hostile = Array.from({ length: 40 }, (_, i) =>
    fetch(`${base}/v1/calls/score`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        from: '+442079460123',
        to: '+447400123456',
        identity: [0, 1, 2, 3].map((k) => identity({ x5u: `https://cr${i}.evil.example/${i * 4 + k}.pem`, key: leafKey.privateKey, iat })),
      }),
    }).then((r) => r.status),
  );
  // Let the hostile requests arrive first.
  await sleep(20);
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    const res = await fetch(`${base}/healthz`);
    expect(res.status).toBe(200);
    times.push(performance.now() - t0);
    await sleep(10);
  }
  expect(Math.max(...times)).toBeLessThan(1000);
  expect((await Promise.all(hostile)).every((s) => s === 200)).toBe(true);
}, 60_000);

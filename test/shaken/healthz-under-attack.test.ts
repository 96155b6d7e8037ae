import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { CertificateFetcher } from '../../src/shaken';
import { build } from '../helpers/build';
import { forgeCert, rsaHugeExponentKeyPair, tnAuthList, type SigAlg } from './forge';
import { identity } from './helpers';

/**
 * A real listening server, hostile calls in flight: each names its own x5u, answered with
 * certificates made to be expensive to judge (mutually issuing CAs, RSA keys with 3072-bit
 * exponents). Liveness must not wait for them. This is not a speed measurement
 * (bench/shaken-worst-case.ts is), only "the event loop was not held": /healthz, asked while 40
 * such calls are being answered, waits behind their work, and that wait is held to what the
 * same burst of ordinary calls (a leaf and its CA) costs it on this machine, five times over, or
 * 1 s when that is more. A wall-clock bound alone guessed at the machine's speed.
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
/** What the x5u URLs of a burst are answered with: ordinary chains (a first burst, to warm up, and a second), or hostile ones; each burst's certificates are its own, judged afresh. */
const bodies: Record<'warmup' | 'ordinary' | 'hostile', string[]> = { warmup: [], ordinary: [], hostile: [] };

beforeAll(async () => {
  const hugeE = rsaHugeExponentKeyPair(3072);
  for (let i = 0; i < 20; i++) {
    bodies.hostile.push(i % 2 === 0 ? mesh(p256(), 7, 'ecdsa-sha256') : mesh(hugeE, 3, 'rsa-sha256'));
    bodies.warmup.push(mesh(p256(), 1, 'ecdsa-sha256'));
    bodies.ordinary.push(mesh(p256(), 1, 'ecdsa-sha256'));
  }
  const fetcher: CertificateFetcher = {
    async fetch(url) {
      const [, kind, n] = /\/(warmup|ordinary|hostile)\/(\d+)\.pem$/.exec(url) ?? [];
      const served = bodies[(kind ?? 'hostile') as keyof typeof bodies];
      return { body: served[Number(n ?? 0) % served.length]! };
    },
  };
  app = await build({}, { certFetcher: fetcher });
  await app.listen({ port: 0, host: '127.0.0.1' });
  base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
});
afterAll(() => app.close());

/** The longest /healthz took while a burst of 40 calls of `kind` is answered; every call answered 200. */
async function healthzDuring(kind: keyof typeof bodies): Promise<number> {
  const iat = Math.floor(Date.now() / 1000);
  const calls = Array.from({ length: 40 }, (_, i) =>
    fetch(`${base}/v1/calls/score`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        from: '+442079460123',
        to: '+447400123456',
        identity: [0, 1, 2, 3].map((k) => identity({ x5u: `https://cr${i}.${kind}.example/${kind}/${i * 4 + k}.pem`, key: leafKey.privateKey, iat })),
      }),
    }).then((r) => r.status),
  );
  let answered = false;
  const statuses = Promise.all(calls).finally(() => (answered = true));
  // /healthz, asked behind the calls, one probe after another until every call is answered: no
  // stretch of their work falls outside a probe.
  const times: number[] = [];
  while (!answered || times.length < 5) {
    const t0 = performance.now();
    const res = await fetch(`${base}/healthz`);
    expect(res.status).toBe(200);
    times.push(performance.now() - t0);
  }
  expect((await statuses).every((s) => s === 200)).toBe(true);
  return Math.max(...times);
}

it('/healthz answers promptly while hostile calls are being verified', async () => {
  // A first burst bears the warming up of the code every burst takes (some 150 ms of it).
  await healthzDuring('warmup');
  const ordinary = await healthzDuring('ordinary');
  const hostile = await healthzDuring('hostile');
  expect(hostile).toBeLessThan(Math.max(1000, 5 * ordinary));
}, 60_000);

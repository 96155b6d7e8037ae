/**
 * What the worst STIR/SHAKEN input we can build costs the service: CPU per call and the longest
 * event-loop stall. Run: npx tsx bench/shaken-worst-case.ts [calls per scenario, default 20]
 *
 * Every scenario is an attacker's call: Identity values signed with a key they hold, x5u URLs
 * of their choice served by a local HTTP server (in a child process, so that serving costs are
 * not counted), certificates they made to be as expensive as possible to judge:
 *  - mesh: CA certificates that all share one key and one name, so each one "issues" every
 *    other one and a path search tries every ordering;
 *  - huge-e RSA: an RSA key whose public exponent is as long as its modulus (OpenSSL accepts
 *    that up to 3072 bits), which makes one signature check cost about 70 ES256 checks;
 *  - big RSA: 16384-bit moduli with random signatures of the right length;
 *  - long chains, many Identity values per call, many distinct URLs and distinct answers.
 * Each scenario runs against a fresh verifier (cold caches) through the real x5u fetcher in lab
 * mode (allowInsecure: http on 127.0.0.1), calls one after another, each awaited.
 */
import '../src/ops/thread-pool';
import { spawn } from 'node:child_process';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { X509Certificate } from 'node:crypto';
import { createShakenVerifier, createX5uFetcher, type ShakenVerification } from '../src/shaken';
import { identity } from '../test/shaken/helpers';
import { forgeCert, rsaHugeExponentKeyPair, rsaPublicKey, tnAuthList, type SigAlg } from '../test/shaken/forge';

const CALLS = Number(process.argv[2] ?? 20);
const FROM = '+442079460123';
const TO = '+447400123456';

const ec = (curve: 'P-256' | 'P-384') => generateKeyPairSync('ec', { namedCurve: curve });
const SPC = tnAuthList([{ spc: '1234' }]);

interface Pair {
  privateKey: KeyObject;
  publicKey: KeyObject;
}
const algOf = (k: Pair): SigAlg => (k.publicKey.asymmetricKeyType === 'rsa' ? 'rsa-sha256' : k.publicKey.asymmetricKeyDetails?.namedCurve === 'secp384r1' ? 'ecdsa-sha384' : 'ecdsa-sha256');

/** A P-256 leaf (its key signs the PASSporTs) under `issuer`, then `size - 1` CA certificates that all issue one another. */
function mesh(caKey: Pair, size: number, leafKey: Pair): string {
  const name = `Mesh ${Math.random()}`;
  const alg = algOf(caKey);
  let pem = forgeCert({ subject: 'Leaf', issuer: name, publicKey: leafKey.publicKey, ca: false, tnAuthList: SPC, signWith: { key: caKey.privateKey, alg } }).pem;
  for (let i = 1; i < size; i++) pem += forgeCert({ subject: name, issuer: name, publicKey: caKey.publicKey, ca: true, signWith: { key: caKey.privateKey, alg } }).pem;
  return pem;
}

/** A leaf with a 2048-byte RSA "signature" and `size - 1` self-signed 16384-bit RSA CA certificates of the leaf's issuer name. */
function bigRsa(size: number, leafKey: Pair): string {
  const name = `Big ${Math.random()}`;
  let pem = forgeCert({ subject: 'Leaf', issuer: name, publicKey: leafKey.publicKey, ca: false, tnAuthList: SPC, signWith: { alg: 'rsa-sha256', bytes: 2048 } }).pem;
  for (let i = 1; i < size; i++) pem += forgeCert({ subject: name, issuer: name, publicKey: rsaPublicKey(16384), ca: true, signWith: { alg: 'rsa-sha256', bytes: 2048 } }).pem;
  return pem;
}

/** leaf <- c1 <- ... <- c(size-1): a valid chain that ends nowhere trusted. */
function longChain(size: number, leafKey: Pair): string {
  const keys = Array.from({ length: size - 1 }, () => ec('P-256'));
  let pem = forgeCert({ subject: 'Leaf', issuer: 'C1', publicKey: leafKey.publicKey, ca: false, tnAuthList: SPC, signWith: { key: keys[0]!.privateKey, alg: 'ecdsa-sha256' } }).pem;
  for (let i = 1; i < size; i++) {
    const signer = keys[Math.min(i, size - 2)]!;
    pem += forgeCert({ subject: `C${i}`, issuer: i === size - 1 ? `C${i}` : `C${i + 1}`, publicKey: keys[i - 1]!.publicKey, ca: true, signWith: { key: signer.privateKey, alg: 'ecdsa-sha256' } }).pem;
  }
  return pem;
}

const SERVER = `
const http = require('node:http'); const fs = require('node:fs'); const path = require('node:path');
const dir = process.argv[1];
const s = http.createServer((req, res) => {
  const m = /^\\/x\\/([\\w-]+)\\//.exec(req.url || '');
  if (!m) { res.statusCode = 404; return res.end(); }
  fs.readFile(path.join(dir, m[1] + '.pem'), (err, body) => { if (err) { res.statusCode = 404; return res.end(); } res.end(body); });
});
s.keepAliveTimeout = 1; s.listen(0, '127.0.0.1', () => console.log(s.address().port));`;

async function startServer(dir: string): Promise<{ base: string; stop: () => void }> {
  const child = spawn(process.execPath, ['-e', SERVER, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<string>((resolve) => child.stdout.once('data', (d: Buffer) => resolve(d.toString().trim())));
  return { base: `http://127.0.0.1:${port}`, stop: () => child.kill() };
}

interface Scenario {
  name: string;
  /** Identity header values of call number i (URLs distinct per call unless the scenario says otherwise). */
  identities: (i: number) => string[];
  calls?: number;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'callguard-worst-'));
  const server = await startServer(dir);
  const t0 = Date.now();
  const leafKey = ec('P-256');
  const root = ec('P-256');
  const rootCert = new X509Certificate(forgeCert({ subject: 'Bench Root', issuer: 'Bench Root', publicKey: root.publicKey, ca: true, signWith: { key: root.privateKey, alg: 'ecdsa-sha256' } }).pem);
  const intKey = ec('P-256');
  const honest =
    forgeCert({ subject: 'Honest Leaf', issuer: 'Bench Int', publicKey: leafKey.publicKey, ca: false, tnAuthList: SPC, signWith: { key: intKey.privateKey, alg: 'ecdsa-sha256' } }).pem +
    forgeCert({ subject: 'Bench Int', issuer: 'Bench Root', publicKey: intKey.publicKey, ca: true, signWith: { key: root.privateKey, alg: 'ecdsa-sha256' } }).pem;
  const write = (name: string, pem: string) => writeFileSync(join(dir, `${name}.pem`), pem);
  write('honest', honest);
  const hugeE = rsaHugeExponentKeyPair(3072);
  const p256 = ec('P-256');
  const p384 = ec('P-384');
  write('mesh-p256-8', mesh(p256, 8, leafKey));
  write('mesh-huge-e-4', mesh(hugeE, 4, leafKey));
  write('mesh-huge-e-8', mesh(hugeE, 8, leafKey));
  write('big-rsa-8', bigRsa(8, leafKey));
  write('long-chain-8', longChain(8, leafKey));
  const DISTINCT = Math.max(CALLS, 10) * 10;
  for (let i = 0; i < DISTINCT; i++) write(`mesh-p384-4-${i}`, mesh(p384, 4, leafKey));
  for (let i = 0; i < DISTINCT; i++) write(`mesh-p256-4-${i}`, mesh(ec('P-256'), 4, leafKey));
  for (let i = 0; i < DISTINCT; i++) write(`mesh-huge-e-4-${i}`, mesh(hugeE, 4, leafKey));
  console.log(`node ${process.version}; inputs made in ${Date.now() - t0} ms; ${CALLS} calls per scenario unless noted\n`);

  let nonce = 0;
  const url = (name: string) => `${server.base}/x/${name}/${nonce++}.pem`;
  const iat = () => Math.floor(Date.now() / 1000);
  const id = (x5u: string) => identity({ x5u, key: leafKey.privateKey, iat: iat(), orig: FROM.slice(1), dest: [TO.slice(1)] });
  let distinct = 0;

  const scenarios: Scenario[] = [
    { name: 'honest chain, cold (reference)', identities: () => [id(url('honest'))] },
    { name: 'leaf + 7 mesh CAs (P-256)', identities: () => [id(url('mesh-p256-8'))] },
    { name: 'leaf + 3 mesh CAs (RSA-3072, huge e)', identities: () => [id(url('mesh-huge-e-4'))] },
    { name: 'leaf + 7 mesh CAs (RSA-3072, huge e)', identities: () => [id(url('mesh-huge-e-8'))], calls: 1 },
    { name: 'leaf + 7 self-signed RSA-16384', identities: () => [id(url('big-rsa-8'))] },
    { name: 'chain of 8, untrusted (P-256)', identities: () => [id(url('long-chain-8'))] },
    { name: '10 Identity values, one answer (P-256 mesh of 8)', identities: () => Array.from({ length: 10 }, () => id(url('mesh-p256-8'))) },
    { name: '10 Identity values, distinct P-256 meshes of 4', identities: () => Array.from({ length: 10 }, () => id(url(`mesh-p256-4-${distinct++ % DISTINCT}`))) },
    { name: '10 Identity values, distinct P-384 meshes of 4', identities: () => Array.from({ length: 10 }, () => id(url(`mesh-p384-4-${distinct++ % DISTINCT}`))) },
    { name: '10 Identity values, distinct huge-e meshes of 4', identities: () => Array.from({ length: 10 }, () => id(url(`mesh-huge-e-4-${distinct++ % DISTINCT}`))) },
  ];

  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  console.log(`${'scenario'.padEnd(52)} ${'calls'.padStart(5)} ${'CPU µs/call'.padStart(12)} ${'max µs'.padStart(9)} ${'max loop delay ms'.padStart(18)}  first result`);
  for (const s of scenarios) {
    const verifier = createShakenVerifier({
      trustAnchors: [rootCert],
      fetcher: createX5uFetcher({ allowInsecure: true }),
      allowInsecure: true,
      // Long enough that each call includes the judging of its certificates.
      fetchTimeoutMs: 120_000,
    });
    // Warm the code paths (not the caches: every call below uses new URLs).
    await verifier.verify({ identity: id(url('honest')), origCandidates: [FROM], dest: TO, receivedAt: new Date() });
    const calls = s.calls ?? CALLS;
    let total = 0;
    let worst = 0;
    let first: ShakenVerification | undefined;
    h.reset();
    for (let i = 0; i < calls; i++) {
      const input = { identity: s.identities(i), origCandidates: [FROM], dest: TO, receivedAt: new Date() };
      const c0 = process.cpuUsage();
      const r = await verifier.verify(input);
      const c = process.cpuUsage(c0);
      const us = c.user + c.system;
      total += us;
      worst = Math.max(worst, us);
      first ??= r;
    }
    const delayMs = h.max / 1e6;
    console.log(
      `${s.name.padEnd(52)} ${String(calls).padStart(5)} ${Math.round(total / calls).toLocaleString('en-GB').padStart(12)} ${Math.round(worst).toLocaleString('en-GB').padStart(9)} ${delayMs.toFixed(1).padStart(18)}  ${first!.verstat} ${first!.errors.join(',')}`,
    );
    await verifier.close();
  }
  h.disable();
  server.stop();
  rmSync(dir, { recursive: true, force: true });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});

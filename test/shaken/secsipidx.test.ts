import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { build } from '../helpers/build';
import { bearer, KEYS_FILE } from '../helpers/keys';
import { PassportSigner } from '../../src/shaken';
import { makePki, type Pki } from './helpers';
import { startServer, type TestServer } from './server';

/**
 * Interoperability: PASSporTs from POST /stir/v1/signing checked by another implementation,
 * secsipidx (Go, Kamailio's secsipid library), which fetches the x5u chain itself and verifies
 * it against the test root. Skipped when secsipidx is not installed, unless REQUIRE_SECSIPIDX=1
 * (CI), where its absence fails.
 */

// `-version` exits 1; only a missing binary is an error.
const installed = spawnSync('secsipidx', ['-version'], { stdio: 'ignore' }).error === undefined;
const required = process.env.REQUIRE_SECSIPIDX === '1';
if (!installed && !required) {
  console.warn('secsipidx is not installed: the signing interoperability test is skipped (apt-get install secsipidx; REQUIRE_SECSIPIDX=1 makes this a failure)');
}
const describeIf = installed || required ? describe : describe.skip;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

async function untilListening(url: string, deadlineMs: number): Promise<void> {
  for (;;) {
    try {
      await fetch(url, { method: 'POST', body: '' });
      return;
    } catch (err) {
      if (Date.now() > deadlineMs) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

describeIf('secsipidx checks the PASSporTs signed here', () => {
  let pki: Pki;
  /** A PKI under another root, not in secsipidx's -ca-file. */
  let stranger: Pki;
  let certs: TestServer;
  let app: FastifyInstance;
  let secsipidx: ChildProcess;
  let checkUrl: string;
  let output = '';

  beforeAll(async () => {
    expect(installed).toBe(true);
    pki = makePki();
    stranger = makePki();
    certs = await startServer({
      '/stranger.pem': (_req, res) => res.end(stranger.chainPem),
      '/sp.pem': (_req, res) => {
        res.setHeader('content-type', 'application/x-pem-file');
        res.end(pki.chainPem);
      },
    });
    app = await build({
      API_KEYS_FILE: KEYS_FILE,
      SHAKEN_SIGNING_KEY: join(pki.dir, 'leaf.key'),
      SHAKEN_SIGNING_CERT: join(pki.dir, 'leaf.crt'),
      SHAKEN_SIGNING_X5U: `${certs.url}/sp.pem`,
      // The chain is served from a local test server, over http.
      SHAKEN_X5U_ALLOW_INSECURE: 'true',
    });
    const port = await freePort();
    checkUrl = `http://127.0.0.1:${port}/v1/check`;
    // -cert-verify 5: the certificate's validity period (1) and a chain to the roots of -ca-file (4);
    // the intermediate comes with the leaf from the x5u.
    secsipidx = spawn('secsipidx', ['-http-srv', `127.0.0.1:${port}`, '-ca-file', join(pki.dir, 'root.crt'), '-cert-verify', '5', '-expire', '300', '-timeout', '3'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    secsipidx.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    secsipidx.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    await untilListening(checkUrl, Date.now() + 5000);
  });

  afterAll(async () => {
    secsipidx?.kill();
    await app?.close();
    await certs?.close();
    pki?.cleanup();
    stranger?.cleanup();
  });

  const signed = async (attest: string) => {
    const res = await app.inject({
      method: 'POST',
      url: '/stir/v1/signing',
      headers: bearer('switch'),
      payload: { signingRequest: { orig: { tn: '+442079460123' }, dest: { tn: ['447400123456'] }, attest } },
    });
    expect(res.statusCode).toBe(200);
    return res.json<{ signingResponse: { identity: string } }>().signingResponse.identity;
  };
  const check = async (identity: string) => {
    const res = await fetch(checkUrl, { method: 'POST', body: identity });
    return { status: res.status, body: (await res.text()).trim() };
  };

  it.each(['A', 'B', 'C'])('attestation %s: OK, with the chain fetched from x5u', async (attest) => {
    const hitsBefore = certs.hits.length;
    const answer = await check(await signed(attest));
    expect({ ...answer, output: answer.status === 200 ? '' : output }).toEqual({ status: 200, body: 'OK', output: '' });
    expect(certs.hits.length).toBeGreaterThan(hitsBefore);
  });

  it('refuses a tampered PASSporT (so the check above can fail)', async () => {
    const identity = await signed('A');
    const [header, payload, rest] = identity.split('.');
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as { orig: { tn: string } };
    claims.orig.tn = '442079460999';
    const tampered = `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${rest}`;
    expect(await check(tampered)).toMatchObject({ status: 500, body: 'FAILED' });
  });

  it('refuses a chain that does not lead to its -ca-file root (so the chain is checked)', async () => {
    const { identity } = new PassportSigner(stranger.leaf.key, `${certs.url}/stranger.pem`, Date.now).sign({ attest: 'A', orig: '442079460123', dest: ['447400123456'] });
    expect(await check(identity)).toMatchObject({ status: 500, body: 'FAILED' });
  });
});

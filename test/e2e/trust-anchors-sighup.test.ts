import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort, httpStatus, startChild, until, type Child } from '../../scripts/lib/process';
import { holdLogOutput } from '../helpers/log-lines';
import { identity, makePki, type Pki } from '../shaken/helpers';

/**
 * The real process: SHAKEN_TRUST_ANCHORS swapped on disk and SIGHUP sent. A call signed under
 * the new root passes, one under the old root fails, and the process keeps running. x5u
 * certificates come from a plain-HTTP server on loopback (SHAKEN_X5U_ALLOW_INSECURE, lab mode).
 */
const ROOT = resolve(__dirname, '../..');
const CALLER = '+442079460123';
const CALLEE = '+447400123456';

let a: Pki;
let b: Pki;
let dir: string;
let certs: Server;
let certsPort: number;

beforeAll(async () => {
  a = makePki();
  b = makePki();
  dir = mkdtempSync(join(tmpdir(), 'callguard-sighup-'));
  certs = createServer((req, res) => {
    const body = req.url === '/a.pem' ? a.chainPem : req.url === '/b.pem' ? b.chainPem : null;
    res.writeHead(body ? 200 : 404, { 'content-type': 'application/x-pem-file' }).end(body ?? '');
  });
  await new Promise<void>((r) => certs.listen(0, '127.0.0.1', r));
  certsPort = (certs.address() as { port: number }).port;
}, 60_000);
afterAll(async () => {
  await new Promise((r) => certs?.close(r));
  a?.cleanup();
  b?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

it('SIGHUP puts the anchors on disk in force: the new root passes, the old one fails, a broken file changes nothing', async () => {
  const anchors = join(dir, 'roots.pem');
  writeFileSync(anchors, a.root.certPem);
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  // Node itself with tsx as a loader, not the tsx wrapper: the wrapper relays SIGTERM and SIGINT but dies of SIGHUP.
  const server: Child = startChild(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: String(port),
      LOG_LEVEL: 'info',
      REGISTRY_DATA_DIR: mkdtempSync(join(tmpdir(), 'callguard-e2e-')),
      SHAKEN_TRUST_ANCHORS: anchors,
      SHAKEN_X5U_ALLOW_INSECURE: 'true',
      // A busy test machine's event-loop delay is not what this test is about.
      LOAD_SHED_EVENT_LOOP_DELAY_MS: '0',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // Its log lines are held to the logging rules after the test, like every app's (test/setup/log-lines.ts).
  void server.exited.then(() => holdLogOutput(server.output()));
  const score = async (pki: Pki, name: string) => {
    const iat = Math.floor(Date.now() / 1000) + 30;
    const res = await fetch(`${base}/v1/calls/score`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        from: CALLER,
        to: CALLEE,
        receivedAt: new Date(iat * 1000).toISOString(),
        identity: identity({ x5u: `http://127.0.0.1:${certsPort}/${name}.pem`, key: pki.leaf.key, iat, orig: CALLER.slice(1), dest: [CALLEE.slice(1)] }),
      }),
    });
    expect(res.status).toBe(200);
    return ((await res.json()) as { shaken: { verstat: string; errors: string[] } }).shaken;
  };
  const anchorCount = async () => ((await (await fetch(`${base}/readyz`)).json()) as { shaken: { trustAnchors: number; trustAnchorsFingerprint: string } }).shaken;
  try {
    await until(async () => (await httpStatus(`${base}/readyz`)) === 200, 20_000, 'readyz', 100);
    expect((await score(a, 'a')).verstat).toBe('TN-Validation-Passed');
    expect((await score(b, 'b')).errors).toContain('CERT_UNTRUSTED');
    const before = await anchorCount();

    writeFileSync(anchors, b.root.certPem);
    server.proc.kill('SIGHUP');
    await until(async () => (await anchorCount()).trustAnchorsFingerprint !== before.trustAnchorsFingerprint, 10_000, 'the new anchors', 50);
    // SIGHUP's reload, not the file watch's (debounced, it comes later and finds the set unchanged).
    expect(server.output()).toMatch(/"trigger":"SIGHUP"[^\n]*SHAKEN_TRUST_ANCHORS reloaded/);
    expect((await score(b, 'b')).verstat).toBe('TN-Validation-Passed');
    const old = await score(a, 'a');
    expect(old.verstat).toBe('TN-Validation-Failed');
    expect(old.errors).toContain('CERT_UNTRUSTED');

    // A broken file: refused with an error log, the set in force stays, the process lives on.
    const kept = await anchorCount();
    writeFileSync(anchors, 'not a certificate');
    server.proc.kill('SIGHUP');
    await until(() => /reload refused/.test(server.output()), 10_000, 'the refusal in the log', 50);
    expect(await anchorCount()).toEqual(kept);
    expect((await score(b, 'b')).verstat).toBe('TN-Validation-Passed');
    expect(server.output()).toMatch(/"level":50[^\n]*"path":"[^"]*roots\.pem"[^\n]*reload refused|reload refused[^\n]*"path":"[^"]*roots\.pem"/);
  } finally {
    server.proc.kill('SIGTERM');
  }
  expect(await server.exited).toBe(0);
}, 60_000);

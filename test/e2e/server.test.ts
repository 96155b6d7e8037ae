import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort, httpStatus, startChild, startRedisServer, until, type Child } from '../../scripts/lib/process';
import { KEYS_FILE, bearer } from '../helpers/keys';
import { holdLogOutput } from '../helpers/log-lines';

/** The real process, as `npm start` runs it (from source through tsx, to skip the build). */
const ROOT = resolve(__dirname, '../..');
const TSX = resolve(ROOT, 'node_modules/.bin/tsx');

/** Its log lines are held to the logging rules after the test, like every app's (test/setup/log-lines.ts). */
function start(env: Record<string, string>): Child {
  const child = startChild(TSX, ['src/server.ts'], {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: 'info', REGISTRY_DATA_DIR: mkdtempSync(join(tmpdir(), 'callguard-e2e-')), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  void child.exited.then(() => holdLogOutput(child.output()));
  return child;
}

const waitReady = (url: string) => until(async () => (await httpStatus(`${url}/readyz`)) === 200, 15_000, `${url}/readyz`, 100);

/** What a production start must say explicitly (see productionSafetyProblems). */
const PRODUCTION = { REGISTRY_FILE: resolve(ROOT, 'src/registry/sample-registry.json'), SHAKEN_VERIFY: 'false' };

const port = async () => String(await freePort());

describe('the real server process', () => {
  it('starts open on loopback, says so, scores over HTTP and stops cleanly on SIGTERM', async () => {
    const p = await port();
    const server = start({ PORT: p });
    try {
      await waitReady(`http://127.0.0.1:${p}`);
      expect(server.output()).toMatch(/running OPEN/);
      const res = await fetch(`http://127.0.0.1:${p}/v1/calls/score`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ from: '+443450000000', to: '07400 123456' }),
      });
      expect(res.status).toBe(200);
      expect(((await res.json()) as { verdict: string }).verdict).toBe("block");
      // Numbers are masked in the logs.
      expect(server.output()).not.toMatch(/3450000000/);
    } finally {
      server.proc.kill('SIGTERM');
    }
    expect(await server.exited).toBe(0);
  });

  it('refuses to start open on a non-loopback address', async () => {
    const server = start({ PORT: await port(), HOST: '0.0.0.0' });
    expect(await server.exited).toBe(2);
    expect(server.output()).toMatch(/refusing to start open/);
  });

  it('refuses it too when the key file lists no keys', async () => {
    const empty = join(mkdtempSync(join(tmpdir(), 'callguard-keys-')), 'keys.json');
    writeFileSync(empty, '[]');
    const server = start({ PORT: await port(), HOST: '0.0.0.0', API_KEYS_FILE: empty, ...PRODUCTION });
    expect(await server.exited).toBe(2);
    expect(server.output()).toMatch(/refusing to start open/);
  });

  it('starts on any address with API keys, and enforces them', async () => {
    const p = await port();
    const server = start({ PORT: p, HOST: '0.0.0.0', API_KEYS_FILE: KEYS_FILE, ...PRODUCTION });
    try {
      await waitReady(`http://127.0.0.1:${p}`);
      const body = JSON.stringify({ from: '+447400123456', to: '+442079460999' });
      const anon = await fetch(`http://127.0.0.1:${p}/v1/calls/score`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      expect(anon.status).toBe(401);
      const ok = await fetch(`http://127.0.0.1:${p}/v1/calls/score`, { method: 'POST', headers: { 'content-type': 'application/json', ...bearer('switch') }, body });
      expect(ok.status).toBe(200);
    } finally {
      server.proc.kill('SIGTERM');
    }
    expect(await server.exited).toBe(0);
  });

  it.each([
    [{ PORT: 'eighty' }, /PORT must be a whole number/],
    [{ REGISTRY_FILE: '/nonexistent/registry.json' }, /cannot read the file/],
    [{ API_KEYS_FILE: '/nonexistent/keys.json', ...PRODUCTION }, /API_KEYS_FILE/],
    // With API keys (production), PASSporT verification and the registry must be said explicitly.
    [{ API_KEYS_FILE: KEYS_FILE, REGISTRY_FILE: resolve(ROOT, 'src/registry/sample-registry.json') }, /SHAKEN_TRUST_ANCHORS is unset.*SHAKEN_VERIFY=false/],
    [{ API_KEYS_FILE: KEYS_FILE, SHAKEN_VERIFY: 'false' }, /REGISTRY_FILE is unset, so the fictional sample registry/],
  ])('stops with exit code 2 and a clear message on bad configuration %j', async (env, message) => {
    const server = start({ PORT: await port(), ...env });
    expect(await server.exited).toBe(2);
    expect(server.output()).toMatch(message);
  });
});

describe('two server processes sharing one Redis', () => {
  it('see one registry and count velocity across both', async () => {
    const redisPort = await freePort();
    const redis = await startRedisServer(redisPort);
    const [pa, pb] = [await port(), await port()];
    const env = { REDIS_URL: `redis://127.0.0.1:${redisPort}` };
    const a = start({ ...env, PORT: pa });
    const b = start({ ...env, PORT: pb });
    const post = (p: string, path: string, body: unknown, method = 'POST') =>
      fetch(`http://127.0.0.1:${p}${path}`, { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    try {
      await Promise.all([waitReady(`http://127.0.0.1:${pa}`), waitReady(`http://127.0.0.1:${pb}`)]);
      expect((await post(pa, '/v1/registry/numbers/+441614960888', { bankId: 'northwind', inboundOnly: true }, 'PUT')).status).toBe(201);
      await until(
        async () => ((await (await post(pb, '/v1/calls/score', { from: '+441614960888', to: '+447400123456' })).json()) as { verdict: string }).verdict === 'block',
        2000,
        'the registry change to reach the other process',
      );
      let codes: string[] = [];
      for (let i = 0; i < 25; i++) {
        const res = await post(i % 2 ? pa : pb, '/v1/calls/score', { from: '+447400999111', to: `+4474009${String(i).padStart(5, '0')}`, callId: `v${i}` });
        codes = ((await res.json()) as { reasons: { code: string }[] }).reasons.map((r) => r.code);
      }
      expect(codes).toContain('VELOCITY_HIGH');
    } finally {
      a.proc.kill('SIGTERM');
      b.proc.kill('SIGTERM');
      await Promise.all([a.exited, b.exited]);
      await redis.kill();
    }
  }, 40_000);
});

describe('graceful shutdown', () => {
  it('on SIGTERM finishes the request in flight, refuses new connections, and exits 0', async () => {
    const { request } = await import('node:http');
    const p = await port();
    const server = start({ PORT: p });
    await waitReady(`http://127.0.0.1:${p}`);
    const body = JSON.stringify({ from: '+443450000000', to: '+447400123456', callId: 'in-flight' });
    // Half a request on the wire when the signal arrives; the rest follows after it.
    const answer = new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: Number(p), path: '/v1/calls/score', method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      });
      req.on('error', reject);
      req.write(body.slice(0, 10));
      setTimeout(() => {
        server.proc.kill('SIGTERM');
        setTimeout(async () => {
          await expect(fetch(`http://127.0.0.1:${p}/healthz`)).rejects.toThrow();
          req.end(body.slice(10));
        }, 300);
      }, 200);
    });
    const { status, text } = await answer;
    expect(status).toBe(200);
    expect(JSON.parse(text)).toMatchObject({ callId: 'in-flight', verdict: 'block' });
    expect(await server.exited).toBe(0);
    expect(server.output()).toMatch(/shutting down/);
  });
});

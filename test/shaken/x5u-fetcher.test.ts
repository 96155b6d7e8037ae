import type { ServerResponse } from 'node:http';
import { createX5uFetcher, parseMaxAge, X5uFetchError, X5uPolicyError, type ResolvedAddress } from '../../src/shaken';
import { makePki, type Pki } from './helpers';
import { startServer, type TestServer } from './server';

let pki: Pki;
let server: TestServer;
let plain: TestServer;
const pendingTimers = new Set<NodeJS.Timeout>();

beforeAll(async () => {
  pki = makePki();
  const routes = {
    '/chain.pem': (_req: unknown, res: ServerResponse) => {
      res.setHeader('content-type', 'application/pem-certificate-chain');
      res.setHeader('cache-control', 'public, max-age=120');
      res.end(pki.chainPem);
    },
    '/redirect.pem': (_req: unknown, res: ServerResponse) => {
      res.statusCode = 302;
      res.setHeader('location', '/chain.pem');
      res.end();
    },
    '/big.pem': (_req: unknown, res: ServerResponse) => {
      res.end('x'.repeat(100 * 1024));
    },
    '/big-chunked.pem': (_req: unknown, res: ServerResponse) => {
      // No content-length: the cap has to hold while streaming.
      for (let i = 0; i < 100; i++) res.write('y'.repeat(1024));
      res.end();
    },
    '/slow.pem': (_req: unknown, res: ServerResponse) => {
      const t = setTimeout(() => res.end(pki.chainPem), 5000);
      pendingTimers.add(t);
    },
    '/error.pem': (_req: unknown, res: ServerResponse) => {
      res.statusCode = 500;
      res.end('oops');
    },
  };
  server = await startServer(routes, pki.tls);
  plain = await startServer(routes);
});

afterAll(async () => {
  for (const t of pendingTimers) clearTimeout(t);
  await server.close();
  await plain.close();
  pki.cleanup();
});

const lab = (extra: Parameters<typeof createX5uFetcher>[0] = {}) => createX5uFetcher({ allowInsecure: true, ca: pki.tls.certPem, ...extra });
const signal = (ms = 3000) => AbortSignal.timeout(ms);

describe('x5u fetcher against a local TLS server', () => {
  it('fetches leaf + intermediate over https and reads Cache-Control max-age', async () => {
    const r = await lab().fetch(`${server.url}/chain.pem`, signal());
    expect(r.body.toString()).toBe(pki.chainPem);
    expect(r.maxAgeS).toBe(120);
  });

  it('connects to the address it resolved and checked (pinned lookup, TLS still checks the name)', async () => {
    const seen: string[] = [];
    const resolve = async (host: string): Promise<ResolvedAddress[]> => {
      seen.push(host);
      return [{ address: '127.0.0.1', family: 4 }];
    };
    // certs.test does not exist in DNS: the request can only succeed through the pinned address.
    const r = await lab({ resolve }).fetch(`https://certs.test:${server.port}/chain.pem`, signal());
    expect(r.body.toString()).toBe(pki.chainPem);
    expect(seen).toEqual(['certs.test']);
  });

  it('refuses a TLS certificate it does not trust', async () => {
    await expect(createX5uFetcher({ allowInsecure: true }).fetch(`${server.url}/chain.pem`, signal())).rejects.toBeInstanceOf(X5uFetchError);
  });

  it('plain http only with allowInsecure', async () => {
    const r = await lab().fetch(`${plain.url}/chain.pem`, signal());
    expect(r.body.toString()).toBe(pki.chainPem);
    const before = plain.hits.length;
    await expect(createX5uFetcher().fetch(`${plain.url}/chain.pem`, signal())).rejects.toBeInstanceOf(X5uPolicyError);
    expect(plain.hits.length).toBe(before);
  });

  it('refuses redirects without following them', async () => {
    const before = server.hits.length;
    await expect(lab().fetch(`${server.url}/redirect.pem`, signal())).rejects.toThrow(/redirect \(302\) refused/);
    expect(server.hits.slice(before)).toEqual(['/redirect.pem']);
  });

  it('refuses oversize answers, declared or streamed', async () => {
    await expect(lab().fetch(`${server.url}/big.pem`, signal())).rejects.toThrow(/exceeds/);
    await expect(lab().fetch(`${server.url}/big-chunked.pem`, signal())).rejects.toThrow(/exceeds/);
    await expect(lab({ maxBytes: 200 * 1024 }).fetch(`${server.url}/big.pem`, signal())).resolves.toBeDefined();
  });

  it('gives up when the signal fires (slow server)', async () => {
    const t0 = Date.now();
    await expect(lab().fetch(`${server.url}/slow.pem`, signal(200))).rejects.toBeInstanceOf(X5uFetchError);
    expect(Date.now() - t0).toBeLessThan(1500);
  });

  it('non-200 answers and unknown hosts are fetch failures', async () => {
    await expect(lab().fetch(`${server.url}/error.pem`, signal())).rejects.toThrow(/HTTP 500/);
    await expect(lab().fetch(`${server.url}/missing.pem`, signal())).rejects.toThrow(/HTTP 404/);
    const resolve = async (): Promise<ResolvedAddress[]> => {
      throw new Error('ENOTFOUND');
    };
    await expect(lab({ resolve }).fetch('https://nowhere.example/x.pem', signal())).rejects.toBeInstanceOf(X5uFetchError);
  });
});

describe('x5u fetcher SSRF policy (not insecure)', () => {
  const strict = (resolve?: (h: string) => Promise<ResolvedAddress[]>) => createX5uFetcher({ ca: pki.tls.certPem, ...(resolve ? { resolve } : {}) });

  it.each([
    ['https://127.0.0.1:port', () => `${server.url}/chain.pem`],
    ['https://localhost:port', () => `https://localhost:${server.port}/chain.pem`],
    ['https://[::1]:port', () => `https://[::1]:${server.port}/chain.pem`],
    ['https://10.0.0.7', () => `https://10.0.0.7/chain.pem`],
    ['https://[::ffff:127.0.0.1]:port', () => `https://[::ffff:127.0.0.1]:${server.port}/chain.pem`],
    ['http://cr.example.net', () => `http://cr.example.net/chain.pem`],
    ['ftp://cr.example.net', () => `ftp://cr.example.net/chain.pem`],
  ])('refuses %s before any request', async (_name, url) => {
    const before = server.hits.length;
    await expect(strict().fetch(url(), signal())).rejects.toBeInstanceOf(X5uPolicyError);
    expect(server.hits.length).toBe(before);
  });

  it('refuses a name that resolves to loopback, or to any private address among public ones', async () => {
    const before = server.hits.length;
    const toLoopback = async () => [{ address: '127.0.0.1', family: 4 }];
    await expect(strict(toLoopback).fetch(`https://certs.test:${server.port}/chain.pem`, signal())).rejects.toBeInstanceOf(X5uPolicyError);
    const mixed = async () => [
      { address: '93.184.216.34', family: 4 },
      { address: '::1', family: 6 },
    ];
    await expect(strict(mixed).fetch('https://cr.example.net/chain.pem', signal())).rejects.toBeInstanceOf(X5uPolicyError);
    const mapped = async () => [{ address: '::ffff:192.168.0.1', family: 6 }];
    await expect(strict(mapped).fetch('https://cr.example.net/chain.pem', signal())).rejects.toBeInstanceOf(X5uPolicyError);
    expect(server.hits.length).toBe(before);
  });
});

describe('parseMaxAge', () => {
  it.each([
    [undefined, undefined],
    ['', undefined],
    ['public', undefined],
    ['max-age=300', 300],
    ['public, max-age=86400, immutable', 86400],
    ['MAX-AGE = "60"', 60],
    ['s-maxage=10', undefined],
    ['no-store', 0],
    ['no-cache, max-age=600', 0],
    [['public', 'max-age=5'], 5],
  ] as const)('%p -> %p', (header, want) => {
    expect(parseMaxAge(header as string | string[] | undefined)).toBe(want);
  });
});

describe('x5u fetcher: DNS answers in IPv6 transition forms', () => {
  it.each(['::ffff:0:7f00:1', '::ffff:0:10.0.0.1', '64:ff9b:1::a00:1', '2001:0:4136:e378:8000:63bf:3fff:fdd2', '::7f00:1', '2002:a9fe:a9fe::1', '192.88.99.1'])(
    'refuses a name that resolves to %s, before any request',
    async (address) => {
      const resolve = async (): Promise<ResolvedAddress[]> => [{ address, family: address.includes(':') ? 6 : 4 }];
      await expect(createX5uFetcher({ resolve }).fetch('https://cr.example.net/chain.pem', signal())).rejects.toBeInstanceOf(X5uPolicyError);
    },
  );

  it('resolves once and connects to the address it checked, even when the name would now resolve elsewhere', async () => {
    let calls = 0;
    const resolve = async (): Promise<ResolvedAddress[]> => (calls++ === 0 ? [{ address: '127.0.0.1', family: 4 }] : [{ address: '10.255.255.1', family: 4 }]);
    const r = await lab({ resolve }).fetch(`https://certs.test:${server.port}/chain.pem`, signal());
    expect(r.body.toString()).toBe(pki.chainPem);
    expect(calls).toBe(1);
  });
});

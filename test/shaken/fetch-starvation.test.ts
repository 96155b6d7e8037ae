import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import net from 'node:net';
import {
  createShakenVerifier,
  createX5uFetcher,
  FetchSlots,
  IP_LITERAL_SITE,
  siteOf,
  X5uFetchError,
  type CertificateFetcher,
  type DefaultShakenVerifier,
} from '../../src/shaken';
import { identity, makePki, type Pki } from './helpers';

/**
 * x5u URLs are the sender's choice, and a fetch holds a slot for as long as its host makes it
 * wait. What a sender without any certificate can do with that: point every PASSporT at a
 * different host that never answers, and keep honest certificates from being fetched.
 */

const IAT = Math.floor(Date.now() / 1000);
const AT = new Date(IAT * 1000 + 2000);
const FROM = '+442079460123';
const TO = '+447400123456';
// The service's default budget for a cold certificate (SHAKEN_FETCH_TIMEOUT_MS).
const BUDGET_MS = 250;

let pki: Pki;
const verifiers: DefaultShakenVerifier[] = [];
beforeAll(() => {
  pki = makePki();
});
afterAll(async () => {
  await Promise.all(verifiers.map((v) => v.close()));
  pki.cleanup();
});

/** Serves the genuine chain for `honestHost`; anything else never answers until aborted. */
function blackHoleFetcher(honestHost: string): CertificateFetcher & { started: string[] } {
  const started: string[] = [];
  return {
    started,
    fetch(url, signal) {
      started.push(url);
      if (new URL(url).hostname === honestHost) return Promise.resolve({ body: pki.chainPem });
      return new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(new Error('aborted'))));
    },
  };
}

function verifierWith(fetcher: CertificateFetcher): DefaultShakenVerifier {
  const v = createShakenVerifier({ trustAnchors: [pki.root.cert], fetcher, fetchTimeoutMs: BUDGET_MS });
  verifiers.push(v);
  return v;
}

const junkKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
const call = (v: DefaultShakenVerifier, x5us: string[], key = junkKey) =>
  v.verify({ identity: x5us.map((x5u) => identity({ x5u, key, iat: IAT })), origCandidates: [FROM], dest: TO, receivedAt: AT });

describe('IP-literal hosts', () => {
  it.each(['203.0.113.7', '198.51.100.1', '[2001:db8::1]', '[2a01:4f8:c0c:1:2::1]', '[2a01:4f8:c0c:ffff:ffff::1]', '[::ffff:203.0.113.7]'])(
    '%s belongs to the one IP-literal site',
    (host) => {
      expect(siteOf(host)).toBe(IP_LITERAL_SITE);
    },
  );

  it('no name belongs to it', () => {
    for (const host of ['ip-literal', 'ip-literal.example', 'cr.carrier.example', 'localhost']) expect(siteOf(host)).not.toBe(IP_LITERAL_SITE);
  });

  it('a flood of distinct IPv6 literals that never answer leaves an honest certificate on a name verified within its budget', async () => {
    const fetcher = blackHoleFetcher('cert.genuine-carrier.co.uk');
    const v = verifierWith(fetcher);
    let n = 0;
    const literal = () => {
      const k = ++n;
      return `https://[2a01:4f8:c0c:${(k >> 16).toString(16)}:${(k & 0xffff).toString(16)}::1]/c.pem`;
    };
    // Two cold loads per call, each on an address of its own: enough to hold every global slot and queue.
    const flood = Array.from({ length: 200 }, () => call(v, [literal(), literal()]));
    await new Promise((r) => setTimeout(r, 20));
    // The literals' fetches never answer, so they hold their slots past any budget: the honest
    // certificate, had it waited for one, would be X5U_FETCH_FAILED at its budget. Passing is
    // being verified within it (the budget is the verifier's to keep, not this test's clock's).
    const honest = await call(v, ['https://cert.genuine-carrier.co.uk/sp.pem'], pki.leaf.key);
    expect(honest).toMatchObject({ verstat: 'TN-Validation-Passed', errors: [] });
    // All the literals together got one site's allowance.
    expect(fetcher.started.filter((u) => u.includes('[2a01:')).length).toBeLessThanOrEqual(4);
    expect((await Promise.all(flood)).every((r) => r.verstat === 'No-TN-Validation')).toBe(true);
    await v.close();
  });
});

describe('slots kept for sites that served a trusted chain', () => {
  it('a flood spread over many names of its own cannot take them', async () => {
    const fetcher = blackHoleFetcher('cr.carrier.example');
    const v = verifierWith(fetcher);
    // The carrier's repository serves a chain to an anchor once: its site is now trusted.
    expect((await call(v, ['https://cr.carrier.example/a.pem'], pki.leaf.key)).verstat).toBe('TN-Validation-Passed');
    // Each call names two sites of the sender's own (cheap registrations, or one per call).
    const flood = Array.from({ length: 100 }, (_, i) => call(v, [`https://cr.evil${2 * i}.example/c.pem`, `https://cr.evil${2 * i + 1}.example/c.pem`]));
    await new Promise((r) => setTimeout(r, 20));
    // Another certificate of the same carrier, not yet cached: verified, so fetched within its
    // budget, while the flood's fetches (which never answer) hold every slot not kept.
    expect(await call(v, ['https://cr.carrier.example/b.pem'], pki.leaf.key)).toMatchObject({ verstat: 'TN-Validation-Passed', errors: [] });
    // The flood still had the rest: 64 slots less the 16 kept.
    expect(fetcher.started.filter((u) => u.includes('evil')).length).toBe(48);
    expect((await Promise.all(flood)).every((r) => r.verstat === 'No-TN-Validation')).toBe(true);
    await v.close();
  });

  it('an untrusted chain earns nothing', async () => {
    const other = makePki();
    try {
      const fetcher: CertificateFetcher = { fetch: async () => ({ body: other.chainPem }) };
      const v = verifierWith(fetcher);
      expect((await call(v, ['https://cr.selfmade.example/a.pem'], other.leaf.key)).errors).toContain('CERT_UNTRUSTED');
      const slots = (v.certCache as unknown as { slots: FetchSlots }).slots;
      expect(slots.isTrusted('selfmade.example')).toBe(false);
      await v.close();
    } finally {
      other.cleanup();
    }
  });

  it('FetchSlots: untrusted sites share what is not kept; a trusted site gets a kept slot at once', async () => {
    const slots = new FetchSlots({ total: 4, perSite: 4, reservedForTrusted: 1, maxWaitMs: 5000 });
    slots.trust('carrier.example');
    const held = [await slots.acquire('a'), await slots.acquire('b'), await slots.acquire('c')];
    expect(held.every((r) => r !== null)).toBe(true);
    const waiting = slots.acquire('d');
    const trusted = await slots.acquire('carrier.example');
    expect(trusted).not.toBeNull();
    // Neither a trusted slot freed nor all four in use lets an untrusted site past its share.
    trusted!();
    await new Promise((r) => setImmediate(r));
    expect(slots.inUse).toEqual({ running: 3, queued: 1, untrusted: 3 });
    held[0]!();
    expect(await waiting).not.toBeNull();
    slots.clear();
  });

  it('FetchSlots: a fetch counts against the share it started under, even if its site is trusted meanwhile', async () => {
    const slots = new FetchSlots({ total: 2, perSite: 2, reservedForTrusted: 1, maxWaitMs: 5000 });
    const first = (await slots.acquire('a'))!;
    slots.trust('a');
    first();
    expect(slots.inUse).toEqual({ running: 0, queued: 0, untrusted: 0 });
    expect(await slots.acquire('b')).not.toBeNull();
    slots.clear();
  });

  it('IP literals are never trusted', () => {
    const slots = new FetchSlots({ maxWaitMs: 1000 });
    slots.trust(IP_LITERAL_SITE);
    expect(slots.isTrusted(IP_LITERAL_SITE)).toBe(false);
  });
});

describe('x5u fetcher connect timeout', () => {
  let child: ChildProcess | undefined;
  const fillers: net.Socket[] = [];
  afterAll(() => {
    for (const s of fillers) s.destroy();
    child?.kill();
  });

  /**
   * A port whose SYNs are dropped: a listener with a backlog of one in a process that never
   * accepts; once its accept queue is full, Linux drops further SYNs, as a black-holed address does.
   */
  async function blackHolePort(): Promise<number> {
    child = spawn(process.execPath, [
      '-e',
      `const s = require('net').createServer();
       s.listen(0, '127.0.0.1', 1, () => {
         process.stdout.write(s.address().port + '\\n');
         Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 30000);
       });`,
    ]);
    const port = await new Promise<number>((resolve) => child!.stdout!.once('data', (d: Buffer) => resolve(Number(String(d).trim()))));
    // Fill the accept queue until a connection stays pending.
    for (let i = 0; i < 16; i++) {
      const s = net.connect(port, '127.0.0.1');
      s.on('error', () => {});
      fillers.push(s);
      // Pending if not open 300 ms on, looked at after a turn's I/O: a busy process may run the
      // timer late, before it has read a connection that opened meanwhile.
      const opened = await new Promise<boolean>((resolve) => {
        s.once('connect', () => resolve(true));
        setTimeout(() => setImmediate(() => resolve(false)), 300);
      });
      if (!opened) return port;
    }
    throw new Error('could not fill the accept queue');
  }

  it('gives up a connection that does not open within connectTimeoutMs, long before the caller would', async () => {
    const port = await blackHolePort();
    const fetcher = createX5uFetcher({ allowInsecure: true, connectTimeoutMs: 200 });
    const t0 = Date.now();
    const outcome = fetcher.fetch(`http://127.0.0.1:${port}/c.pem`, AbortSignal.timeout(5000));
    await expect(outcome).rejects.toThrow(X5uFetchError);
    await expect(outcome).rejects.toThrow(/no connection/);
    expect(Date.now() - t0).toBeLessThan(1500);
  });
});

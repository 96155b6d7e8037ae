/**
 * The STIR/SHAKEN side of the bench: a PKI of our own (root -> intermediate -> leaf with a
 * TNAuthList SPC, made by the test helpers with openssl), the leaf chain served as an x5u on a
 * local HTTP server, and a pool of PASSporTs signed ahead of the load, one per request. The
 * intermediate and the leaf name CRL distribution points on the same server, as ATIS-1000080's
 * certificates do, so the PASSporT path pays for its revocation checks as it would in service
 * (each CRL fetched once, then checked from the cache on every call).
 */
import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { join } from 'node:path';
import { buildCrl } from '../../test/shaken/crl-builder';
import { identity, makePki, type Pki } from '../../test/shaken/helpers';
import { startServer, type TestServer } from '../../test/shaken/server';

export interface PassportCall {
  from: string;
  to: string;
  identity: string;
}

export interface PassportLab {
  /** PEM file of the trust anchor: SHAKEN_TRUST_ANCHORS and secsipidx's -ca-file. */
  rootPemFile: string;
  x5u: string;
  /**
   * Signs `count` calls, each with its own orig, dest and origid, so none is a verdict cache hit
   * or a replay; the numbers are the `first`th onwards (a long run signs in batches, none repeated).
   */
  sign(count: number, iat: number, first?: number): PassportCall[];
  close(): Promise<void>;
}

const HOUR = 3600_000;

export async function startPassportLab(): Promise<PassportLab> {
  // The server first: the certificates name its URLs. Its answers are filled in below.
  const served: { chain?: string; rootCrl?: Buffer; intermediateCrl?: Buffer } = {};
  const x5uServer: TestServer = await startServer({
    '/sp.pem': (_req: unknown, res: ServerResponse) => {
      res.setHeader('cache-control', 'max-age=3600');
      res.end(served.chain);
    },
    '/root.crl': (_req: unknown, res: ServerResponse) => res.end(served.rootCrl),
    '/intermediate.crl': (_req: unknown, res: ServerResponse) => res.end(served.intermediateCrl),
  });
  let pki: Pki;
  try {
    pki = makePki({ intermediateExt: [`crlDistributionPoints=URI:${x5uServer.url}/root.crl`] });
  } catch (err) {
    await x5uServer.close();
    throw err;
  }
  const leaf = pki.issueLeaf('bench-leaf', { extraExt: [`crlDistributionPoints=URI:${x5uServer.url}/intermediate.crl`] });
  served.chain = leaf.certPem + pki.intermediate.certPem;
  const now = Date.now();
  // A few revoked serials, none of ours: a lookup that finds nothing, as almost every call's does.
  const revoked = ['0badc0de01', '0badc0de02', '0badc0de03'];
  served.rootCrl = buildCrl({ issuer: pki.root.cert, key: pki.root.key, revoked, thisUpdateMs: now - HOUR, nextUpdateMs: now + 12 * HOUR });
  served.intermediateCrl = buildCrl({ issuer: pki.intermediate.cert, key: pki.intermediate.key, revoked, thisUpdateMs: now - HOUR, nextUpdateMs: now + 12 * HOUR });
  const x5u = `${x5uServer.url}/sp.pem`;
  return {
    rootPemFile: join(pki.dir, 'root.crt'),
    x5u,
    sign(count, iat, first = 0) {
      const calls: PassportCall[] = [];
      for (let i = first; i < first + count; i++) {
        // London numbers for callers, mobiles for callees: +44 207x and +44 74xx are valid in every completion.
        const orig = `44207${String(i % 10_000_000).padStart(7, '0')}`;
        const dest = `4474${String(i % 100_000_000).padStart(8, '0')}`;
        calls.push({
          from: `+${orig}`,
          to: `+${dest}`,
          identity: identity({ x5u, key: leaf.key, iat, orig, dest: [dest], attest: 'A', origid: randomUUID() }),
        });
      }
      return calls;
    },
    async close() {
      await x5uServer.close();
      pki.cleanup();
    },
  };
}

/** The PASSporT pool and one cursor per consumer; `wraps` counts how often a cursor ran past the end. */
export class Pool {
  private calls: PassportCall[] = [];
  private readonly cursors = new Map<string, number>();
  readonly wraps = new Map<string, number>();
  get size(): number {
    return this.calls.length;
  }
  /** A fresh pool, every consumer from its start. */
  fill(calls: PassportCall[]): void {
    this.calls = calls;
    this.cursors.clear();
    this.wraps.clear();
  }
  next(consumer: string): PassportCall {
    if (this.calls.length === 0) throw new Error('PASSporT pool is empty');
    const i = this.cursors.get(consumer) ?? 0;
    if (i > 0 && i % this.calls.length === 0) this.wraps.set(consumer, (this.wraps.get(consumer) ?? 0) + 1);
    this.cursors.set(consumer, i + 1);
    return this.calls[i % this.calls.length]!;
  }
}

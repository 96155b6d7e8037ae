/**
 * The STIR/SHAKEN side of the bench: a PKI of our own (root -> intermediate -> leaf with a
 * TNAuthList SPC, made by the test helpers with openssl), the leaf chain served as an x5u on a
 * local HTTP server, and a pool of PASSporTs signed ahead of the load, one per request.
 */
import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { join } from 'node:path';
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
  /** Signs `count` calls, each with its own orig, dest and origid, so none is a verdict cache hit or a replay. */
  sign(count: number, iat: number): PassportCall[];
  close(): Promise<void>;
}

export async function startPassportLab(): Promise<PassportLab> {
  const pki: Pki = makePki();
  let x5uServer: TestServer;
  try {
    x5uServer = await startServer({
      '/sp.pem': (_req: unknown, res: ServerResponse) => {
        res.setHeader('cache-control', 'max-age=3600');
        res.end(pki.chainPem);
      },
    });
  } catch (err) {
    pki.cleanup();
    throw err;
  }
  const x5u = `${x5uServer.url}/sp.pem`;
  return {
    rootPemFile: join(pki.dir, 'root.crt'),
    x5u,
    sign(count, iat) {
      const calls: PassportCall[] = [];
      for (let i = 0; i < count; i++) {
        // London numbers for callers, mobiles for callees: +44 207x and +44 74xx are valid in every completion.
        const orig = `44207${String(i).padStart(7, '0')}`;
        const dest = `4474${String(i).padStart(8, '0')}`;
        calls.push({
          from: `+${orig}`,
          to: `+${dest}`,
          identity: identity({ x5u, key: pki.leaf.key, iat, orig, dest: [dest], attest: 'A', origid: randomUUID() }),
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

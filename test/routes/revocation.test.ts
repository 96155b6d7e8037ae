import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { build } from '../helpers/build';
import { buildCrl } from '../shaken/crl-builder';
import { identity, makePki, type Issued, type Pki } from '../shaken/helpers';
import type { CertificateFetcher } from '../../src/shaken';

/**
 * Revocation through the whole service: POST /v1/calls/score with a PASSporT whose certificate
 * is on its CA's CRL answers CERT_REVOKED in shaken.errors; SHAKEN_CRL_REQUIRED and
 * SHAKEN_CRL_SIGNERS are read from the environment; the CRL metrics move.
 */
const AT = new Date(Date.now() + 60_000).toISOString();
const IAT = Math.floor(Date.parse(AT) / 1000);
const HOUR = 3_600_000;
const CALLER = '+447400999888';
const CALLED = '+447400123456';
const X5U = 'https://certs.carrier.example/revoked.pem';
const X5U_OK = 'https://certs.carrier.example/good.pem';
const X5U_PA = 'https://certs.carrier.example/pa.pem';
const X5U_DOWN = 'https://certs.carrier.example/down.pem';
const INT_CRL = 'https://crl.carrier.example/int.crl';
const PA_CRL = 'https://crl.sti-pa.example/sti-pa.crl';
const DOWN_CRL = 'https://crl.carrier.example/down.crl';

let pki: Pki;
let revoked: Issued;
let good: Issued;
let paRevoked: Issued;
let down: Issued;
let dir: string;
const apps: FastifyInstance[] = [];

beforeAll(() => {
  pki = makePki();
  revoked = pki.issueLeaf('revoked', { extraExt: [`crlDistributionPoints=URI:${INT_CRL}`] });
  good = pki.issueLeaf('good', { extraExt: [`crlDistributionPoints=URI:${INT_CRL}`] });
  down = pki.issueLeaf('down', { extraExt: [`crlDistributionPoints=URI:${DOWN_CRL}`] });
  paRevoked = pki.issueLeaf('pa', {
    extraExt: ['crlDistributionPoints=dp_sect', '[dp_sect]', `fullname=URI:${PA_CRL}`, 'CRLissuer=dirName:pa_name', '[pa_name]', 'CN=Test STI-PA CRL'],
  });
  dir = mkdtempSync(join(tmpdir(), 'callguard-crl-'));
  writeFileSync(join(dir, 'root.pem'), pki.root.certPem);
}, 60_000);
afterAll(async () => {
  for (const app of apps) await app.close();
  pki?.cleanup();
});

async function appWith(env: Record<string, string>, signerPem: string, signerKey: Issued['key']): Promise<FastifyInstance> {
  writeFileSync(join(dir, 'crl-signers.pem'), signerPem);
  const now = Date.now();
  const crls: Record<string, Buffer> = {
    [INT_CRL]: buildCrl({ issuer: pki.intermediate.cert, key: pki.intermediate.key, revoked: [revoked.cert.serialNumber], thisUpdateMs: now - HOUR, nextUpdateMs: now + HOUR }),
    [PA_CRL]: buildCrl({ issuer: pki.root.cert, key: signerKey, revoked: [paRevoked.cert.serialNumber], thisUpdateMs: now - HOUR, nextUpdateMs: now + HOUR }),
  };
  const chains: Record<string, string> = {
    [X5U]: revoked.certPem + pki.intermediate.certPem,
    [X5U_OK]: good.certPem + pki.intermediate.certPem,
    [X5U_PA]: paRevoked.certPem + pki.intermediate.certPem,
    [X5U_DOWN]: down.certPem + pki.intermediate.certPem,
  };
  const fetcher: CertificateFetcher = {
    async fetch(url) {
      const body = chains[url] ?? crls[url];
      if (body === undefined) throw new Error(`404 ${url}`);
      return { body };
    },
  };
  const app = await build(
    { SHAKEN_TRUST_ANCHORS: join(dir, 'root.pem'), SHAKEN_CRL_SIGNERS: join(dir, 'crl-signers.pem'), VERDICT_CACHE_TTL_S: '0', ...env },
    { certFetcher: fetcher },
  );
  apps.push(app);
  return app;
}

interface Answer {
  shaken: { verstat: string; errors: string[] };
}
let n = 0;
async function score(app: FastifyInstance, x5u: string, key: Issued['key']): Promise<Answer> {
  n++;
  const res = await app.inject({
    method: 'POST',
    url: '/v1/calls/score',
    payload: {
      from: CALLER,
      to: CALLED,
      callId: `crl-${n}`,
      receivedAt: AT,
      identity: identity({ x5u, key, iat: IAT, orig: CALLER.slice(1), dest: [CALLED.slice(1)], origid: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}` }),
    },
  });
  expect(res.statusCode).toBe(200);
  return res.json() as Answer;
}

function sample(text: string, name: string, labels = ''): number | undefined {
  const head = labels ? `${name}{${labels}} ` : `${name} `;
  const line = text.split('\n').find((l) => l.startsWith(head));
  return line === undefined ? undefined : Number(line.slice(head.length));
}

describe('POST /v1/calls/score and revocation', () => {
  it('a certificate on its CA\'s CRL: CERT_REVOKED in shaken.errors; one beside it on no CRL passes', async () => {
    const app = await appWith({}, pki.root.certPem, pki.root.key);
    expect((await score(app, X5U, revoked.key)).shaken).toMatchObject({ verstat: 'TN-Validation-Failed', errors: ['CERT_REVOKED'] });
    expect((await score(app, X5U_OK, good.key)).shaken).toMatchObject({ verstat: 'TN-Validation-Passed', errors: [] });
    const metrics = (await app.inject('/metrics')).body;
    expect(sample(metrics, 'callguard_shaken_crl_fetches_total', 'outcome="ok"')).toBe(1);
  });

  it('an indirect CRL counts only when signed by a certificate of SHAKEN_CRL_SIGNERS', async () => {
    // The operator's CRL signer file names the root as signer here: the CRL signed with the root's key revokes.
    const trusted = await appWith({}, pki.root.certPem, pki.root.key);
    expect((await score(trusted, X5U_PA, paRevoked.key)).shaken.errors).toEqual(['CERT_REVOKED']);
    // The same CRL bytes signed by a key the operator never named: unavailable, judged on the rest.
    const untrusted = await appWith({}, pki.root.certPem, pki.intermediate.key);
    expect((await score(untrusted, X5U_PA, paRevoked.key)).shaken).toMatchObject({ verstat: 'TN-Validation-Passed', errors: [] });
    expect(sample((await untrusted.inject('/metrics')).body, 'callguard_shaken_crl_unavailable_total')).toBe(1);
  });

  it('an unreachable CRL: counted and passed by default, CERT_REVOKED with SHAKEN_CRL_REQUIRED=true', async () => {
    const lax = await appWith({}, pki.root.certPem, pki.root.key);
    expect((await score(lax, X5U_DOWN, down.key)).shaken).toMatchObject({ verstat: 'TN-Validation-Passed', errors: [] });
    const laxMetrics = (await lax.inject('/metrics')).body;
    expect(sample(laxMetrics, 'callguard_shaken_crl_unavailable_total')).toBe(1);
    expect(sample(laxMetrics, 'callguard_shaken_crl_fetches_total', 'outcome="error"')).toBe(1);

    const strict = await appWith({ SHAKEN_CRL_REQUIRED: 'true' }, pki.root.certPem, pki.root.key);
    expect((await score(strict, X5U_DOWN, down.key)).shaken).toMatchObject({ verstat: 'TN-Validation-Failed', errors: ['CERT_REVOKED'] });
  });

  it('a SHAKEN_CRL_SIGNERS that holds no certificate stops the start', async () => {
    writeFileSync(join(dir, 'empty.pem'), 'nothing here');
    await expect(build({ SHAKEN_TRUST_ANCHORS: join(dir, 'root.pem'), SHAKEN_CRL_SIGNERS: join(dir, 'empty.pem') })).rejects.toThrow(/SHAKEN_CRL_SIGNERS/);
  });
});

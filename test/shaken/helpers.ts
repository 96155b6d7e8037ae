import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, X509Certificate, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parsePhoneNumberFromString } from 'libphonenumber-js/max';
import { signJwsEs256, type CertificateFetcher } from '../../src/shaken';


/** Independent vectors made with another toolchain (Python's cryptography), kept as fixtures. */
export const VECTORS_DIR = resolve(__dirname, '../fixtures/shaken-vectors');

export interface VectorCase {
  case: string;
  note: string;
  request: { from: string; to: string; pai?: string; identity: string | string[]; receivedAt: string };
  expect: {
    verstat?: string;
    verstatOneOf?: string[];
    attestation?: string | null;
    spc?: string;
    errors?: string[];
    errorsInclude?: string[];
  };
}

export function loadCases(): VectorCase[] {
  return JSON.parse(readFileSync(join(VECTORS_DIR, 'cases.json'), 'utf8')) as VectorCase[];
}

export function vectorsRoot(): X509Certificate {
  return new X509Certificate(readFileSync(join(VECTORS_DIR, 'certs', 'root.pem')));
}

/** Serves https://certs.vectors.example/<name>.pem from the vectors' certs folder, counting requests. */
export function vectorsFetcher(): CertificateFetcher & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    async fetch(url: string) {
      calls.push(url);
      const m = /^https:\/\/certs\.vectors\.example\/([\w-]+\.pem)$/.exec(url);
      if (!m) throw new Error(`no fixture for ${url}`);
      return { body: readFileSync(join(VECTORS_DIR, 'certs', m[1]!)) };
    },
  };
}

/**
 * What src/numbers will do in the service, reduced to what the vectors need: strip a sip:/tel:
 * URI down to its user part and read it with libphonenumber-js (GB by default).
 */
export function toE164(input: string, country: 'GB' = 'GB'): string | null {
  let s = input.trim().replace(/^(sips?|tel):/i, '');
  s = s.split('@')[0]!.split(';')[0]!;
  return parsePhoneNumberFromString(s, country)?.number ?? null;
}

// ---------------------------------------------------------------------------------------------
// Our own PKI: keys from Node crypto, certificates from the openssl CLI (Node cannot mint X.509).

export interface Issued {
  certPem: string;
  keyPem: string;
  key: KeyObject;
  cert: X509Certificate;
}

export interface Pki {
  dir: string;
  root: Issued;
  intermediate: Issued;
  /** Leaf with TNAuthList SPC 5678, issued by the intermediate. */
  leaf: Issued;
  /** leaf + intermediate: what an x5u serves. */
  chainPem: string;
  /** A self-signed TLS certificate for 127.0.0.1 and certs.test, for a local HTTPS server. */
  tls: { certPem: string; keyPem: string };
  issueLeaf(
    name: string,
    opts?: { tnAuthListDer?: string | null; days?: number; startDate?: string; endDate?: string; issuer?: string; keyUsage?: string | null; extraExt?: string[] },
  ): Issued;
  cleanup(): void;
}

/** DER of TNAuthList ::= SEQUENCE { [0] EXPLICIT IA5String spc } (RFC 8226 uses explicit tags). */
export function tnAuthListDer(spc: string): string {
  const ia5 = Buffer.concat([Buffer.from([0x16, spc.length]), Buffer.from(spc, 'latin1')]);
  const tagged = Buffer.concat([Buffer.from([0xa0, ia5.length]), ia5]);
  return Buffer.concat([Buffer.from([0x30, tagged.length]), tagged]).toString('hex').toUpperCase();
}

function ecKey(): { keyPem: string; key: KeyObject } {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), key: privateKey };
}

export interface PkiOptions {
  /** More extension lines for the intermediate (e.g. a crlDistributionPoints). */
  intermediateExt?: string[];
}

export function makePki(pkiOpts: PkiOptions = {}): Pki {
  const dir = mkdtempSync(join(tmpdir(), 'callguard-pki-'));
  const run = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let serial = 1;

  const selfSigned = (name: string, subj: string, exts: string[]): Issued => {
    const k = ecKey();
    writeFileSync(join(dir, `${name}.key`), k.keyPem);
    run(['req', '-x509', '-new', '-key', `${name}.key`, '-subj', subj, '-days', '3650', '-sha256', '-out', `${name}.crt`, ...exts.flatMap((e) => ['-addext', e])]);
    const certPem = readFileSync(join(dir, `${name}.crt`), 'utf8');
    return { ...k, certPem, cert: new X509Certificate(certPem) };
  };

  const issue = (name: string, subj: string, issuer: string, extLines: string[], validity: { days?: number; startDate?: string; endDate?: string } = {}): Issued => {
    const k = ecKey();
    writeFileSync(join(dir, `${name}.key`), k.keyPem);
    writeFileSync(join(dir, `${name}.ext`), extLines.join('\n') + '\n');
    run(['req', '-new', '-key', `${name}.key`, '-subj', subj, '-out', `${name}.csr`]);
    if (validity.startDate || validity.endDate) {
      // `openssl ca` is the only CLI path to arbitrary dates; a throwaway database is enough.
      writeFileSync(join(dir, 'index.txt'), '');
      writeFileSync(
        join(dir, 'ca.cnf'),
        `[ca]\ndefault_ca=d\n[d]\ndatabase=index.txt\nnew_certs_dir=.\nserial=serial.txt\ndefault_md=sha256\npolicy=p\nunique_subject=no\ncopy_extensions=none\n[p]\ncommonName=supplied\norganizationName=optional\n`,
      );
      writeFileSync(join(dir, 'serial.txt'), (serial++).toString(16).padStart(4, '0') + '\n');
      run([
        'ca', '-batch', '-config', 'ca.cnf', '-notext', '-cert', `${issuer}.crt`, '-keyfile', `${issuer}.key`, '-in', `${name}.csr`, '-out', `${name}.crt`,
        '-extfile', `${name}.ext`, '-startdate', validity.startDate ?? '20200101000000Z', '-enddate', validity.endDate ?? '20400101000000Z',
      ]);
    } else {
      run([
        'x509', '-req', '-in', `${name}.csr`, '-CA', `${issuer}.crt`, '-CAkey', `${issuer}.key`, '-set_serial', String(serial++ + 1000),
        '-days', String(validity.days ?? 3650), '-sha256', '-extfile', `${name}.ext`, '-out', `${name}.crt`,
      ]);
    }
    const certPem = readFileSync(join(dir, `${name}.crt`), 'utf8');
    return { ...k, certPem, cert: new X509Certificate(certPem) };
  };

  const root = selfSigned('root', '/O=Test STI/CN=Test STI-CA Root', ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign']);
  const intermediate = issue('intermediate', '/O=Test STI/CN=Test STI-CA Intermediate', 'root', [
    'basicConstraints=critical,CA:TRUE,pathlen:0',
    'keyUsage=critical,keyCertSign,cRLSign',
    'subjectKeyIdentifier=hash',
    'authorityKeyIdentifier=keyid',
    ...(pkiOpts.intermediateExt ?? []),
  ]);
  const issueLeaf: Pki['issueLeaf'] = (name, opts = {}) => {
    const tn = opts.tnAuthListDer === undefined ? tnAuthListDer('5678') : opts.tnAuthListDer;
    return issue(
      name,
      `/O=Test SP/CN=SHAKEN ${name}`,
      opts.issuer ?? 'intermediate',
      [
        'basicConstraints=critical,CA:FALSE',
        ...(opts.keyUsage === null ? [] : [`keyUsage=${opts.keyUsage ?? 'critical,digitalSignature'}`]),
        'subjectKeyIdentifier=hash',
        'authorityKeyIdentifier=keyid',
        ...(tn ? [`1.3.6.1.5.5.7.1.26=DER:${tn}`] : []),
        // Last: it may open config sections of its own (e.g. a cRLIssuer's dirName).
        ...(opts.extraExt ?? []),
      ],
      opts,
    );
  };
  const leaf = issueLeaf('leaf');
  const tlsIssued = selfSigned('tls', '/CN=127.0.0.1', ['subjectAltName=IP:127.0.0.1,DNS:certs.test,DNS:localhost', 'basicConstraints=critical,CA:TRUE']);

  return {
    dir,
    root,
    intermediate,
    leaf,
    chainPem: leaf.certPem + intermediate.certPem,
    tls: { certPem: tlsIssued.certPem, keyPem: tlsIssued.keyPem },
    issueLeaf,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

// ---------------------------------------------------------------------------------------------
// PASSporT signing with Node crypto (ES256, raw r||s).

const json = (v: object | string) => (typeof v === 'string' ? v : JSON.stringify(v));

/** Signs the header and payload as given (objects in their own key order), so tests can make odd tokens too. */
export function signToken(header: object | string, payload: object | string, key: KeyObject): string {
  return signJwsEs256(json(header), json(payload), key);
}

export interface PassportSpec {
  x5u: string;
  key: KeyObject;
  iat: number;
  orig?: string;
  dest?: string[];
  attest?: 'A' | 'B' | 'C';
  origid?: string;
  ppt?: 'shaken' | 'div';
  div?: string;
  /** Identity parameters after the token; default info=<x5u>;alg=ES256;ppt=<ppt>. */
  params?: string;
  /** More payload claims (rich call data: rcd, crn, rcdi), signed with the rest. */
  claims?: Record<string, unknown>;
}

export function identity(spec: PassportSpec): string {
  const ppt = spec.ppt ?? 'shaken';
  const header = { alg: 'ES256', ppt, typ: 'passport', x5u: spec.x5u };
  const payload: Record<string, unknown> = {
    dest: { tn: spec.dest ?? ['447400123456'] },
    iat: spec.iat,
    orig: { tn: spec.orig ?? '442079460123' },
  };
  if (ppt === 'shaken') {
    payload.attest = spec.attest ?? 'A';
    payload.origid = spec.origid ?? '123e4567-e89b-12d3-a456-426614174000';
  } else {
    payload.div = { tn: spec.div ?? '447400123456' };
  }
  if (spec.claims) Object.assign(payload, spec.claims);
  const params = spec.params ?? `;info=<${spec.x5u}>;alg=ES256;ppt=${ppt}`;
  return signToken(header, payload, spec.key) + params;
}

/** A fetcher that serves a fixed map of URL -> PEM and counts calls. */
export function mapFetcher(map: Record<string, string | (() => Promise<{ body: string; maxAgeS?: number }>)>): CertificateFetcher & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    async fetch(url: string) {
      calls.push(url);
      const v = map[url];
      if (v === undefined) throw new Error(`404 ${url}`);
      return typeof v === 'string' ? { body: v } : v();
    },
  };
}

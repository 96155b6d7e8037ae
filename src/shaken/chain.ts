import { X509Certificate, type KeyObject } from 'node:crypto';
import { DerError, readTnAuthList } from './der';
import type { ShakenErrorCode } from './types';

/**
 * What the verifier keeps from an x5u answer: everything that does not depend on the time of
 * the call, computed once per fetch so that the hot path never touches PEM or X.509 again.
 */
export interface CertChainInfo {
  /** The leaf's public key: the only key a PASSporT signed under this x5u is checked with. */
  key: KeyObject;
  /** ES256 needs an EC P-256 key; any other key cannot have made a valid signature. */
  keyIsP256: boolean;
  spc?: string;
  /** CERT_UNTRUSTED / CERT_NO_TNAUTHLIST: properties of the certificates, not of the call. */
  errors: ShakenErrorCode[];
  /** The window (ms) in which every certificate on the path is valid; outside it, CERT_EXPIRED. */
  validFromMs: number;
  validToMs: number;
}

const PEM_CERT_RE = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;
/** A SHAKEN x5u holds a leaf and one or two intermediates; more is not a certificate chain. */
export const MAX_CERTS_PER_ANSWER = 8;
const MAX_PATH_LENGTH = 6;

/**
 * Certificates in PEM text, in order. Text outside the PEM blocks is ignored (RFC 7468
 * explanatory text). Throws when there is no certificate or one does not parse.
 */
export function parsePemCertificates(text: string, max = MAX_CERTS_PER_ANSWER): X509Certificate[] {
  const blocks = text.match(PEM_CERT_RE) ?? [];
  if (blocks.length === 0) throw new Error('no PEM certificate');
  if (blocks.length > max) throw new Error(`more than ${max} certificates`);
  return blocks.map((b) => new X509Certificate(b));
}

function issuedBy(child: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return issuer.ca && child.checkIssued(issuer) && child.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

/**
 * Path from the leaf to a trust anchor. Served intermediates are used only as stepping stones:
 * a path counts only when it ends at a configured anchor. Depth-first with backtracking, so a
 * useless extra certificate in the answer cannot hide a good path.
 */
export function buildPath(leaf: X509Certificate, intermediates: X509Certificate[], anchors: readonly X509Certificate[]): X509Certificate[] | null {
  const walk = (path: X509Certificate[]): X509Certificate[] | null => {
    const current = path[path.length - 1]!;
    for (const anchor of anchors) if (issuedBy(current, anchor)) return [...path, anchor];
    if (path.length >= MAX_PATH_LENGTH) return null;
    for (const next of intermediates) {
      if (path.includes(next) || !issuedBy(current, next)) continue;
      const found = walk([...path, next]);
      if (found) return found;
    }
    return null;
  };
  return walk([leaf]);
}

function windowOf(certs: X509Certificate[]): { validFromMs: number; validToMs: number } {
  let validFromMs = -Infinity;
  let validToMs = Infinity;
  for (const c of certs) {
    const from = Date.parse(c.validFrom);
    const to = Date.parse(c.validTo);
    // An unreadable date must not silently widen the window.
    validFromMs = Math.max(validFromMs, Number.isNaN(from) ? Infinity : from);
    validToMs = Math.min(validToMs, Number.isNaN(to) ? -Infinity : to);
  }
  return { validFromMs, validToMs };
}

/** Judges an x5u answer (leaf first) against the trust anchors. Throws only on unparseable PEM. */
export function evaluateChain(pemText: string, anchors: readonly X509Certificate[]): CertChainInfo {
  const certs = parsePemCertificates(pemText);
  const [leaf, ...rest] = certs as [X509Certificate, ...X509Certificate[]];
  const errors: ShakenErrorCode[] = [];

  const path = buildPath(leaf, rest, anchors);
  if (!path) errors.push('CERT_UNTRUSTED');

  let spc: string | undefined;
  try {
    const list = readTnAuthList(leaf.raw);
    if (!list) errors.push('CERT_NO_TNAUTHLIST');
    else spc = list.spcs[0];
  } catch (err) {
    if (!(err instanceof DerError)) throw err;
    errors.push('CERT_NO_TNAUTHLIST');
  }

  const key = leaf.publicKey;
  const details = key.asymmetricKeyDetails;
  return {
    key,
    keyIsP256: key.asymmetricKeyType === 'ec' && details?.namedCurve === 'prime256v1',
    ...(spc !== undefined ? { spc } : {}),
    errors,
    // Without a trusted path only the leaf's own dates are meaningful; the call fails on trust anyway.
    ...windowOf(path ?? [leaf]),
  };
}

/** CERT_EXPIRED when `atMs` is outside the window in which the whole path is valid. */
export function validityError(info: CertChainInfo, atMs: number): ShakenErrorCode | null {
  return atMs < info.validFromMs || atMs > info.validToMs ? 'CERT_EXPIRED' : null;
}

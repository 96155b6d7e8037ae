import { createHash, X509Certificate, type KeyObject } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { DerError, readCrlDistributionPoint, readTnAuthList, serialKey, subjectKeyIsP256, type TnAuthList } from './der';
import type { ShakenErrorCode } from './types';

/** The telephone numbers a delegate certificate (ATIS-1000092) may sign for, ready to look up. */
export interface TnAuthorisation {
  tns: ReadonlySet<string>;
  /** Same-length numeric intervals: `length` digits, from `lo` to `hi` inclusive. */
  ranges: readonly { length: number; lo: number; hi: number }[];
}

/**
 * What the verifier keeps from an x5u answer: everything that does not depend on the time of
 * the call, computed once per answer so that the hot path never touches PEM or X.509 again.
 */
export interface CertChainInfo {
  /** The leaf's public key: the only key a PASSporT signed under this x5u is checked with. */
  key: KeyObject;
  /** ES256 needs an EC P-256 key; any other key cannot have made a valid signature. */
  keyIsP256: boolean;
  /** The first service provider code of the leaf's TNAuthList; absent from a TN-only (delegate) certificate. */
  spc?: string;
  /** Present when the leaf's TNAuthList names telephone numbers or ranges: a PASSporT may then sign only for those. */
  tnAuth?: TnAuthorisation;
  /** CERT_UNTRUSTED / CERT_NO_TNAUTHLIST: properties of the certificates, not of the call. */
  errors: ShakenErrorCode[];
  /** The window (ms) in which every certificate on the path is valid; outside it, CERT_EXPIRED. */
  validFromMs: number;
  validToMs: number;
  /** The certificates of the trusted path (anchor excepted) that name a CRL: checked on every use (revocation.ts). */
  revocation?: readonly RevocationTarget[];
}

/** One certificate to look up on a CRL. */
export interface RevocationTarget {
  /** serialKey of the certificate's serial number. */
  serial: string;
  /** Its CRL distribution point. */
  url: string;
  /** True when the distribution point names a cRLIssuer (ATIS-1000080's STI-PA CRL): signed by a configured CRL signer, not the issuer. */
  indirect: boolean;
  /** The issuing CA's key, which signs a direct CRL. */
  issuerKey: KeyObject;
  /** The issuing CA certificate's digest, to remember signature checks by. */
  issuerId: string;
  subject: string;
}

const PEM_CERT_RE = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g;
/**
 * A SHAKEN x5u holds the leaf and one or two intermediates (ATIS-1000080); four leaves room for
 * a cross-certificate. Every certificate more is parsing (about 150 µs each) an attacker chooses.
 */
export const MAX_CERTS_PER_ANSWER = 4;
/** Certificates on a path, leaf and anchor included: leaf, two intermediates, root. */
export const MAX_PATH_LENGTH = 4;
/**
 * Signature checks one answer may cost, memo hits not counted: a path of MAX_PATH_LENGTH has
 * that many links less one. Past it the answer is CERT_UNTRUSTED.
 */
export const MAX_SIGNATURE_CHECKS = MAX_PATH_LENGTH - 1;

/**
 * Certificates in PEM text, in order. Text outside the PEM blocks is ignored (RFC 7468
 * explanatory text). Throws when there is no certificate or one does not parse.
 */
export function parsePemCertificates(text: string, max = MAX_CERTS_PER_ANSWER): X509Certificate[] {
  return pemBlocks(text, max).map((der) => new X509Certificate(der));
}

/** The DER of each PEM certificate block; throws past `max` blocks, before any is decoded. */
function pemBlocks(text: string, max: number): Buffer[] {
  const out: Buffer[] = [];
  for (const m of text.matchAll(PEM_CERT_RE)) {
    if (out.length >= max) throw new Error(`more than ${max} certificates`);
    out.push(Buffer.from(m[1]!, 'base64'));
  }
  if (out.length === 0) throw new Error('no PEM certificate');
  return out;
}

/** One certificate, parsed once, with what path building asks of it. */
interface Cert {
  x509: X509Certificate;
  /** SHA-256 of the DER: the key of every memo below. */
  id: string;
  subject: string;
  issuer: string;
  ca: boolean;
  /** SHAKEN's key (ATIS-1000080: EC P-256). */
  p256: boolean;
  key: KeyObject;
}

function describe(x509: X509Certificate, id: string): Cert {
  const key = x509.publicKey;
  return {
    x509,
    id,
    subject: x509.subject,
    issuer: x509.issuer,
    ca: x509.ca,
    p256: key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1',
    key,
  };
}

function digest(der: Uint8Array): string {
  return createHash('sha256').update(der).digest('base64url');
}

// Every answer key starts with this, so that it can equal no certificate's own digest.
const ANSWER_KEY_DOMAIN = Buffer.from('callguard x5u answer\0');

/**
 * The memo key of an answer: SHA-256 over a domain label, the number of certificates and
 * each certificate's 32-byte SHA-256, the same encoding whatever the count. Every part has a
 * fixed length once the count is read, so two different lists of certificates can share a
 * key only through a SHA-256 collision; in particular one certificate whose bytes spell out
 * another answer's digests gets a key of its own.
 */
function answerKey(ders: readonly Buffer[]): string {
  const h = createHash('sha256').update(ANSWER_KEY_DOMAIN).update(Uint8Array.of(ders.length));
  for (const der of ders) h.update(createHash('sha256').update(der).digest());
  return h.digest('base64url');
}

export interface ChainJudgeOptions {
  /** Answers, certificates and signature checks remembered (each; default 2,000). */
  memoSize?: number;
}

/**
 * Judges x5u answers against a fixed set of trust anchors, at a bounded cost whatever the
 * answer holds: at most MAX_CERTS_PER_ANSWER certificates, each parsed once; a path walked from
 * the leaf up by issuer name (no search over orderings, no backtracking); served issuers only
 * with SHAKEN's EC P-256 key (ATIS-1000080), checked by key type before any signature is; at
 * most MAX_SIGNATURE_CHECKS signature checks, each (certificate, issuer) pair checked once and
 * remembered. Trust anchors are the operator's choice and may have any key type.
 *
 * Answers are remembered by the SHA-256 of their certificates' DER (answerKey), not by URL or
 * body, so one hostile answer served under many URLs, or padded with different explanatory
 * text, is judged once; certificates by their DER too, so the intermediate that thousands of
 * leaves share is parsed and checked against its root once, and a certificate that does not
 * parse is parsed once.
 */
export class ChainJudge {
  private readonly anchorsBySubject = new Map<string, Cert[]>();
  /** Judged answers only: a failure is remembered per certificate (certs), never per answer. */
  private readonly answers: LRUCache<string, CertChainInfo>;
  private readonly certs: LRUCache<string, Cert | Error>;
  private readonly links: LRUCache<string, boolean>;

  constructor(anchors: readonly X509Certificate[], opts: ChainJudgeOptions = {}) {
    for (const a of anchors) {
      const c = describe(a, digest(a.raw));
      const same = this.anchorsBySubject.get(c.subject);
      if (same) same.push(c);
      else this.anchorsBySubject.set(c.subject, [c]);
    }
    const max = opts.memoSize ?? 2000;
    this.answers = new LRUCache({ max });
    this.certs = new LRUCache({ max });
    this.links = new LRUCache({ max });
  }

  /** Judges an x5u answer (leaf first). Throws when it holds no certificate, too many, or one that does not parse. */
  judge(pemText: string): CertChainInfo {
    const ders = pemBlocks(pemText, MAX_CERTS_PER_ANSWER);
    const key = answerKey(ders);
    let result = this.answers.get(key);
    if (!result) {
      // Only the leaf is parsed whatever its key: a served certificate without SHAKEN's key
      // could never be an issuer on the path, so it is set aside unread (an RSA key with a
      // 3072-bit exponent costs OpenSSL about 0.4 ms just to load). A certificate that does
      // not parse throws here and is remembered under its own DER (cert), so an answer that
      // holds it is turned away again for the price of its digests, and no other answer is.
      const [leaf, ...rest] = ders as [Buffer, ...Buffer[]];
      const served: Cert[] = [];
      for (const der of rest) if (subjectKeyIsP256(der)) served.push(this.cert(der));
      result = this.evaluate(this.cert(leaf), served);
      this.answers.set(key, result);
    }
    return result;
  }

  private cert(der: Buffer): Cert {
    const id = digest(der);
    let c = this.certs.get(id);
    if (!c) {
      try {
        c = describe(new X509Certificate(der), id);
      } catch (err) {
        c = err instanceof Error ? err : new Error(String(err));
      }
      this.certs.set(id, c);
    }
    if (c instanceof Error) throw c;
    return c;
  }

  /** The path from the leaf to an anchor, or null. */
  path(leaf: Cert, served: readonly Cert[]): Cert[] | null {
    const budget = { checks: MAX_SIGNATURE_CHECKS };
    const used = new Set<Cert>([leaf]);
    const path = [leaf];
    for (let current = leaf; ; ) {
      for (const anchor of this.anchorsBySubject.get(current.issuer) ?? []) {
        if (this.link(current, anchor, budget)) return [...path, anchor];
      }
      if (path.length >= MAX_PATH_LENGTH - 1) return null;
      let next: Cert | undefined;
      for (const c of served) {
        // Only a CA with SHAKEN's key may issue: any other key type is refused before its signature costs anything.
        if (used.has(c) || !c.ca || !c.p256 || c.subject !== current.issuer) continue;
        if (this.link(current, c, budget)) {
          next = c;
          break;
        }
      }
      if (!next) return null;
      used.add(next);
      path.push(next);
      current = next;
    }
  }

  /** Whether `issuer` issued `child`: names and key identifiers (cheap), then the signature, once per pair. */
  private link(child: Cert, issuer: Cert, budget: { checks: number }): boolean {
    const memoKey = `${child.id}>${issuer.id}`;
    const known = this.links.get(memoKey);
    if (known !== undefined) return known;
    let ok: boolean;
    try {
      if (!issuer.ca || !child.x509.checkIssued(issuer.x509)) ok = false;
      else {
        // Out of checks: not remembered, so the same pair in an honest answer is still judged.
        if (budget.checks <= 0) return false;
        budget.checks--;
        ok = child.x509.verify(issuer.key);
      }
    } catch {
      ok = false;
    }
    this.links.set(memoKey, ok);
    return ok;
  }

  private evaluate(leaf: Cert, rest: Cert[]): CertChainInfo {
    const errors: ShakenErrorCode[] = [];
    // A leaf whose key cannot have made an ES256 signature is not worth a single signature check.
    const path = leaf.p256 ? this.path(leaf, rest) : null;
    if (!path) errors.push('CERT_UNTRUSTED');

    let list: TnAuthList | null = null;
    try {
      list = readTnAuthList(leaf.x509.raw);
    } catch (err) {
      if (!(err instanceof DerError)) throw err;
    }
    if (!list) errors.push('CERT_NO_TNAUTHLIST');
    const spc = list?.spcs[0];
    const tnAuth = list && (list.tns.length > 0 || list.ranges.length > 0) ? authorisation(list) : undefined;

    const revocation = path ? revocationTargets(path) : [];
    return {
      key: leaf.key,
      keyIsP256: leaf.p256,
      ...(revocation.length > 0 ? { revocation } : {}),
      ...(spc !== undefined ? { spc } : {}),
      ...(tnAuth ? { tnAuth } : {}),
      errors,
      // Without a trusted path only the leaf's own dates are meaningful; the call fails on trust anyway.
      ...windowOf((path ?? [leaf]).map((c) => c.x509)),
    };
  }
}

/**
 * Every certificate of a trusted path but the anchor (the operator's own choice, revoked by
 * removing it) that names a CRL. A distribution point that cannot be read is no distribution
 * point: the CA signed it, so it is not an attacker's doing, and there is no URL to fetch.
 */
function revocationTargets(path: readonly Cert[]): RevocationTarget[] {
  const out: RevocationTarget[] = [];
  for (let i = 0; i < path.length - 1; i++) {
    const c = path[i]!;
    let dp;
    try {
      dp = readCrlDistributionPoint(c.x509.raw);
    } catch (err) {
      if (!(err instanceof DerError)) throw err;
      continue;
    }
    if (!dp) continue;
    const issuer = path[i + 1]!;
    out.push({ serial: serialKey(c.x509.serialNumber), url: dp.url, indirect: dp.indirect, issuerKey: issuer.key, issuerId: issuer.id, subject: c.subject });
  }
  return out;
}

function authorisation(list: TnAuthList): TnAuthorisation {
  return {
    tns: new Set(list.tns),
    ranges: list.ranges.map((r) => ({ length: r.start.length, lo: Number(r.start), hi: Number(r.start) + r.count - 1 })),
  };
}

/** Whether a delegate certificate's numbers include `tn` (digits). */
export function tnAuthorised(auth: TnAuthorisation, tn: string): boolean {
  if (auth.tns.has(tn)) return true;
  if (auth.ranges.length === 0 || tn.length === 0 || tn.length > 15) return false;
  const n = Number(tn);
  return auth.ranges.some((r) => r.length === tn.length && n >= r.lo && n <= r.hi);
}

/**
 * Path from the leaf to a trust anchor, by the rules of ChainJudge (each call judges afresh).
 * Served intermediates are used only as stepping stones: a path counts only when it ends at a
 * configured anchor.
 */
export function buildPath(leaf: X509Certificate, intermediates: X509Certificate[], anchors: readonly X509Certificate[]): X509Certificate[] | null {
  const judge = new ChainJudge(anchors);
  const wrap = (x: X509Certificate) => describe(x, digest(x.raw));
  const l = wrap(leaf);
  if (!l.p256) return null;
  return judge.path(l, intermediates.map(wrap))?.map((c) => c.x509) ?? null;
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
  return new ChainJudge(anchors).judge(pemText);
}

/** CERT_EXPIRED when `atMs` is outside the window in which the whole path is valid. */
export function validityError(info: CertChainInfo, atMs: number): ShakenErrorCode | null {
  return atMs < info.validFromMs || atMs > info.validToMs ? 'CERT_EXPIRED' : null;
}

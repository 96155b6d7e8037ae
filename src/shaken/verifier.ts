import type { X509Certificate } from 'node:crypto';
import type { CertFetchOutcome, CrlFetchOutcome } from './types';
import { CertCache, type CertLookup, type RedisLike, type ShakenLogger } from './cert-cache';
import { tnAuthorised, validityError, type CertChainInfo } from './chain';
import { parseIdentityHeaders, type IdentityEntry } from './identity-header';
import { decodePassport, freshnessError, signatureFingerprint, tnDigits, type DecodedPassport } from './passport';
import { SignatureThreads } from './signature-threads';
import {
  SHAKEN_ERROR_CODES,
  type CertificateFetcher,
  type ShakenErrorCode,
  type IdentityReading,
  type ShakenVerification,
  type ShakenVerifier,
  type VerifyInput,
} from './types';
import { finishRichCallData, needsJcl, parseRichClaims, type RichCallData } from './rcd';
import { RcdContentCache } from './rcd-content';
import { createX5uFetcher } from './x5u-fetcher';
import { CrlCache, DEFAULT_MAX_CRL_BYTES } from './crl-cache';
import { RevocationChecker } from './revocation';

/** Largest jCard fetched for rich call data: a name card, not a photo album. */
export const DEFAULT_MAX_RCD_BYTES = 8 * 1024;

export interface ShakenVerifierOptions {
  /** STI-CA roots. Empty means nothing is trusted: every certificate is CERT_UNTRUSTED. */
  trustAnchors: readonly X509Certificate[];
  /** Where certificates come from; the policy-checking HTTPS fetcher by default. */
  fetcher?: CertificateFetcher;
  /** Lab only: http: and loopback/private x5u hosts. */
  allowInsecure?: boolean;
  /** Freshness window for iat, seconds (default 60). */
  maxAgeS?: number;
  /** How far iat may lie after receivedAt before it is FUTURE_IAT, seconds (default 5). */
  clockSkewS?: number;
  /** Budget for a cold certificate fetch, ms (default 1500). */
  fetchTimeoutMs?: number;
  /** Optional second cache level shared between instances. */
  redis?: RedisLike | null;
  /** Where certificate chains are kept in Redis (default under `callguard:`). */
  redisPrefix?: string;
  logger?: ShakenLogger;
  /** Clock for certificate cache lifetimes (default Date.now). */
  now?: () => number;
  /** How long a failing x5u is remembered, ms (default 30 s). */
  negativeTtlMs?: number;
  /** Trusted chains the certificate cache keeps (default 10,000); failures and untrusted chains get a fifth of that, apart. */
  certCacheSize?: number;
  /** Identities verified per call (default 5; beyond it they are dropped and the call carries MALFORMED). */
  maxIdentities?: number;
  /**
   * Certificates one call may ask to be loaded (from Redis or fetched) when not already in
   * memory (default 2: a shaken PASSporT and one div with another signer). A cold load is the
   * costly part of a call (fetch, X.509 parsing, chain signatures, about 1-2 ms of CPU); a
   * PASSporT past the allowance gets X5U_FETCH_FAILED, which leaves it unverified, not failed.
   */
  maxColdLoadsPerCall?: number;
  /** Told how each x5u fetch ended (see CertCacheOptions.onFetch). */
  onCertFetch?: (outcome: CertFetchOutcome) => void;
  /** Where CRLs come from; the guarded HTTPS fetcher with a cap of DEFAULT_MAX_CRL_BYTES by default. */
  crlFetcher?: CertificateFetcher;
  /** Signers trusted for indirect CRLs (SHAKEN_CRL_SIGNERS). */
  crlSigners?: readonly X509Certificate[];
  /** SHAKEN_CRL_REQUIRED: a certificate whose CRL cannot be had fails with CERT_REVOKED (default false). */
  crlRequired?: boolean;
  /** Where CRLs are kept in Redis (default under `callguard:`). */
  crlRedisPrefix?: string;
  /** Told how each CRL fetch ended. */
  onCrlFetch?: (outcome: CrlFetchOutcome) => void;
  /** Told of each chain judged without its CRL (whatever crlRequired says). */
  onCrlUnavailable?: () => void;
  /** Told the result of each verification (its verstat and error codes), for counting. */
  onVerification?: (result: Pick<ShakenVerification, 'verstat' | 'errors'>) => void;
  /**
   * Where rich call data's referenced jCards (`jcl`) come from: the x5u fetcher's guards (https
   * only unless allowInsecure, public addresses, no redirects) with a DEFAULT_MAX_RCD_BYTES cap by default.
   */
  rcdFetcher?: CertificateFetcher;
  /** Deadline of a `jcl` fetch on the call's path, ms (default 1000, never more than fetchTimeoutMs). */
  rcdFetchTimeoutMs?: number;
  /**
   * Worker threads of the verifier's own that check ES256 signatures, in batches (see
   * signature-threads.ts). Default 0: libuv's thread pool checks them, one wake-up each.
   */
  signatureThreads?: number;
}

export interface DefaultShakenVerifier extends ShakenVerifier {
  readonly certCache: CertCache;
  readonly crlCache: CrlCache;
  /**
   * Puts a new set of STI-CA roots in force (see CertCache.setTrustAnchors). A call's
   * certificates are all looked up in one turn of the event loop, so each call is judged under
   * one set: the one in force when it began, or the new one.
   */
  setTrustAnchors(anchors: readonly X509Certificate[]): void;
  /** Aborts background certificate fetches and stops the signature threads (checks under way are still answered). */
  close(): Promise<void>;
}

/** The answer for an Identity that could not be read at all, or that verification broke on. */
const malformedCall = (): ShakenVerification => ({ verstat: 'TN-Validation-Failed', attestation: null, errors: ['MALFORMED'], fingerprints: [] });

/** A chain is a leaf and one or two intermediates with a CRL each: two chains a call at most need loading. */
const MAX_COLD_CRLS_PER_CALL = 4;

const UNAVAILABLE = new Set<ShakenErrorCode>(['X5U_FETCH_FAILED', 'X5U_POLICY']);
const CODE_ORDER = new Map<ShakenErrorCode, number>(SHAKEN_ERROR_CODES.map((c, i) => [c, i]));

interface Assessment {
  passport: DecodedPassport;
  errors: Set<ShakenErrorCode>;
  cert?: CertChainInfo;
  /** Set when the called number was reached through div PASSporTs (see ShakenVerification.diversion). */
  diversion?: 'spc' | 'tn';
}

function sortedCodes(codes: Iterable<ShakenErrorCode>): ShakenErrorCode[] {
  return [...new Set(codes)].sort((a, b) => CODE_ORDER.get(a)! - CODE_ORDER.get(b)!);
}

/**
 * The STIR/SHAKEN verification service (ATIS-1000074 / RFC 8224 verifier role). Per call:
 * parse the Identity values, decode each `shaken` PASSporT (and the `div` ones when the call
 * was diverted), get every needed certificate at once (memory, Redis, fetch), then check
 * signature, chain, freshness and orig/dest. The call passes when one shaken PASSporT passes
 * every check.
 */
export function createShakenVerifier(opts: ShakenVerifierOptions): DefaultShakenVerifier {
  const maxAgeS = opts.maxAgeS ?? 60;
  const clockSkewS = opts.clockSkewS ?? 5;
  const now = opts.now ?? Date.now;
  const allowInsecure = opts.allowInsecure ?? false;
  const certCache = new CertCache({
    fetcher: opts.fetcher ?? createX5uFetcher({ allowInsecure }),
    trustAnchors: opts.trustAnchors,
    allowInsecure,
    ...(opts.fetchTimeoutMs !== undefined ? { fetchTimeoutMs: opts.fetchTimeoutMs } : {}),
    ...(opts.negativeTtlMs !== undefined ? { negativeTtlMs: opts.negativeTtlMs } : {}),
    ...(opts.certCacheSize !== undefined ? { maxEntries: opts.certCacheSize } : {}),
    redis: opts.redis ?? null,
    ...(opts.redisPrefix !== undefined ? { redisPrefix: opts.redisPrefix } : {}),
    ...(opts.logger ? { logger: opts.logger } : {}),
    ...(opts.onCertFetch ? { onFetch: opts.onCertFetch } : {}),
    now,
  });
  const crlCache = new CrlCache({
    fetcher: opts.crlFetcher ?? createX5uFetcher({ allowInsecure, maxBytes: DEFAULT_MAX_CRL_BYTES }),
    allowInsecure,
    ...(opts.fetchTimeoutMs !== undefined ? { fetchTimeoutMs: opts.fetchTimeoutMs } : {}),
    ...(opts.negativeTtlMs !== undefined ? { negativeTtlMs: opts.negativeTtlMs } : {}),
    redis: opts.redis ?? null,
    ...(opts.crlRedisPrefix !== undefined ? { redisPrefix: opts.crlRedisPrefix } : {}),
    ...(opts.logger ? { logger: opts.logger } : {}),
    ...(opts.onCrlFetch ? { onFetch: opts.onCrlFetch } : {}),
    now,
  });
  const revocation = new RevocationChecker({ cache: crlCache, signers: opts.crlSigners ?? [], now, ...(opts.logger ? { logger: opts.logger } : {}) });
  const crlRequired = opts.crlRequired ?? false;
  const crlBudgetMs = opts.fetchTimeoutMs ?? 1500;
  const signatures = new SignatureThreads(opts.signatureThreads ?? 0, opts.logger ? { log: opts.logger, now } : { now });
  const rcdContent = new RcdContentCache({
    fetcher: opts.rcdFetcher ?? createX5uFetcher({ allowInsecure, maxBytes: DEFAULT_MAX_RCD_BYTES }),
    timeoutMs: Math.min(opts.rcdFetchTimeoutMs ?? 1000, opts.fetchTimeoutMs ?? 1500),
    now,
  });

  /**
   * The rich call data of the PASSporT that passed: null when it fails its integrity check or is
   * malformed (RCD_INVALID), undefined when it carries none worth showing.
   */
  async function richCallData(p: DecodedPassport): Promise<RichCallData | null | undefined> {
    const raw = p.claims.rich;
    if (!raw) return undefined;
    const parsed = parseRichClaims(raw, allowInsecure);
    if (!parsed) return null;
    const jclBody = needsJcl(parsed) ? await rcdContent.get(parsed.jcl!) : undefined;
    const result = finishRichCallData(parsed, jclBody);
    return result.ok ? result.rcd : null;
  }

  /**
   * CERT_REVOKED or nothing, once per chain and call. Revoked is revoked; a CRL that cannot be
   * had fails the chain only when SHAKEN_CRL_REQUIRED says so, and is counted either way.
   */
  function revocationError(cert: CertChainInfo): ShakenErrorCode | null {
    if (!cert.revocation) return null;
    const status = revocation.status(cert.revocation);
    if (status === 'unavailable') opts.onCrlUnavailable?.();
    return status === 'revoked' || (status === 'unavailable' && crlRequired) ? 'CERT_REVOKED' : null;
  }

  async function assess(p: DecodedPassport, certs: Map<string, CertLookup>, receivedAtMs: number, revoked: Map<CertChainInfo, ShakenErrorCode | null>): Promise<Assessment> {
    const errors = new Set(p.errors);
    const out: Assessment = { passport: p, errors };
    if (p.claims.iat !== undefined) {
      const fresh = freshnessError(p.claims.iat, receivedAtMs, maxAgeS, clockSkewS);
      if (fresh) errors.add(fresh);
    }
    if (!p.es256 || p.x5u === undefined || p.signingInput === undefined || !p.signature) return out;
    const lookup = certs.get(p.x5u);
    if (!lookup || !lookup.ok) {
      errors.add(lookup ? lookup.error : 'X5U_FETCH_FAILED');
      return out;
    }
    const cert = lookup.info;
    out.cert = cert;
    for (const e of cert.errors) errors.add(e);
    let rev = revoked.get(cert);
    if (rev === undefined) {
      rev = revocationError(cert);
      revoked.set(cert, rev);
    }
    if (rev) errors.add(rev);
    // A delegate certificate (ATIS-1000092) signs only for its own numbers: the caller's for a
    // shaken PASSporT, the diverting number for a div one (RFC 8946).
    if (cert.tnAuth) {
      const tn = p.kind === 'shaken' ? p.claims.orig : p.claims.div;
      if (tn === undefined || !tnAuthorised(cert.tnAuth, tn)) errors.add('TN_NOT_AUTHORISED');
    }
    const expired = validityError(cert, receivedAtMs);
    if (expired) errors.add(expired);
    if (!cert.keyIsP256 || !(await signatures.verify(p.signingInput, p.signature, cert.key))) errors.add('BAD_SIGNATURE');
    return out;
  }

  const limits = opts.maxIdentities !== undefined ? { maxIdentities: opts.maxIdentities } : {};
  const maxColdLoads = opts.maxColdLoadsPerCall ?? 2;

  function read(identity: string | readonly string[]): IdentityReading {
    let entries: IdentityEntry[];
    try {
      entries = parseIdentityHeaders(identity, limits);
    } catch {
      return { entries: null, fingerprints: [] };
    }
    const fingerprints: string[] = [];
    for (const e of entries) {
      if ((e.kind !== 'shaken' && e.kind !== 'div') || !e.signaturePart) continue;
      const signature = Buffer.from(e.signaturePart, 'base64url');
      if (signature.length === 0) continue;
      const fp = signatureFingerprint(signature);
      if (!fingerprints.includes(fp)) fingerprints.push(fp);
    }
    return { entries, fingerprints };
  }

  async function verifyCall(input: VerifyInput): Promise<ShakenVerification> {
    const { entries, fingerprints } = input.reading ?? read(input.identity ?? []);
    if (!entries) return malformedCall();
    const shaken: DecodedPassport[] = [];
    for (const e of entries) if (e.kind === 'shaken') shaken.push(decodePassport(e));
    if (shaken.length === 0) return { verstat: 'No-TN-Validation', attestation: null, errors: [], fingerprints: [] };

    const receivedAtRaw = input.receivedAt instanceof Date ? input.receivedAt.getTime() : NaN;
    // A caller that lost the receive time is judged at "now" rather than passing every freshness check.
    const receivedAtMs = Number.isFinite(receivedAtRaw) ? receivedAtRaw : now();
    const dest = typeof input.dest === 'string' ? tnDigits(input.dest) : '';
    const origs = new Set<string>();
    for (const n of input.origCandidates ?? []) if (typeof n === 'string' && tnDigits(n) !== '') origs.add(tnDigits(n));

    const reachesDest = (p: DecodedPassport) => dest !== '' && p.claims.dest.includes(dest);
    // div PASSporTs cost a verification each (and maybe a fetch): only a diverted call needs them.
    const divs = shaken.some((p) => !reachesDest(p)) ? entries.filter((e) => e.kind === 'div').map(decodePassport) : [];

    const certs = new Map<string, CertLookup>();
    const pending: Promise<void>[] = [];
    const started = performance.now();
    const want = (p: DecodedPassport) => {
      if (!p.es256 || p.x5u === undefined || certs.has(p.x5u)) return;
      const url = p.x5u;
      const hit = certCache.peek(url);
      if (hit) {
        certs.set(url, hit);
        return;
      }
      certs.set(url, { ok: false, error: 'X5U_FETCH_FAILED' });
      if (pending.length < maxColdLoads) pending.push(certCache.get(url).then((r) => void certs.set(url, r)));
    };
    shaken.forEach(want);
    divs.forEach(want);
    if (pending.length > 0) await Promise.all(pending);

    // CRLs nobody has asked for yet are loaded all at once, within what the certificates left of
    // the call's one fetch budget (the switch waits for the whole call); a cached CRL costs no
    // wait (and refreshes itself in the background before its nextUpdate).
    const coldCrls = new Set<string>();
    for (const l of certs.values()) if (l.ok && l.info.revocation) for (const url of revocation.cold(l.info.revocation)) coldCrls.add(url);
    if (coldCrls.size > 0) {
      const left = crlBudgetMs - (performance.now() - started);
      await Promise.all([...coldCrls].slice(0, MAX_COLD_CRLS_PER_CALL).map((url) => crlCache.get(url, left)));
    }
    const revoked = new Map<CertChainInfo, ShakenErrorCode | null>();

    // Each div is verified once, however many shaken PASSporTs lean on it.
    const divAssessments = new Map<DecodedPassport, Promise<Assessment>>();
    const assessDiv = (d: DecodedPassport) => {
      let a = divAssessments.get(d);
      if (!a) {
        a = assess(d, certs, receivedAtMs, revoked);
        divAssessments.set(d, a);
      }
      return a;
    };

    /**
     * RFC 8946: follows valid div PASSporTs (same orig, diverting from a number already reached)
     * from `signedDest` until the called number is reached; several hops are allowed. With
     * `allowUnchecked`, a div that failed only for want of its certificate counts as a hop, and
     * what kept it from being checked is returned in `unchecked`.
     */
    const follow = async (orig: string | undefined, signedDest: string[], allowUnchecked: boolean) => {
      const reached = new Set(signedDest);
      const divErrors = new Set<ShakenErrorCode>();
      const unchecked = new Set<ShakenErrorCode>();
      const used = new Set<DecodedPassport>();
      // Whether a hop was signed under a delegate certificate (telephone numbers, no SPC).
      let delegatedHop = false;
      for (let grew = true; grew && !(dest !== '' && reached.has(dest)); ) {
        grew = false;
        for (const d of divs) {
          if (used.has(d) || orig === undefined || d.claims.orig !== orig || d.claims.div === undefined || !reached.has(d.claims.div)) continue;
          used.add(d);
          const da = await assessDiv(d);
          if (da.errors.size > 0) {
            if (!allowUnchecked || ![...da.errors].every((e) => UNAVAILABLE.has(e))) {
              for (const e of da.errors) divErrors.add(e);
              continue;
            }
            for (const e of da.errors) unchecked.add(e);
          }
          if (da.cert !== undefined && da.cert.spc === undefined) delegatedHop = true;
          for (const t of d.claims.dest) reached.add(t);
          grew = true;
        }
      }
      return { reached: dest !== '' && reached.has(dest), divErrors, unchecked, delegatedHop };
    };

    // The shaken PASSporTs' signatures are checked side by side, off the event loop.
    const results = await Promise.all(shaken.map(async (p) => {
      const a = await assess(p, certs, receivedAtMs, revoked);
      const { orig, dest: signedDest } = p.claims;
      if (orig !== undefined && !origs.has(orig)) a.errors.add('ORIG_MISMATCH');
      if (signedDest.length > 0 && !reachesDest(p)) {
        // A div whose certificate could not be had is followed only when nothing else reaches
        // the called number: the call is then unverified (X5U_FETCH_FAILED), not misdirected,
        // because a fetch that failed is not evidence of anything.
        const strict = await follow(orig, signedDest, false);
        const lenient = strict.reached ? strict : await follow(orig, signedDest, true);
        if (lenient.reached) {
          for (const e of lenient.unchecked) a.errors.add(e);
          a.diversion = lenient.delegatedHop ? 'tn' : 'spc';
        } else {
          a.errors.add('DEST_MISMATCH');
          // Why the diversion did not count: the div that should have carried the call failed.
          for (const e of strict.divErrors) a.errors.add(e);
        }
      }
      return a;
    }));

    const passed = results.find((r) => r.errors.size === 0 && r.passport.claims.attest !== undefined);
    if (passed) {
      const c = passed.passport.claims;
      const out: ShakenVerification = { verstat: 'TN-Validation-Passed', attestation: c.attest!, errors: [], fingerprints };
      if (c.origid !== undefined) out.origid = c.origid;
      if (passed.passport.x5u !== undefined) out.x5u = passed.passport.x5u;
      if (passed.cert?.spc !== undefined) out.spc = passed.cert.spc;
      // A certificate that names no SPC passed only through its telephone numbers (a delegate
      // certificate): it vouches for orig and nothing else, and never for a carrier.
      out.authority = passed.cert?.spc !== undefined ? 'spc' : 'tn';
      if (c.orig !== undefined) out.orig = c.orig;
      if (passed.diversion !== undefined) out.diversion = passed.diversion;
      if (c.iat !== undefined) out.iat = c.iat;
      const rich = await richCallData(passed.passport);
      if (rich === null) out.errors = ['RCD_INVALID'];
      else if (rich !== undefined) out.rcd = rich;
      return out;
    }

    const errors = sortedCodes(results.flatMap((r) => [...r.errors]));
    const origid = results.find((r) => r.passport.claims.origid !== undefined)?.passport.claims.origid;
    const iat = results.find((r) => r.passport.claims.iat !== undefined)?.passport.claims.iat;
    const x5u = results.find((r) => r.passport.x5u !== undefined)?.passport.x5u;
    // An SPC is only news when a trusted CA vouched for it: anyone can mint a certificate naming any carrier.
    const spc = results.find((r) => r.cert?.spc !== undefined && !r.cert.errors.includes('CERT_UNTRUSTED'))?.cert?.spc;
    return {
      // Only "could not get the certificate" leaves the call unverified rather than failed:
      // anything else wrong is wrong whatever the certificate would have said.
      verstat: errors.length > 0 && errors.every((e) => UNAVAILABLE.has(e)) ? 'No-TN-Validation' : 'TN-Validation-Failed',
      attestation: null,
      ...(origid !== undefined ? { origid } : {}),
      ...(x5u !== undefined ? { x5u } : {}),
      ...(spc !== undefined ? { spc } : {}),
      errors,
      ...(iat !== undefined ? { iat } : {}),
      fingerprints,
    };
  }

  return {
    certCache,
    crlCache,
    setTrustAnchors: (anchors) => certCache.setTrustAnchors(anchors),
    close: async () => {
      certCache.close();
      crlCache.close();
      rcdContent.close();
      await signatures.close();
    },
    read,
    async verify(input: VerifyInput): Promise<ShakenVerification> {
      let result: ShakenVerification;
      try {
        result = await verifyCall(input);
      } catch (err) {
        // Verification must never take the call down with it: an unforeseen input is a malformed one.
        opts.logger?.warn({ err: err instanceof Error ? err.message : String(err) }, 'shaken verification failed unexpectedly');
        result = malformedCall();
      }
      opts.onVerification?.(result);
      return result;
    },
  };
}

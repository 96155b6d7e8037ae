import { verify, type X509Certificate } from 'node:crypto';
import type { RevocationTarget } from './chain';
import type { CachedCrl, CrlCache } from './crl-cache';
import type { ShakenLogger } from './cert-cache';

/** What the CRLs say of a chain: every certificate clear, one revoked, or one whose CRL cannot be had. */
export type RevocationStatus = 'good' | 'revoked' | 'unavailable';

export interface RevocationCheckerOptions {
  cache: CrlCache;
  /**
   * CRL signers the operator trusts for indirect CRLs (ATIS-1000080: the STI-PA signs one CRL
   * for every CA, and the distribution point names it as cRLIssuer). Empty: an indirect CRL can
   * never be verified and counts as unavailable.
   */
  signers: readonly X509Certificate[];
  now?: () => number;
  logger?: ShakenLogger;
}

/**
 * Checks a judged chain's certificates against their CRLs, from the cache only: synchronous,
 * a Set lookup per certificate once a CRL's signature has been checked (once per CRL and key).
 * Runs on every use of a chain, so a cached chain meets a newer CRL as soon as the cache has
 * it. A CRL whose signature does not verify is unavailable, never evidence of anything.
 */
export class RevocationChecker {
  private readonly now: () => number;

  constructor(private readonly o: RevocationCheckerOptions) {
    this.now = o.now ?? Date.now;
  }

  /** CRL URLs of these targets that the cache knows nothing of yet (the caller may load them within its budget). */
  cold(targets: readonly RevocationTarget[]): string[] {
    const out: string[] = [];
    for (const t of targets) if (this.o.cache.peek(t.url) === undefined && !out.includes(t.url)) out.push(t.url);
    return out;
  }

  status(targets: readonly RevocationTarget[]): RevocationStatus {
    let unavailable = false;
    for (const t of targets) {
      const crl = this.o.cache.peek(t.url);
      if (crl === undefined || crl === 'unavailable' || crl.nextUpdateMs <= this.now() || !this.signed(crl, t)) {
        unavailable = true;
        continue;
      }
      if (crl.revoked.has(t.serial)) return 'revoked';
    }
    return unavailable ? 'unavailable' : 'good';
  }

  private signed(crl: CachedCrl, t: RevocationTarget): boolean {
    const memoKey = t.indirect ? 'indirect' : t.issuerId;
    const known = crl.checked.get(memoKey);
    if (known !== undefined) return known;
    const keys = t.indirect ? this.o.signers.map((s) => s.publicKey) : [t.issuerKey];
    let ok = false;
    for (const key of keys) {
      try {
        if (verify(crl.digest, crl.tbs, key, crl.signature)) {
          ok = true;
          break;
        }
      } catch {
        // A key of another type than the signature's: not this signer.
      }
    }
    if (!ok) this.o.logger?.warn({ url: t.url, indirect: t.indirect }, t.indirect ? 'CRL not signed by any configured CRL signer (SHAKEN_CRL_SIGNERS)' : 'CRL not signed by the issuing CA');
    // Bounded by the CRL's own life: the map goes with the cache entry.
    if (crl.checked.size < 64) crl.checked.set(memoKey, ok);
    return ok;
  }
}

import type { X509Certificate } from 'node:crypto';
import { parsePemCertificates } from './chain';
import { loadCertificateFiles } from './trust-anchors';

/**
 * CRL signers from SHAKEN_CRL_SIGNERS: one PEM file, or a folder whose *.pem / *.crt files are
 * all read (like SHAKEN_TRUST_ANCHORS). These are the certificates whose keys may sign an
 * indirect CRL (ATIS-1000080: the STI-PA's), trusted as given: no path is built to them, and
 * they need not be CA certificates. Runs at start-up and throws with the offending path.
 */
export function loadCrlSigners(path: string): X509Certificate[] {
  return loadCertificateFiles(path, 'SHAKEN_CRL_SIGNERS', (pem) => parsePemCertificates(pem, Infinity));
}

import type { X509Certificate } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parsePemCertificates } from './chain';

/**
 * CRL signers from SHAKEN_CRL_SIGNERS: one PEM file, or a folder whose *.pem / *.crt files are
 * all read (like SHAKEN_TRUST_ANCHORS). These are the certificates whose keys may sign an
 * indirect CRL (ATIS-1000080: the STI-PA's), trusted as given: no path is built to them, and
 * they need not be CA certificates. Runs at start-up and throws with the offending path.
 */
export function loadCrlSigners(path: string): X509Certificate[] {
  let files: string[];
  try {
    files = statSync(path).isDirectory()
      ? readdirSync(path)
          .filter((name) => /\.(pem|crt)$/i.test(name))
          .sort()
          .map((name) => join(path, name))
      : [path];
  } catch (err) {
    throw new Error(`SHAKEN_CRL_SIGNERS: cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
  const signers: X509Certificate[] = [];
  for (const file of files) {
    try {
      signers.push(...parsePemCertificates(readFileSync(file, 'utf8'), Infinity));
    } catch (err) {
      throw new Error(`SHAKEN_CRL_SIGNERS: ${file}: ${(err as Error).message}`, { cause: err });
    }
  }
  if (signers.length === 0) throw new Error(`SHAKEN_CRL_SIGNERS: no certificate in ${path}`);
  return signers;
}

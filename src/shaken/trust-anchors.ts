import type { X509Certificate } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parsePemCertificates } from './chain';

/**
 * STI-CA roots from SHAKEN_TRUST_ANCHORS: one PEM file (any number of certificates), or a
 * folder whose *.pem / *.crt files are all read. Runs at start-up, so it throws with the
 * offending path rather than starting a service that silently trusts nothing.
 */
export function loadTrustAnchors(path: string): X509Certificate[] {
  let files: string[];
  try {
    files = statSync(path).isDirectory()
      ? readdirSync(path)
          .filter((name) => /\.(pem|crt)$/i.test(name))
          .sort()
          .map((name) => join(path, name))
      : [path];
  } catch (err) {
    throw new Error(`SHAKEN_TRUST_ANCHORS: cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
  const anchors: X509Certificate[] = [];
  for (const file of files) {
    let certs: X509Certificate[];
    try {
      certs = parsePemCertificates(readFileSync(file, 'utf8'), Infinity);
    } catch (err) {
      throw new Error(`SHAKEN_TRUST_ANCHORS: ${file}: ${(err as Error).message}`, { cause: err });
    }
    // Chain building only accepts CA certificates as issuers, so a non-CA here would be
    // silently useless: most likely a leaf or a bundle put in the wrong place.
    const notCa = certs.find((c) => !c.ca);
    if (notCa) throw new Error(`SHAKEN_TRUST_ANCHORS: ${file}: "${notCa.subject.replace(/\n/g, ', ')}" is not a CA certificate`);
    anchors.push(...certs);
  }
  if (anchors.length === 0) throw new Error(`SHAKEN_TRUST_ANCHORS: no certificate in ${path}`);
  return anchors;
}

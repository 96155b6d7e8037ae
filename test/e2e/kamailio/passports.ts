/**
 * PASSporTs for test/e2e/kamailio/run.sh: a throwaway STI PKI, and Identity header values signed
 * under it for one call, fresh at the time this runs.
 *
 *   tsx test/e2e/kamailio/passports.ts <out-dir> <x5u> <orig> <dest>
 *
 * Writes <out-dir>/root.pem (the trust anchor to give the service) and <out-dir>/chain.pem (what
 * the x5u URL must serve), and prints one line per PASSporT: its name, a tab, the Identity value.
 *   good           attestation A, signed for orig and dest: verifies
 *   bad-signature  the same claims, its signature altered by one bit: fails (BAD_SIGNATURE)
 *   stale          well signed, but an hour old: fails (STALE)
 *   rcd            verifies, and carries rich call data (RFC 9795) whose name has quotes and
 *                  angle brackets a display name must not get
 *
 *   tsx test/e2e/kamailio/passports.ts --each <out-dir> <x5u> < calls.tsv
 *
 * For test/e2e/kamailio/load.sh: one PASSporT per input line `good|bad-signature <tab> orig <tab>
 * dest`, each with an origid of its own, printed as the bare JWS, one a line in input order (SIPp's
 * injection files split fields at ';', which the Identity parameters contain).
 */
import { randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { identity, makePki } from '../../shaken/helpers';

const each = process.argv[2] === '--each';
const [outDir, x5u, orig, dest] = process.argv.slice(each ? 3 : 2);
if (!outDir || !x5u || (!each && (!orig || !dest))) {
  process.stderr.write('usage: passports.ts <out-dir> <x5u> <orig> <dest> | passports.ts --each <out-dir> <x5u> < calls.tsv\n');
  process.exit(2);
}

/** Flips one bit in the middle of the JWS signature; the header parameters after it stay. */
function alterSignature(value: string): string {
  const end = value.indexOf(';');
  const token = end < 0 ? value : value.slice(0, end);
  const [h, p, s] = token.split('.') as [string, string, string];
  const sig = Buffer.from(s, 'base64url');
  sig[sig.length >> 1]! ^= 0x01;
  return `${h}.${p}.${sig.toString('base64url')}${end < 0 ? '' : value.slice(end)}`;
}

const pki = makePki();
try {
  writeFileSync(join(outDir, 'root.pem'), pki.root.certPem);
  writeFileSync(join(outDir, 'chain.pem'), pki.chainPem);
  const now = Math.floor(Date.now() / 1000);
  const signed = (iat: number, o: string, d: string, claims?: Record<string, unknown>) =>
    identity({ x5u, key: pki.leaf.key, iat, orig: o, dest: [d], attest: 'A', origid: randomUUID(), ...(claims ? { claims } : {}) });
  if (each) {
    const tokens = readFileSync(0, 'utf8')
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => {
        const [kind, o, d] = line.split('\t') as [string, string, string];
        const value = signed(now, o, d);
        const token = (kind === 'bad-signature' ? alterSignature(value) : value).split(';')[0]!;
        return `${token}\n`;
      });
    process.stdout.write(tokens.join(''));
  } else {
    const lines = [
      ['good', signed(now, orig!, dest!)],
      ['bad-signature', alterSignature(signed(now, orig!, dest!))],
      ['stale', signed(now - 3600, orig!, dest!)],
      ['rcd', signed(now, orig!, dest!, { rcd: { nam: 'Acme "Parcels" <sip:x@evil>' }, crn: 'Your parcel is at the door' })],
    ];
    process.stdout.write(lines.map(([name, value]) => `${name}\t${value}\n`).join(''));
  }
} finally {
  pki.cleanup();
}

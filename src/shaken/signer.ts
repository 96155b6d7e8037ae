import { canonicalJson } from './canonical-json';
import { createPrivateKey, randomUUID, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { StartupError } from '../errors';
import { parsePemCertificates } from './chain';
import { DerError, readTnAuthList } from './der';
import type { Attestation } from './types';
import { checkX5uUrl, X5uPolicyError } from './url-policy';

/**
 * PASSporT signing (STI-AS): the one home for making ES256 JWS, used by POST /stir/v1/signing
 * and by the tests that need tokens of their own.
 */

/** The signing key or its companions cannot be used; names the variable to fix. */
export class SigningKeyError extends StartupError {}

/**
 * A JWS compact serialisation signed ES256 over the exact header and payload text given. The
 * signature is JOSE's raw r||s (RFC 7518 section 3.4), not DER.
 */
export function signJwsEs256(headerJson: string, payloadJson: string, key: KeyObject): string {
  const input = `${Buffer.from(headerJson).toString('base64url')}.${Buffer.from(payloadJson).toString('base64url')}`;
  const signature = cryptoSign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
  return `${input}.${signature.toString('base64url')}`;
}

export interface ShakenClaims {
  attest: Attestation;
  /** `orig.tn`: E.164 digits without the `+` (ATIS-1000074). */
  orig: string;
  /** `dest.tn[]`: E.164 digits without the `+`. */
  dest: string[];
  /** Seconds since the epoch. */
  iat: number;
  origid: string;
}

/** A full-form Identity header value (RFC 8224 section 4.1) carrying a `shaken` PASSporT. */
export function shakenIdentity(claims: ShakenClaims, key: KeyObject, x5u: string): string {
  const header = canonicalJson({ alg: 'ES256', ppt: 'shaken', typ: 'passport', x5u });
  const payload = canonicalJson({ attest: claims.attest, dest: { tn: claims.dest }, iat: claims.iat, orig: { tn: claims.orig }, origid: claims.origid });
  return `${signJwsEs256(header, payload, key)};info=<${x5u}>;alg=ES256;ppt=shaken`;
}

/** What a caller asks to have signed; `origid` and `iat` are filled in when absent. */
export type SigningRequest = Omit<ShakenClaims, 'origid' | 'iat'> & { origid?: string; iat?: number };

export class PassportSigner {
  constructor(
    private readonly key: KeyObject,
    readonly x5u: string,
    private readonly now: () => number,
  ) {}

  /** Signs with `iat` from the service's clock and a fresh UUID `origid` unless given. */
  sign(request: SigningRequest): { identity: string; claims: ShakenClaims } {
    const claims: ShakenClaims = {
      attest: request.attest,
      orig: request.orig,
      dest: request.dest,
      iat: request.iat ?? Math.floor(this.now() / 1000),
      origid: request.origid ?? randomUUID(),
    };
    return { identity: shakenIdentity(claims, this.key, this.x5u), claims };
  }
}

export interface SigningSettings {
  /** Path of the PEM private key (SHAKEN_SIGNING_KEY). */
  keyFile: string;
  /** SHAKEN_SIGNING_X5U. */
  x5u: string | undefined;
  /** Path of the PEM signing certificate (SHAKEN_SIGNING_CERT), optional. */
  certFile?: string | undefined;
  /** SHAKEN_X5U_ALLOW_INSECURE: lets a test or lab publish its chain over http. */
  allowInsecureX5u: boolean;
  now: () => number;
}

function readFile(variable: string, path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new SigningKeyError(`${variable}: cannot read ${path}: ${(err as Error).message}`);
  }
}

/** The key's kind in words, for the message that refuses it. */
function describeKey(key: KeyObject): string {
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (key.asymmetricKeyType === 'ec') return `an EC key on ${curve === 'secp384r1' ? 'P-384' : curve === 'secp521r1' ? 'P-521' : (curve ?? 'an unknown curve')}`;
  return `a${key.asymmetricKeyType === 'rsa' || key.asymmetricKeyType === 'ed25519' ? 'n' : ''} ${(key.asymmetricKeyType ?? 'unknown').toUpperCase()} key`;
}

/**
 * Builds the signer from its settings, checking at start everything that would otherwise fail
 * a call later or, worse, produce PASSporTs nobody can verify: a readable EC P-256 private key
 * (ES256 is the only algorithm SHAKEN allows), an x5u that verifiers will fetch, and, when the
 * certificate is given, that it holds this key's public half. Returns warnings worth logging.
 */
export function loadPassportSigner(s: SigningSettings): { signer: PassportSigner; warnings: string[] } {
  const warnings: string[] = [];
  const pem = readFile('SHAKEN_SIGNING_KEY', s.keyFile);
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (err) {
    throw new SigningKeyError(`SHAKEN_SIGNING_KEY: ${s.keyFile} is not a PEM private key: ${(err as Error).message}`);
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new SigningKeyError(`SHAKEN_SIGNING_KEY: ${s.keyFile} holds ${describeKey(key)}; SHAKEN signs with ES256 only, which needs an EC P-256 (prime256v1) private key`);
  }

  if (s.x5u === undefined) throw new SigningKeyError('SHAKEN_SIGNING_X5U is required with SHAKEN_SIGNING_KEY: the https URL where verifiers fetch the signing certificate chain');
  try {
    checkX5uUrl(s.x5u, s.allowInsecureX5u);
  } catch (err) {
    if (!(err instanceof X5uPolicyError)) throw err;
    throw new SigningKeyError(
      `SHAKEN_SIGNING_X5U: ${err.message}: verifiers would refuse to fetch it (an https URL on a public host; SHAKEN_X5U_ALLOW_INSECURE=true allows others in a lab)`,
    );
  }

  if (s.certFile !== undefined) {
    let cert;
    try {
      cert = parsePemCertificates(readFile('SHAKEN_SIGNING_CERT', s.certFile), 10)[0];
    } catch (err) {
      if (err instanceof SigningKeyError) throw err;
      throw new SigningKeyError(`SHAKEN_SIGNING_CERT: ${s.certFile}: ${(err as Error).message}`);
    }
    if (!cert) throw new SigningKeyError(`SHAKEN_SIGNING_CERT: no certificate in ${s.certFile}`);
    if (!cert.checkPrivateKey(key)) {
      throw new SigningKeyError(`SHAKEN_SIGNING_KEY does not match the certificate in SHAKEN_SIGNING_CERT (${cert.subject.replace(/\n/g, ', ')}): every PASSporT would fail verification`);
    }
    const at = s.now();
    if (at < Date.parse(cert.validFrom) || at > Date.parse(cert.validTo)) {
      warnings.push(`SHAKEN_SIGNING_CERT is not valid now (${cert.validFrom} to ${cert.validTo}): verifiers will refuse the PASSporTs signed with it`);
    }
    try {
      if (!readTnAuthList(cert.raw)) warnings.push('SHAKEN_SIGNING_CERT has no TNAuthList: SHAKEN verifiers will refuse it');
    } catch (err) {
      if (!(err instanceof DerError)) throw err;
      warnings.push(`SHAKEN_SIGNING_CERT has an unreadable TNAuthList (${err.message})`);
    }
  }
  return { signer: new PassportSigner(key, s.x5u, s.now), warnings };
}

/** The STIR/SHAKEN room's public surface: the verifier and the parts its tests and tools use. */
export {
  CERT_FETCH_OUTCOMES,
  SHAKEN_ERROR_CODES,
  type Attestation,
  type CertFetchOutcome,
  type CertificateFetcher,
  type IdentityReading,
  type ShakenErrorCode,
  type ShakenVerification,
  type ShakenVerifier,
  type Verstat,
  type VerifyInput,
} from './types';
export { createShakenVerifier, DEFAULT_MAX_RCD_BYTES, type DefaultShakenVerifier, type ShakenVerifierOptions } from './verifier';
export { canonicalJson } from './canonical-json';
export {
  cleanDisplayText,
  finishRichCallData,
  jCardName,
  MAX_CALL_REASON,
  MAX_DISPLAY_NAME,
  parseRichClaims,
  type ParsedRichClaims,
  type RawRichClaims,
  type RichCallData,
} from './rcd';
export { RcdContentCache, type RcdContentCacheOptions } from './rcd-content';
export { parseIdentityHeaders, parseIdentity, splitOutside, type IdentityEntry, type IdentityKind, type ParseLimits } from './identity-header';
export {
  decodePassport,
  freshnessError,
  signatureFingerprint,
  tnDigits,
  verifyEs256,
  type DecodedPassport,
  type PassportClaims,
} from './passport';
export { createX5uFetcher, parseMaxAge, X5uFetchError, DEFAULT_MAX_X5U_BYTES, DEFAULT_X5U_CONNECT_TIMEOUT_MS, type X5uFetcherOptions, type ResolvedAddress } from './x5u-fetcher';
export { checkX5uUrl, isPublicAddress, X5uPolicyError } from './url-policy';
export { CertCache, redisKeyFor, type CertCacheOptions, type CertLookup, type RedisLike, type ShakenLogger } from './cert-cache';
export { buildPath, ChainJudge, evaluateChain, MAX_CERTS_PER_ANSWER, MAX_SIGNATURE_CHECKS, parsePemCertificates, tnAuthorised, validityError, type CertChainInfo, type RevocationTarget, type TnAuthorisation } from './chain';
export { findExtension, parseTnAuthList, readTnAuthList, subjectKeyIsP256, DerError, TN_AUTH_LIST_OID, type TnAuthList, type TnRange } from './der';
export { FetchSlots, IP_LITERAL_SITE, siteOf, type FetchSlotsOptions } from './fetch-slots';
export { loadCrlSigners } from './crl-signers';
export { CrlCache, crlDer, crlRedisKeyFor, DEFAULT_MAX_CRL_BYTES, type CachedCrl, type CrlCacheOptions, type CrlPeek } from './crl-cache';
export { RevocationChecker, type RevocationStatus } from './revocation';
export { CRL_FETCH_OUTCOMES, type CrlFetchOutcome } from './types';
export { parseCrl, readCrlDistributionPoint, serialKey, type CrlDistributionPoint, type ParsedCrl } from './der';
export {
  fixedTrustAnchors,
  loadTrustAnchors,
  readTrustAnchorSet,
  trustAnchorSet,
  TrustAnchorSource,
  MAX_ANCHOR_FILES,
  MAX_ANCHOR_FILE_BYTES,
  type ReloadOutcome,
  type ReloadResult,
  type TrustAnchorSet,
  type TrustAnchorSourceOptions,
  type TrustAnchorsStatus,
} from './trust-anchors';
export { sipReasonHeader, sipReasonsFor, type SipReason } from './sip-reasons';
export {
  loadPassportSigner,
  PassportSigner,
  shakenIdentity,
  signJwsEs256,
  SigningKeyError,
  type ShakenClaims,
  type SigningRequest,
  type SigningSettings,
} from './signer';

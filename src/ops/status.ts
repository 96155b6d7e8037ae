import type { Config } from '../config';
import type { TrustAnchorSet } from '../shaken';

const ROLES = ['switch', 'bank', 'admin'] as const;
type Role = (typeof ROLES)[number];

/** What the summary is made of, read from the built services at the moment it is asked for. */
export interface StatusFacts {
  version: string;
  /** `process.version`. */
  node: string;
  config: Config;
  /** The API keys' holders: never their hashes. */
  keys: readonly { name: string; role: Role; bankId: string | null }[];
  registry: {
    /** The backend's name: `file` (REGISTRY_DATA_DIR) or `redis`. */
    backend: string;
    /** Where the seed came from: REGISTRY_FILE, or the sample registry. */
    seed: string;
    version: string;
    size: { banks: number; numbers: number; prefixes: number };
  };
  trustAnchors: TrustAnchorSet;
  /** The numbering data in use; null when NUMBERING_DATA_DIR is unset. */
  numbering: { version: string; ranges: number; generatedAt: string | null; sources: readonly { file: string; sha256: string }[] } | null;
  policy: { version: string; source: 'built-in' | 'file'; path?: string; loadedAt: number };
  /** The shadow policy's version, when one is set. */
  shadowPolicyVersion: string | null;
}

export type StatusSummary = ReturnType<typeof statusSummary>;

/**
 * What an operator checks first: which build runs, with which settings, keys, registry, roots,
 * numbering data and policy. Logged once at start and answered by GET /v1/status. The
 * configuration holds file paths, sizes and switches, which are shown as they are; its one
 * secret, the credentials a REDIS_URL may carry, is redacted, and keys are shown by holder only.
 */
export function statusSummary(f: StatusFacts) {
  const { config } = f;
  return {
    service: { name: 'callguard' as const, version: f.version, node: f.node },
    config: { ...config, redisUrl: config.redisUrl === undefined ? null : redactRedisUrl(config.redisUrl) },
    keys: {
      /** No keys: every route is open to the loopback address. */
      open: f.keys.length === 0,
      count: f.keys.length,
      byRole: Object.fromEntries(
        ROLES.map((role) => {
          const held = f.keys.filter((k) => k.role === role);
          return [role, { count: held.length, names: held.map((k) => k.name).sort() }];
        }),
      ) as Record<Role, { count: number; names: string[] }>,
    },
    registry: {
      source: f.registry.backend === 'redis' ? ('redis' as const) : f.registry.backend === 'file' ? ('data-directory' as const) : ('other' as const),
      ...(f.registry.backend === 'file' ? { dataDir: config.registryDataDir } : {}),
      seed: f.registry.seed,
      version: f.registry.version,
      ...f.registry.size,
    },
    trustAnchors: {
      path: config.shaken.trustAnchors ?? null,
      count: f.trustAnchors.certs.length,
      fingerprint: f.trustAnchors.fingerprint,
      soonestExpiry: f.trustAnchors.soonestExpiryMs === null ? null : isoOrNull(f.trustAnchors.soonestExpiryMs),
      anchors: f.trustAnchors.certs.map((c) => ({
        subject: c.subject.replace(/\n/g, ', '),
        fingerprint256: c.fingerprint256,
        notAfter: isoOrNull(Date.parse(c.validTo)),
      })),
    },
    numbering: f.numbering && {
      dataDir: config.numberingDataDir ?? null,
      version: f.numbering.version,
      ranges: f.numbering.ranges,
      generatedAt: f.numbering.generatedAt,
      sources: f.numbering.sources.map((s) => ({ file: s.file, sha256: s.sha256 })),
    },
    policy: {
      version: f.policy.version,
      source: f.policy.source,
      path: f.policy.path ?? null,
      loadedAt: new Date(f.policy.loadedAt).toISOString(),
      shadowVersion: f.shadowPolicyVersion,
    },
  };
}

function isoOrNull(ms: number): string | null {
  return Number.isFinite(ms) ? new Date(ms).toISOString() : null;
}

/** Query parameters a Redis URL may carry credentials in (ioredis reads its options from the query too). */
const SECRET_PARAM = /pass|auth|secret|token|key/i;

/**
 * REDIS_URL (with REDIS_CLUSTER, a comma-separated list of them) without its credentials: the
 * password of the user part and any credential-like query parameter become `***`; the user name,
 * host, port and database stay, since they say which Redis is meant. A URL that cannot be parsed
 * is not shown at all.
 */
export function redactRedisUrl(value: string): string {
  return value
    .split(',')
    .map((part) => {
      const text = part.trim();
      let url: URL;
      try {
        url = new URL(text);
      } catch {
        return '***';
      }
      if (url.password) url.password = '***';
      // A user part with no password is redacted too: before Redis 6 there were no user names,
      // and `redis://secret@host` is more often a password written in the wrong place.
      else if (url.username) url.username = '***';
      for (const name of [...url.searchParams.keys()]) if (SECRET_PARAM.test(name)) url.searchParams.set(name, '***');
      return url.toString().replace(/%2A/g, '*');
    })
    .join(',');
}

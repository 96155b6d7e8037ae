import { readFileSync } from 'node:fs';
import { StartupError } from '../errors';
import { DEFAULT_DOCUMENT, documentVersion, readPolicyDocument, type Policy, type PolicyDocument } from '../scoring';

export class PolicyFileError extends StartupError {}

/** The scoring policy deciding calls now: what GET /v1/policy answers. */
export interface PolicyInForce {
  document: PolicyDocument;
  /** In every verdict cache key and decision record. */
  version: string;
  source: 'built-in' | 'file';
  path?: string;
  loadedAt: number;
}

function readFile(path: string): PolicyDocument {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new PolicyFileError(`POLICY_FILE ${path} cannot be read as JSON: ${(err as Error).message}`);
  }
  const read = readPolicyDocument(raw);
  if ('problems' in read) throw new PolicyFileError(`POLICY_FILE ${path} is invalid: ${read.problems.join('; ')}`);
  return read.document;
}

/**
 * The policy in force, from POLICY_FILE or built in, swapped whole on reload so that a call
 * sees one policy from start to end. A bad file on reload keeps the running policy.
 */
export class PolicySource {
  private inForce: PolicyInForce;

  constructor(
    private readonly path: string | undefined,
    private readonly now: () => number,
    /** Stands for the built-in policy (tests, the bench). */
    private readonly builtIn: Policy = DEFAULT_DOCUMENT.policy,
  ) {
    this.inForce = this.load();
  }

  current(): PolicyInForce {
    return this.inForce;
  }

  /** Re-reads POLICY_FILE; on any problem the running policy stays and the reason is answered. */
  reload(): { ok: true; version: string; changed: boolean } | { ok: false; reason: string } {
    let next: PolicyInForce;
    try {
      next = this.load();
    } catch (err) {
      return { ok: false, reason: (err as Error).message };
    }
    // The store keeps reports for the age it was opened with: a longer one needs a restart.
    if (next.document.policy.reports.maxAgeS !== this.inForce.document.policy.reports.maxAgeS)
      return { ok: false, reason: `POLICY_FILE ${this.path}: reports.maxAgeS sets how long reports are kept and changes only on restart` };
    const changed = next.version !== this.inForce.version;
    if (changed) this.inForce = next;
    return { ok: true, version: this.inForce.version, changed };
  }

  private load(): PolicyInForce {
    const document = this.path === undefined ? { policy: this.builtIn, profiles: {} } : readFile(this.path);
    return {
      document,
      version: documentVersion(document),
      source: this.path === undefined ? 'built-in' : 'file',
      ...(this.path !== undefined ? { path: this.path } : {}),
      loadedAt: this.now(),
    };
  }
}

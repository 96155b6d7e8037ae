import { isDeepStrictEqual } from 'node:util';
import { NotFoundError, ValidationError } from '../errors';
import { documentVersion, readPolicyDocument, REASON_CODES, type Decision, type PolicyDocument, type ReasonCode, type Verdict } from '../scoring';
import { MAX_SHADOW_EXAMPLES, mergeTally, type ShadowCounts, type ShadowExample, type ShadowSetting, type ShadowStore, type ShadowTally } from '../state';

/** What GET /v1/policy/shadow/report answers. */
export interface ShadowReport {
  version: string;
  since: string;
  /** Calls decided under the candidate since it was set (every instance's, up to one sync behind). */
  calls: number;
  /** Verdict pairs that differ, most frequent first. */
  changed: { live: Verdict; shadow: Verdict; count: number }[];
  /** Recent calls whose verdict the candidate would change, newest first. */
  examples: { callId?: string; at: string; live: Verdict; shadow: Verdict; liveScore: number; shadowScore: number; reasons: ReasonCode[] }[];
}

interface Candidate {
  document: PolicyDocument;
  version: string;
}

/** The settings that shape what is counted across calls: a candidate keeps the live ones (see `set`). */
const COUNTING = ['velocity', 'campaign', 'reports'] as const;

export interface ShadowPolicyOptions {
  store: ShadowStore;
  /** The live policy document, to compare a candidate's counting settings with. */
  live: () => PolicyDocument;
  now: () => number;
  log: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
  /** How often tallies go to the store and a change made through another instance is learnt (ms). Default 1000. */
  syncMs?: number;
}

/**
 * A candidate policy decided beside the live one on every scored call, without touching the
 * answer: how an operator sees what a change of weights would do before it blocks a call.
 *
 * A call's part is in process and costs one more pure decision when a candidate is set, nothing
 * when none is: `candidate()` and `record()` do no I/O. Every `syncMs` the tally goes to the store
 * (shared by every instance on Redis), and the instance learns of a candidate set or ended
 * through another. While the store is away the tally waits (bounded: counts and 100 examples).
 *
 * The candidate is judged on the live counts across calls (velocity, campaigns, reports): those
 * are counted once a call under the live windows, so a candidate must keep them (see `set`).
 */
export class ShadowPolicy {
  private active: Candidate | null = null;
  private pending: ShadowTally = { calls: 0, changed: new Map(), examples: [] };
  private timer: NodeJS.Timeout | null = null;
  private syncing: Promise<void> | null = null;
  /** The sync that follows the one under way, for calls recorded after it took the tally. */
  private nextSync: Promise<void> | null = null;

  constructor(private readonly opts: ShadowPolicyOptions) {}

  /** The candidate in force on this instance, if any: read once a call. */
  candidate(): Candidate | null {
    return this.active;
  }

  /** One call decided under both policies, the candidate being `version`. */
  record(version: string, callId: string | undefined, at: number, live: Decision, shadow: Decision): void {
    if (this.active?.version !== version) return;
    const p = this.pending;
    p.calls++;
    if (live.verdict === shadow.verdict) return;
    const pair = `${live.verdict} ${shadow.verdict}`;
    p.changed.set(pair, (p.changed.get(pair) ?? 0) + 1);
    const example: ShadowExample = { at, live: live.verdict, shadow: shadow.verdict, liveScore: live.score, shadowScore: shadow.score, reasons: shadow.reasons.map((r) => r.code) };
    if (callId !== undefined) example.callId = callId;
    if (p.examples.length >= MAX_SHADOW_EXAMPLES) p.examples.shift();
    p.examples.push(example);
  }

  /**
   * Sets a candidate from a policy document (POLICY_FILE's format). A candidate already set with
   * the same version keeps its counts; another replaces it and counts start again.
   */
  async set(raw: unknown): Promise<ShadowReport> {
    const read = readPolicyDocument(raw);
    if ('problems' in read)
      throw new ValidationError(null, `the policy document is invalid: ${read.problems.join('; ')}`, { details: read.problems.map(problemDetail) });
    const { document } = read;
    const live = this.opts.live().policy;
    const differs = COUNTING.filter((k) => !isDeepStrictEqual(document.policy[k], live[k]));
    if (differs.length > 0)
      throw new ValidationError(
        differs[0]!,
        `${differs.join(', ')}: a shadow policy is judged on the live counts across calls, so it keeps the live ${differs.join(' and ')} settings; change them in POLICY_FILE`,
      );
    const version = documentVersion(document);
    await this.sync();
    if (this.active?.version !== version) {
      const setting: ShadowSetting = { version, since: this.opts.now(), document: JSON.stringify(raw) };
      await this.opts.store.set(setting);
      this.adopt({ version, document });
      this.opts.log.info({ event: 'policy.shadow.set', policyVersion: version }, 'shadow policy set');
    }
    return this.report();
  }

  /** Ends the candidate everywhere. */
  async clear(): Promise<void> {
    const had = await this.opts.store.clear();
    const version = this.active?.version;
    this.adopt(null);
    if (!had) throw new NotFoundError('no shadow policy is set');
    this.opts.log.info({ event: 'policy.shadow.ended', policyVersion: version }, 'shadow policy ended');
  }

  /** What the candidate would have changed so far; this instance's tally is sent first. */
  async report(): Promise<ShadowReport> {
    await this.sync();
    const counts = await this.opts.store.counts();
    if (counts === null) throw new NotFoundError('no shadow policy is set: PUT /v1/policy/shadow sets one');
    return reportOf(counts);
  }

  /**
   * Sends this instance's tally to the store and adopts the candidate the store holds. Never
   * rejects. Resolves once every call recorded before it was asked for has been sent: a sync
   * under way took the tally as it began, so calls recorded since go in one more after it.
   */
  sync(): Promise<void> {
    if (this.syncing === null) {
      this.syncing = this.syncOnce().finally(() => (this.syncing = null));
      return this.syncing;
    }
    if (this.pending.calls === 0) return this.syncing;
    const next = () => {
      this.nextSync = null;
      return this.sync();
    };
    this.nextSync ??= this.syncing.then(next, next);
    return this.nextSync;
  }

  start(): void {
    if (this.timer) return;
    void this.sync();
    this.timer = setInterval(() => void this.sync(), this.opts.syncMs ?? 1000);
    this.timer.unref();
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.sync();
  }

  private async syncOnce(): Promise<void> {
    const tally = this.pending;
    const version = this.active?.version ?? null;
    this.pending = { calls: 0, changed: new Map(), examples: [] };
    const answer = await this.opts.store.sync(version, tally.calls > 0 ? tally : null);
    if (answer === 'unknown') {
      // Kept for the next sync, merged with what has come since (bounded like any tally).
      this.requeue(tally, version);
      return;
    }
    if (answer === null) return this.adopt(null);
    if (answer.setting.version === version) return;
    if (!('document' in answer.setting)) return;
    const read = readJson(answer.setting.document);
    const parsed = read === undefined ? null : readPolicyDocument(read);
    if (parsed === null || 'problems' in parsed) {
      // Written by this service's own set() after the same checks: only tampering gets here.
      this.opts.log.warn({ policyVersion: answer.setting.version }, 'the shared shadow policy cannot be read: it is not evaluated on this instance');
      return this.adopt(null);
    }
    this.adopt({ version: answer.setting.version, document: parsed.document });
  }

  private requeue(tally: ShadowTally, version: string | null): void {
    if (version !== (this.active?.version ?? null)) return;
    mergeTally(tally, this.pending);
    this.pending = tally;
  }

  private adopt(candidate: Candidate | null): void {
    if (candidate?.version === this.active?.version) return;
    this.active = candidate;
    this.pending = { calls: 0, changed: new Map(), examples: [] };
  }
}

function readJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** "profiles.t1.weights.X: ..." → { field: "profiles.t1.weights.X", message }. */
function problemDetail(problem: string): { field: string; message: string } {
  const at = problem.indexOf(': ');
  return at > 0 ? { field: problem.slice(0, at), message: problem.slice(at + 2) } : { field: '(document)', message: problem };
}

const isVerdict = (v: string | undefined): v is Verdict => v === 'allow' || v === 'flag' || v === 'block';
const KNOWN_CODES: ReadonlySet<string> = new Set(REASON_CODES);
const isReasonCode = (code: string): code is ReasonCode => KNOWN_CODES.has(code);

function reportOf(c: ShadowCounts): ShadowReport {
  return {
    version: c.setting.version,
    since: new Date(c.setting.since).toISOString(),
    calls: c.calls,
    changed: [...c.changed]
      .flatMap(([pair, count]) => {
        const [live, shadow] = pair.split(' ');
        return isVerdict(live) && isVerdict(shadow) && count > 0 ? [{ live, shadow, count }] : [];
      })
      .sort((a, b) => b.count - a.count || (a.live + a.shadow < b.live + b.shadow ? -1 : 1)),
    examples: c.examples.filter((e) => isVerdict(e.live) && isVerdict(e.shadow)).map((e) => ({
      ...(e.callId !== undefined ? { callId: e.callId } : {}),
      at: new Date(e.at).toISOString(),
      live: e.live as Verdict,
      shadow: e.shadow as Verdict,
      liveScore: e.liveScore,
      shadowScore: e.shadowScore,
      // Read back from the shared store: only codes this service knows are answered.
      reasons: e.reasons.filter(isReasonCode),
    })),
  };
}

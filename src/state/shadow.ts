import { UnavailableError } from '../errors';
import type { Redis } from 'ioredis';
import { taggedKey } from './redis/keyspace';

/**
 * The shadow policy's shared state: the candidate every instance evaluates beside the live
 * policy, and what it would have changed. Calls are tallied in process (no I/O on a call's path)
 * and handed to the store in batches (`sync`), which also tells the instance of a candidate set
 * or ended through another one.
 */

/** A candidate policy, as set: the document is kept as the JSON text it was given in. */
export interface ShadowSetting {
  version: string;
  /** When it was set (ms): its counts start then. */
  since: number;
  /** The policy document (POLICY_FILE's format), as JSON text; read again by whoever adopts it. */
  document: string;
}

export interface ShadowExample {
  callId?: string;
  /** When the call was received (ms). */
  at: number;
  live: string;
  shadow: string;
  liveScore: number;
  shadowScore: number;
  /** The shadow decision's reason codes. */
  reasons: string[];
}

/** Calls decided under one candidate since the last sync. */
export interface ShadowTally {
  calls: number;
  /** `<live> <shadow>` verdict pair -> calls whose verdicts differed so. */
  changed: Map<string, number>;
  /** Oldest first. */
  examples: ShadowExample[];
}

export interface ShadowCounts {
  setting: Omit<ShadowSetting, 'document'>;
  calls: number;
  changed: Map<string, number>;
  /** Newest first, at most MAX_SHADOW_EXAMPLES. */
  examples: ShadowExample[];
}

export const MAX_SHADOW_EXAMPLES = 100;

export interface ShadowStore {
  /** Sets the candidate, replacing any: its counts start from nothing. Rejects with UnavailableError when not stored. */
  set(setting: ShadowSetting): Promise<void>;
  /** Ends it; false when none was set. Rejects with UnavailableError when not confirmed. */
  clear(): Promise<boolean>;
  /**
   * Adds `tally`, made under candidate `version`, unless the candidate has changed since (then it
   * is dropped: it counts a policy no longer in the shadow). Answers the candidate set now, with its
   * document only when it is not `version`; null when none is set; `unknown` when the store could
   * not be reached (the tally is not added: the caller keeps it for the next sync).
   */
  sync(version: string | null, tally: ShadowTally | null): Promise<{ setting: ShadowSetting | Omit<ShadowSetting, 'document'> } | null | 'unknown'>;
  /** The candidate's counts so far; null when none is set. Rejects with UnavailableError when unreachable. */
  counts(): Promise<ShadowCounts | null>;
}

/** Adds `from` into `into` (examples keep the newest MAX_SHADOW_EXAMPLES). */
export function mergeTally(into: ShadowTally, from: ShadowTally): void {
  into.calls += from.calls;
  for (const [pair, n] of from.changed) into.changed.set(pair, (into.changed.get(pair) ?? 0) + n);
  into.examples.push(...from.examples);
  if (into.examples.length > MAX_SHADOW_EXAMPLES) into.examples.splice(0, into.examples.length - MAX_SHADOW_EXAMPLES);
}

export function emptyTally(): ShadowTally {
  return { calls: 0, changed: new Map(), examples: [] };
}

/** The whole story for a single instance (no Redis). */
export class MemoryShadowStore implements ShadowStore {
  private setting: ShadowSetting | null = null;
  private tally = emptyTally();

  async set(setting: ShadowSetting): Promise<void> {
    this.setting = setting;
    this.tally = emptyTally();
  }

  async clear(): Promise<boolean> {
    const had = this.setting !== null;
    this.setting = null;
    this.tally = emptyTally();
    return had;
  }

  async sync(version: string | null, tally: ShadowTally | null): Promise<{ setting: ShadowSetting } | null> {
    if (this.setting === null) return null;
    if (tally && version === this.setting.version) mergeTally(this.tally, tally);
    return { setting: this.setting };
  }

  async counts(): Promise<ShadowCounts | null> {
    if (this.setting === null) return null;
    const { version, since } = this.setting;
    return { setting: { version, since }, calls: this.tally.calls, changed: new Map(this.tally.changed), examples: [...this.tally.examples].reverse() };
  }
}

/**
 * Keys (one hash tag, so one slot on a Cluster, and one script touches them all):
 *   {p}shadow:{policy}:setting    HASH  version, since (ms), document (JSON text)
 *   {p}shadow:{policy}:counts     HASH  calls -> n; `<live> <shadow>` -> n
 *   {p}shadow:{policy}:examples   LIST  example JSON, newest first, at most MAX_SHADOW_EXAMPLES
 * A setting is kept until ended: it is the operator's, not a cache.
 */
const SYNC_SCRIPT = `
local current = redis.call('HGET', KEYS[1], 'version')
if not current then return {} end
if current ~= ARGV[1] then
  return {current, redis.call('HGET', KEYS[1], 'since'), redis.call('HGET', KEYS[1], 'document')}
end
local calls = tonumber(ARGV[2])
if calls > 0 then redis.call('HINCRBY', KEYS[2], 'calls', calls) end
local pairs = tonumber(ARGV[3])
for i = 0, pairs - 1 do redis.call('HINCRBY', KEYS[2], ARGV[4 + 2 * i], ARGV[5 + 2 * i]) end
local first = 4 + 2 * pairs
if #ARGV >= first then
  for i = first, #ARGV do redis.call('LPUSH', KEYS[3], ARGV[i]) end
  redis.call('LTRIM', KEYS[3], 0, ${MAX_SHADOW_EXAMPLES - 1})
end
return {current, redis.call('HGET', KEYS[1], 'since')}
`;

const SET_SCRIPT = `
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
redis.call('HSET', KEYS[1], 'version', ARGV[1], 'since', ARGV[2], 'document', ARGV[3])
return 1
`;

/**
 * On a connection of its own kind: the registry's patient one, not the hot path's. A sync is
 * background work once a second and a set or report is an operator's request; neither should wait
 * on the calls' 50 ms command timeout, nor count as the calls' failures and open their breaker.
 * A connection that is not up answers at once as unavailable rather than queueing.
 */
export class RedisShadowStore implements ShadowStore {
  private readonly keys: [string, string, string];

  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.keys = [taggedKey(prefix, 'shadow', 'policy', ':setting'), taggedKey(prefix, 'shadow', 'policy', ':counts'), taggedKey(prefix, 'shadow', 'policy', ':examples')];
  }

  async set(s: ShadowSetting): Promise<void> {
    const ok = await this.attempt(async (r) => (await r.eval(SET_SCRIPT, 3, ...this.keys, s.version, String(s.since), s.document), true), false);
    if (!ok) throw unavailable('set');
  }

  async clear(): Promise<boolean> {
    const removed = await this.attempt(async (r) => Number(await r.del(...this.keys)), -1);
    if (removed < 0) throw unavailable('ended');
    return removed > 0;
  }

  async sync(version: string | null, tally: ShadowTally | null): Promise<{ setting: ShadowSetting | Omit<ShadowSetting, 'document'> } | null | 'unknown'> {
    const t = tally ?? emptyTally();
    const args: string[] = [version ?? '', String(t.calls), String(t.changed.size)];
    for (const [pair, n] of t.changed) args.push(pair, String(n));
    for (const e of t.examples) args.push(JSON.stringify(e));
    const reply = await this.attempt(async (r) => ({ value: (await r.eval(SYNC_SCRIPT, 3, ...this.keys, ...args)) as unknown }), null);
    if (reply === null) return 'unknown';
    const [current, since, document] = Array.isArray(reply.value) ? (reply.value as unknown[]).map((v) => (v === null || v === undefined ? undefined : String(v))) : [];
    if (current === undefined) return null;
    const setting = { version: current, since: Number(since) };
    return { setting: document === undefined ? setting : { ...setting, document } };
  }

  private async attempt<T>(work: (r: Redis) => Promise<T>, unavailable: T): Promise<T> {
    if (this.redis.status !== 'ready') return unavailable;
    try {
      return await work(this.redis);
    } catch {
      return unavailable;
    }
  }

  async counts(): Promise<ShadowCounts | null> {
    const [settingKey, countsKey, examplesKey] = this.keys;
    const reply = await this.attempt(
      async (r) => {
        const [[, setting], [, counts], [, examples]] = (await r.multi().hmget(settingKey, 'version', 'since').hgetall(countsKey).lrange(examplesKey, 0, MAX_SHADOW_EXAMPLES - 1).exec()) as [
          [unknown, (string | null)[]],
          [unknown, Record<string, string>],
          [unknown, string[]],
        ];
        return { setting, counts, examples };
      },
      null,
    );
    if (reply === null) throw unavailable('read');
    const [version, since] = reply.setting;
    if (!version) return null;
    const changed = new Map<string, number>();
    let calls = 0;
    for (const [field, n] of Object.entries(reply.counts)) {
      if (field === 'calls') calls = Number(n);
      else changed.set(field, Number(n));
    }
    return { setting: { version, since: Number(since) }, calls, changed, examples: reply.examples.flatMap(readExample) };
  }
}

/** An example as Redis holds it; anything else there is skipped rather than answered. */
function readExample(text: string): ShadowExample[] {
  try {
    const e = JSON.parse(text) as ShadowExample;
    return typeof e === 'object' && e !== null && typeof e.at === 'number' && typeof e.live === 'string' && typeof e.shadow === 'string' && Array.isArray(e.reasons) ? [e] : [];
  } catch {
    return [];
  }
}

function unavailable(what: string): UnavailableError {
  return new UnavailableError('redis_unavailable', `the shared store did not confirm it: the shadow policy was not ${what}; try again`, { confirmed: what === 'read' });
}

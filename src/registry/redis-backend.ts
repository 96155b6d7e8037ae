import type Redis from 'ioredis';
import type { Cluster } from 'ioredis';
import type { Bank, RegistryEntry } from './format';
import { entryAt, NumberTableBuilder, requireNumberKey } from './number-table';
import type { RegistryContent } from './registry-index';
import type { AuditRecord, Mutation, RegistryBackend, RemoteChange } from './store';

/**
 * The registry shared by every instance, in Redis. All keys carry one hash tag so that a
 * change (entries, version, change log, audit) is one MULTI/EXEC even on a Redis Cluster:
 *
 *   callguard:{registry}:banks    hash   bank id -> Bank JSON
 *   callguard:{registry}:entries  hash   "number:+44..." | "prefix:+44..." -> RegistryEntry JSON
 *   callguard:{registry}:version  string the registry's version (changes with every change)
 *   callguard:{registry}:log      stream recent changes {v: version, m: mutations JSON | r: "1" reload}
 *   callguard:{registry}:audit    stream of audit batches {b: AuditRecord[] JSON}, oldest first in a batch
 *   callguard:{registry}:seeding  string lock held by the instance that seeds an empty Redis
 *
 * Every instance polls the change log (every `pollMs`, and before each change it makes, so that
 * its edits start from the latest registry) and applies the changes to its in-memory index: a
 * change made on one instance is seen by all within a second.
 */
export class RedisRegistryBackend implements RegistryBackend {
  readonly name = 'redis';
  private readonly k: Record<'banks' | 'entries' | 'version' | 'log' | 'audit' | 'seeding', string>;

  constructor(
    private readonly redis: Redis | Cluster,
    private readonly opts: { prefix?: string; pollMs?: number; logMaxLen?: number; auditMaxLen?: number; inlineMutationsMax?: number } = {},
  ) {
    const p = `${opts.prefix ?? 'callguard:'}{registry}:`;
    this.k = { banks: `${p}banks`, entries: `${p}entries`, version: `${p}version`, log: `${p}log`, audit: `${p}audit`, seeding: `${p}seeding` };
  }

  async load(): Promise<{ data: RegistryContent; version: string } | null> {
    // Our place in the change log first, then the version, then the data: a change landing
    // during the scan is then both in the data and after our place, and replaying it is harmless.
    const position = await this.logPosition();
    const version = await this.redis.get(this.k.version);
    if (version === null) return null;
    const banks: Bank[] = [];
    await this.scanHash(this.k.banks, (_, json) => banks.push(JSON.parse(json) as Bank));
    // Numbers go straight into a compact table, a page at a time: no million entry objects kept.
    // HSCAN may return a field twice; the builder keeps one of each number (the index, one prefix).
    const builder = new NumberTableBuilder();
    const prefixes: RegistryEntry[] = [];
    await this.scanHash(this.k.entries, (_, json) => {
      const e = JSON.parse(json) as RegistryEntry;
      if (e.kind === 'prefix') prefixes.push(e);
      else builder.add(requireNumberKey(e.key), builder.interner.id(e.bankId, e.inboundOnly, e.authorisedSpcs));
    });
    this.lastId = position;
    return { data: { banks, numbers: builder.build().table, prefixes }, version };
  }

  /** The id of the change log's newest entry ('0-0' when it is empty). */
  private async logPosition(): Promise<string> {
    const newest = await this.redis.xrevrange(this.k.log, '+', '-', 'COUNT', 1);
    return newest[0]?.[0] ?? '0-0';
  }

  async seed(data: RegistryContent, version: string): Promise<{ data: RegistryContent; version: string }> {
    const won = await this.redis.set(this.k.seeding, String(process.pid), 'EX', 120, 'NX');
    if (won !== 'OK') {
      // Another instance is seeding: wait for its version to appear, then read what it wrote.
      for (let i = 0; i < 600; i++) {
        const loaded = await this.load();
        if (loaded) return loaded;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error('timed out waiting for another instance to seed the registry in Redis');
    }
    const position = await this.logPosition();
    const tx = this.redis.multi();
    tx.del(this.k.banks, this.k.entries);
    for (const chunk of chunks(data.banks, 1000)) tx.hset(this.k.banks, ...chunk.flatMap((b) => [b.id, JSON.stringify(b)]));
    for (const chunk of chunks(entriesOf(data), 5000)) tx.hset(this.k.entries, ...chunk.flatMap((e) => [`${e.kind}:${e.key}`, JSON.stringify(e)]));
    tx.set(this.k.version, version);
    await tx.exec();
    this.lastId = position;
    return { data, version };
  }

  async commit(mutations: Mutation[], audit: AuditRecord[], version: string): Promise<void> {
    // A change written into a Redis that holds no registry (emptied, or not seeded yet because
    // it was down when the instances started) would become the whole registry for every
    // instance that loads it. Refused until the store has seeded it (see RegistryStore).
    if ((await this.redis.get(this.k.version)) === null) throw new Error('the registry is not in Redis yet: it is seeded as soon as Redis answers');
    const tx = this.redis.multi();
    // Consecutive sets go out as one HSET of many fields: an import of 100,000 entries is then
    // a hundred commands, not a hundred thousand.
    let banks: string[] = [];
    let entries: string[] = [];
    const flush = () => {
      if (banks.length) tx.hset(this.k.banks, ...banks);
      if (entries.length) tx.hset(this.k.entries, ...entries);
      banks = [];
      entries = [];
    };
    for (const m of mutations) {
      if (m.type === 'reset') {
        flush();
        tx.del(this.k.banks, this.k.entries);
      } else if (m.type === 'bank') {
        if (m.value) banks.push(m.id, JSON.stringify(m.value));
        else {
          flush();
          tx.hdel(this.k.banks, m.id);
        }
      } else if (m.value) {
        entries.push(`${m.kind}:${m.key}`, JSON.stringify(m.value));
        if (entries.length >= 2000) flush();
      } else {
        flush();
        tx.hdel(this.k.entries, `${m.kind}:${m.key}`);
      }
    }
    flush();
    tx.set(this.k.version, version);
    // Large changes (imports) tell followers to reload rather than carrying megabytes in the log.
    const inline = mutations.length <= (this.opts.inlineMutationsMax ?? 1000);
    tx.xadd(this.k.log, 'MAXLEN', '~', String(this.opts.logMaxLen ?? 10_000), '*', 'v', version, ...(inline ? ['m', JSON.stringify(mutations)] : ['r', '1']));
    // Audit records travel in batches (field `b`, a JSON array), oldest first within a batch.
    for (let i = 0; i < audit.length; i += AUDIT_BATCH) {
      tx.xadd(this.k.audit, 'MAXLEN', '~', String(this.opts.auditMaxLen ?? 100_000), '*', 'b', JSON.stringify(audit.slice(i, i + AUDIT_BATCH)));
    }
    const results = await tx.exec();
    const failed = results?.find(([err]) => err);
    if (!results || failed) throw new Error(`registry change not stored in Redis: ${failed?.[0]?.message ?? 'transaction aborted'}`);
  }

  async readAudit(query: { limit: number; bankId?: string }): Promise<AuditRecord[]> {
    const out: AuditRecord[] = [];
    let end = '+';
    // Newest first, in pages, filtering by bank when asked.
    while (out.length < query.limit) {
      const page = await this.redis.xrevrange(this.k.audit, end, '-', 'COUNT', 100);
      if (page.length === 0) break;
      for (const [id, fields] of page) {
        end = `(${id}`;
        const batch = JSON.parse(fields[1] ?? '[]') as AuditRecord[];
        for (let i = batch.length - 1; i >= 0 && out.length < query.limit; i--) {
          const record = batch[i]!;
          if (query.bankId === undefined || record.bankId === query.bankId) out.push(record);
        }
        if (out.length >= query.limit) break;
      }
      if (page.length < 100) break;
    }
    return out;
  }

  /** Where this instance has read the change log to; null until the first poll. */
  private lastId: string | null = null;

  /** How often the store polls the change log (ms). */
  get pollMs(): number {
    return this.opts.pollMs ?? 250;
  }

  /**
   * The changes other instances made since the last poll, in log order (this instance's own
   * included: changes are absolute, so replaying them in order ends where Redis is). Cheap
   * while nothing changes: a GET and an empty XRANGE in one round trip. Throws when Redis does
   * not answer. The store calls it one at a time (its change queue), so `lastId` needs no lock.
   */
  async poll(current: () => string): Promise<RemoteChange[]> {
    // Never loaded from Redis (it was down at start): from the log's end, which finds nothing
    // new below and so compares versions: a reload, a reseed, or nothing when in step.
    this.lastId ??= await this.logPosition();
    // The log, not the version, says what is new: right after this instance's own change the
    // versions match even when another instance's change landed just before it.
    const [version, entries] = await Promise.all([this.redis.get(this.k.version), this.redis.xrange(this.k.log, `(${this.lastId}`, '+', 'COUNT', 1000)]);
    if (entries.length === 0) {
      // Redis holds no registry any more (restarted without persistence, or flushed): it gets
      // this instance's, the latest it knew. Whichever instance gets there first seeds it.
      if (version === null) return [{ reseed: true }];
      // A newer version with nothing new in the log: our place in it was trimmed away, or Redis
      // was reset and seeded again. Read everything again.
      return version !== current() ? [{ reload: true }] : [];
    }
    const changes: RemoteChange[] = [];
    for (const [id, fields] of entries) {
      this.lastId = id;
      const get = (name: string) => fields[fields.indexOf(name) + 1];
      const m = fields.includes('m') ? get('m') : undefined;
      changes.push(m !== undefined ? { mutations: JSON.parse(m) as Mutation[], version: get('v') ?? '' } : { reload: true });
    }
    return changes;
  }

  async close(): Promise<void> {
    // The Redis client belongs to the app, which closes it.
  }

  /** Calls `each` with every field and value of a hash, page by page. */
  private async scanHash(key: string, each: (field: string, value: string) => void): Promise<void> {
    let cursor = '0';
    do {
      const [next, flat] = await this.redis.hscan(key, cursor, 'COUNT', 10_000);
      for (let i = 0; i + 1 < flat.length; i += 2) each(flat[i]!, flat[i + 1]!);
      cursor = next;
    } while (cursor !== '0');
  }
}

/** Audit records per stream entry. */
const AUDIT_BATCH = 500;

/** The entries of either form of content; those of a compact table made one at a time. */
function* entriesOf(data: RegistryContent): Generator<RegistryEntry> {
  if ('entries' in data) {
    yield* data.entries;
    return;
  }
  for (let i = 0; i < data.numbers.keys.length; i++) yield entryAt(data.numbers, i);
  yield* data.prefixes;
}

function* chunks<T>(items: Iterable<T>, size: number): Generator<T[]> {
  let chunk: T[] = [];
  for (const item of items) {
    chunk.push(item);
    if (chunk.length === size) {
      yield chunk;
      chunk = [];
    }
  }
  if (chunk.length) yield chunk;
}

import { createHash, randomBytes } from 'node:crypto';
import type Redis from 'ioredis';
import type { ChainableCommander, Cluster } from 'ioredis';
import type { AuditRecord, Bank, RegistryEntry } from './model';
import { EMPTY_TABLE, entryAt, mergeNumbersInSlices, requireNumberKey, TemplateInterner, type EntryTemplate } from './number-table';
import type { RegistryContent } from './registry-index';
import { ValidationError } from '../errors';
import { Slicer } from './slicer';
import { RegistryUnconfirmedError, type AuditPage, type AuditQuery, type Durability, type Mutation, type RegistryBackend, type RemoteChange, type Rollback, type StoreLog } from './store';
import { keyspace } from '../state/redis/keyspace';

/**
 * The registry shared by every instance, in Redis. All keys carry one hash tag so that a
 * change (entries, version, seq, change log, audit) is one script even on a Redis Cluster:
 *
 *   callguard:{registry}:banks    hash   bank id -> Bank JSON
 *   callguard:{registry}:entries  hash   "number:+44..." | "prefix:+44..." -> RegistryEntry JSON
 *   callguard:{registry}:version  string the registry's version (changes with every change)
 *   callguard:{registry}:seq      string the change sequence number: one more with every change
 *   callguard:{registry}:log      stream recent changes {v: version, s: seq, p: version before,
 *                                 m: mutations JSON | r: "1" reload; x: "1" on a write-back}
 *   callguard:{registry}:audit    stream of audit batches {b: AuditRecord[] JSON}, oldest first in a batch
 *   callguard:{registry}:seeding  string lock held by the instance that seeds an empty Redis
 *   callguard:{registry}:stage:<version>:<random>  list  a large change's payload, staged in
 *                                 pieces before the script that applies it (see Staging)
 *
 * Every instance polls the change log (every `pollMs`, and before each change it makes, so that
 * its edits start from the latest registry) and applies the changes to its in-memory index: a
 * change made on one instance is seen by all within a second.
 *
 * A change (data, version, seq, log entry and audit records) is one Lua script, which checks
 * everything it could fail on before it writes: Redis applies all of it or none, and so never
 * keeps an audit record of a change it did not make. Where Redis has WAITAOF (7.2+) a change is
 * acknowledged only once it is in Redis's AOF on disk; elsewhere only `appendfsync always`
 * promises that, and the backend says (log, /readyz) when Redis cannot promise it. Where the
 * master holding the registry has replicas (a Cluster's or a standalone master's), a change is
 * acknowledged only once a replica has it (WAIT), so that a failover to that replica keeps it.
 *
 * The sequence number tells a Redis that came back holding an older registry (an older AOF or
 * RDB, a lagging replica promoted) from one that moved on: its seq is behind what an instance
 * has seen, or the log goes on from an older entry than the instance's place in it. The poll
 * reports that as a rollback, and the store writes its newer registry back (`restore`).
 */
export class RedisRegistryBackend implements RegistryBackend {
  readonly name = 'redis';
  private readonly k: Record<'banks' | 'entries' | 'version' | 'seq' | 'log' | 'audit' | 'seeding' | 'stage', string>;
  /** The log entry this instance has read to: its seq and version (null until the first load or poll). */
  private head: { seq: number; version: string } | null = null;
  /** The highest seq this instance has seen: read, loaded, seeded or written by itself. Never goes down. */
  private seen = 0;
  private durabilityState: Durability = { mode: 'unknown', warning: 'not checked yet: Redis has not answered' };
  /** False until durability is checked, and again whenever the client reconnects (failover, restart). */
  private durabilityChecked = false;
  private readonly onReady = () => {
    this.durabilityChecked = false;
  };
  /** The {registry} hash slot, on a Cluster. */
  private slot: number | null = null;

  constructor(
    private readonly redis: Redis | Cluster,
    private readonly opts: {
      prefix?: string;
      pollMs?: number;
      logMaxLen?: number;
      auditMaxLen?: number;
      inlineMutationsMax?: number;
      /** How long a change waits for Redis to sync it to disk (WAITAOF) or to a replica (WAIT) before it is "not confirmed". */
      confirmTimeoutMs?: number;
      /**
       * Called as a large change's script is sent, which holds Redis for a second or more; the
       * function it returns when the script has answered. The app lets its hot path skip Redis
       * meanwhile (RedisGuard.bypass) rather than have each call wait out a timeout.
       */
      whileBusy?: () => () => void;
      log?: StoreLog;
    } = {},
  ) {
    this.k = keyspace(opts.prefix).registry;
    redis.on('ready', this.onReady);
  }

  durability(): Durability {
    return this.durabilityState;
  }

  async load(): Promise<{ data: RegistryContent; version: string } | null> {
    await this.checkDurability();
    // Our place in the change log and the head it stands for, read together, then the data: a
    // change landing during the scan is then both in the data and after our place, and
    // replaying it is harmless.
    const { position, version, seq } = await this.readHead();
    if (version === null) return null;
    // Redis went back between a poll and this load: the next poll reports it as a rollback.
    if (seq < this.seen) throw new Error(`Redis holds an older registry (seq ${seq}) than this instance has seen (seq ${this.seen})`);
    const banks: Bank[] = [];
    // Every instance reloads after another's import (hundreds of thousands of entries): read,
    // parsed and sorted in slices, so that calls keep being scored meanwhile, and in pages small
    // enough that each HSCAN holds Redis (shared by every instance's scoring) only briefly.
    const slicer = new Slicer();
    await this.scanHash(this.k.banks, (_, json) => banks.push(JSON.parse(json) as Bank), slicer);
    // Numbers go into a map of shared templates, then a compact table merged in slices: no
    // entry objects kept, and no whole-table sort in one piece. HSCAN may return a field twice:
    // the map keeps one of each number.
    const interner = new TemplateInterner();
    const numbers = new Map<number, EntryTemplate>();
    const prefixes: RegistryEntry[] = [];
    await this.scanHash(
      this.k.entries,
      (_, json) => {
        const e = JSON.parse(json) as RegistryEntry;
        if (e.kind === 'prefix') prefixes.push(e);
        else numbers.set(requireNumberKey(e.key), interner.templates[interner.id(e)]!);
      },
      slicer,
    );
    const table = await mergeNumbersInSlices(EMPTY_TABLE, numbers, slicer);
    this.lastId = position;
    this.head = { seq, version };
    this.seen = Math.max(this.seen, seq);
    return { data: { banks, numbers: table, prefixes }, version };
  }

  /** The id of the change log's newest entry ('0-0' when it is empty), and the version and seq it stands for. */
  private async readHead(): Promise<{ position: string; version: string | null; seq: number }> {
    const results = await this.redis.multi().xrevrange(this.k.log, '+', '-', 'COUNT', 1).mget(this.k.version, this.k.seq).exec();
    const [newest, values] = replies<[[string, string[]][], (string | null)[]]>(results);
    return { position: newest[0]?.[0] ?? '0-0', version: values[0] ?? null, seq: Number(values[1] ?? 0) };
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
    await this.checkDurability();
    const { position } = await this.readHead();
    const tx = this.redis.multi();
    this.writeAll(tx, data);
    tx.set(this.k.version, version);
    // An instance reseeding a Redis that lost everything holds what it had seen: its seq goes on.
    tx.set(this.k.seq, String(this.seen));
    replies(await tx.exec());
    this.lastId = position;
    this.head = { seq: this.seen, version };
    return { data, version };
  }

  /** Queues the commands that replace the registry's data with `data`. */
  private writeAll(tx: ChainableCommander, data: RegistryContent): void {
    tx.del(this.k.banks, this.k.entries);
    for (const chunk of chunks(data.banks, 1000)) tx.hset(this.k.banks, ...chunk.flatMap((b) => [b.id, JSON.stringify(b)]));
    for (const chunk of chunks(entriesOf(data), 5000)) tx.hset(this.k.entries, ...chunk.flatMap((e) => [`${e.kind}:${e.key}`, JSON.stringify(e)]));
  }

  async restore(data: RegistryContent, version: string, rollback: Rollback): Promise<void> {
    const seq = Math.max(rollback.held.seq, this.seen) + 1;
    const replicas = await this.replicasNow();
    // Only over what the poll saw: another instance may have written its registry back since
    // (then the next poll compares against that one), or a change may have landed.
    await this.redis.watch(this.k.version, this.k.seq);
    const [heldVersion, heldSeq] = await this.redis.mget(this.k.version, this.k.seq);
    if (heldVersion !== rollback.held.version || Number(heldSeq ?? 0) !== rollback.held.seq) {
      await this.redis.unwatch();
      throw new Error('the registry in Redis changed while this instance was writing its own back: looking again');
    }
    const tx = this.redis.multi();
    this.writeAll(tx, data);
    tx.set(this.k.version, version);
    tx.set(this.k.seq, String(seq));
    tx.xadd(this.k.log, 'MAXLEN', '~', String(this.opts.logMaxLen ?? 10_000), '*', 'v', version, 's', String(seq), 'r', '1', 'x', '1');
    const results = await tx.exec();
    if (!results) throw new Error('the registry in Redis changed while this instance was writing its own back: looking again');
    const id = replies<unknown[]>(results).at(-1) as string;
    // Our own write-back is no news to us: read the log on from after it.
    this.lastId = id;
    this.head = { seq, version };
    this.seen = seq;
    await this.confirmDurable('the registry written back', replicas).catch((err: unknown) => this.opts.log?.warn({ err: (err as Error).message }, 'registry written back to Redis, not confirmed on its disk'));
  }

  /**
   * A timed-out command may have run: Redis got it and did not answer in time. ioredis marks a
   * command timeout by its message alone ("Command timed out"), as does the wait for a seed.
   */
  mayHaveApplied(err: unknown): boolean {
    return err instanceof RegistryUnconfirmedError || (err instanceof Error && /timed out/i.test(err.message));
  }

  async commit(mutations: Mutation[], audit: AuditRecord[], version: string): Promise<void> {
    await this.checkDurability();
    // Asked before the change rather than after: Redis failing to answer now leaves nothing made.
    const replicas = await this.replicasNow();
    // Large changes (imports) tell followers to reload rather than carrying megabytes in the log.
    const inline = mutations.length <= (this.opts.inlineMutationsMax ?? 1000);
    const stage = new Staging(this.redis, `${this.k.stage}${version}:${randomBytes(6).toString('hex')}`);
    let made: [number, string, string];
    try {
      // An import's payload is tens of megabytes (mutation JSON, audit records). Made in slices
      // and sent to Redis in pieces of about a megabyte, one command at a time, before one small
      // script call applies it: written as one call, the client encodes and writes all of it in
      // one piece, holding the event loop for hundreds of milliseconds. The change itself stays
      // one script, all or nothing; a staging that does not finish leaves nothing applied.
      const slicer = new Slicer();
      let nAudit = 0;
      // Audit records travel in batches (a stream entry's field `b`, a JSON array), oldest first in a batch.
      for (let i = 0; i < audit.length; i += AUDIT_BATCH) {
        await stage.add(Buffer.from(JSON.stringify(audit.slice(i, i + AUDIT_BATCH))));
        nAudit++;
        await slicer.tick();
      }
      let nOps = 0;
      let ops = '';
      for (let i = 0; i < mutations.length; i++) {
        ops += packOperation(mutations[i]!);
        if (ops.length >= OPS_PER_PIECE) {
          await stage.add(Buffer.from(ops));
          nOps++;
          ops = '';
        }
        if ((i & 255) === 255) await slicer.tick();
      }
      if (ops) {
        await stage.add(Buffer.from(ops));
        nOps++;
      }
      const inlinePieces = await stage.finish();
      const keys = [this.k.banks, this.k.entries, this.k.version, this.k.seq, this.k.log, this.k.audit, stage.key];
      const args: (string | Buffer)[] = [
        version,
        String(this.opts.logMaxLen ?? 10_000),
        String(this.opts.auditMaxLen ?? 100_000),
        inline ? 'm' : 'r',
        inline ? JSON.stringify(mutations) : '1',
        String(nAudit),
        String(nOps),
        inlinePieces ? '0' : '1',
        ...(inlinePieces ?? []),
      ];
      // Only a staged change is large enough to keep Redis busy for long.
      const release = inlinePieces ? null : this.opts.whileBusy?.();
      try {
        made = (await this.runCommitScript(keys, args)) as [number, string, string];
      } finally {
        release?.();
      }
    } catch (err) {
      // Pieces staged for a change that will not be made: gone now when Redis answers, else
      // when their TTL runs out.
      if (stage.staged) this.redis.unlink(stage.key).catch(() => undefined);
      // Refused by the script, which then wrote nothing. A timeout or a lost connection while
      // the script was sent is passed on as it is: the change may have been made.
      if ((err as Error).name === 'ReplyError') throw new Error(`registry change not stored in Redis: ${(err as Error).message}`, { cause: err });
      throw err;
    }
    const [seq, id, previous] = made;
    this.seen = Math.max(this.seen, seq);
    // Thrown (made but not confirmed), the store does not apply the change: its log entry must
    // then stay news to this instance, which takes it from the poll like any other.
    await this.confirmDurable('the registry change', replicas);
    // Our change follows straight on from our place in the log (nothing landed between the poll
    // before it and the script): the store applies it itself, so its log entry is no news to us.
    // Read as news, an import's entry says "reload": every entry read from Redis again, for
    // nothing. When another change landed in between, our place stays: the poll reads both.
    if (this.head && this.lastId !== null && seq === this.head.seq + 1 && previous === this.head.version) {
      this.lastId = id;
      this.head = { seq, version };
    }
  }

  /** COMMIT_SCRIPT by its digest, sent whole only when Redis does not hold it (restarted, flushed, another node). */
  private async runCommitScript(keys: string[], args: (string | Buffer)[]): Promise<unknown> {
    try {
      return await this.redis.evalsha(COMMIT_SCRIPT_SHA, keys.length, ...keys, ...args);
    } catch (err) {
      if (!isReplyError(err) || !/NOSCRIPT/.test((err as Error).message)) throw err;
      return this.redis.eval(COMMIT_SCRIPT, keys.length, ...keys, ...args);
    }
  }

  /**
   * Confirms what this connection wrote as far as Redis can promise it: in Redis's AOF on disk
   * where Redis has WAITAOF, and on a replica where the master has one connected (WAIT), so that
   * a failover to that replica keeps it. Throws RegistryUnconfirmedError when either is not
   * confirmed: made in Redis, but a crash or a failover may still lose it.
   */
  private async confirmDurable(what: string, replicas: number): Promise<void> {
    const timeoutMs = this.opts.confirmTimeoutMs ?? 3000;
    if (this.durabilityState.mode === 'waitaof') {
      let local: number;
      try {
        [local] = (await (await this.node()).call('WAITAOF', '1', '0', String(timeoutMs))) as [number, number];
      } catch (err) {
        // Look again at what this Redis promises (AOF turned off, failed over to an older server).
        this.durabilityChecked = false;
        throw new RegistryUnconfirmedError(`${what} was made in Redis but not confirmed on its disk: WAITAOF failed: ${(err as Error).message}`, { cause: err });
      }
      if (local < 1) throw new RegistryUnconfirmedError(`${what} was made in Redis but not confirmed on its disk: WAITAOF timed out after ${timeoutMs} ms`);
    }
    if (replicas > 0) await this.confirmReplicated(what, timeoutMs);
  }

  /**
   * The replicas connected to the master holding the registry. Asked at every change, as a
   * failover leaves the new master without a replica until the old one comes back as one.
   */
  private async replicasNow(): Promise<number> {
    const replicas = await (await this.node()).info('replication').then(connectedReplicas, (err: unknown) => {
      // INFO renamed away (as on some managed Redis): whether replicas exist cannot be told.
      if (isReplyError(err)) return 0;
      throw err;
    });
    this.noteReplicas(replicas);
    return replicas;
  }

  /**
   * Waits until a replica has what this connection wrote. WAIT counts the replicas that
   * acknowledged the connection's last write, so it goes to the very connection the change went
   * through: the client, or on a Cluster the node of the registry's slot.
   */
  private async confirmReplicated(what: string, timeoutMs: number): Promise<void> {
    let acknowledged: number;
    try {
      acknowledged = Number(await (await this.node()).call('WAIT', '1', String(timeoutMs)));
    } catch (err) {
      throw new RegistryUnconfirmedError(`${what} was made in Redis but not confirmed on a replica: WAIT failed: ${(err as Error).message}`, { cause: err });
    }
    if (acknowledged < 1) throw new RegistryUnconfirmedError(`${what} was made in Redis but no replica confirmed it within ${timeoutMs} ms (WAIT): a failover may lose it`);
  }

  /** Whether the registry's master had a replica at the last change: said in the log when it changes. */
  private replicated: boolean | null = null;

  private noteReplicas(replicas: number): void {
    const replicated = replicas > 0;
    if (replicated === this.replicated) return;
    const had = this.replicated;
    this.replicated = replicated;
    if (replicated) this.opts.log?.info?.({ replicas }, 'registry changes are acknowledged once a replica has them (WAIT)');
    // Nothing to say about a Redis that never had a replica: that is a standalone set-up.
    else if (had) this.opts.log?.warn({ replicas }, 'the Redis master holding the registry has no replica connected: changes are acknowledged on the master alone until one is back, and a failover may lose them');
  }

  /**
   * Finds out, once and again after every reconnection, whether Redis can promise that an
   * acknowledged change survives its crash, and says so when it cannot. Throws only when Redis
   * does not answer (the check is then made again next time).
   */
  private async checkDurability(): Promise<void> {
    if (this.durabilityChecked) return;
    const node = await this.node();
    const serverVersion = await node.info('server').then((info) => /redis_version:([^\r\n]+)/.exec(info)?.[1] ?? null, (err: unknown) => {
      if (!isReplyError(err)) throw err;
      return null;
    });
    let next: Durability;
    try {
      // Nothing written on this connection yet, or all of it synced: answers at once where AOF is on.
      await node.call('WAITAOF', '1', '0', '100');
      next = { mode: 'waitaof', warning: null };
    } catch (err) {
      if (!isReplyError(err)) throw err;
      if (/appendonly is disabled/i.test((err as Error).message)) {
        next = { mode: 'not-durable', warning: 'Redis keeps no AOF (appendonly no): a Redis crash loses acknowledged registry changes; set appendonly yes' };
      } else {
        next = await this.durabilityFromConfig(node);
      }
    }
    this.durabilityChecked = true;
    if (next.mode === this.durabilityState.mode && next.warning === this.durabilityState.warning) return;
    this.durabilityState = next;
    const fields = { registryDurability: next.mode, redisVersion: serverVersion };
    if (next.warning) this.opts.log?.warn({ ...fields, warning: next.warning }, 'registry changes on this Redis may not survive a Redis crash');
    else this.opts.log?.info?.(fields, 'registry changes are acknowledged once on Redis\'s disk');
  }

  /** Redis without WAITAOF (before 7.2): only `appendfsync always` syncs a change before Redis answers. */
  private async durabilityFromConfig(node: Redis): Promise<Durability> {
    let appendonly: string | undefined;
    let appendfsync: string | undefined;
    try {
      appendonly = ((await node.config('GET', 'appendonly')) as string[])[1];
      appendfsync = ((await node.config('GET', 'appendfsync')) as string[])[1];
    } catch (err) {
      if (!isReplyError(err)) throw err;
    }
    if (appendonly === undefined || appendfsync === undefined) {
      return {
        mode: 'unknown',
        warning: 'cannot tell whether a Redis crash would lose acknowledged registry changes: this Redis has no WAITAOF (7.2+) and does not answer CONFIG GET (disabled or renamed, as on managed Redis); make sure it runs appendonly yes with appendfsync always',
      };
    }
    if (appendonly === 'yes' && appendfsync === 'always') return { mode: 'appendfsync-always', warning: null };
    return {
      mode: 'not-durable',
      warning: `a Redis crash may lose acknowledged registry changes: appendonly ${appendonly}, appendfsync ${appendfsync}, and this Redis has no WAITAOF (7.2+); set appendonly yes and appendfsync always, or use Redis 7.2 or later with appendonly yes`,
    };
  }

  /** The connection the registry's keys live on: the client, or on a Cluster the node holding their slot. */
  private async node(): Promise<Redis> {
    if (!(this.redis as { isCluster?: boolean }).isCluster) return this.redis as Redis;
    const cluster = this.redis as Cluster;
    this.slot ??= Number(await cluster.call('CLUSTER', 'KEYSLOT', this.k.version));
    const owner = cluster.slots[this.slot]?.[0];
    const node = cluster.nodes('master').find((n) => `${n.options.host}:${n.options.port}` === owner);
    if (!node) throw new Error('the Redis Cluster node holding the registry is not known yet');
    return node;
  }

  /**
   * A page of the audit stream, newest first. A record's id is its stream entry's id and its
   * place in that entry's batch (`<entry id>.<index>`); `before` continues below one. A bank's
   * page that finds too few of its records within AUDIT_SCAN_MAX entries answers with those
   * and a `next` cursor rather than reading on through the whole stream (capped at
   * `auditMaxLen` entries by each change).
   */
  async readAudit(query: AuditQuery): Promise<AuditPage> {
    let end = '+';
    /** In the entry named by `before`, only records below this index are older. */
    let below: { id: string; index: number } | null = null;
    if (query.before !== undefined) {
      const m = /^(\d{1,20}-\d{1,20})\.(\d{1,6})$/.exec(query.before);
      if (!m) throw new ValidationError('before', "before: not a cursor of this audit log (a record id or a page's next)");
      below = { id: m[1]!, index: Number(m[2]) };
      end = m[1]!;
    }
    const records: AuditPage['records'] = [];
    let scanned = 0;
    for (;;) {
      const page = await this.redis.xrevrange(this.k.audit, end, '-', 'COUNT', 100);
      for (const [id, fields] of page) {
        const batch = JSON.parse(fields[1] ?? '[]') as AuditRecord[];
        const top = below && below.id === id ? Math.min(below.index, batch.length) : batch.length;
        for (let i = top - 1; i >= 0; i--) {
          const record = batch[i]!;
          if (query.bankId !== undefined && record.bankId !== query.bankId) continue;
          records.push({ ...record, id: `${id}.${i}` });
          if (records.length === query.limit) return { records, next: `${id}.${i}` };
        }
        end = `(${id}`;
        scanned++;
      }
      if (page.length < 100) return { records, next: null };
      if (scanned >= AUDIT_SCAN_MAX) return { records, next: `${end.slice(1)}.0` };
    }
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
   * while nothing changes: one MULTI of an MGET and an empty XRANGE. Throws when Redis does not
   * answer. The store calls it one at a time (its change queue), so `lastId` needs no lock.
   */
  async poll(current: () => string): Promise<RemoteChange[]> {
    await this.checkDurability();
    if (this.lastId === null || this.head === null) {
      // Never loaded from Redis (it was down at start): from the log's end, which finds nothing
      // new below and so compares versions: a reload, a reseed, or nothing when in step.
      const { position, version, seq } = await this.readHead();
      this.lastId = position;
      this.head = { seq, version: version ?? '' };
    }
    // The log, not the version, says what is new: right after this instance's own change the
    // versions match even when another instance's change landed just before it.
    const results = await this.redis.multi().mget(this.k.version, this.k.seq).xrange(this.k.log, `(${this.lastId}`, '+', 'COUNT', 1000).exec();
    const [[version, seqText], entries] = replies<[(string | null)[], [string, string[]][]]>(results);
    // Redis holds no registry any more (restarted without persistence, or flushed): it gets
    // this instance's, the latest it knew. Whichever instance gets there first seeds it.
    if (version === null || version === undefined) return [{ reseed: true }];
    const held = { seq: Number(seqText ?? 0), version };
    const field = (fields: string[], name: string) => (fields.includes(name) ? fields[fields.indexOf(name) + 1] : undefined);
    /**
     * Redis's history is not ours from entry `from` on. The entries after our place were made
     * on the older registry after it came back (or are ones we had not read yet): those that
     * carry their changes are replayed on top of ours, the newer. When one of them is a
     * write-back by an instance that had seen more than we have, that registry is the newer:
     * read it rather than write ours over it.
     */
    const rollback = (from: number): RemoteChange => {
      const rest = entries.slice(from).map(([, f]) => f);
      if (rest.some((f) => field(f, 'x') !== undefined && Number(field(f, 's')) > this.seen)) return { reload: true };
      const since = rest.flatMap((f) => (f.includes('m') ? [JSON.parse(field(f, 'm')!) as Mutation[]] : []));
      return { rollback: { held, seen: this.seen, since, sinceUnmerged: rest.length - since.length } };
    };
    if (held.seq < this.seen) return [rollback(0)];
    // A newer version with nothing new in the log: our place in it was trimmed away, or Redis
    // was reset and seeded again. Read everything again.
    if (entries.length === 0) return version !== current() ? [{ reload: true }] : [];
    const changes: RemoteChange[] = [];
    for (let i = 0; i < entries.length; i++) {
      const [id, fields] = entries[i]!;
      const get = (name: string) => field(fields, name);
      const m = get('m');
      const s = get('s');
      if (s !== undefined) {
        const seq = Number(s);
        const previous = get('p');
        // The log goes on from an entry older than our place (Redis came back older, then took
        // changes), from another version than ours, or a write-back of a registry no newer than
        // one we have seen: Redis's history is not ours.
        const forked = get('x') !== undefined ? seq <= this.seen : seq <= this.head.seq || (previous !== undefined && previous !== this.head.version);
        if (forked) {
          changes.push(rollback(i));
          return changes;
        }
        // Entries missing between our place and this one (trimmed from the log): read everything.
        if (seq > this.head.seq + 1 && m !== undefined) changes.push({ reload: true });
        this.head = { seq, version: get('v') ?? '' };
        this.seen = Math.max(this.seen, seq);
      } else {
        // Written by an instance of an earlier release, which keeps no seq: the next entry
        // still follows on from its version.
        this.head = { seq: this.head.seq, version: get('v') ?? '' };
      }
      this.lastId = id;
      changes.push(m !== undefined ? { mutations: JSON.parse(m) as Mutation[], version: get('v') ?? '' } : { reload: true });
    }
    return changes;
  }

  async close(): Promise<void> {
    // The Redis client belongs to the app, which closes it.
    this.redis.off('ready', this.onReady);
  }

  /** Calls `each` with every field and value of a hash, page by page, yielding to `slicer` as it goes. */
  private async scanHash(key: string, each: (field: string, value: string) => void, slicer: Slicer): Promise<void> {
    let cursor = '0';
    do {
      const [next, flat] = await this.redis.hscan(key, cursor, 'COUNT', SCAN_COUNT);
      for (let i = 0; i + 1 < flat.length; i += 2) {
        each(flat[i]!, flat[i + 1]!);
        if ((i & 255) === 254) await slicer.tick();
      }
      cursor = next;
      await slicer.tick();
    } while (cursor !== '0');
  }
}

/** Fields per HSCAN page: each page holds Redis for a few milliseconds at most. */
const SCAN_COUNT = 2000;

/** Audit stream entries one page may read looking for a bank's records. */
const AUDIT_SCAN_MAX = 2000;

/** Audit records per stream entry. */
const AUDIT_BATCH = 500;

/** Characters of packed operations per piece of a change's payload (see COMMIT_SCRIPT). */
const OPS_PER_PIECE = 256 * 1024;

/** A change's payload up to this many bytes goes in the script call itself; larger is staged. */
const INLINE_PAYLOAD_MAX = 512 * 1024;

/** Bytes of payload per staging command: small enough to write without holding the event loop. */
const STAGE_COMMAND_BYTES = 1024 * 1024;

/**
 * How long staged pieces outlive their last write: a change whose staging stops (the client
 * dropped, the instance died) leaves nothing behind for long. Renewed with every piece, so a
 * slow staging never loses its first pieces; the script checks it finds them all anyway.
 */
const STAGE_TTL_MS = 10 * 60 * 1000;

/**
 * A change's payload pieces, in order: kept to go in the script call while they are few, else
 * pushed onto a staging list (one command of about STAGE_COMMAND_BYTES at a time, each waiting
 * for Redis's answer, so an interrupted staging fails the change before its script is sent).
 */
class Staging {
  private held: Buffer[] = [];
  private heldBytes = 0;
  /** Whether any piece went to Redis (the list may then exist and is unlinked on failure). */
  staged = false;

  constructor(
    private readonly redis: Redis | Cluster,
    readonly key: string,
  ) {}

  async add(piece: Buffer): Promise<void> {
    this.held.push(piece);
    this.heldBytes += piece.length;
    if (this.staged ? this.heldBytes >= STAGE_COMMAND_BYTES : this.heldBytes > INLINE_PAYLOAD_MAX) await this.push();
  }

  /** The pieces for the script call itself, or null once they are staged (all of them, now). */
  async finish(): Promise<Buffer[] | null> {
    if (!this.staged) return this.held;
    if (this.held.length) await this.push();
    return null;
  }

  private async push(): Promise<void> {
    // Several pieces may wait when staging starts: each command carries about STAGE_COMMAND_BYTES.
    while (this.held.length) {
      let n = 0;
      let bytes = 0;
      while (n < this.held.length && (n === 0 || bytes + this.held[n]!.length <= STAGE_COMMAND_BYTES)) bytes += this.held[n++]!.length;
      const pieces = this.held.splice(0, n);
      this.heldBytes -= bytes;
      this.staged = true;
      replies(await this.redis.multi().rpush(this.key, ...pieces).pexpire(this.key, STAGE_TTL_MS).exec());
    }
  }
}

/** A string as an operand of a packed operation: its length in bytes, a colon, the string. */
const operand = (s: string) => `${Buffer.byteLength(s)}:${s}`;

/** One mutation as a packed operation of COMMIT_SCRIPT. */
function packOperation(m: Mutation): string {
  if (m.type === 'reset') return 'R';
  if (m.type === 'bank') return m.value ? `B${operand(m.id)}${operand(JSON.stringify(m.value))}` : `b${operand(m.id)}`;
  const field = `${m.kind}:${m.key}`;
  return m.value ? `E${operand(field)}${operand(JSON.stringify(m.value))}` : `e${operand(field)}`;
}

/**
 * One change, all or nothing. KEYS: banks, entries, version, seq, log, audit, stage. ARGV:
 * version, log max length, audit max length, the log entry's kind ('m' mutations | 'r' reload)
 * and payload, the number of audit batches, the number of operation pieces, whether the pieces
 * are staged ('1': the list KEYS[7], audit batches first, which the script deletes once applied)
 * or follow in ARGV ('0'). Operation pieces hold the mutations packed one after another: R
 * (reset), B id json / b id (bank set / delete), E field json / e field (entry set / delete),
 * each operand its length in bytes, ':' and its bytes. Everything a write could fail on is checked
 * before the first write (a key of another type, no registry, a staging list missing pieces,
 * operations that do not read whole), and Redis refuses a script at its first write when out of
 * memory: so either the change, its log entry and its audit records are all written, or none is.
 * Returns the change's seq, its log entry's id and the version it replaced.
 */
const COMMIT_SCRIPT = `
local staged = ARGV[8] == '1'
local types = { 'hash', 'hash', 'string', 'string', 'stream', 'stream', 'list' }
for i, want in ipairs(types) do
  local got = redis.call('TYPE', KEYS[i])['ok']
  if got ~= 'none' and got ~= want then return redis.error_reply('WRONGTYPE ' .. KEYS[i] .. ' holds a ' .. got .. ', not a ' .. want) end
end
local previous = redis.call('GET', KEYS[3])
if not previous then
  return redis.error_reply('NOREGISTRY the registry is not in Redis yet: it is seeded as soon as Redis answers')
end
local nAudit, nOps = tonumber(ARGV[6]), tonumber(ARGV[7])
if staged then
  local n = redis.call('LLEN', KEYS[7])
  if n ~= nAudit + nOps then
    return redis.error_reply('STAGING the change was staged in ' .. (nAudit + nOps) .. ' pieces, Redis holds ' .. n)
  end
end
-- Piece i of the payload (audit batches first, then operations).
local function piece(i)
  if staged then return redis.call('LINDEX', KEYS[7], i - 1) end
  return ARGV[8 + i]
end
local function operand(ops, pos)
  local colon = string.find(ops, ':', pos, true)
  local n = colon and tonumber(string.sub(ops, pos, colon - 1))
  if not n or colon + n > #ops then return nil, nil end
  return string.sub(ops, colon + 1, colon + n), colon + n + 1
end
local counts = { R = 0, B = 2, E = 2, b = 1, e = 1 }
-- Walks every operation, calling apply(op, a, b) when given; false when they do not read whole.
local function walk(apply)
  for c = nAudit + 1, nAudit + nOps do
    local ops, pos = piece(c), 1
    if type(ops) ~= 'string' then return false end
    while pos <= #ops do
      local op = string.sub(ops, pos, pos)
      local count = counts[op]
      if not count then return false end
      pos = pos + 1
      local a, b
      if count >= 1 then a, pos = operand(ops, pos) if not a then return false end end
      if count == 2 then b, pos = operand(ops, pos) if not b then return false end end
      if apply then apply(op, a, b) end
    end
  end
  return true
end
if not walk(nil) then return redis.error_reply('BADOPS the operations of the change do not read whole') end
local pending, target = {}, nil
local function flush()
  if #pending > 0 then redis.call('HSET', target, unpack(pending)) end
  pending = {}
end
walk(function(op, a, b)
  if op == 'R' then
    flush()
    redis.call('DEL', KEYS[1], KEYS[2])
  elseif op == 'B' or op == 'E' then
    local key = op == 'B' and KEYS[1] or KEYS[2]
    if key ~= target then flush() target = key end
    pending[#pending + 1] = a
    pending[#pending + 1] = b
    if #pending >= 2000 then flush() end
  else
    flush()
    redis.call('HDEL', op == 'b' and KEYS[1] or KEYS[2], a)
  end
end)
flush()
local seq = redis.call('INCR', KEYS[4])
redis.call('SET', KEYS[3], ARGV[1])
local id = redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[2], '*', 'v', ARGV[1], 's', tostring(seq), 'p', previous, ARGV[4], ARGV[5])
for a = 1, nAudit do
  redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[3], '*', 'b', piece(a))
end
if staged then redis.call('UNLINK', KEYS[7]) end
return { seq, id, previous }
`;

const COMMIT_SCRIPT_SHA = createHash('sha1').update(COMMIT_SCRIPT).digest('hex');

/** The replies of a MULTI, or the first error in them. */
function replies<T>(results: [Error | null, unknown][] | null): T {
  if (!results) throw new Error('Redis transaction aborted');
  const failed = results.find(([err]) => err);
  if (failed) throw failed[0]!;
  return results.map(([, value]) => value) as T;
}

function isReplyError(err: unknown): boolean {
  return (err as Error | undefined)?.name === 'ReplyError';
}

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

/** `connected_slaves` from INFO replication: the replicas connected to this master. */
function connectedReplicas(info: string): number {
  return Number(/^connected_slaves:(\d+)/m.exec(info)?.[1] ?? 0);
}

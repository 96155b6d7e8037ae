import type Redis from 'ioredis';
import { freePort, REDIS_NOTHING_PERSISTED, startRedisServer, until, type Child } from '../../scripts/lib/process';
import { parseNumber, type PhoneNumber } from '../../src/numbers';
import type { RegistryMatch } from '../../src/registry/registry-index';
import { Behaviour } from '../../src/calls/behaviour';
import type { Evidence } from '../../src/calls/evidence';
import { callToken, DEFAULT_POLICY, type BehaviourSignals, type Decision, type ObservedCall, type Policy, type ReasonCode, type ShakenSignal } from '../../src/scoring';
import { MemoryCallState, type MemoryCallStateOptions } from '../../src/state/memory/call-state';
import type { RedisHistoryStore } from '../../src/state/history';
import { RedisCallState, type RedisCallStateOptions } from '../../src/state/redis/call-state';
import { createRedisClient, RedisGuard } from '../../src/state/redis/client';
import { requireRedis, TEST_REDIS_URL } from '../helpers/redis';

/** Shared by the state tests: call and decision builders, and Redis plumbing. */

export const T0 = Date.parse('2025-06-02T09:00:00.000Z');
export const NO_SHAKEN: ShakenSignal = { source: 'none', verstat: 'No-TN-Validation', attestation: null, errors: [] };

export const BANK: RegistryMatch = {
  bankId: 'examplebank',
  bankName: 'Example Bank',
  inboundOnly: false,
  authorisedSpcs: ['1234'],
  match: 'prefix',
  key: '+44207946',
};
export const OTHER_BANK: RegistryMatch = { ...BANK, bankId: 'otherbank', bankName: 'Other Bank', key: '+44161496' };

export interface CallSpec {
  from?: string;
  to?: string;
  callId?: string;
  at?: number;
  fingerprints?: string[];
  registry?: RegistryMatch | null;
}

// Parsing with full metadata costs a quarter of a millisecond: tests making thousands of calls reuse it.
const parsed = new Map<string, PhoneNumber>();
const parse = (s: string): PhoneNumber => {
  let p = parsed.get(s);
  if (!p) parsed.set(s, (p = parseNumber(s, 'GB')));
  return p;
};

export function call(spec: CallSpec = {}): ObservedCall {
  return {
    ...(spec.callId !== undefined ? { callId: spec.callId } : {}),
    caller: parse(spec.from ?? '+442079460123'),
    callee: parse(spec.to ?? '+447700900001'),
    registry: spec.registry ?? null,
    fingerprints: spec.fingerprints ?? [],
    at: spec.at ?? T0,
  };
}

/** UK mobile destinations +4477009000NN (Ofcom's drama range). */
export const dest = (i: number) => `+4477009${String(i).padStart(5, '0')}`;

export function decision(codes: ReasonCode[], verdict: Decision['verdict'] = 'allow'): Decision {
  const reasons = codes.map((code) => ({ code, weight: DEFAULT_POLICY.weights[code], message: code }));
  const score = Math.max(0, Math.min(100, reasons.reduce((s, r) => s + r.weight, DEFAULT_POLICY.baseScore)));
  return { score, verdict, reasons, presentation: 'allowed' };
}

export const FAILING = decision(['CLI_DOMESTIC_FROM_ABROAD', 'SHAKEN_ABSENT'], 'block');
export const CLEAN = decision(['SHAKEN_ABSENT']);

export const SILENT = { warn: () => undefined, info: () => undefined };

export { TEST_REDIS_URL as REDIS_URL } from '../helpers/redis';

/** A prefix no other run shares, so tests never see each other's keys. */
export function uniquePrefix(label: string): string {
  return `test:callguard:${label}:${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}:`;
}

export async function connect(url = TEST_REDIS_URL, commandTimeoutMs = 200): Promise<Redis> {
  await requireRedis(url);
  const client = createRedisClient(url, { commandTimeoutMs });
  client.on('error', () => undefined);
  if (client.status !== 'ready') await new Promise((resolve) => client.once('ready', resolve));
  return client;
}

export function guardFor(client: Redis, openMs = 100): RedisGuard {
  return new RedisGuard(client, SILENT, { threshold: 1, openMs, now: Date.now });
}

export async function deleteByPrefix(client: Redis, prefix: string): Promise<number> {
  let cursor = '0';
  let deleted = 0;
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) deleted += await client.del(...keys);
  } while (cursor !== '0');
  return deleted;
}

export interface LocalCluster {
  /** The masters' ports, in slot order (the first holds slots 0-5460). */
  ports: number[];
  /** Each master's replica, by the master's port (empty without replicas). */
  replicas: Map<number, { port: number; server: Child }>;
  /** Each master's server, by its port: kill() one to fail it over. */
  servers: Map<number, Child>;
  stop(): Promise<void>;
}

export interface ClusterOptions {
  /** Replicas per master (0 or 1). */
  replicas?: 0 | 1;
  /**
   * How long a node may not answer before the others take it as failed and its replica is
   * promoted. Low, so that a test's failover takes seconds (Redis's default is 15 s).
   */
  nodeTimeoutMs?: number;
}

/** A master sends its first full sync to a replica at once, rather than waiting 5 s for more replicas to join it. */
const NO_SYNC_DELAY = ['--repl-diskless-sync-delay', '0'];

/**
 * A real Redis Cluster of the test's own on free loopback ports: three masters, and with
 * `replicas: 1` a replica of each, resolved once every node says the cluster is ok and every
 * replica is in sync with its master.
 */
export async function startCluster(opts: ClusterOptions = {}): Promise<LocalCluster> {
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { default: RedisClient } = await import('ioredis');
  const dir = mkdtempSync(join(tmpdir(), 'callguard-cluster-'));
  const all: Child[] = [];
  const startNode = async (): Promise<{ port: number; server: Child }> => {
    const port = await freePort();
    const args = [...REDIS_NOTHING_PERSISTED, '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--dir', dir, '--cluster-node-timeout', String(opts.nodeTimeoutMs ?? 15_000), ...NO_SYNC_DELAY];
    const server = await startRedisServer(port, { args });
    all.push(server);
    return { port, server };
  };
  const masters = await Promise.all([0, 1, 2].map(startNode));
  const replicaNodes = opts.replicas ? await Promise.all(masters.map(startNode)) : [];
  // Slots by hand rather than `redis-cli --cluster create`, which waits seconds between steps.
  const admin = (port: number) => new RedisClient({ port, host: '127.0.0.1', lazyConnect: false });
  const admins = masters.map((m) => admin(m.port));
  const replicaAdmins = replicaNodes.map((r) => admin(r.port));
  try {
    const ranges = [
      [0, 5460],
      [5461, 10922],
      [10923, 16383],
    ];
    await Promise.all(admins.map((a, i) => a.call('CLUSTER', 'ADDSLOTSRANGE', ranges[i]![0]!, ranges[i]![1]!)));
    for (const { port } of [...masters.slice(1), ...replicaNodes]) await admins[0]!.call('CLUSTER', 'MEET', '127.0.0.1', port);
    const everyone = [...admins, ...replicaAdmins];
    // A replica can follow its master only once it knows the master (through the gossip MEET started).
    const masterIds = await Promise.all(admins.map(async (a) => String(await a.call('CLUSTER', 'MYID'))));
    await until(
      async () => (await Promise.all(replicaAdmins.map((r) => r.call('CLUSTER', 'NODES')))).every((nodes) => masterIds.every((id) => String(nodes).includes(id))),
      15_000,
      'the replicas to know the masters',
    );
    await Promise.all(replicaAdmins.map((r, i) => r.call('CLUSTER', 'REPLICATE', masterIds[i]!)));
    await until(
      async () => {
        const infos = await Promise.all(everyone.map((a) => a.call('CLUSTER', 'INFO')));
        if (!infos.every((info) => String(info).includes('cluster_state:ok'))) return false;
        const links = await Promise.all(replicaAdmins.map((r) => r.info('replication')));
        return links.every((info) => info.includes('master_link_status:up') && info.includes('master_sync_in_progress:0'));
      },
      15_000,
      'the cluster to form and its replicas to sync',
    );
  } catch (err) {
    for (const s of all) await s.kill();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  } finally {
    [...admins, ...replicaAdmins].forEach((a) => a.disconnect());
  }
  return {
    ports: masters.map((m) => m.port),
    replicas: new Map(replicaNodes.map((r, i) => [masters[i]!.port, r])),
    servers: new Map(masters.map((m) => [m.port, m.server])),
    async stop() {
      for (const s of all) await s.kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A Redis that is not there yet, for outage tests: `client()` connects to a free port where
 * nothing listens, `start()` brings a server up there. Both are cleaned up after the block.
 */
export function absentRedis(): { client: () => Redis; start: () => Promise<void> } {
  let port = 0;
  let server: Child | undefined;
  let own: Redis | undefined;
  beforeAll(async () => {
    port = await freePort();
  });
  afterAll(async () => {
    own?.disconnect();
    await server?.kill();
  });
  return {
    client() {
      own = createRedisClient(`redis://127.0.0.1:${port}`, { commandTimeoutMs: 50 });
      own.on('error', () => undefined);
      return own;
    },
    async start() {
      server = await startRedisServer(port);
    },
  };
}

/** The shared Redis on 6379 under a prefix of this file's own, emptied after the file. */
export function sharedRedis(label: string): { client: () => Redis; base: string } {
  let client: Redis;
  const base = uniquePrefix(label);
  beforeAll(async () => {
    client = await connect();
  });
  afterAll(async () => {
    await deleteByPrefix(client, base);
    client.disconnect();
  });
  return { client: () => client, base };
}

/**
 * The behaviour the app composes (Behaviour over a store), built as the state tests build it:
 * in-process, or on Redis with an in-process fallback.
 */
export class MemoryBehaviourTracker extends Behaviour<Evidence> {
  declare readonly state: MemoryCallState<Evidence>;

  constructor(policy: Policy = DEFAULT_POLICY, opts: MemoryCallStateOptions = {}) {
    super(new MemoryCallState<Evidence>({ reportsMaxAgeS: policy.reports.maxAgeS, ...opts }), policy);
  }

  /** `observe` without the promise: the in-process store answers at once. */
  observeSync(c: ObservedCall): BehaviourSignals {
    const token = callToken(c);
    return this.signals(c, token, this.state.readSync(this.readOf(c, token, null)));
  }

  trackedCallers(): string[] {
    return this.state.trackedCallers();
  }
}

export class RedisBehaviourTracker extends Behaviour<Evidence> {
  declare readonly state: RedisCallState<Evidence>;

  constructor(guard: RedisGuard, policy: Policy, opts: Omit<RedisCallStateOptions<Evidence>, 'fallback'> & { fallback: MemoryBehaviourTracker }) {
    // Verdict entries under the test's own prefix, so that no other suite's calls are cache hits here.
    const verdictPrefix = opts.prefix !== undefined ? `${opts.prefix}verdict:` : undefined;
    super(
      new RedisCallState<Evidence>(guard, { reportsMaxAgeS: policy.reports.maxAgeS, ...(verdictPrefix ? { verdictPrefix } : {}), ...opts, fallback: opts.fallback.state }),
      policy,
    );
  }

  get fallback(): MemoryCallState<Evidence> {
    return this.state.fallback;
  }

  override get history(): RedisHistoryStore {
    return this.state.history;
  }
}

/** Either of the above, as the contract tests take them. */
export type BehaviourTracker = Behaviour<Evidence>;

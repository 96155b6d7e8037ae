import type Redis from 'ioredis';
import { freePort, startRedisServer, type Child } from '../../scripts/lib/process';
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

/** The tests' Redis Cluster is the fault drill's: one implementation, in scripts/lib. */
export { startCluster, type ClusterOptions, type LocalCluster } from '../../scripts/lib/redis-cluster';

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

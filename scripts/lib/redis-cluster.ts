/**
 * A real Redis Cluster of the caller's own on free loopback ports, for the tests and the fault
 * drill: three masters, and optionally a replica of each; nodes can be killed and started again
 * (a killed master's replica is promoted, and the node rejoins as its replica). What CLUSTER NODES
 * says is parsed here too.
 *
 * Nothing here imports from src/: a script loads it without loading the service.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { freePort, REDIS_NOTHING_PERSISTED, startRedisServer, until, type Child } from './process';

export interface ClusterNode {
  port: number;
  server: Child;
}

export interface LocalCluster {
  /** The masters' ports as started, in slot order (the first holds slots 0-5460). */
  ports: number[];
  /** REDIS_URL for the service: every master as a seed node. */
  url: string;
  /** Each master's replica, by the master's port (empty without replicas). */
  replicas: Map<number, ClusterNode>;
  /** Each master's server, by its port as started: kill() one to fail it over. */
  servers: Map<number, Child>;
  /** The folder of the nodes' cluster configuration files and logs. */
  dir: string;
  /**
   * Starts a killed node again on its port with its cluster configuration file, so it rejoins
   * as the node it was (a master that was failed over comes back as its old replica's replica).
   */
  restart(port: number): Promise<Child>;
  /** SIGKILL to every node; removes the folder unless the caller gave it. */
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
  /** Where the nodes keep their cluster configuration and logs (default: a temporary folder, removed by stop()). */
  dir?: string;
}

/** A master sends its first full sync to a replica at once, rather than waiting 5 s for more replicas to join it. */
const NO_SYNC_DELAY = ['--repl-diskless-sync-delay', '0'];

/**
 * Three masters, and with `replicas: 1` a replica of each, resolved once every node says the
 * cluster is ok and every replica is in sync with its master.
 */
export async function startCluster(opts: ClusterOptions = {}): Promise<LocalCluster> {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'callguard-cluster-'));
  const removeDir = () => {
    if (!opts.dir) rmSync(dir, { recursive: true, force: true });
  };
  const all: Child[] = [];
  const argsOf = (port: number) => [
    ...REDIS_NOTHING_PERSISTED,
    '--cluster-enabled',
    'yes',
    '--cluster-config-file',
    join(dir, `nodes-${port}.conf`),
    '--dir',
    dir,
    '--logfile',
    join(dir, `redis-${port}.log`),
    '--cluster-node-timeout',
    String(opts.nodeTimeoutMs ?? 15_000),
    ...NO_SYNC_DELAY,
  ];
  const startNode = async (port: number): Promise<Child> => {
    const server = await startRedisServer(port, { args: argsOf(port) });
    all.push(server);
    return server;
  };
  const newNode = async (): Promise<ClusterNode> => {
    const port = await freePort();
    return { port, server: await startNode(port) };
  };
  // Every start is waited for, failed or not, so that a failure leaves no node running.
  const startAll = async (count: number): Promise<ClusterNode[]> => {
    const settled = await Promise.allSettled(Array.from({ length: count }, newNode));
    const failed = settled.find((r) => r.status === 'rejected');
    if (failed) {
      await Promise.allSettled(all.map((s) => s.kill()));
      removeDir();
      throw failed.reason;
    }
    return settled.map((r) => (r as PromiseFulfilledResult<ClusterNode>).value);
  };
  const masters = await startAll(3);
  const replicaNodes = opts.replicas ? await startAll(masters.length) : [];
  // Slots by hand rather than `redis-cli --cluster create`, which waits seconds between steps.
  const admin = (port: number) => new Redis({ port, host: '127.0.0.1', lazyConnect: false });
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
    removeDir();
    throw err;
  } finally {
    [...admins, ...replicaAdmins].forEach((a) => a.disconnect());
  }
  const servers = new Map(masters.map((m) => [m.port, m.server]));
  const replicas = new Map(replicaNodes.map((r, i) => [masters[i]!.port, r]));
  return {
    ports: masters.map((m) => m.port),
    url: masters.map((m) => `redis://127.0.0.1:${m.port}`).join(','),
    replicas,
    servers,
    dir,
    async restart(port) {
      const server = await startNode(port);
      if (servers.has(port)) servers.set(port, server);
      for (const r of replicas.values()) if (r.port === port) r.server = server;
      return server;
    },
    async stop() {
      for (const s of all) await s.kill();
      removeDir();
    },
  };
}

/** One line of CLUSTER NODES. */
export interface ClusterNodeState {
  id: string;
  port: number;
  role: 'master' | 'replica';
  /** The master's id, for a replica. */
  masterId: string | null;
  /** Whether this node is flagged failing (`fail`, or `fail?` as seen by the node asked). */
  failing: boolean;
  connected: boolean;
  /** Slot ranges it serves, as CLUSTER NODES writes them (`0-5460`, `12182`). */
  slots: string[];
}

/** CLUSTER NODES's text, line by line: `<id> <ip:port@cport> <flags> <master> <ping> <pong> <epoch> <link> <slot>...`. */
export function parseClusterNodes(text: string): ClusterNodeState[] {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean)
    .map((line) => {
      const [id, address, flags, master, , , , link, ...slots] = line.split(' ');
      const flagList = (flags ?? '').split(',');
      return {
        id: id!,
        port: Number(/:(\d+)@/.exec(address ?? '')?.[1] ?? 0),
        role: flagList.includes('slave') ? 'replica' : 'master',
        masterId: master && master !== '-' ? master : null,
        failing: flagList.includes('fail') || flagList.includes('fail?'),
        connected: link === 'connected',
        slots: slots.filter((s) => !s.startsWith('[')), // `[slot->-id]`: a slot migrating, not served
      };
    });
}

/** Whether a slot ranges entry (`0-5460` or `12182`) covers `slot`. */
export function servesSlot(node: Pick<ClusterNodeState, 'slots'>, slot: number): boolean {
  return node.slots.some((range) => {
    const [from, to = from] = range.split('-').map(Number);
    return slot >= from! && slot <= to!;
  });
}

/** What the node on `port` says of the cluster (CLUSTER NODES), or null when it does not answer. */
export async function clusterNodes(port: number, timeoutMs = 1000): Promise<ClusterNodeState[] | null> {
  const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, connectTimeout: timeoutMs, commandTimeout: timeoutMs, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return parseClusterNodes(String(await client.call('CLUSTER', 'NODES')));
  } catch {
    return null;
  } finally {
    client.disconnect();
  }
}

/** CLUSTER KEYSLOT of a key, asked of the node on `port`. */
export async function keySlot(port: number, key: string): Promise<number> {
  const client = new Redis({ port, host: '127.0.0.1' });
  try {
    return Number(await client.call('CLUSTER', 'KEYSLOT', key));
  } finally {
    client.disconnect();
  }
}

/** What a drill run can be told (the command line's options map onto it), and its defaults. */
import { KEYS } from '../../test/helpers/keys';

export interface DrillOptions {
  /** Seconds of load (the faults are placed inside it; the run stretches if a fault recovers slowly). */
  durationS: number;
  /** Scoring calls a second, all switches together. */
  rate: number;
  /** Switch clients, each with its own keep-alive connections to every instance. */
  switches: number;
  /** Calls one switch may have outstanding at once. */
  channels: number;
  /** Registry writes a second (PUT/DELETE of numbers, admin key), spread over `writers`. */
  writeRate: number;
  writers: number;
  /**
   * Where the writer sends each write: round robin over the instances (as through a load
   * balancer), or to the first one, moving on only when it refuses the connection.
   */
  writeVia: 'round-robin' | 'first';
  /** Calls sent to the instance being stopped just before SIGTERM, so some are surely in flight. */
  burstAtSigterm: number;
  /** A scoring call unanswered after this long is a hang (a failure). */
  requestTimeoutMs: number;
  /**
   * A registry write unanswered after this long is a hang. Longer than a call's: the service
   * may take its registry commit timeout (5 s) and then wait for a replica (up to 3 s) before it
   * answers, and on a cluster a write sent as a master dies waits for its replica's promotion.
   */
  writeTimeoutMs: number;
  /** Reported, not a failure: what a switch with this budget would have delivered unchecked. */
  switchBudgetMs: number;
  /** How long after the load the acknowledged writes may take to show on every instance. */
  verifyTimeoutMs: number;
  /** Checked bound on the survivors' p99 (generous: a loaded CI machine). */
  p99LimitMs: number;
  /** Progress lines (the CLI prints them; the test collects them). */
  log: (line: string) => void;

  // Self-contained mode (no `targets`): processes of its own.
  instances: number;
  /**
   * A Redis Cluster of three masters with a replica each instead of one redis-server: the fault
   * is then the master holding the registry killed, its replica promoted, and the killed node
   * started again (it rejoins as a replica).
   */
  cluster: boolean;
  /** The cluster's cluster-node-timeout: how long a master may not answer before its replica is promoted. */
  clusterNodeTimeoutMs: number;
  /**
   * Seconds after the load starts when Redis (in cluster mode: a master) is killed, and how long
   * it stays down (a killed master is started again no sooner than its replica was promoted).
   */
  redisKillAtS: number;
  redisDownS: number;
  /** Seconds after the load starts when one instance gets SIGTERM (not before Redis is back). */
  sigtermAtS: number;
  /** Start the stopped instance again this long after it exited (negative: leave it stopped). */
  restartAfterS: number;
  /** Run `node dist/server.js` (after `npm run build`) instead of the sources through tsx. */
  dist: boolean;
  /** Keep the working folder (logs, Redis AOF) afterwards. */
  keep: boolean;
  /** More environment for the instances (e.g. LOAD_SHED_EVENT_LOOP_DELAY_MS). */
  env: Record<string, string>;

  // Target mode: instances already running; faults are the operator's (`at`).
  targets?: string[];
  switchKey: string;
  adminKey: string;
  /** Shell commands run at given seconds into the load, e.g. killing Redis. */
  at: { atS: number; command: string }[];
  /** Bank the writer writes under (created, and in target mode deleted afterwards with its numbers). */
  bankId: string;
  /**
   * An inbound-only (do-not-originate) number of the registry: one call in twenty presents it,
   * and every instance must block it. Self-contained: the sample registry's; target mode: unset
   * unless given (--dno-number).
   */
  dnoNumber?: string;
}

export const DEFAULT_OPTIONS: DrillOptions = {
  durationS: 20,
  rate: 250,
  switches: 4,
  channels: 8,
  writeRate: 20,
  writers: 2,
  writeVia: 'round-robin',
  burstAtSigterm: 32,
  requestTimeoutMs: 3000,
  writeTimeoutMs: 10_000,
  switchBudgetMs: 200,
  verifyTimeoutMs: 15_000,
  p99LimitMs: 1000,
  log: () => undefined,
  instances: 3,
  cluster: false,
  clusterNodeTimeoutMs: 1000,
  redisKillAtS: 3,
  redisDownS: 3,
  sigtermAtS: 9,
  restartAfterS: 1,
  dist: false,
  keep: false,
  env: {},
  switchKey: KEYS.switch,
  adminKey: KEYS.admin,
  at: [],
  bankId: 'faultdrill',
};


/**
 * Fault drill: sustained load from switch-like clients and a registry writer while Redis is
 * killed and restarted and one instance is stopped with SIGTERM (then started again). README,
 * "Fault drill", says what it does and how to read it; `--help` lists the options.
 *
 *   npm run fault:drill                       # self-contained: its own redis-server and 3 instances
 *   npm run fault:drill -- --cluster          # the same on a Redis Cluster of its own: a master fails over
 *   npm run fault:drill -- --targets http://10.0.0.1:8080,http://10.0.0.2:8080 \
 *       --switch-key "$SWITCH_KEY" --admin-key "$ADMIN_KEY" \
 *       --at '5=docker compose -f docker/docker-compose.yml kill redis' \
 *       --at '10=docker compose -f docker/docker-compose.yml start redis'
 *
 * Checks (exit code 1 when any fails): every call got a verdict (failing over like a switch's
 * dispatcher); no failed request on an instance that was not being stopped; no request in
 * flight on the stopped instance reset; the stopped instance exited 0; every acknowledged
 * registry write is visible on every instance afterwards; refused writes were clean JSON 503s,
 * never a 500, a 4xx or a hang; every instance holds the same banks; every instance back on
 * Redis without a restart; on a cluster, the killed master's replica promoted and the node
 * rejoined as its replica. CI runs it as `test/e2e/faults.test.ts` and, on a cluster,
 * `test/e2e/faults-cluster.test.ts`.
 *
 * The drill's parts are in scripts/drill/: run.ts (the scenario, top to bottom), processes.ts
 * (its Redis and instances), switches.ts (the calls), writers.ts (the registry writes),
 * faults.ts, verify.ts (the writes, afterwards), report.ts (checks and summary), http.ts.
 * This file is the command line.
 */
import { killChildren } from './lib/process';
import type { DrillOptions } from './drill/options';
import { formatReport } from './drill/report';
import { runDrill } from './drill/run';

function parseArgs(argv: string[]): Partial<DrillOptions> {
  const out: Partial<DrillOptions> = {};
  const at: { atS: number; command: string }[] = [];
  const num = (name: string, v: string | undefined): number => {
    const n = Number(v);
    if (v === undefined || !Number.isFinite(n)) throw new Error(`--${name} needs a number`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = () => argv[++i];
    switch (arg) {
      case '--duration': out.durationS = num('duration', value()); break;
      case '--rate': out.rate = num('rate', value()); break;
      case '--switches': out.switches = num('switches', value()); break;
      case '--channels': out.channels = num('channels', value()); break;
      case '--write-rate': out.writeRate = num('write-rate', value()); break;
      case '--write-via': {
        const v = value();
        if (v !== 'first' && v !== 'round-robin') throw new Error('--write-via takes first or round-robin');
        out.writeVia = v;
        break;
      }
      case '--instances': out.instances = num('instances', value()); break;
      case '--cluster': out.cluster = true; break;
      case '--cluster-node-timeout': out.clusterNodeTimeoutMs = num('cluster-node-timeout', value()); break;
      case '--redis-kill-at': out.redisKillAtS = num('redis-kill-at', value()); break;
      case '--redis-down': out.redisDownS = num('redis-down', value()); break;
      case '--sigterm-at': out.sigtermAtS = num('sigterm-at', value()); break;
      case '--restart-after': out.restartAfterS = num('restart-after', value()); break;
      case '--no-restart': out.restartAfterS = -1; break;
      case '--p99-limit': out.p99LimitMs = num('p99-limit', value()); break;
      case '--dist': out.dist = true; break;
      case '--keep': out.keep = true; break;
      case '--env': {
        const v = value() ?? '';
        const eq = v.indexOf('=');
        if (eq < 1) throw new Error(`--env takes NAME=VALUE, got "${v}"`);
        out.env = { ...out.env, [v.slice(0, eq)]: v.slice(eq + 1) };
        break;
      }
      case '--targets': out.targets = (value() ?? '').split(',').map((s) => s.trim()).filter(Boolean); break;
      case '--switch-key': out.switchKey = value() ?? ''; break;
      case '--admin-key': out.adminKey = value() ?? ''; break;
      case '--bank': out.bankId = value() ?? ''; break;
      case '--dno-number': out.dnoNumber = value() ?? ''; break;
      case '--at': {
        const v = value() ?? '';
        const eq = v.indexOf('=');
        if (eq < 1) throw new Error(`--at takes SECONDS=COMMAND, got "${v}"`);
        at.push({ atS: num('at', v.slice(0, eq)), command: v.slice(eq + 1) });
        break;
      }
      case '--help':
      case '-h':
        process.stdout.write(HELP);
        process.exit(0);
        break;
      default:
        throw new Error(`unknown option ${arg} (--help lists them)`);
    }
  }
  if (at.length) out.at = at;
  if (out.cluster && out.targets) throw new Error('--cluster starts a cluster of its own: it does not go with --targets');
  if (out.targets) {
    out.switchKey = out.switchKey ?? process.env.DRILL_SWITCH_KEY;
    out.adminKey = out.adminKey ?? process.env.DRILL_ADMIN_KEY;
    if (!out.switchKey || !out.adminKey) throw new Error('--targets needs --switch-key and --admin-key (or DRILL_SWITCH_KEY and DRILL_ADMIN_KEY)');
  }
  return out;
}

const HELP = `npm run fault:drill -- [options]

Self-contained (default): a private redis-server (AOF, fsync always) and N instances of this
checkout; Redis is SIGKILLed and restarted, then one instance gets SIGTERM and is started again.
  --instances N        instances (default 3, at least 2)
  --duration S         seconds of load (default 20)
  --redis-kill-at S    when Redis is killed (default 3); --redis-down S: for how long (default 3)
  --cluster            a Redis Cluster instead (3 masters, 3 replicas): the master holding the
                       registry is killed and its replica promoted; the node is started again
                       after --redis-down (not before the promotion) and rejoins as a replica
  --cluster-node-timeout MS   the cluster's cluster-node-timeout (default 1000)
  --sigterm-at S       when one instance gets SIGTERM (default 9, not before Redis is back)
  --restart-after S    start it again S seconds after it exited (default 1); --no-restart
  --dist               run node dist/server.js (npm run build first) instead of the sources
  --env NAME=VALUE     more environment for the instances (repeatable)
  --keep               keep the working folder (instance logs, Redis AOF; kept anyway on failure)

Against running instances (the faults are yours, e.g. with --at):
  --targets URL,URL    instances, each addressed directly (not the load balancer)
  --switch-key K       a switch key (or DRILL_SWITCH_KEY); --admin-key K (or DRILL_ADMIN_KEY)
  --at 'S=COMMAND'     run a shell command S seconds into the load (repeatable)
  --bank ID            bank the writer uses (default faultdrill; deleted with its numbers at the end)
  --dno-number N       an inbound-only number of your registry: every instance must block calls from it

Load:
  --rate N             scoring calls a second (default 250); --switches N (4); --channels N (8)
  --write-rate N       registry writes a second (default 20)
  --write-via MODE     round-robin (default: each write to the next instance) or first
  --p99-limit MS       fail when the survivors' p99 is above it (default 1000)
`;

if (require.main === module) {
  let options: Partial<DrillOptions>;
  try {
    options = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`fault-drill: ${(err as Error).message}\n`);
    process.exit(2);
  }
  const interrupt = () => {
    killChildren();
    process.exit(130);
  };
  process.on('SIGINT', interrupt);
  process.on('SIGTERM', interrupt);
  runDrill({ ...options, log: (line) => process.stdout.write(`${line}\n`) }).then(
    (report) => {
      process.stdout.write(`\n${formatReport(report)}\n`);
      process.exit(report.ok ? 0 : 1);
    },
    (err: unknown) => {
      process.stderr.write(`fault-drill: ${(err as Error)?.stack ?? String(err)}\n`);
      process.exit(2);
    },
  );
}

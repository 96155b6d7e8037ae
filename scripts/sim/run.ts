import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { buildApp } from '../../src/app';
import { loadConfig } from '../../src/config';
import { generateTraffic, KINDS, type Kind, type TrafficOptions } from './traffic';

/** What became of one kind of call. */
export interface KindTally {
  kind: Kind;
  fraud: boolean;
  calls: number;
  allow: number;
  flag: number;
  block: number;
  /** Delivered (allow or flag) with the caller ID withheld. */
  withheld: number;
  /** Fraud: blocked, flagged or withheld. Legitimate: the same, wrongly. */
  caughtOrHarmed: number;
}

export interface SimulationResult {
  options: TrafficOptions;
  kinds: KindTally[];
  fraud: { calls: number; caught: number };
  legitimate: { calls: number; blocked: number; flaggedOrWithheld: number };
  /** Requests the service refused (a 4xx or 5xx): each is a defect of the simulator or the service. */
  failures: { status: number; body: string }[];
}

export const REGISTRY_FILE = resolve(__dirname, 'registry.json');

/**
 * Runs the traffic through the service's HTTP API (Fastify's inject: the whole request path, no
 * socket), on the embedded defaults and the default policy, with the service's clock following
 * the simulated time.
 */
export async function simulate(options: TrafficOptions, env: Record<string, string> = {}): Promise<SimulationResult> {
  const events = generateTraffic(options);
  const dir = mkdtempSync(join(tmpdir(), 'callguard-sim-'));
  const registryFile = join(dir, 'registry.json');
  copyFileSync(REGISTRY_FILE, registryFile);
  let now = options.start;
  const config = loadConfig({
    LOG_LEVEL: 'silent',
    REGISTRY_FILE: registryFile,
    REGISTRY_DATA_DIR: join(dir, 'data'),
    // The simulation runs faster than real time: event-loop delay says nothing of it.
    LOAD_SHED_EVENT_LOOP_DELAY_MS: '0',
    ...env,
  });
  const app = await buildApp({ config, logger: false, now: () => now });
  await app.ready();

  const tallies = new Map<Kind, KindTally>(
    (Object.keys(KINDS) as Kind[]).map((kind) => [kind, { kind, fraud: KINDS[kind], calls: 0, allow: 0, flag: 0, block: 0, withheld: 0, caughtOrHarmed: 0 }]),
  );
  const failures: SimulationResult['failures'] = [];
  try {
    for (const e of events) {
      now = e.at;
      const url = e.type === 'score' ? '/v1/calls/score' : e.type === 'announce' ? '/v1/calls/expected' : '/v1/reports';
      const res = await app.inject({ method: 'POST', url, payload: e.body });
      if (res.statusCode >= 400) {
        if (failures.length < 20) failures.push({ status: res.statusCode, body: res.body.slice(0, 300) });
        continue;
      }
      if (e.type !== 'score') continue;
      const answer = res.json<{ verdict: 'allow' | 'flag' | 'block'; presentation?: 'allowed' | 'withheld' }>();
      const t = tallies.get(e.kind)!;
      t.calls++;
      t[answer.verdict]++;
      const withheld = answer.verdict !== 'block' && answer.presentation === 'withheld';
      if (withheld) t.withheld++;
      if (answer.verdict !== 'allow' || withheld) t.caughtOrHarmed++;
    }
  } finally {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  }
  const kinds = [...tallies.values()];
  const fraud = kinds.filter((k) => k.fraud);
  const legit = kinds.filter((k) => !k.fraud);
  const sum = (ks: KindTally[], f: (k: KindTally) => number) => ks.reduce((s, k) => s + f(k), 0);
  return {
    options,
    kinds,
    fraud: { calls: sum(fraud, (k) => k.calls), caught: sum(fraud, (k) => k.caughtOrHarmed) },
    legitimate: {
      calls: sum(legit, (k) => k.calls),
      blocked: sum(legit, (k) => k.block),
      flaggedOrWithheld: sum(legit, (k) => k.caughtOrHarmed - k.block),
    },
    failures,
  };
}

const pct = (n: number, d: number) => (d === 0 ? '-' : `${((100 * n) / d).toFixed(2)}%`);

/** The result as the README's table. */
export function formatTable(r: SimulationResult): string {
  const rows = [
    '| kind | calls | allow | flag | block | withheld | caught / harmed |',
    '|---|---:|---:|---:|---:|---:|---:|',
  ];
  for (const fraud of [false, true]) {
    rows.push(`| **${fraud ? 'fraud' : 'legitimate'}** | | | | | | |`);
    for (const k of r.kinds.filter((x) => x.fraud === fraud))
      rows.push(`| ${k.kind} | ${k.calls} | ${k.allow} | ${k.flag} | ${k.block} | ${k.withheld} | ${pct(k.caughtOrHarmed, k.calls)} ${fraud ? 'caught' : 'harmed'} |`);
  }
  rows.push(
    '',
    `Fraud caught (blocked, flagged or withheld): ${r.fraud.caught} of ${r.fraud.calls} (${pct(r.fraud.caught, r.fraud.calls)}).`,
    `Legitimate calls blocked: ${r.legitimate.blocked} of ${r.legitimate.calls} (${pct(r.legitimate.blocked, r.legitimate.calls)}); flagged or withheld wrongly: ${r.legitimate.flaggedOrWithheld} (${pct(r.legitimate.flaggedOrWithheld, r.legitimate.calls)}).`,
  );
  return rows.join('\n');
}

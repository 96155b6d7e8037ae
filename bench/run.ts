/**
 * `npm run bench`: starts the real server (built `dist/server.js`) and loads it with
 * autocannon, path after path, in one run, against a baseline route on the same server that
 * parses the same JSON body and does nothing else. Prints req/s, p99 and each path's ratio
 * to the baseline. BENCH_SECONDS (default 8) and BENCH_CONNECTIONS (default 50) tune it.
 */
import autocannon from 'autocannon';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { resolve } from 'node:path';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const ROOT = resolve(__dirname, '..');

export interface Scenario {
  name: string;
  url: string;
  /** A fresh body per request (cache misses) or one body for all (cache hits). */
  body: () => string;
}

interface Result {
  name: string;
  rps: number;
  p99: number;
  errors: number;
  non2xx: number;
}

let counter = 0;
/** A distinct valid UK mobile caller per request: every request misses the verdict cache. */
function uniqueCaller(): string {
  counter = (counter + 1) % 1_000_000;
  return `+4474${String(counter).padStart(8, '0')}`;
}

export async function startServer(env: Record<string, string>): Promise<{ proc: ChildProcess; url: string; peakRssMb: () => Promise<number> }> {
  const port = 20000 + Math.floor(Math.random() * 20000);
  const proc = spawn(process.execPath, [resolve(ROOT, 'dist/server.js')], {
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', BENCH_BASELINE_ROUTE: 'true', ...env },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    try {
      const res = await fetch(`${url}/readyz`);
      if (res.ok) break;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const peakRssMb = async () => {
    const { readFileSync } = await import('node:fs');
    const status = readFileSync(`/proc/${proc.pid}/status`, 'utf8');
    const hwm = /VmHWM:\s+(\d+) kB/.exec(status);
    return hwm ? Number(hwm[1]) / 1024 : NaN;
  };
  return { proc, url, peakRssMb };
}

async function load(baseUrl: string, s: Scenario): Promise<Result> {
  const run = autocannon({
    url: baseUrl + s.url,
    method: 'POST',
    connections: CONNECTIONS,
    duration: SECONDS,
    headers: { 'content-type': 'application/json' },
    requests: [{ setupRequest: (req) => ({ ...req, body: s.body() }) }],
  });
  const r = await run;
  return { name: s.name, rps: r.requests.average, p99: r.latency.p99, errors: r.errors + r.timeouts, non2xx: r.non2xx };
}

export function printTable(results: Result[], baseline: Result): void {
  const rows = results.map((r) => ({
    path: r.name,
    'req/s': Math.round(r.rps),
    'p99 ms': r.p99,
    'vs baseline': `${((r.rps / baseline.rps) * 100).toFixed(0)}%`,
    errors: r.errors + r.non2xx,
  }));
  console.table(rows);
}

async function main(): Promise<void> {
  const fixedCall = JSON.stringify({ from: '+447400123456', to: '+442079460999', callId: 'bench-hit' });
  const scenarios: Scenario[] = [
    { name: 'baseline (parse body, no work)', url: '/bench/baseline', body: () => JSON.stringify({ from: uniqueCaller(), to: '+442079460999', callId: 'bench' }) },
    { name: 'score, cache hit', url: '/v1/calls/score', body: () => fixedCall },
    { name: 'score, cache miss', url: '/v1/calls/score', body: () => JSON.stringify({ from: uniqueCaller(), to: '+442079460999', callId: 'bench' }) },
  ];

  const server = await startServer({});
  try {
    // Warm up JIT and caches so the first path measured is not penalised.
    await load(server.url, { ...scenarios[0]!, name: 'warm-up' });
    const results: Result[] = [];
    for (const s of scenarios) results.push(await load(server.url, s));
    console.log(`\ncallguard bench: ${CONNECTIONS} connections, ${SECONDS} s per path, node ${process.version}`);
    printTable(results, results[0]!);
    console.log(`server peak RSS: ${(await server.peakRssMb()).toFixed(0)} MB`);
  } finally {
    server.proc.kill('SIGTERM');
    await once(server.proc, 'exit');
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}

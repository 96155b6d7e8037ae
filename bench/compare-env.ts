/**
 * Two or more configurations of the service, side by side, on fresh PASSporT calls: one server per
 * configuration (dist/server.js, the bench's PKI, x5u on a local server), loaded in turn in 2 s
 * slices with the same calls, so that other load on the machine weighs on every configuration
 * alike. Prints each one's median calls a second and server CPU per call: all threads, and the
 * event loop's (the main thread) apart.
 *
 *   npx tsx bench/compare-env.ts verify: noverify:SHAKEN_VERIFY=false
 *   ROUNDS=8 npx tsx bench/compare-env.ts pool2:UV_THREADPOOL_SIZE=2 pool1:UV_THREADPOOL_SIZE=1
 *
 * Each argument is `name:VAR=value,VAR=value` (no variables: the defaults). Run `npm run build`
 * first. ROUNDS (6) slices per configuration, 50 connections.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { uniqueCall } from './lib/calls';
import { load } from './lib/load';
import { median, positiveEnv } from './lib/numbers';
import { Pool, startPassportLab } from './lib/passports';
import { cpuMs, loopCpuMs, runScript, startCallguard, type Service } from './lib/procs';

interface Variant {
  name: string;
  env: Record<string, string>;
}

/** `name:VAR=value,VAR=value` */
export function parseVariant(arg: string): Variant {
  const at = arg.indexOf(':');
  const name = at < 0 ? arg : arg.slice(0, at);
  const spec = at < 0 ? '' : arg.slice(at + 1);
  if (!name) throw new Error(`a configuration needs a name: ${arg}`);
  const env: Record<string, string> = {};
  for (const pair of spec.split(',').filter(Boolean)) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new Error(`not VAR=value: ${pair}`);
    env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return { name, env };
}

/** Calls a second no configuration outruns on these paths: the pool is signed for it. */
const RATE_BOUND = 6000;
const SLICE_S = 2;

async function main(): Promise<void> {
  const variants = process.argv.slice(2).map(parseVariant);
  if (variants.length < 2) throw new Error('usage: compare-env.ts name:VAR=value[,VAR=value] name2:... (two or more)');
  const rounds = positiveEnv('ROUNDS', 6);
  const lab = await startPassportLab();
  const dirs: string[] = [];
  const services: Service[] = [];
  try {
    const base = { SHAKEN_TRUST_ANCHORS: lab.rootPemFile, SHAKEN_X5U_ALLOW_INSECURE: 'true', SHAKEN_MAX_AGE_S: '300' };
    for (const v of variants) {
      const dir = mkdtempSync(join(tmpdir(), 'callguard-compare-'));
      dirs.push(dir);
      services.push(await startCallguard(v.name, { env: { ...base, ...v.env, REGISTRY_DATA_DIR: dir } }));
    }
    // Each server is sent every PASSporT once, through a cursor of its own (each keeps its own
    // replay state); enough of them that no cursor wraps unless a configuration outruns RATE_BOUND.
    const pool = new Pool();
    pool.fill(lab.sign(Math.ceil(rounds * SLICE_S * RATE_BOUND), Math.floor(Date.now() / 1000)));
    const rps = variants.map(() => [] as number[]);
    const cpu = variants.map(() => [] as number[]);
    const loopCpu = variants.map(() => [] as number[]);
    for (let round = 0; round < rounds; round++) {
      for (const [i, svc] of services.entries()) {
        const [cpu0, loop0] = [cpuMs(svc.pid), loopCpuMs(svc.pid)];
        const body = () => {
          const c = pool.next(variants[i]!.name);
          return uniqueCall({ identity: c.identity }, c.from, c.to);
        };
        const r = await load({ url: `${svc.url}/v1/calls/score`, headers: { 'content-type': 'application/json' }, body, seconds: SLICE_S, connections: 50 });
        if (r.errors || r.non2xx) console.log(`  ${variants[i]!.name}: ${r.errors} errors, ${r.non2xx} non-2xx`);
        rps[i]!.push(r.rps);
        cpu[i]!.push(((cpuMs(svc.pid) - cpu0) * 1000) / Math.max(1, r.requests));
        loopCpu[i]!.push(((loopCpuMs(svc.pid) - loop0) * 1000) / Math.max(1, r.requests));
      }
    }
    for (const [name, n] of pool.wraps) console.log(`  ${name}: the PASSporT pool ran out ${n} time(s); later calls were replays, a cheaper path`);
    console.log(`fresh PASSporT calls, 50 connections, ${rounds} slices of ${SLICE_S} s each, in turn\n`);
    console.log('| configuration | calls/s (median) | server CPU µs/call (median) | of which the event loop | calls/s, each slice |');
    console.log('|---|---:|---:|---:|---|');
    for (const [i, v] of variants.entries()) {
      console.log(`| ${v.name} | ${median(rps[i]!).toFixed(0)} | ${median(cpu[i]!).toFixed(0)} | ${median(loopCpu[i]!).toFixed(0)} | ${rps[i]!.map((x) => x.toFixed(0)).join(' ')} |`);
    }
  } finally {
    for (const s of services) await s.stop();
    await lab.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
}

if (require.main === module) runScript(main);

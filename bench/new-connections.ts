/**
 * What a call costs a server when it comes as Kamailio's `http_client_query` sends it: at a fixed
 * rate, each request on a TCP connection of its own, one at a time rather than in a saturating
 * stream. The same client, in turns, against the bare Fastify process (lib/bare-server.cjs) and
 * against callguard (dist/server.js, cache misses, no keys, log level warn as in the switch test),
 * at each rate: server CPU per request, all its threads.
 *
 *   npx tsx bench/new-connections.ts [rates per second, comma-separated: 300,800] [seconds: 8]
 *
 * Run `npm run build` first. `npm run bench` measures the paths saturated over kept-alive
 * connections; this is the other end, where every request pays for its connection and for waking
 * an idle process.
 */
import { request } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { uniqueCall } from './lib/calls';
import { cpuMs, runScript, startBareFastify, startCallguard, type Service } from './lib/procs';

const RATES = (process.argv[2] ?? '300,800').split(',').map(Number);
const SECONDS = Number(process.argv[3] ?? 8);
if (RATES.some((r) => !(r > 0)) || !(SECONDS > 0)) throw new Error('usage: new-connections.ts [rates, e.g. 300,800] [seconds]');

/** A request not answered within this counts as failed, so that the bench always ends. */
const REQUEST_TIMEOUT_MS = 5000;

/** One POST on a connection of its own (no agent: the socket is closed after the answer); 0 for none. */
function post(url: URL, body: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request(
      { host: url.hostname, port: url.port, path: '/v1/calls/score', method: 'POST', agent: false, timeout: REQUEST_TIMEOUT_MS, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('aborted', () => resolve(0));
        res.on('error', () => resolve(0));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', () => resolve(0));
    req.end(body);
  });
}

/** Requests at `rate` a second for `seconds`, paced on the clock; the server's CPU per request. */
async function atRate(svc: Service, rate: number, seconds: number): Promise<{ requests: number; failed: number; cpuUsPerRequest: number }> {
  const url = new URL(svc.url);
  const answers: Promise<number>[] = [];
  const cpu0 = cpuMs(svc.pid);
  const t0 = performance.now();
  const total = Math.round(rate * seconds);
  while (answers.length < total) {
    const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * rate));
    while (answers.length < due) answers.push(post(url, uniqueCall()));
    await new Promise((r) => setTimeout(r, 1));
  }
  const codes = await Promise.all(answers);
  const cpu = cpuMs(svc.pid) - cpu0;
  return { requests: codes.length, failed: codes.filter((c) => c !== 200).length, cpuUsPerRequest: (cpu * 1000) / codes.length };
}

async function main(): Promise<void> {
  const data = mkdtempSync(join(tmpdir(), 'callguard-newconn-'));
  let bare: Service | undefined;
  let callguard: Service | undefined;
  try {
    bare = await startBareFastify();
    callguard = await startCallguard('callguard', { env: { LOG_LEVEL: 'warn', REGISTRY_DATA_DIR: data } });
    // Warm both (JIT, caches), then measure each rate on each server in turn.
    for (const svc of [bare, callguard]) await atRate(svc, 200, 2);
    console.log(`each request on a new connection, at a fixed rate, ${SECONDS} s each; server CPU per request (all threads)\n`);
    console.log('| calls/s | bare Fastify µs/request | callguard µs/request | callguard - bare |');
    console.log('|---:|---:|---:|---:|');
    for (const rate of RATES) {
      const b = await atRate(bare, rate, SECONDS);
      const c = await atRate(callguard, rate, SECONDS);
      if (b.failed || c.failed) console.log(`  failed: bare ${b.failed} of ${b.requests}, callguard ${c.failed} of ${c.requests}`);
      console.log(`| ${rate} | ${b.cpuUsPerRequest.toFixed(0)} | ${c.cpuUsPerRequest.toFixed(0)} | ${(c.cpuUsPerRequest - b.cpuUsPerRequest).toFixed(0)} |`);
    }
  } finally {
    await bare?.stop();
    await callguard?.stop();
    rmSync(data, { recursive: true, force: true });
  }
}

runScript(main);

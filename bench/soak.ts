/**
 * `npx tsx bench/soak.ts`: does the built server's memory level off? It builds (unless
 * SOAK_SKIP_BUILD=1), starts dist/server.js with the embedded store and default settings (only
 * what PASSporT verification needs: our own trust anchor, and http x5u on 127.0.0.1), and drives
 * it for SOAK_SECONDS with calls that are all distinct: a new caller, destination and call id on
 * every call (each one a verdict cache miss, a new velocity window, a new history key, a new
 * decision), and on a share of them (SOAK_PASSPORT_SHARE) a freshly signed PASSporT of its own
 * (a new fingerprint for the replay store). The server's RSS (VmRSS) is read every second, its
 * V8 heap (/metrics) every few seconds.
 *
 * Writes the samples to bench/results/soak.json and draws them in docs/soak-rss.svg (RSS and
 * heap over time, the 256 MB line), the picture in README.md's Performance section.
 *
 * Knobs: SOAK_SECONDS (default 210), SOAK_CONNECTIONS (default 20), SOAK_RATE (requests a second
 * in all; default 0: as fast as the server answers), SOAK_PASSPORT_SHARE (default 0.1);
 * SHAKEN_VERIFY_THREADS is passed on to the server (the default settings otherwise).
 * SOAK_HEAP_SNAPSHOT=<folder>: the server writes a heap snapshot there at the end of the load
 * (open it in Chrome DevTools, Memory tab), to see what a growing curve holds.
 * Only 127.0.0.1 is contacted.
 */
import autocannon from 'autocannon';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { int } from './lib/numbers';
import { startPassportLab, type PassportCall, type PassportLab } from './lib/passports';
import { memory, ROOT, runScript, startCallguard, type Service } from './lib/procs';

const num = (name: string, fallback: number, min = 0) => {
  const v = Number(process.env[name] ?? fallback);
  if (!Number.isFinite(v) || v < min) throw new Error(`${name} must be a number of at least ${min}`);
  return v;
};
const SECONDS = num('SOAK_SECONDS', 210, 10);
const CONNECTIONS = num('SOAK_CONNECTIONS', 20, 1);
const RATE = num('SOAK_RATE', 0);
const PASSPORT_SHARE = num('SOAK_PASSPORT_SHARE', 0.1);
if (PASSPORT_SHARE > 1) throw new Error('SOAK_PASSPORT_SHARE must be at most 1');
/** The RSS the server must stay under at default settings. */
const LIMIT_MB = 256;
const HEAP_EVERY_S = 5;
/**
 * PASSporTs are signed in batches a little ahead of need and must be younger than the server's
 * default SHAKEN_MAX_AGE_S (60 s) when they arrive: a batch lasts at most this long.
 */
const BATCH_S = 10;

const RESULTS = join(ROOT, 'bench/results');
const SVG = join(ROOT, 'docs/soak-rss.svg');
const HEAP_SNAPSHOT_DIR = process.env.SOAK_HEAP_SNAPSHOT ? resolve(process.env.SOAK_HEAP_SNAPSHOT) : undefined;
const SCORE = '/v1/calls/score';

export interface Sample {
  /** Seconds since the load began. */
  t: number;
  rssMb: number;
  /** Requests answered so far. */
  requests: number;
  load1m: number;
  /** V8 heap in use (nodejs_heap_size_used_bytes), MB; only on every HEAP_EVERY_S-th sample. */
  heapUsedMb?: number;
}

/**
 * Calls with nothing in common: caller +44 74xx (10^8 of them), destination +44 20 7xxx xxxx
 * (10^7), call id, and on a share of them a PASSporT signed for that call alone.
 */
class Calls {
  private seq = 0;
  private passports: PassportCall[] = [];
  private signedAt = 0;
  private signed = 0;
  /** PASSporT calls sent per second so far, to size the next batch. */
  private passportCalls = 0;

  constructor(
    private readonly lab: PassportLab,
    private readonly share: number,
  ) {}

  /** The next call's body. */
  next(): string {
    const n = ++this.seq;
    // Spread so that the share is steady: call n carries a PASSporT when floor(n * share) steps.
    if (this.share > 0 && Math.floor(n * this.share) !== Math.floor((n - 1) * this.share)) {
      const c = this.passport();
      this.passportCalls++;
      return JSON.stringify({ from: c.from, to: c.to, callId: `soak-${n}`, identity: c.identity });
    }
    const from = `+4474${String(n % 100_000_000).padStart(8, '0')}`;
    const to = `+44207${String((n * 7919) % 10_000_000).padStart(7, '0')}`;
    return JSON.stringify({ from, to, callId: `soak-${n}` });
  }

  get sent(): number {
    return this.seq;
  }

  private passport(): PassportCall {
    const now = Date.now();
    if (this.passports.length === 0 || now - this.signedAt > BATCH_S * 1000) {
      // Enough for a batch's worth at the rate seen so far; the numbers never repeat.
      const elapsedS = Math.max(1, (now - this.startedAt) / 1000);
      const count = Math.max(500, Math.ceil((this.passportCalls / elapsedS) * BATCH_S * 1.2));
      this.passports = this.lab.sign(count, Math.floor(now / 1000), this.signed).reverse();
      this.signed += count;
      this.signedAt = now;
    }
    return this.passports.pop()!;
  }

  private readonly startedAt = Date.now();
}

async function probe(svc: Service, body: string): Promise<{ cached?: boolean; shaken?: { verstat?: string; errors?: string[] } }> {
  const res = await fetch(svc.url + SCORE, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  const answer = (await res.json()) as { cached?: boolean; shaken?: { verstat?: string; errors?: string[] } };
  if (res.status !== 200 || answer.cached) throw new Error(`probe: status ${res.status}, ${JSON.stringify(answer).slice(0, 300)}`);
  return answer;
}

/** Has the server write a heap snapshot into `dir` and waits until the file stops growing. */
async function heapSnapshot(svc: Service, dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const snapshots = () => readdirSync(dir).filter((f) => f.endsWith('.heapsnapshot'));
  const before = new Set(snapshots());
  process.kill(svc.pid, 'SIGUSR2');
  let size = -1;
  for (let i = 0; i < 600; i++) {
    await new Promise((r) => setTimeout(r, 500));
    const file = snapshots().find((f) => !before.has(f));
    if (!file) continue;
    const now = statSync(join(dir, file)).size;
    if (now > 0 && now === size) return console.log(`heap snapshot: ${join(dir, file)}`);
    size = now;
  }
  throw new Error('heap snapshot: none written within 5 minutes');
}

async function heapUsedMb(svc: Service): Promise<number | undefined> {
  try {
    const text = await (await fetch(`${svc.url}/metrics`, { signal: AbortSignal.timeout(2000) })).text();
    const m = /^nodejs_heap_size_used_bytes(?:\{[^}]*\})? ([0-9.e+]+)/m.exec(text);
    return m ? Number(m[1]) / 2 ** 20 : undefined;
  } catch {
    return undefined;
  }
}

interface Soak {
  samples: Sample[];
  requests: number;
  errors: number;
  non2xx: number;
  rps: number;
}

function drive(svc: Service, calls: Calls): Promise<Soak> {
  const samples: Sample[] = [];
  let answered = 0;
  const t0 = performance.now();
  let tick = 0;
  return new Promise((resolve, reject) => {
    const sampler = setInterval(() => {
      const sample: Sample = { t: Math.round((performance.now() - t0) / 100) / 10, rssMb: memory(svc.pid).rssMb, requests: answered, load1m: loadavg()[0]! };
      samples.push(sample);
      if (tick++ % HEAP_EVERY_S === 0) void heapUsedMb(svc).then((mb) => mb !== undefined && (sample.heapUsedMb = mb));
      if (tick % 30 === 0) console.log(`  ${sample.t.toFixed(0)} s: RSS ${sample.rssMb.toFixed(0)} MB, ${answered.toLocaleString('en-GB')} calls, load ${sample.load1m.toFixed(2)}`);
    }, 1000);
    const instance = autocannon(
      {
        url: svc.url + SCORE,
        method: 'POST',
        connections: CONNECTIONS,
        duration: SECONDS,
        ...(RATE > 0 ? { overallRate: RATE } : {}),
        headers: { 'content-type': 'application/json' },
        requests: [{ setupRequest: (req) => ({ ...req, body: calls.next() }) }],
      },
      (err, r) => {
        clearInterval(sampler);
        if (err) return reject(err instanceof Error ? err : new Error(String(err)));
        samples.push({ t: Math.round((performance.now() - t0) / 100) / 10, rssMb: memory(svc.pid).rssMb, requests: answered, load1m: loadavg()[0]! });
        resolve({ samples, requests: r.requests.total, errors: r.errors, non2xx: r.non2xx, rps: r.requests.total / r.duration });
      },
    );
    instance.on('response', () => answered++);
  });
}

/** Does the curve level off? The last third's highest RSS against the middle third's. */
export function levelling(samples: readonly Sample[]): { middleMaxMb: number; lastMaxMb: number; growthMb: number } {
  const end = samples.at(-1)?.t ?? 0;
  const max = (from: number, to: number) => Math.max(...samples.filter((s) => s.t >= from && s.t < to + 1e-9).map((s) => s.rssMb));
  const middleMaxMb = max(end / 3, (2 * end) / 3);
  const lastMaxMb = max((2 * end) / 3, end);
  return { middleMaxMb, lastMaxMb, growthMb: lastMaxMb - middleMaxMb };
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

/** The curve as an SVG drawn by hand: axes, gridlines, labels, the limit line, RSS and heap. */
export function drawSvg(samples: readonly Sample[], opts: { limitMb: number; title: string; subtitle: string }): string {
  const W = 800;
  const H = 420;
  const m = { left: 64, right: 24, top: 56, bottom: 52 };
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;
  const tMax = Math.max(10, Math.ceil((samples.at(-1)?.t ?? 0) / 30) * 30);
  const peak = Math.max(opts.limitMb, ...samples.map((s) => s.rssMb));
  const yMax = Math.ceil((peak * 1.1) / 50) * 50;
  const x = (t: number) => m.left + (t / tMax) * pw;
  const y = (mb: number) => m.top + ph - (mb / yMax) * ph;
  const f = (v: number) => v.toFixed(1);
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(`<text x="${m.left}" y="22" font-size="15" font-weight="bold">${esc(opts.title)}</text>`);
  out.push(`<text x="${m.left}" y="40" fill="#555">${esc(opts.subtitle)}</text>`);
  // Gridlines and tick labels: every 50 MB, every 30 s.
  for (let mb = 0; mb <= yMax; mb += 50) {
    out.push(`<line x1="${m.left}" y1="${f(y(mb))}" x2="${W - m.right}" y2="${f(y(mb))}" stroke="#e4e4e4"/>`);
    out.push(`<text x="${m.left - 8}" y="${f(y(mb) + 4)}" text-anchor="end" fill="#333">${mb}</text>`);
  }
  for (let t = 0; t <= tMax; t += 30) {
    out.push(`<line x1="${f(x(t))}" y1="${m.top}" x2="${f(x(t))}" y2="${m.top + ph}" stroke="#e4e4e4"/>`);
    out.push(`<text x="${f(x(t))}" y="${m.top + ph + 18}" text-anchor="middle" fill="#333">${t}</text>`);
  }
  // Axes and their names.
  out.push(`<line x1="${m.left}" y1="${m.top}" x2="${m.left}" y2="${m.top + ph}" stroke="#333"/>`);
  out.push(`<line x1="${m.left}" y1="${m.top + ph}" x2="${W - m.right}" y2="${m.top + ph}" stroke="#333"/>`);
  out.push(`<text x="${m.left + pw / 2}" y="${H - 10}" text-anchor="middle" fill="#333">time under load (s)</text>`);
  out.push(`<text transform="translate(16 ${m.top + ph / 2}) rotate(-90)" text-anchor="middle" fill="#333">MB</text>`);
  // The limit.
  out.push(`<line x1="${m.left}" y1="${f(y(opts.limitMb))}" x2="${W - m.right}" y2="${f(y(opts.limitMb))}" stroke="#c0392b" stroke-width="1.5" stroke-dasharray="6 4"/>`);
  out.push(`<text x="${W - m.right - 4}" y="${f(y(opts.limitMb) - 6)}" text-anchor="end" fill="#c0392b">${opts.limitMb} MB</text>`);
  // The series.
  const line = (pts: [number, number][], colour: string) =>
    pts.length ? `<polyline fill="none" stroke="${colour}" stroke-width="2" stroke-linejoin="round" points="${pts.map(([t, mb]) => `${f(x(t))},${f(y(mb))}`).join(' ')}"/>` : '';
  out.push(line(samples.map((s) => [s.t, s.rssMb]), '#1f77b4'));
  out.push(line(samples.filter((s) => s.heapUsedMb !== undefined).map((s) => [s.t, s.heapUsedMb!]), '#2ca02c'));
  // Legend, bottom right: below the RSS line and clear of the limit.
  const lx = W - m.right - 196;
  const ly = m.top + ph - 34;
  out.push(`<rect x="${lx - 6}" y="${ly - 12}" width="190" height="42" fill="#ffffff" fill-opacity="0.85" stroke="#ccc"/>`);
  out.push(`<line x1="${lx}" y1="${ly - 4}" x2="${lx + 24}" y2="${ly - 4}" stroke="#1f77b4" stroke-width="2"/><text x="${lx + 30}" y="${ly}">resident (VmRSS)</text>`);
  out.push(`<line x1="${lx}" y1="${ly + 14}" x2="${lx + 24}" y2="${ly + 14}" stroke="#2ca02c" stroke-width="2"/><text x="${lx + 30}" y="${ly + 18}">V8 heap in use</text>`);
  out.push('</svg>', '');
  return out.join('\n');
}

async function main(): Promise<void> {
  if (process.env.SOAK_SKIP_BUILD !== '1') {
    console.log('soak: npm run build ...');
    const b = spawnSync('npm', ['run', 'build'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
    if (b.status !== 0) throw new Error('npm run build failed');
  }
  const loadBefore = loadavg();
  const tmp = mkdtempSync(join(tmpdir(), 'callguard-soak-'));
  let lab: PassportLab | undefined;
  let svc: Service | undefined;
  try {
    lab = await startPassportLab();
    svc = await startCallguard('callguard (embedded)', {
      env: {
        SHAKEN_TRUST_ANCHORS: lab.rootPemFile,
        SHAKEN_X5U_ALLOW_INSECURE: 'true',
        REGISTRY_DATA_DIR: join(tmp, 'data'),
        ...(process.env.SHAKEN_VERIFY_THREADS !== undefined ? { SHAKEN_VERIFY_THREADS: process.env.SHAKEN_VERIFY_THREADS } : {}),
      },
      ...(HEAP_SNAPSHOT_DIR ? { nodeArgs: ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${HEAP_SNAPSHOT_DIR}`] } : {}),
    });
    const startRssMb = memory(svc.pid).rssMb;
    console.log(
      `soak: ${SECONDS} s, ${CONNECTIONS} connections, ${RATE > 0 ? `${RATE} req/s` : 'as fast as answered'}, ${(PASSPORT_SHARE * 100).toFixed(0)} % with a fresh PASSporT; RSS at ready ${startRssMb.toFixed(0)} MB; load average ${loadBefore.map((x) => x.toFixed(2)).join(' ')}`,
    );
    const calls = new Calls(lab, PASSPORT_SHARE);
    // Probes first: a path that fails is not soaked. The first PASSporT's certificate is fetched
    // cold (the call does not wait for it), so a few are sent until one verifies.
    const probeShare = new Calls(lab, 1);
    let verstat: string | undefined;
    for (let i = 0; i < 20 && verstat !== 'TN-Validation-Passed'; i++) {
      const body = await probe(svc, i === 0 ? new Calls(lab, 0).next() : probeShare.next());
      verstat = body.shaken?.verstat;
      if (i > 0) await new Promise((r) => setTimeout(r, 100));
    }
    if (verstat !== 'TN-Validation-Passed') throw new Error(`probe PASSporT: ${verstat}`);
    const soak = await drive(svc, calls);
    const peak = memory(svc.pid);
    if (HEAP_SNAPSHOT_DIR) await heapSnapshot(svc, HEAP_SNAPSHOT_DIR);
    const loadAfter = loadavg();
    const lv = levelling(soak.samples);
    const passports = Math.floor(calls.sent * PASSPORT_SHARE);
    const summary = {
      generatedAt: new Date().toISOString(),
      machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model.trim(), memoryGb: Math.round(totalmem() / 2 ** 30), node: process.version },
      settings: { seconds: SECONDS, connections: CONNECTIONS, rate: RATE || null, passportShare: PASSPORT_SHARE, server: 'dist/server.js, embedded store, default settings' },
      loadAverage: { before: loadBefore, after: loadAfter },
      calls: { sent: calls.sent, answered: soak.requests, rps: soak.rps, errors: soak.errors, non2xx: soak.non2xx, distinctCallers: calls.sent - passports, distinctPassports: passports },
      rss: { atReadyMb: startRssMb, peakMb: peak.peakRssMb, endMb: peak.rssMb, limitMb: LIMIT_MB, ...lv, underLimit: peak.peakRssMb < LIMIT_MB },
      samples: soak.samples,
    };
    mkdirSync(RESULTS, { recursive: true });
    writeFileSync(join(RESULTS, 'soak.json'), JSON.stringify(summary, null, 2) + '\n');
    writeFileSync(
      SVG,
      drawSvg(soak.samples, {
        limitMb: LIMIT_MB,
        title: `callguard RSS under ${int(soak.requests)} distinct calls (embedded store, default settings)`,
        subtitle: `${int(soak.rps)} req/s, ${(PASSPORT_SHARE * 100).toFixed(0)} % with a fresh PASSporT, ${CONNECTIONS} connections; peak ${peak.peakRssMb.toFixed(0)} MB; ${cpus().length} cores, node ${process.version}`,
      }),
    );
    console.log(
      [
        `soak: ${int(soak.requests)} calls answered (${int(soak.rps)} req/s, ${soak.errors} errors, ${soak.non2xx} non-2xx), ${int(calls.sent - passports)} distinct callers, ${int(passports)} distinct PASSporTs`,
        `RSS: ${startRssMb.toFixed(0)} MB at ready, peak ${peak.peakRssMb.toFixed(0)} MB (limit ${LIMIT_MB} MB: ${peak.peakRssMb < LIMIT_MB ? 'under' : 'OVER'}), end ${peak.rssMb.toFixed(0)} MB`,
        `levelling: highest RSS in the middle third ${lv.middleMaxMb.toFixed(0)} MB, in the last third ${lv.lastMaxMb.toFixed(0)} MB (${lv.growthMb >= 0 ? '+' : ''}${lv.growthMb.toFixed(0)} MB)`,
        `load average before ${loadBefore.map((x) => x.toFixed(2)).join(' ')}, after ${loadAfter.map((x) => x.toFixed(2)).join(' ')}`,
        `wrote ${relative(ROOT, join(RESULTS, 'soak.json'))} and ${relative(ROOT, SVG)}`,
      ].join('\n'),
    );
  } finally {
    await svc?.stop();
    await lab?.close();
    rmSync(tmp, { recursive: true, force: true });
  }
}

if (require.main === module) runScript(main);

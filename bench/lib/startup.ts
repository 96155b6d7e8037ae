/**
 * Start-up with a large registry on the embedded default: time from spawn to /readyz 200, and
 * memory once ready, for a first start (validates the file) and a restart (validates the file
 * again and reads the snapshot), against the same server with the shipped sample registry.
 *
 * The data folder holds nothing until the registry's first change, so the first start makes one
 * (after it is measured): the restart then has the snapshot and journal to read, as a server
 * restarted after any edit does.
 */
import { join, relative } from 'node:path';
import { memory, ROOT, startCallguard, type ProcMemory } from './procs';
import { summariseCpuProfile, summariseHeapProfile, type ProfileSummary } from './profile';
import { writeRegistry } from './registry';

export interface StartMeasure {
  ok: boolean;
  readyMs?: number;
  /** RSS right after /readyz answered, and the peak (VmHWM) until then. */
  memory?: ProcMemory;
  /** V8's heap at that moment, from the server's own /metrics: what RSS is made of. */
  heap?: { usedMb: number; committedMb: number; externalMb: number };
  error?: string;
}

export interface StartupGoals {
  readyMs: number;
  rssMb: number;
}

export interface StartupResult {
  registry: { banks: number; numbers: number; prefixes: number; fileMb: number };
  /** The same server with the shipped sample registry: what the large registry adds is measured against it. */
  sample: StartMeasure;
  first: StartMeasure;
  restart: StartMeasure;
  goalsMet: boolean;
  /** Only when a goal was missed. */
  profile?: {
    numbers: number;
    first: StartMeasure;
    restart: StartMeasure;
    cpu: Record<string, ProfileSummary>;
    /** What was allocated and not yet collected at exit, by allocating function. */
    heap: Record<string, ProfileSummary>;
    files: string[];
  };
}

/** The process gauges prom-client exports on /metrics (nodejs_heap_size_used_bytes, ...). */
async function heapGauges(url: string): Promise<StartMeasure['heap']> {
  const text = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  const gauge = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN) / 2 ** 20;
  return { usedMb: gauge('nodejs_heap_size_used_bytes'), committedMb: gauge('nodejs_heap_size_total_bytes'), externalMb: gauge('nodejs_external_memory_bytes') };
}

/**
 * One registry change through the admin API (the bench's server runs open, on loopback): the
 * embedded backend then pins the registry as its snapshot, which the next start reads.
 */
async function changeRegistry(url: string): Promise<void> {
  const res = await fetch(`${url}/v1/registry/banks/bench-startup`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'Bench start-up bank' }),
    signal: AbortSignal.timeout(30_000),
  });
  if (!res.ok) throw new Error(`registry change for the restart: HTTP ${res.status} ${await res.text()}`);
}

async function timedStart(
  name: string,
  env: Record<string, string>,
  timeoutMs: number,
  nodeArgs: string[] = [],
  afterMeasure?: (url: string) => Promise<void>,
): Promise<StartMeasure> {
  try {
    const svc = await startCallguard(name, { env, nodeArgs, readyTimeoutMs: timeoutMs });
    try {
      const mem = memory(svc.pid);
      const measured: StartMeasure = { ok: true, readyMs: svc.readyMs, memory: mem, heap: await heapGauges(svc.url).catch(() => undefined) };
      await afterMeasure?.(svc.url);
      return measured;
    } finally {
      await svc.stop();
    }
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
}

/**
 * When a goal is missed, both starts are profiled again (CPU and heap) at a tenth of the size,
 * 100,000 numbers at least: the work is per entry, so the shares stay those of the full size
 * (checked against a profile of a full 1,000,000-number start) while the run stays short.
 */
export async function measureStartup(opts: { numbers: number; tmp: string; profilesDir: string; timeoutMs: number; goals: StartupGoals }): Promise<StartupResult> {
  const { tmp, profilesDir, timeoutMs, goals } = opts;
  const spec = { banks: 50, numbers: opts.numbers, prefixes: Math.ceil(opts.numbers / 1000) };
  const file = join(tmp, 'registry-large.json');
  const bytes = await writeRegistry(file, spec);
  const sample = await timedStart('sample registry', { REGISTRY_DATA_DIR: join(tmp, 'startup-sample') }, timeoutMs);
  const env = { REGISTRY_FILE: file, REGISTRY_DATA_DIR: join(tmp, 'startup-data') };
  const first = await timedStart('first start', env, timeoutMs, [], changeRegistry);
  const restart = first.ok ? await timedStart('restart', env, timeoutMs) : { ok: false, error: 'first start failed' };
  const met = (m: StartMeasure) => m.ok && m.readyMs! < goals.readyMs && m.memory!.rssMb < goals.rssMb;
  const result: StartupResult = { registry: { ...spec, fileMb: bytes / 2 ** 20 }, sample, first, restart, goalsMet: met(first) && met(restart) };
  if (result.goalsMet || !first.ok) return result;

  const numbers = Math.min(spec.numbers, Math.max(100_000, Math.ceil(spec.numbers / 10)));
  const smallFile = join(tmp, 'registry-tenth.json');
  await writeRegistry(smallFile, { ...spec, numbers, prefixes: Math.ceil(numbers / 1000) });
  const smallEnv = { REGISTRY_FILE: smallFile, REGISTRY_DATA_DIR: join(tmp, 'startup-profile-data') };
  const flags = (name: string) => [
    '--cpu-prof', `--cpu-prof-dir=${profilesDir}`, `--cpu-prof-name=${name}.cpuprofile`,
    '--heap-prof', `--heap-prof-dir=${profilesDir}`, `--heap-prof-name=${name}.heapprofile`, '--heap-prof-interval=65536',
  ];
  const profiled = {
    first: await timedStart('profiled first start', smallEnv, timeoutMs, flags('start-first'), changeRegistry),
    restart: await timedStart('profiled restart', smallEnv, timeoutMs, flags('start-restart')),
  };
  const cpu: Record<string, ProfileSummary> = {};
  const heap: Record<string, ProfileSummary> = {};
  const files: string[] = [];
  for (const [key, m] of Object.entries(profiled)) {
    if (!m.ok) continue;
    const base = join(profilesDir, `start-${key}`);
    cpu[key] = summariseCpuProfile(`${base}.cpuprofile`);
    heap[key] = summariseHeapProfile(`${base}.heapprofile`);
    files.push(relative(ROOT, `${base}.cpuprofile`), relative(ROOT, `${base}.heapprofile`));
  }
  return { ...result, profile: { numbers, ...profiled, cpu, heap, files } };
}

const s1 = (ms: number) => `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
const mb = (x: number) => `${x.toFixed(0)} MB`;

/** `label: ready in 1.2 s (goal < 3 s: met), RSS after ready ...`; no goals for the reference start. */
export function startLine(label: string, m: StartMeasure, goals?: StartupGoals): string {
  if (!m.ok) return `${label}: failed (${m.error})`;
  const t = goals ? ` (goal < ${goals.readyMs / 1000} s: ${m.readyMs! < goals.readyMs ? 'met' : 'missed'})` : '';
  const r = goals ? ` (goal < ${goals.rssMb} MB: ${m.memory!.rssMb < goals.rssMb ? 'met' : 'missed'})` : '';
  const heap = m.heap ? `; V8 heap ${mb(m.heap.usedMb)} used of ${mb(m.heap.committedMb)} committed, external ${mb(m.heap.externalMb)}` : '';
  return `${label}: ready in ${s1(m.readyMs!)}${t}, RSS after ready ${mb(m.memory!.rssMb)}${r}, peak ${mb(m.memory!.peakRssMb)}${heap}`;
}

/** What the large registry costs per entry, against the sample-registry start. */
export function perEntryLine(r: StartupResult): string | null {
  const { sample, first, registry } = r;
  if (!sample.ok || !first.ok || !sample.heap || !first.heap) return null;
  const per = (a: number, b: number) => Math.round(((a - b) * 2 ** 20) / (registry.numbers + registry.prefixes));
  return `per registry entry (first start against the sample registry): ${per(first.memory!.rssMb, sample.memory!.rssMb)} bytes of RSS, ${per(first.heap.usedMb, sample.heap.usedMb)} bytes of V8 heap in use`;
}

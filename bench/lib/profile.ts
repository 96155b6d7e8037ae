/**
 * Reads V8 profiles written by `node --cpu-prof` / `--heap-prof` and says where the time (or
 * memory) went, by function: our code (dist/*.js mapped back to src/*.ts through the build's
 * source maps), each dependency, Node's internals, and the engine (GC, native code).
 */
import { existsSync, readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ROOT } from './procs';

interface CallFrame {
  functionName: string;
  /** 0 for the engine's own builtins (a string in CPU profiles, a number in heap ones); code made by `new Function` has an id but no url. */
  scriptId: string | number;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

interface CpuProfile {
  nodes: { id: number; callFrame: CallFrame; children?: number[] }[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

interface HeapNode {
  callFrame: CallFrame;
  selfSize: number;
  children: HeapNode[];
}

export type Kind = 'ours' | 'dependency' | 'node' | 'gc' | 'engine';

export interface Cost {
  kind: Kind;
  /** `src/calls/assess.ts:84 assess`, `fastify/lib/route.js:420 routeHandler`, `JSON.parse <- src/registry/load.ts:30 loadRegistryFile`. */
  fn: string;
  /** npm package, for dependencies. */
  pkg?: string;
  /** ms of self time, or MB for a heap profile. */
  amount: number;
  /** Of the busy time (idle excluded), or of the sampled memory. */
  share: number;
}

export interface ProfileSummary {
  /** Busy ms (cpu) or sampled MB (heap) the shares are of. */
  total: number;
  byKind: Record<Kind, number>;
  packages: { pkg: string; share: number }[];
  ours: Cost[];
  dependencies: Cost[];
  /** Everything else worth naming: native code, Node internals, GC. */
  other: Cost[];
}

const sourceMaps = new Map<string, SourceMap | null>();

function sourceMapFor(file: string): SourceMap | null {
  if (!sourceMaps.has(file)) {
    const mapFile = `${file}.map`;
    sourceMaps.set(file, existsSync(mapFile) ? new SourceMap(JSON.parse(readFileSync(mapFile, 'utf8'))) : null);
  }
  return sourceMaps.get(file)!;
}

/** Where a frame is, in the terms a reader of this repository uses. */
function locate(frame: CallFrame): { kind: Kind; where: string; pkg?: string } {
  const { url, functionName } = frame;
  if (functionName === '(garbage collector)') return { kind: 'gc', where: 'GC' };
  if (url.startsWith('node:')) return { kind: 'node', where: url };
  if (!url) return { kind: 'engine', where: '' };
  const file = url.startsWith('file://') ? fileURLToPath(url) : url;
  const nm = file.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = file.slice(nm + '/node_modules/'.length);
    const parts = rest.split('/');
    const pkg = parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
    return { kind: 'dependency', where: `${rest}:${frame.lineNumber + 1}`, pkg };
  }
  const map = sourceMapFor(file);
  const entry = map?.findEntry(frame.lineNumber, frame.columnNumber);
  if (entry && 'originalSource' in entry) {
    const src = relative(ROOT, resolve(dirname(file), entry.originalSource));
    return { kind: 'ours', where: `${src}:${entry.originalLine + 1}` };
  }
  return { kind: 'ours', where: `${relative(ROOT, file)}:${frame.lineNumber + 1}` };
}

const name = (f: CallFrame) => f.functionName || '(anonymous)';

/**
 * Self cost per function. A frame without a file of ours or a dependency's (native code such
 * as JSON.parse or a socket write, code generated with `new Function` such as fast-json-stringify's
 * serialisers, or Node's own JavaScript) is named with the nearest caller
 * that has one, since that is what a reader can change; native work also counts against that
 * caller's kind.
 */
function summarise(entries: Iterable<{ frame: CallFrame; callers: CallFrame[]; amount: number }>, top: number): ProfileSummary {
  const costs = new Map<string, Cost>();
  const byKind: Record<Kind, number> = { ours: 0, dependency: 0, node: 0, gc: 0, engine: 0 };
  const packages = new Map<string, number>();
  let total = 0;
  for (const { frame, callers, amount } of entries) {
    const loc = locate(frame);
    let kind = loc.kind;
    let pkg = loc.pkg;
    const engineLabel = String(frame.scriptId) === '0' ? 'native' : 'generated';
    let fn = kind === 'gc' ? 'garbage collection' : kind === 'engine' ? `${name(frame)} (${engineLabel})` : `${loc.where} ${name(frame)}`;
    if (kind === 'engine' || kind === 'node') {
      const located = callers.map((f) => ({ f, loc: locate(f) }));
      const direct = located.find((c) => c.loc.kind !== 'engine');
      const owner = located.find((c) => c.loc.kind === 'ours' || c.loc.kind === 'dependency');
      if (kind === 'engine' && direct) {
        fn += ` <- ${direct.loc.where} ${name(direct.f)}`;
        [kind, pkg] = [direct.loc.kind, direct.loc.pkg];
      }
      if (owner && owner !== direct) fn += ` <- ${owner.loc.where} ${name(owner.f)}`;
    }
    total += amount;
    byKind[kind] += amount;
    if (pkg) packages.set(pkg, (packages.get(pkg) ?? 0) + amount);
    const key = `${kind}|${fn}`;
    const c = costs.get(key) ?? { kind, fn, ...(pkg ? { pkg } : {}), amount: 0, share: 0 };
    c.amount += amount;
    costs.set(key, c);
  }
  const share = (x: number) => (total > 0 ? x / total : 0);
  const sorted = [...costs.values()].map((c) => ({ ...c, share: share(c.amount) })).sort((a, b) => b.amount - a.amount);
  return {
    total,
    byKind: Object.fromEntries(Object.entries(byKind).map(([k, v]) => [k, share(v)])) as Record<Kind, number>,
    packages: [...packages].map(([pkg, v]) => ({ pkg, share: share(v) })).sort((a, b) => b.share - a.share).slice(0, top),
    ours: sorted.filter((c) => c.kind === 'ours').slice(0, top),
    dependencies: sorted.filter((c) => c.kind === 'dependency').slice(0, top),
    other: sorted.filter((c) => c.kind !== 'ours' && c.kind !== 'dependency').slice(0, top),
  };
}

/**
 * Self time by function from a .cpuprofile, idle excluded. `window` (microseconds of the
 * monotonic clock, which is what both V8's profile timestamps and process.hrtime use) keeps
 * only the samples taken during a load, leaving out the server's start and shutdown.
 */
export function summariseCpuProfile(file: string, opts: { top?: number; window?: { fromUs: number; toUs: number } } = {}): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  /** Callers with a script, nearest first. */
  const callersOf = (id: number): CallFrame[] => {
    const out: CallFrame[] = [];
    for (let up = parent.get(id); up !== undefined; up = parent.get(up)) {
      const f = byId.get(up)!.callFrame;
      if (f.url) out.push(f);
    }
    return out;
  };
  const selfUs = new Map<number, number>();
  let t = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i]!;
    // A sample stands for the time until the next one.
    const dt = p.timeDeltas[i + 1] ?? 0;
    if (opts.window && (t < opts.window.fromUs || t > opts.window.toUs)) continue;
    selfUs.set(p.samples[i]!, (selfUs.get(p.samples[i]!) ?? 0) + dt);
  }
  const entries = [...selfUs]
    .map(([id, us]) => ({ frame: byId.get(id)!.callFrame, callers: callersOf(id), amount: us / 1000 }))
    .filter((e) => e.frame.functionName !== '(idle)' && e.frame.functionName !== '(root)');
  return summarise(entries, opts.top ?? 8);
}

/**
 * Sampled memory by allocating function from a .heapprofile (`--heap-prof`): what was
 * allocated and not yet collected when the process exited.
 */
export function summariseHeapProfile(file: string, opts: { top?: number } = {}): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as { head: HeapNode };
  const entries: { frame: CallFrame; callers: CallFrame[]; amount: number }[] = [];
  const walk = (n: HeapNode, callers: CallFrame[]) => {
    if (n.selfSize > 0) entries.push({ frame: n.callFrame, callers, amount: n.selfSize / 2 ** 20 });
    const next = n.callFrame.url ? [n.callFrame, ...callers] : callers;
    for (const c of n.children) walk(c, next);
  };
  walk(p.head, []);
  return summarise(entries, opts.top ?? 8);
}

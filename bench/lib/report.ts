/** How a run's results read: one markdown table for README.md, and short lines for the rest. */
import type { Totals } from './load';
import { int } from './numbers';
import type { ProfileSummary } from './profile';

export interface Goal {
  /** Least share of the baseline's req/s. */
  ratio?: number;
  /** Highest p99, ms. */
  p99Ms?: number;
}

export interface PathResult extends Partial<Totals> {
  key: string;
  name: string;
  server: string;
  /** Of the baseline route's req/s on the same server: the median of the slices' ratios. */
  ratio?: number;
  ratioPerSlice?: number[];
  /** 1-minute load average right after the path ran (the bench itself adds about 2 while loading). */
  loadAvg1m?: number;
  goal: Goal;
  goalMet?: boolean;
  /** Why the path was not timed, or what to know about its figures. */
  note?: string;
}

const ms = (n: number) => (n < 10 ? n.toFixed(1) : n.toFixed(0));
export const pct = (x: number, digits = 0) => `${(x * 100).toFixed(digits)} %`;

export function judge(r: PathResult): boolean | undefined {
  if (r.rps === undefined) return undefined;
  const ratioOk = r.goal.ratio === undefined || (r.ratio ?? 0) >= r.goal.ratio;
  const p99Ok = r.goal.p99Ms === undefined || (r.p99 ?? Infinity) < r.goal.p99Ms;
  return ratioOk && p99Ok;
}

function goalCell(r: PathResult): string {
  const parts: string[] = [];
  if (r.goal.ratio !== undefined) parts.push(`≥ ${pct(r.goal.ratio)} ${r.ratio !== undefined && r.ratio >= r.goal.ratio ? 'met' : 'missed'}`);
  if (r.goal.p99Ms !== undefined) parts.push(`p99 < ${r.goal.p99Ms} ms ${r.p99 !== undefined && r.p99 < r.goal.p99Ms ? 'met' : 'missed'}`);
  return parts.join(', ') || '—';
}

export function markdownTable(rows: PathResult[]): string {
  const lines = [
    '| path | req/s | vs baseline | p50 ms | p99 ms | errors / non-2xx | server CPU µs/req | goal |',
    '|---|---:|---:|---:|---:|---:|---:|---|',
  ];
  for (const r of rows) {
    if (r.rps === undefined) {
      lines.push(`| ${r.name} | not timed: ${r.note ?? 'skipped'} | | | | | | |`);
      continue;
    }
    const ratio = r.ratio !== undefined ? pct(r.ratio) : '—';
    const cpu = r.serverCpuUsPerRequest !== undefined ? int(r.serverCpuUsPerRequest) : '—';
    lines.push(`| ${r.name} | ${int(r.rps)} | ${ratio} | ${ms(r.p50!)} | ${ms(r.p99!)} | ${r.errors} / ${r.non2xx} | ${cpu} | ${goalCell(r)} |`);
  }
  return lines.join('\n');
}

/** A profile as a few indented lines: shares by kind and package, then the top functions. */
export function profileLines(title: string, s: ProfileSummary, unit: 'ms' | 'MB'): string[] {
  const amount = (x: number) => (unit === 'ms' ? `${int(x)} ms` : `${x.toFixed(0)} MB`);
  const k = s.byKind;
  const out = [
    `${title} (${amount(s.total)} ${unit === 'ms' ? 'busy' : 'sampled'}): our code ${pct(k.ours)}, dependencies ${pct(k.dependency)}, Node internals ${pct(k.node)}, GC ${pct(k.gc)}, engine ${pct(k.engine)}`,
  ];
  if (s.packages.length) out.push(`  by package: ${s.packages.map((p) => `${p.pkg} ${pct(p.share)}`).join(', ')}`);
  const list = (label: string, costs: ProfileSummary['ours']) => {
    costs.forEach((c, i) => out.push(`  ${i === 0 ? label.padEnd(6) : ''.padEnd(6)} ${pct(c.share, 1).padStart(7)}  ${c.fn}`));
  };
  list('ours', s.ours);
  list('deps', s.dependencies);
  list('other', s.other.slice(0, 4));
  return out;
}

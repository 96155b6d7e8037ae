/**
 * After the load: every acknowledged registry write must be on every live instance. Each round
 * reads every instance's registry whole (GET /v1/registry/export: one request, so the admin
 * key's rate limit is no concern), until all agree with the acknowledged writes; then a sample
 * is looked up one by one (GET /v1/registry/numbers/...), the route operators use.
 */
import http from 'node:http';
import { sleep } from '../lib/process';
import { jsonOf, send, type Target } from './http';
import type { DrillOptions } from './options';
import type { WriteState } from './writers';

export interface WriteVerification {
  /** Acknowledged writes some instance does not hold, one line each. */
  lost: string[];
  /** Writes answered 503 ("nothing was changed") that were made all the same. */
  phantoms: string[];
  /** The banks each instance listed. */
  banksOn: { url: string; banks: string[] }[];
}

export async function verifyWrites(live: Target[], writes: WriteState, o: DrillOptions): Promise<WriteVerification> {
  const adminAuth = { authorization: `Bearer ${o.adminKey}` };
  const verifyStarted = performance.now();
  const verifyAgent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  try {
    const stateOf = (entry: Record<string, unknown> | undefined): string | null =>
      entry === undefined ? null : entry.bankId !== o.bankId ? `bank ${String(entry.bankId)}` : String((entry.authorisedSpcs as string[] | undefined)?.[0]);
    const exportOf = async (t: Target): Promise<{ numbers: Map<string, Record<string, unknown>>; banks: string[] } | string> => {
      const r = await send(t, verifyAgent, 'GET', '/v1/registry/export', null, adminAuth, 15_000);
      const doc = r.kind === 'response' && r.status === 200 ? jsonOf(r.body) : null;
      if (!doc || !Array.isArray(doc.numbers) || !Array.isArray(doc.banks)) return r.kind === 'response' ? `HTTP ${r.status}` : r.code;
      const numbers = new Map<string, Record<string, unknown>>();
      for (const e of doc.numbers as Record<string, unknown>[]) if (typeof e.number === 'string') numbers.set(e.number, e);
      return { numbers, banks: (doc.banks as { id: string }[]).map((b) => b.id).sort() };
    };
    const show = (state: string | null | undefined) => (state === null ? 'absent' : state === undefined ? 'unreadable' : state.startsWith('bank ') || state.startsWith('HTTP') ? state : `tag ${state}`);
    const lost: string[] = [];
    const phantoms: string[] = [];
    let banksOn: { url: string; banks: string[] }[] = [];
    for (;;) {
      const exports = await Promise.all(live.map(exportOf));
      banksOn = live.map((t, i) => ({ url: t.url, banks: typeof exports[i] === 'string' ? [`(unreadable: ${exports[i]})`] : (exports[i] as { banks: string[] }).banks }));
      const left: { url: string; number: string; want: string | null; seen: string | null | undefined }[] = [];
      live.forEach((t, i) => {
        const ex = exports[i]!;
        for (const [number, want] of writes.expected) {
          const seen = typeof ex === 'string' ? undefined : stateOf(ex.numbers.get(number));
          if (seen !== want && !(seen !== undefined && writes.uncertain.get(number)?.has(seen))) left.push({ url: t.url, number, want, seen });
        }
      });
      const elapsed = performance.now() - verifyStarted;
      // Changes reach every instance within a second or so: a mismatch that a refused write
      // explains, still there after a few seconds, is that write having been made after all.
      const explained = left.every((m) => m.seen !== undefined && writes.refused.get(m.number)?.has(m.seen));
      if (left.length === 0 || (explained && elapsed > 4000) || elapsed > o.verifyTimeoutMs) {
        for (const m of left) {
          const line = `${m.number}: ${show(m.want)} expected, ${show(m.seen)} on ${m.url}`;
          if (m.seen !== undefined && writes.refused.get(m.number)?.has(m.seen)) phantoms.push(`${line} (a write answered 503 "nothing was changed")`);
          else lost.push(line);
        }
        break;
      }
      await sleep(500);
    }
    const settled = new Set([...lost, ...phantoms].map((l) => l.split(':')[0]!));
    const sample = [...writes.expected].filter(([n]) => !settled.has(n)).sort(() => Math.random() - 0.5).slice(0, 100);
    for (const t of live) {
      for (let k = 0; k < sample.length; k += 8) {
        await Promise.all(
          sample.slice(k, k + 8).map(async ([number]) => {
            const r = await send(t, verifyAgent, 'GET', `/v1/registry/numbers/${encodeURIComponent(number)}`, null, adminAuth, o.requestTimeoutMs);
            const json = r.kind === 'response' ? jsonOf(r.body) : null;
            const seen = r.kind !== 'response' ? r.code : r.status === 404 ? null : r.status === 200 && json ? stateOf(json) : `HTTP ${r.status}`;
            const want = writes.expected.get(number)!;
            if (seen !== want && !writes.uncertain.get(number)?.has(seen)) lost.push(`${number}: ${show(want)} expected, ${show(seen)} looked up on ${t.url} (the export agreed)`);
          }),
        );
      }
    }
    return { lost, phantoms, banksOn };
  } finally {
    verifyAgent.destroy();
  }
}

/**
 * The registry side of the drill: the bank it writes under (added before the load, checked to
 * reach every instance), and writers that create, update and delete numbers of that bank at a
 * steady pace, keeping what each number should hold by the answers they got.
 */
import { sleep, until } from '../lib/process';
import type { DrillOptions } from './options';
import { classify, FAILOVER, jsonOf, send, type Target } from './http';
import type { Timeline } from './timeline';

/** Ofcom drama ranges (valid numbers) that the sample registry does not use: 1,000 numbers each. */
const WRITE_RANGES = ['+44114496', '+44116496', '+44117496', '+44118496', '+44131496', '+44141496', '+44151496', '+44191498'];
const writeNumber = (i: number) => `${WRITE_RANGES[i % WRITE_RANGES.length]}0${String(Math.floor(i / WRITE_RANGES.length)).padStart(3, '0')}`;
/** New numbers the writers may create; past them they only update and delete their own. */
const WRITE_NUMBERS = WRITE_RANGES.length * 1000 - 1;
/** The registry write half-sent to the instance being stopped. */
export const PROBE_NUMBER = writeNumber(WRITE_NUMBERS);

export interface WriteState {
  /** Last acknowledged state of each number this run wrote: a tag (its SPC), or null (absent). */
  expected: Map<string, string | null>;
  /** States written since that the service refused with 503 ("nothing was changed"). */
  refused: Map<string, Set<string | null>>;
  /** States written since whose outcome is unknown (connection dropped, then refused): either is fine. */
  uncertain: Map<string, Set<string | null>>;
  attempted: number;
  acknowledged: number;
  ackTimes: number[];
  /** Each refused attempt: when it was sent (`at`) and answered (`ended`), performance.now() time. */
  refusals: { at: number; ended: number; outcome: string }[];
  badRefusals: string[];
  unacknowledged: string[];
}

const addState = (m: Map<string, Set<string | null>>, number: string, state: string | null) => {
  if (!m.has(number)) m.set(number, new Set());
  m.get(number)!.add(state);
};

const adminAuth = (o: Pick<DrillOptions, 'adminKey'>) => ({ authorization: `Bearer ${o.adminKey}` });

/**
 * Adds the drill's bank through the first instance and waits until every instance lists it.
 * Fails when any instance then lists other banks than before plus this one: its registry fell
 * out of step before any fault, and nothing the drill finds afterwards would mean anything.
 */
export async function addDrillBank(targets: Target[], o: DrillOptions, selfContained: boolean): Promise<void> {
  const auth = adminAuth(o);
  const banksOf = async (t: Target): Promise<string[] | null> => {
    const r = await send(t, false, 'GET', '/v1/registry/banks', null, auth, o.requestTimeoutMs);
    const list = r.kind === 'response' && r.status === 200 ? (jsonOf(r.body)?.banks as { id: string }[] | undefined) : undefined;
    return list ? list.map((b) => b.id).sort() : null;
  };
  const before = await Promise.all(targets.map(banksOf));

  // An instance follows the registry's change log from its first poll, a quarter of a second
  // after it starts: a change made before then is missed (see the README's Fault drill
  // section), so the drill lets the last instance started get there first.
  if (selfContained) await sleep(1000);
  const bank = await send(targets[0]!, false, 'PUT', `/v1/registry/banks/${o.bankId}`, JSON.stringify({ name: 'Fault drill', callbackNumbers: [] }), auth, o.writeTimeoutMs);
  if (bank.kind !== 'response' || (bank.status !== 200 && bank.status !== 201)) {
    throw new Error(`could not create the drill's bank through ${targets[0]!.url}: ${bank.kind === 'response' ? `HTTP ${bank.status} ${bank.body}` : bank.code}`);
  }
  await until(async () => {
    for (const t of targets) {
      const r = await send(t, false, 'GET', '/v1/registry/banks', null, auth, 2000);
      if (r.kind !== 'response' || !r.body.includes(`"${o.bankId}"`)) return false;
    }
    return true;
  }, 10_000, 'every instance to see the drill bank', 100);
  const after = await Promise.all(targets.map(banksOf));
  targets.forEach((t, i) => {
    const want = [...new Set([...(before[i] ?? []), o.bankId])].sort();
    if (JSON.stringify(after[i]) !== JSON.stringify(want)) {
      throw new Error(`${t.url} lists banks ${after[i]?.join(' ')} after the drill bank was added to ${before[i]?.join(' ')}: its registry fell out of step before any fault`);
    }
  });
}

/** Target mode: the operator's registry is left as it was, without the drill's bank and its numbers. */
export async function removeDrillBank(t: Target, o: DrillOptions): Promise<string> {
  const r = await send(t, false, 'DELETE', `/v1/registry/banks/${o.bankId}?cascade=true`, null, adminAuth(o), 10_000);
  return r.kind === 'response' ? String(r.status) : r.code;
}

export class RegistryWriters {
  readonly state: WriteState = { expected: new Map(), refused: new Map(), uncertain: new Map(), attempted: 0, acknowledged: 0, ackTimes: [], refusals: [], badRefusals: [], unacknowledged: [] };
  private stopping = false;
  private seq = 0;
  private running: Promise<void[]> = Promise.resolve([]);

  constructor(
    private readonly targets: Target[],
    private readonly o: DrillOptions,
    private readonly timeline: Timeline,
  ) {}

  start(): void {
    this.running = Promise.all(Array.from({ length: this.o.writers }, (_, w) => this.writer(w)));
  }

  /** Stops writing; resolves when every write under way has been answered (or given up). */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.running;
  }

  /** The registry PUT half-sent at SIGTERM (PROBE_NUMBER, tag `inflight`), counted by how it was answered. */
  recordProbe(acknowledged: boolean, refused: boolean): void {
    const writes = this.state;
    writes.attempted++;
    writes.expected.set(PROBE_NUMBER, acknowledged ? 'inflight' : null);
    if (acknowledged) writes.acknowledged++;
    else (refused ? writes.refused : writes.uncertain).set(PROBE_NUMBER, new Set(['inflight']));
  }

  private async writer(w: number): Promise<void> {
    const { o, targets } = this;
    const writes = this.state;
    const auth = adminAuth(o);
    const mine: string[] = [];
    let rr = w;
    const every = (1000 * o.writers) / o.writeRate;
    let next = performance.now() + every * Math.random();
    while (!this.stopping) {
      const wait = next - performance.now();
      if (wait > 0) await sleep(wait);
      if (this.stopping) break;
      next = Math.max(next + every, performance.now());
      // Mostly new numbers; some updates and deletes of this writer's own, to check order too.
      const roll = Math.random();
      const seq = this.seq++;
      const tag = `w${w}s${seq}`;
      let number: string;
      let method: 'PUT' | 'DELETE' = 'PUT';
      const live = mine.filter((n) => typeof writes.expected.get(n) === 'string');
      if (seq >= WRITE_NUMBERS && mine.length > 0) number = mine[Math.floor(Math.random() * mine.length)]!;
      else if (live.length > 5 && roll < 0.15) number = live[Math.floor(Math.random() * live.length)]!;
      else if (live.length > 5 && roll < 0.25) {
        number = live[Math.floor(Math.random() * live.length)]!;
        method = 'DELETE';
      } else {
        number = writeNumber(seq);
        mine.push(number);
        writes.expected.set(number, null); // nothing there until a write of it is acknowledged
      }
      const state = method === 'PUT' ? tag : null;
      const body = method === 'PUT' ? JSON.stringify({ bankId: o.bankId, inboundOnly: false, authorisedSpcs: [tag] }) : null;
      writes.attempted++;
      // A dropped connection leaves the outcome unknown: the dispatcher tries the next instance
      // (the write is absolute, so repeating it is harmless). A 503 from the registry says that
      // nothing was changed: the writer takes it at its word and moves on, and the check
      // afterwards makes sure it was true.
      const deadline = performance.now() + 20_000;
      let acked = false;
      let unknown = false;
      let lastProblem = '';
      for (let attempt = 0; performance.now() < deadline; attempt++) {
        const inst = o.writeVia === 'first' ? attempt % targets.length : rr++ % targets.length;
        const r = await send(targets[inst]!, false, method, `/v1/registry/numbers/${encodeURIComponent(number)}`, body, auth, o.writeTimeoutMs);
        if ((r.kind === 'response' && r.status >= 200 && r.status < 300) || (r.kind === 'response' && method === 'DELETE' && r.status === 404 && unknown)) {
          acked = true;
          break;
        }
        const { outcome, detail } = classify(r, () => false);
        const json = r.kind === 'response' ? jsonOf(r.body) : null;
        const at = r.started;
        const ended = r.ended;
        if (r.kind === 'response' && r.status === 503 && json?.error === 'registry_unavailable' && typeof json.message === 'string') {
          writes.refusals.push({ at, ended, outcome: '503 registry_unavailable' });
          lastProblem = '503 registry_unavailable';
          addState(unknown ? writes.uncertain : writes.refused, number, state);
          break;
        }
        if (r.kind === 'response' && r.status === 503 && json?.error === 'registry_unconfirmed') {
          // Made or not (no replica or disk confirmed it in time): unknown, as after a dropped
          // connection, and sent again, since the write is absolute.
          unknown = true;
          writes.refusals.push({ at, ended, outcome: '503 registry_unconfirmed' });
          lastProblem = '503 registry_unconfirmed';
          await sleep(Math.min(50 * (attempt + 1), 500));
          continue;
        }
        if (!FAILOVER.has(outcome)) {
          // A refusal must be a clean JSON 503/4xx: never a 500 or a hang. Nothing the drill sends
          // is invalid, so a 4xx is as wrong as a 500 here, and repeating the write will not help.
          const why = method === 'DELETE' && r.kind === 'response' && r.status === 404 ? `${detail} (a number whose creation was acknowledged: this instance had lost it)` : detail;
          writes.badRefusals.push(`${method} ${number} via ${targets[inst]!.url} at ${this.timeline.stamp(at)}: ${why}`);
          writes.refusals.push({ at, ended, outcome: detail.slice(0, 40) });
          lastProblem = detail;
          addState(writes.uncertain, number, state);
          break;
        }
        if (outcome === 'reset' || outcome === 'error') unknown = true;
        writes.refusals.push({ at, ended, outcome });
        lastProblem = outcome;
        await sleep(Math.min(50 * (attempt + 1), 500));
      }
      if (acked) {
        writes.acknowledged++;
        writes.ackTimes.push(performance.now());
        writes.expected.set(number, state);
        writes.refused.delete(number);
        writes.uncertain.delete(number);
      } else if (lastProblem !== '503 registry_unavailable') {
        writes.unacknowledged.push(`${method} ${number}: not acknowledged (last answer: ${lastProblem})`);
        addState(writes.uncertain, number, state);
      }
    }
  }
}

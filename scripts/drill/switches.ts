/**
 * Switch-like load: each switch has keep-alive connections to every instance and a number of
 * channels, each sending scoring calls at an even pace. A call fails over as a switch's
 * dispatcher would: from its first instance on to the next on a refusal, reset or 503.
 */
import http from 'node:http';
import { sleep } from '../lib/process';
import { classify, jsonOf, send, type Outcome, type Target } from './http';

/**
 * A switch's traffic: mostly ordinary mobiles, some from international trunks, some withheld, and
 * one call in twenty from a bank's inbound-only number, which every instance must block (it would
 * not if its registry had fallen out of step).
 */
function scoreBody(i: number, dno: string | undefined): { body: string; mustBlock: boolean } {
  const r = i % 20;
  const to = `+4477009${String(i % 100_000).padStart(5, '0')}`;
  if (r === 0 && dno) return { body: JSON.stringify({ from: dno, to, callId: `drill-${i}` }), mustBlock: true };
  if (r === 1) return { body: JSON.stringify({ from: '+442079460000', to, callId: `drill-${i}`, origin: { international: true, trunk: 'intl-1' } }), mustBlock: false };
  if (r === 2) return { body: JSON.stringify({ from: 'anonymous', to, callId: `drill-${i}` }), mustBlock: false };
  const from = `+4474001${String((i * 7919) % 100_000).padStart(5, '0')}`;
  return { body: JSON.stringify({ from, to, callId: `drill-${i}`, origin: { trunk: `trunk-${i % 4}` } }), mustBlock: false };
}

const VERDICTS = new Set(['allow', 'flag', 'block']);

export interface AttemptRecord {
  instance: number;
  /** Sent on a kept-alive connection rather than a new one. */
  reused: boolean;
  started: number;
  sentAt: number | null;
  ended: number;
  outcome: Outcome;
  detail: string;
}

export interface CallRecord {
  started: number;
  ended: number;
  answered: boolean;
  attempts: AttemptRecord[];
}

export interface SwitchOptions {
  switches: number;
  channels: number;
  /** Calls a second, all switches together. */
  rate: number;
  requestTimeoutMs: number;
  switchKey: string;
  /** A bank's inbound-only number: calls from it must be blocked (see scoreBody). */
  dnoNumber: string | undefined;
}

const scoreOk = (status: number, json: Record<string, unknown> | null) => status === 200 && json !== null && VERDICTS.has(String(json.verdict));
const blocked = (status: number, json: Record<string, unknown> | null) => scoreOk(status, json) && json!.verdict === 'block';

export class Switches {
  /** Every call made, with each instance it tried. */
  readonly calls: CallRecord[] = [];
  private readonly agents: http.Agent[][];
  private readonly auth: Record<string, string>;
  private seq = 0;
  private stopping = false;
  private channels: Promise<void>[] = [];
  private readonly extra: Promise<void>[] = [];

  constructor(
    private readonly targets: Target[],
    private readonly o: SwitchOptions,
  ) {
    this.agents = Array.from({ length: o.switches }, () => targets.map(() => new http.Agent({ keepAlive: true, maxSockets: o.channels, keepAliveMsecs: 1000 })));
    this.auth = { authorization: `Bearer ${o.switchKey}` };
  }

  start(): void {
    this.channels = this.agents.flatMap((_, sw) => Array.from({ length: this.o.channels }, (_x, ch) => this.channel(sw, ch)));
  }

  /** `n` calls at once to one instance, on the switches' kept-alive connections: on the wire when a signal comes. */
  burst(instance: number, n: number): void {
    for (let k = 0; k < n; k++) this.extra.push(this.call(k % this.o.switches, instance));
  }

  /** Stops sending; resolves when every call under way has ended. */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.channels);
    await Promise.all(this.extra);
  }

  /** Closes the kept-alive connections. */
  destroy(): void {
    this.agents.flat().forEach((a) => a.destroy());
  }

  /** One call as a switch's dispatcher makes it: from `first`, on to the next instance on a refusal, reset or 503. */
  private async call(sw: number, first: number): Promise<void> {
    const { targets, o } = this;
    const i = this.seq++;
    const { body, mustBlock } = scoreBody(i, o.dnoNumber);
    const call: CallRecord = { started: performance.now(), ended: 0, answered: false, attempts: [] };
    for (let k = 0; k < targets.length && !call.answered; k++) {
      const inst = (first + k) % targets.length;
      const r = await send(targets[inst]!, this.agents[sw]![inst]!, 'POST', '/v1/calls/score', body, this.auth, o.requestTimeoutMs);
      const classified = classify(r, mustBlock ? blocked : scoreOk);
      const { outcome } = classified;
      let { detail } = classified;
      if (outcome === 'error' && r.kind === 'response' && scoreOk(r.status, jsonOf(r.body))) {
        detail = `verdict ${String(jsonOf(r.body)!.verdict)} for a bank's inbound-only number (${o.dnoNumber}): this instance's registry is out of step`;
      }
      call.attempts.push({ instance: inst, reused: r.reused === true, started: r.started, sentAt: r.sentAt, ended: r.ended, outcome, detail });
      if (outcome === 'ok') call.answered = true;
    }
    call.ended = performance.now();
    this.calls.push(call);
  }

  private async channel(sw: number, ch: number): Promise<void> {
    const o = this.o;
    const intervalMs = (1000 * o.switches * o.channels) / o.rate; // per channel
    let next = performance.now() + (ch * intervalMs) / o.channels + Math.random() * intervalMs;
    while (!this.stopping) {
      const wait = next - performance.now();
      if (wait > 0) await sleep(wait);
      if (this.stopping) break;
      next = Math.max(next + intervalMs, performance.now() - intervalMs);
      // Round robin over the destinations.
      await this.call(sw, this.seq % this.targets.length);
    }
  }
}

import type { KeyObject } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { verifyEs256 } from './passport';
import type { ShakenLogger } from './shared-cache';

/**
 * ES256 signature checks on worker threads of the verifier's own, sent in batches: the checks
 * asked for in one turn of the event loop go to a thread in messages of up to MAX_BATCH, and come
 * back the same way. A turn with fewer than MIN_BATCH checks leaves them to libuv's pool, and a
 * second thread starts only when the first has BACKLOG batches waiting: a light PASSporT load
 * costs no thread's memory.
 *
 * Why not libuv's thread pool (crypto.verify with a callback, `verifyEs256`): a pool thread is
 * woken for each check and wakes the event loop again when it is done. On virtual machines each
 * wake-up costs tens of microseconds, and the pool's threads preempt the event loop on a small
 * machine: measured with bench/compare-env.ts, the event loop spent 300 µs a PASSporT call with
 * the pool against 190-230 µs with a thread of this kind, and the process 15-20 % less CPU a call.
 *
 * A thread's key store is a fixed set of slots, the keys of the calls last checked: a key is
 * sent the first time it is used in a slot and stays there until a newer key needs the slot.
 * A job that brings its key sets the slot just before it is checked, so keys and jobs can never
 * pair up wrongly, whatever a batch holds.
 *
 * Nothing waits on a thread that went away, could not be started or sent a batch, or left a
 * batch unanswered for BATCH_DEADLINE_MS: the checks it had not answered are done on libuv's
 * pool, and a new thread takes its place (a second loss within a minute leaves that place to the
 * pool for good, and says so).
 */

/** The worker's source: plain JavaScript, so that it runs the same from dist/ and under the tests. */
export const WORKER_SOURCE = `
'use strict';
const { parentPort } = require('node:worker_threads');
const { verify } = require('node:crypto');
const keys = [];
parentPort.on('message', ({ batch, jobs }) => {
  const out = new Uint8Array(jobs.length);
  for (let i = 0; i < jobs.length; i++) {
    const [input, signature, slot, key] = jobs[i];
    if (key !== undefined) keys[slot] = key;
    try {
      out[i] = verify('sha256', Buffer.from(input, 'latin1'), { key: keys[slot], dsaEncoding: 'ieee-p1363' }, Buffer.from(signature, 'latin1')) ? 1 : 0;
    } catch {
      out[i] = 0;
    }
  }
  parentPort.postMessage({ batch, out });
});
`;

/** Checks a turn must have for a thread to take them; fewer go to libuv's pool. */
export const MIN_BATCH = 3;

/** Checks in one message: about 4 ms of a thread's work on a slow core. */
export const MAX_BATCH = 32;

/** A batch takes a few ms; one unanswered for this long is from a thread that stopped working. */
const BATCH_DEADLINE_MS = 2000;

/** Batches in flight on every running thread before another thread is started. */
const BACKLOG = 2;

/** Keys a thread keeps: the certificates of the calls of the last few seconds, far more than their signers. */
export const KEY_SLOTS = 256;

/** [signing input (latin1), signature (latin1), slot, key when the slot takes a new one] */
type Job = [string, string, number, KeyObject?];

interface Pending {
  jobs: { input: string; signature: Buffer; key: KeyObject }[];
  answers: ((ok: boolean) => void)[];
  /** While in flight on a thread: when it counts as lost. */
  deadline?: NodeJS.Timeout;
}

export interface SignatureThreadsLog extends ShakenLogger {
  error?(obj: object, msg: string): void;
}

class SignatureThread {
  private worker: Worker | null = null;
  /** Key -> slot, least recently used first. */
  private readonly slots = new Map<KeyObject, number>();
  private readonly inFlight = new Map<number, Pending>();
  private nextBatch = 1;
  private lostAt: number | null = null;
  /** True once the thread was lost twice within a minute: its share goes to libuv's pool. */
  retired = false;

  constructor(
    private readonly log: SignatureThreadsLog | undefined,
    private readonly now: () => number,
    private readonly source: string,
    private readonly deadlineMs: number,
    private readonly stats: { batches: number; checks: number; onPool: number },
  ) {}

  get inFlightBatches(): number {
    return this.inFlight.size;
  }

  get started(): boolean {
    return this.worker !== null;
  }

  send(p: Pending): void {
    const batch = this.nextBatch++;
    this.inFlight.set(batch, p);
    let jobs: Job[];
    try {
      const worker = this.start();
      jobs = p.jobs.map((j) => this.job(j.input, j.signature, j.key));
      worker.postMessage({ batch, jobs });
      // Kept alive by its checks, never by an idle thread: a server's own handles keep it up.
      if (this.inFlight.size === 1) worker.ref();
      // A thread that answers nothing without stopping (none is known: its code is the few lines
      // above) would otherwise hold these checks for ever.
      p.deadline = setTimeout(() => {
        if (this.inFlight.has(batch)) this.failed(new Error(`no answer to a batch within ${this.deadlineMs} ms`));
      }, this.deadlineMs);
      p.deadline.unref();
    } catch (err) {
      // new Worker throws ERR_WORKER_INIT_FAILED when no thread can be made (the process or its
      // container at its thread limit), and postMessage a DataCloneError: thrown out of the
      // turn's flush, either would take the process down and leave the turn's checks unanswered.
      this.failed(err);
      return;
    }
    this.stats.batches++;
    this.stats.checks += jobs.length;
  }

  async close(): Promise<void> {
    this.retired = true;
    await this.stop();
    this.fallBack();
  }

  /** Stops the running worker, if any, without taking its exit for a loss. */
  private async stop(): Promise<void> {
    const worker = this.worker;
    this.worker = null;
    if (!worker) return;
    worker.removeAllListeners('exit');
    await worker.terminate();
  }

  private job(input: string, signature: Buffer, key: KeyObject): Job {
    const slot = this.slots.get(key);
    if (slot !== undefined) {
      // Most recently used last: the first in the map is the slot to give away next.
      this.slots.delete(key);
      this.slots.set(key, slot);
      return [input, signature.toString('latin1'), slot];
    }
    let free = this.slots.size;
    if (free >= KEY_SLOTS) {
      const [oldest, oldSlot] = this.slots.entries().next().value as [KeyObject, number];
      this.slots.delete(oldest);
      free = oldSlot;
    }
    this.slots.set(key, free);
    return [input, signature.toString('latin1'), free, key];
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(this.source, {
      eval: true,
      name: 'callguard-es256',
      // It holds KEY_SLOTS keys and one batch at a time: a heap past this is a fault, and a lost thread is replaced.
      resourceLimits: { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 32 },
    });
    worker.on('message', (m: { batch: number; out: Uint8Array }) => {
      const p = this.inFlight.get(m.batch);
      if (!p) return;
      this.inFlight.delete(m.batch);
      clearTimeout(p.deadline);
      if (this.inFlight.size === 0) worker.unref();
      for (let i = 0; i < p.answers.length; i++) p.answers[i]!(m.out[i] === 1);
    });
    worker.on('messageerror', (err) => this.failed(err));
    worker.on('error', (err) => this.loud({ err: err.message }, 'an ES256 verification thread failed'));
    worker.on('exit', (code) => this.lost(worker, code));
    // After the listeners, which ref its port again: idle, the thread keeps nothing alive.
    worker.unref();
    this.worker = worker;
    this.slots.clear();
    return worker;
  }

  private lost(worker: Worker, code: number): void {
    if (this.worker !== worker) return;
    this.worker = null;
    this.down({ exitCode: code, pending: this.inFlight.size });
  }

  /**
   * A thread that could not be started or sent a batch: a loss like any other. A thread that took
   * the slots of a batch it never got is stopped, so that no later batch relies on its keys.
   */
  private failed(err: unknown): void {
    this.stop().catch(() => undefined);
    this.down({ err: err instanceof Error ? err.message : String(err), pending: this.inFlight.size });
  }

  private down(obj: object): void {
    const now = this.now();
    this.retired = this.lostAt !== null && now - this.lostAt < 60_000;
    this.lostAt = now;
    (this.retired ? this.loud.bind(this) : (o: object, msg: string) => this.log?.warn(o, msg))(
      obj,
      this.retired
        ? 'an ES256 verification thread stopped again within a minute: its checks go to libuv\'s thread pool from now on'
        : 'an ES256 verification thread stopped: its unanswered checks go to libuv\'s thread pool, and a new thread takes its place',
    );
    this.fallBack();
  }

  private loud(obj: object, msg: string): void {
    if (this.log?.error) this.log.error(obj, msg);
    else this.log?.warn(obj, msg);
  }

  /** The checks no thread will answer, on libuv's pool. */
  private fallBack(): void {
    for (const p of this.inFlight.values()) {
      clearTimeout(p.deadline);
      onPool(p, this.stats);
    }
    this.inFlight.clear();
  }
}

function onPool(p: Pending, stats: { onPool: number }): void {
  stats.onPool += p.jobs.length;
  p.jobs.forEach((j, i) => void verifyEs256(j.input, j.signature, j.key).then(p.answers[i]));
}

/**
 * `threads` worker threads checking ES256 signatures (0: libuv's pool checks them, as
 * `verifyEs256`). Checks asked for in one turn of the event loop go to the thread with the fewest
 * batches in flight, in one message.
 */
export class SignatureThreads {
  private readonly threads: SignatureThread[];
  private queued: Pending = { jobs: [], answers: [] };
  private flushing = false;
  private closed = false;
  /** Batches and checks sent to the threads; checks done on libuv's pool (a turn's fewer than MIN_BATCH, and those of a lost or retired thread). */
  readonly stats = { batches: 0, checks: 0, onPool: 0 };

  constructor(
    threads: number,
    /** `source`: the worker's code (tests: one that fails); `batchDeadlineMs`: how long a batch may go unanswered before its thread counts as lost. */
    opts: { log?: SignatureThreadsLog; now?: () => number; source?: string; batchDeadlineMs?: number } = {},
  ) {
    this.threads = Array.from(
      { length: threads },
      () => new SignatureThread(opts.log, opts.now ?? Date.now, opts.source ?? WORKER_SOURCE, opts.batchDeadlineMs ?? BATCH_DEADLINE_MS, this.stats),
    );
  }

  /** ES256 over `signingInput` with `key`: false for a signature that is not 64 bytes or does not verify. */
  verify(signingInput: string, signature: Buffer, key: KeyObject): Promise<boolean> {
    if (signature.length !== 64) return Promise.resolve(false);
    if (this.closed || !this.threads.some((t) => !t.retired)) {
      if (this.threads.length > 0) this.stats.onPool++;
      return verifyEs256(signingInput, signature, key);
    }
    return new Promise((resolve) => {
      this.queued.jobs.push({ input: signingInput, signature, key });
      this.queued.answers.push(resolve);
      if (!this.flushing) {
        this.flushing = true;
        // After the I/O of this turn: every call read in it has asked by then.
        setImmediate(() => this.flush());
      }
    });
  }

  /** Threads started and running now. */
  get running(): number {
    return this.threads.filter((t) => t.started).length;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.flush();
    await Promise.all(this.threads.map((t) => t.close()));
  }

  /**
   * The running thread with the fewest batches in flight; another thread is started only when
   * every running one has BACKLOG batches waiting, so that a light load keeps one isolate.
   */
  private pick(): SignatureThread | null {
    let best: SignatureThread | null = null;
    let idle: SignatureThread | null = null;
    for (const t of this.threads) {
      if (t.retired) continue;
      if (!t.started) idle ??= t;
      else if (best === null || t.inFlightBatches < best.inFlightBatches) best = t;
    }
    if (best === null || (best.inFlightBatches >= BACKLOG && idle !== null)) return idle ?? best;
    return best;
  }

  private flush(): void {
    this.flushing = false;
    const p = this.queued;
    this.queued = { jobs: [], answers: [] };
    // A turn's few checks cost about as little as pool jobs as in a message each way (measured: a
    // lone check 230 against 265 µs of CPU, two 260-300 against 245-275, as through a switch at a
    // few hundred calls a second); from MIN_BATCH a turn on, the message is the cheaper. Below it
    // no thread is started: a light PASSporT load costs no isolate's memory.
    // Closing: nothing is started only to be stopped.
    if (p.jobs.length < MIN_BATCH || this.closed) return onPool(p, this.stats);
    // In batches of at most MAX_BATCH, so that a busy turn's checks are answered as they are
    // done rather than all at the end, and spread over the threads.
    for (let i = 0; i < p.jobs.length; i += MAX_BATCH) {
      const part = { jobs: p.jobs.slice(i, i + MAX_BATCH), answers: p.answers.slice(i, i + MAX_BATCH) };
      const thread = this.pick();
      if (thread === null) onPool(part, this.stats);
      else thread.send(part);
    }
  }
}

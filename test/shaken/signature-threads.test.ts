import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { resolve } from 'node:path';
import type * as WorkerThreads from 'node:worker_threads';
import { KEY_SLOTS, MAX_BATCH, MIN_BATCH, SignatureThreads, WORKER_SOURCE } from '../../src/shaken/signature-threads';

/**
 * ES256 checks on the verifier's own threads, in batches: the right answer for every check
 * whatever the mix of keys, and an answer for every check when a thread is lost or closed.
 */
const keyPair = () => generateKeyPairSync('ec', { namedCurve: 'P-256' });
const signed = (input: string, privateKey: KeyObject) => sign('sha256', Buffer.from(input, 'latin1'), { key: privateKey, dsaEncoding: 'ieee-p1363' });

interface Case {
  input: string;
  signature: Buffer;
  key: KeyObject;
  valid: boolean;
}

/** `n` checks over `keys`, every third one signed by another key than the one it is checked with. */
function cases(n: number, keys: { publicKey: KeyObject; privateKey: KeyObject }[]): Case[] {
  return Array.from({ length: n }, (_, i) => {
    const k = keys[i % keys.length]!;
    const signer = i % 3 === 2 ? keys[(i + 1) % keys.length]! : k;
    const input = `header.payload-${i}`;
    return { input, signature: signed(input, signer.privateKey), key: k.publicKey, valid: signer === k };
  });
}

// The module object itself (an `import * as` is a copy of it): what signature-threads.ts constructs its Worker from.
const workerThreads = jest.requireActual<typeof WorkerThreads>('node:worker_threads');

/** A worker that dies on the first batch it is sent. */
const dying = `require('node:worker_threads').parentPort.on('message', () => process.exit(7));`;
/** A worker that never answers. */
const silent = `require('node:worker_threads').parentPort.on('message', () => undefined);`;

const lines: { level: string; msg: string }[] = [];
const log = { warn: (_: object, msg: string) => lines.push({ level: 'warn', msg }), error: (_: object, msg: string) => lines.push({ level: 'error', msg }) };
afterEach(() => lines.splice(0));

describe('ES256 checks on signature threads', () => {
  it('a busy turn\'s checks go in batches of at most MAX_BATCH', async () => {
    const threads = new SignatureThreads(2);
    try {
      const all = cases(MAX_BATCH * 3 + 1, [keyPair()]);
      expect(await Promise.all(all.map((c) => threads.verify(c.input, c.signature, c.key)))).toEqual(all.map((c) => c.valid));
      expect(threads.stats).toEqual({ batches: 4, checks: MAX_BATCH * 3 + 1, onPool: 0 });
    } finally {
      await threads.close();
    }
  });

  it('checks asked for in one turn go in one batch, each answered rightly', async () => {
    const threads = new SignatureThreads(1);
    try {
      const all = cases(30, [keyPair(), keyPair()]);
      const answers = await Promise.all(all.map((c) => threads.verify(c.input, c.signature, c.key)));
      expect(answers).toEqual(all.map((c) => c.valid));
      expect(threads.stats).toEqual({ batches: 1, checks: 30, onPool: 0 });
      // A signature of the wrong length is refused without a thread.
      expect(await threads.verify('x', Buffer.alloc(63), all[0]!.key)).toBe(false);
      expect(threads.stats.checks).toBe(30);
    } finally {
      await threads.close();
    }
  });

  it('a second thread starts only when the first has a backlog', async () => {
    const threads = new SignatureThreads(2);
    try {
      const group = cases(MIN_BATCH, [keyPair()]);
      for (let i = 0; i < 5; i++) expect(await Promise.all(group.map((c) => threads.verify(c.input, c.signature, c.key)))).toEqual(group.map((c) => c.valid));
      expect(threads.running).toBe(1);
      // Four batches in one turn: two wait on the first thread, the third starts the second.
      const many = cases(MAX_BATCH * 4, [keyPair()]);
      expect(await Promise.all(many.map((c) => threads.verify(c.input, c.signature, c.key)))).toEqual(many.map((c) => c.valid));
      expect(threads.running).toBe(2);
    } finally {
      await threads.close();
    }
    expect(threads.running).toBe(0);
  });

  it('one batch waiting on the running thread does not start another', async () => {
    // The real worker, taking 200 ms over each batch: the first batch is still in flight when the second is sent.
    const slow = WORKER_SOURCE.replace("({ batch, jobs }) => {", "({ batch, jobs }) => { const until = Date.now() + 200; while (Date.now() < until);");
    expect(slow).not.toBe(WORKER_SOURCE);
    const threads = new SignatureThreads(2, { source: slow });
    try {
      const group = cases(MIN_BATCH, [keyPair()]);
      const first = Promise.all(group.map((c) => threads.verify(c.input, c.signature, c.key)));
      await new Promise((resolve) => setImmediate(resolve));
      const second = Promise.all(group.map((c) => threads.verify(c.input, c.signature, c.key)));
      const valid = group.map((c) => c.valid);
      expect(await Promise.all([first, second])).toEqual([valid, valid]);
      expect(threads.stats.batches).toBe(2);
      expect(threads.running).toBe(1);
    } finally {
      await threads.close();
    }
  });

  it('a thread that answers nothing is replaced once a batch is overdue; its checks are answered on the pool', async () => {
    const threads = new SignatureThreads(1, { log, source: silent, batchDeadlineMs: 100 });
    try {
      const all = cases(4, [keyPair()]);
      expect(await Promise.all(all.map((c) => threads.verify(c.input, c.signature, c.key)))).toEqual(all.map((c) => c.valid));
      expect(threads.stats).toMatchObject({ batches: 1, onPool: 4 });
      expect(lines).toEqual([expect.objectContaining({ level: 'warn', msg: expect.stringMatching(/a new thread takes its place/) })]);
      expect(threads.running).toBe(0);
    } finally {
      await threads.close();
    }
  });

  it('keeps the process alive while checks are in flight, and an idle thread keeps nothing alive', () => {
    // A process of its own that never closes its threads: it must print its answers (kept alive
    // until they come) and then exit by itself (the idle thread holds nothing).
    const script = `
      const { generateKeyPairSync, sign } = require('node:crypto');
      const { SignatureThreads } = require(${JSON.stringify(resolve(__dirname, '../../src/shaken/signature-threads.ts'))});
      const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const sig = sign('sha256', Buffer.from('a'), { key: privateKey, dsaEncoding: 'ieee-p1363' });
      const threads = new SignatureThreads(1);
      Promise.all([1, 2, 3].map(() => threads.verify('a', sig, publicKey))).then((r) => console.log(JSON.stringify({ answers: r, batches: threads.stats.batches })));
    `;
    const out = execFileSync(process.execPath, ['--import', 'tsx', '-e', script], { timeout: 20_000, encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual({ answers: [true, true, true], batches: 1 });
  });

  it('a turn\'s few checks (fewer than MIN_BATCH) go to the pool, and start no thread', async () => {
    const threads = new SignatureThreads(1);
    try {
      const [good, bad] = cases(3, [keyPair(), keyPair()]).filter((_, i) => i !== 1);
      expect(await threads.verify(good!.input, good!.signature, good!.key)).toBe(true);
      const few = cases(MIN_BATCH - 1, [keyPair()]);
      expect(await Promise.all(few.map((c) => threads.verify(c.input, c.signature, c.key)))).toEqual(few.map((c) => c.valid));
      expect(await threads.verify(bad!.input, bad!.signature, bad!.key)).toBe(false);
      expect(threads.stats).toEqual({ batches: 0, checks: 0, onPool: MIN_BATCH + 1 });
      expect(threads.running).toBe(0);
    } finally {
      await threads.close();
    }
  });

  it('more keys than a thread keeps, in one batch and across batches: no check is paired with another key', async () => {
    const threads = new SignatureThreads(2);
    try {
      // Every key its own signer except every third check: more keys than slots, each used twice, far apart.
      const keys = Array.from({ length: KEY_SLOTS + 20 }, keyPair);
      const all = [...cases(keys.length, keys), ...cases(keys.length, [...keys].reverse())];
      const firstTurn = await Promise.all(all.map((c) => threads.verify(c.input, c.signature, c.key)));
      expect(firstTurn).toEqual(all.map((c) => c.valid));
      // Again, batch by batch: the slots are reused across batches.
      for (let i = 0; i < all.length; i += 50) {
        const part = all.slice(i, i + 50);
        expect(await Promise.all(part.map((c) => threads.verify(c.input, c.signature, c.key)))).toEqual(part.map((c) => c.valid));
      }
    } finally {
      await threads.close();
    }
  }, 30_000);

  it('a thread that stops answers its checks on the pool; a second loss within a minute leaves its share to the pool', async () => {
    let now = 1_000_000;
    const threads = new SignatureThreads(1, { log, source: dying, now: () => now });
    try {
      const all = cases(6, [keyPair()]);
      expect(await Promise.all(all.map((c) => threads.verify(c.input, c.signature, c.key)))).toEqual(all.map((c) => c.valid));
      expect(threads.stats).toMatchObject({ batches: 1, onPool: 6 });
      expect(lines).toEqual([expect.objectContaining({ level: 'warn', msg: expect.stringMatching(/a new thread takes its place/) })]);

      now += 10_000;
      expect(await Promise.all(all.map((c) => threads.verify(c.input, c.signature, c.key)))).toEqual(all.map((c) => c.valid));
      expect(threads.stats).toMatchObject({ batches: 2, onPool: 12 });
      expect(lines.at(-1)).toMatchObject({ level: 'error', msg: expect.stringMatching(/from now on/) });

      // Retired: straight to the pool, no thread started.
      expect(await threads.verify(all[0]!.input, all[0]!.signature, all[0]!.key)).toBe(true);
      expect(threads.stats).toMatchObject({ batches: 2, onPool: 13 });
    } finally {
      await threads.close();
    }
  });

  it('a replaced thread is sent its keys again: none of the lost thread\'s slots is taken as filled', async () => {
    const threads = new SignatureThreads(1, { log });
    try {
      const all = cases(6, [keyPair(), keyPair()]);
      expect(await Promise.all(all.map((c) => threads.verify(c.input, c.signature, c.key)))).toEqual(all.map((c) => c.valid));
      // The thread goes away between batches (as on a fault): the next batch goes to a new one.
      const thread = (threads as unknown as { threads: { worker: WorkerThreads.Worker | null }[] }).threads[0]!;
      const exited = new Promise((resolve) => thread.worker!.once('exit', resolve));
      await thread.worker!.terminate();
      await exited;
      expect(await Promise.all(all.map((c) => threads.verify(c.input, c.signature, c.key)))).toEqual(all.map((c) => c.valid));
      expect(threads.stats).toMatchObject({ batches: 2, onPool: 0 });
    } finally {
      await threads.close();
    }
  });

  it('a thread lost again after more than a minute is replaced again', async () => {
    let now = 1_000_000;
    const threads = new SignatureThreads(1, { log, source: dying, now: () => now });
    try {
      const group = cases(MIN_BATCH, [keyPair()]);
      for (let i = 0; i < 3; i++) {
        expect(await Promise.all(group.map((c) => threads.verify(c.input, c.signature, c.key)))).toEqual(group.map((c) => c.valid));
        now += 61_000;
      }
      expect(threads.stats).toMatchObject({ batches: 3, onPool: 3 * MIN_BATCH });
      expect(lines.every((l) => l.level === 'warn')).toBe(true);
    } finally {
      await threads.close();
    }
  });

  it('a thread that cannot be started (ERR_WORKER_INIT_FAILED: the process at its thread limit) leaves its checks to the pool and the process up', async () => {
    // What new Worker throws when no thread can be made (RLIMIT_NPROC, a container's pids.max).
    const spy = jest.spyOn(workerThreads, 'Worker').mockImplementation(() => {
      throw Object.assign(new Error('EAGAIN'), { code: 'ERR_WORKER_INIT_FAILED' });
    });
    let now = 1_000_000;
    const threads = new SignatureThreads(1, { log, now: () => now });
    try {
      const all = cases(6, [keyPair()]);
      expect(await Promise.all(all.map((c) => threads.verify(c.input, c.signature, c.key)))).toEqual(all.map((c) => c.valid));
      expect(threads.stats).toMatchObject({ batches: 0, onPool: 6 });
      expect(lines).toEqual([expect.objectContaining({ level: 'warn' })]);
      // A second failure within a minute: the pool from now on, without trying again.
      now += 1_000;
      expect(await Promise.all(all.map((c) => threads.verify(c.input, c.signature, c.key)))).toEqual(all.map((c) => c.valid));
      expect(lines.at(-1)).toMatchObject({ level: 'error' });
      expect(await Promise.all(all.map((c) => threads.verify(c.input, c.signature, c.key)))).toEqual(all.map((c) => c.valid));
      expect(spy).toHaveBeenCalledTimes(2);
      expect(threads.stats).toMatchObject({ batches: 0, onPool: 18 });
    } finally {
      spy.mockRestore();
      await threads.close();
    }
  }, 5_000);

  it('a batch that cannot be sent (DataCloneError) is answered on the pool, and no later batch relies on the slots it took', async () => {
    const threads = new SignatureThreads(1, { log });
    try {
      const all = cases(4, [keyPair()]);
      // Stands for a key postMessage cannot clone; on the pool it is a check that does not verify.
      const uncloneable = { f: () => undefined } as unknown as KeyObject;
      const first = await Promise.all([...all.map((c) => threads.verify(c.input, c.signature, c.key)), threads.verify(all[0]!.input, all[0]!.signature, uncloneable)]);
      expect(first).toEqual([...all.map((c) => c.valid), false]);
      expect(threads.stats).toMatchObject({ batches: 0, onPool: 5 });
      // The failed batch gave the key a slot in a thread that never got it: the next one must bring it.
      expect(await Promise.all(all.map((c) => threads.verify(c.input, c.signature, c.key)))).toEqual(all.map((c) => c.valid));
      expect(threads.stats).toMatchObject({ batches: 1, onPool: 5 });
    } finally {
      await threads.close();
    }
  }, 5_000);

  it('close answers the checks under way, and later checks go to the pool', async () => {
    const threads = new SignatureThreads(1, { source: silent });
    const all = cases(4, [keyPair()]);
    const pending = Promise.all(all.map((c) => threads.verify(c.input, c.signature, c.key)));
    await new Promise((resolve) => setImmediate(resolve)); // sent
    expect(threads.stats.batches).toBe(1);
    await threads.close();
    expect(await pending).toEqual(all.map((c) => c.valid));
    expect(await threads.verify(all[0]!.input, all[0]!.signature, all[0]!.key)).toBe(true);
    expect(threads.stats.onPool).toBe(5);
  });

  it('none: every check on the pool, as verifyEs256', async () => {
    const threads = new SignatureThreads(0);
    const all = cases(5, [keyPair()]);
    expect(await Promise.all(all.map((c) => threads.verify(c.input, c.signature, c.key)))).toEqual(all.map((c) => c.valid));
    expect(threads.stats).toEqual({ batches: 0, checks: 0, onPool: 0 });
    await threads.close();
  });
});

import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { announcingRegistryFile, NORTHWIND_OUT } from '../helpers/announcing-registry';
import { build, VECTORS_DIR } from '../helpers/build';
import { sleep, until } from '../../scripts/lib/process';
import { requireRedis, TEST_REDIS_URL } from '../helpers/redis';
import { connect, deleteByPrefix } from '../state/support';

/** Both instances of a deployment share a key prefix; other test runs on this Redis do not see it. */
const PREFIX = `test:callguard:round-trips-${process.pid}-${Date.now().toString(36)}:`;

/**
 * At most two Redis round trips per scored call, counted on the wire: writes that go out with no
 * reply read in between travel together (one round trip); a write after a reply starts another.
 * And at most two commands: each round trip is one script call (see execOps), whatever the call
 * carries. The registry follower's polls share the client and run on a timer, not per call: they
 * are left out of both counts. (The shadow policy's sync has a connection of its own.)
 */
let app: FastifyInstance;
/** A connection of the test's own, off the counted wire. */
let observer: Awaited<ReturnType<typeof connect>>;
let count: () => number;
let commands = 0;
/** What was sent since the last count, named by command and first key: said when a count is over. */
let seen: string[] = [];
/** A timer's command (the registry follower's), not a call's. */
const background = (text: string) => text.includes('{registry}');

beforeAll(async () => {
  await requireRedis();
  // A registry of its own: the sample's numbers these calls use, and an organisation that announces its calls.
  observer = await connect();
  app = await build({ REDIS_URL: TEST_REDIS_URL, REDIS_KEY_PREFIX: PREFIX, SHAKEN_TRUST_ANCHORS: resolve(VECTORS_DIR, 'certs/root.pem'), REGISTRY_FILE: announcingRegistryFile() });
  const client = app.services.redisGuard!.client;
  await until(() => client.status === 'ready', 5000, 'redis');
  writesDone = trackWrites(app);
  const stream = (client as unknown as { stream: NodeJS.WritableStream & NodeJS.ReadableStream }).stream;
  let trips = 0;
  let replySinceWrite = true;
  stream.on('data', () => (replySinceWrite = true));
  const send = client.sendCommand.bind(client);
  client.sendCommand = ((cmd: { name: string; args: unknown[] }, ...rest: unknown[]) => {
    if (!cmd.args.some((a) => background(String(a)))) {
      commands++;
      seen.push(`${cmd.name} ${String(cmd.args[2] ?? cmd.args[0])}`);
    }
    return (send as (...a: unknown[]) => unknown)(cmd, ...rest);
  }) as typeof client.sendCommand;
  const write = stream.write.bind(stream);
  stream.write = ((chunk: unknown, ...rest: unknown[]) => {
    if (!background(String(chunk))) {
      if (replySinceWrite) trips++;
      replySinceWrite = false;
    }
    return (write as (...a: unknown[]) => boolean)(chunk, ...rest);
  }) as typeof stream.write;
  count = () => {
    const t = trips;
    trips = 0;
    commands = 0;
    replySinceWrite = true;
    return t;
  };
});
afterAll(async () => {
  await app.close();
  await deleteByPrefix(observer, PREFIX);
  observer.disconnect();
});

/**
 * The write each scored call sends after its answer (not awaited by the call): kept here so that
 * a test waits for it to be sent and answered rather than for a fixed time that a busy machine overruns.
 */
function trackWrites(instance: FastifyInstance): () => Promise<void> {
  const state = instance.services.behaviour.state;
  const write = state.write.bind(state);
  let pending: Promise<void>[] = [];
  state.write = (w) => {
    const p = write(w);
    pending.push(p);
    return p;
  };
  return async () => {
    const now = pending;
    pending = [];
    await Promise.all(now);
  };
}
let writesDone: () => Promise<void>;

/** Until nothing has been sent for a while: the writes of an earlier call must not count as this one's. */
async function quiet(): Promise<void> {
  for (let before = -1; before !== commands; ) {
    before = commands;
    await sleep(250);
  }
}

/** `reasons`, when given, are the reason codes the call must get: what the one read answered. */
async function tripsFor(body: object, reasons?: string[]): Promise<number> {
  await quiet();
  count();
  seen = [];
  const res = await app.inject({ method: 'POST', url: '/v1/calls/score', payload: body });
  expect(res.statusCode).toBe(200);
  if (reasons) expect(res.json().reasons.map((r: { code: string }) => r.code)).toEqual(reasons);
  await writesDone(); // the write after the decision, sent and answered
  const sent = commands;
  const trips = count();
  expect({ sent, seen }).toEqual({ sent: Math.min(sent, 2), seen });
  expect(sent).toBeGreaterThanOrEqual(trips);
  return trips;
}

/** The call's decision record is in Redis (the write lands after the answer, sooner or later on a busy machine). */
const recorded = (callId: string) => until(async () => (await observer.llen(`${PREFIX}d:{${callId}}`)) === 1, 2000, `the decision record of ${callId}`);

const identity = (JSON.parse(readFileSync(resolve(VECTORS_DIR, 'cases.json'), 'utf8')) as { case: string; request: { identity: string } }[]).find(
  (c) => c.case === 'valid-A',
)!.request.identity;
const unique = () => `+4474002${String(Math.floor(Math.random() * 1e5)).padStart(5, '0')}`;

describe('Redis round trips per scored call', () => {
  beforeAll(async () => {
    // A certificate is read from Redis (or fetched) once per instance and then kept in memory:
    // that first read is the only extra round trip, and not per call.
    const warmUp = { method: 'POST' as const, url: '/v1/calls/score', payload: { from: '+442079460123', to: '+447400123456', identity, receivedAt: '2026-12-01T12:00:02Z' } };
    await app.inject(warmUp);
    // A write of the warm-up that timed out (its first script load, on a busy machine) is kept
    // and sent after the next call that reaches Redis: a second call sends it, here and not in
    // a counted call.
    await app.inject(warmUp);
    await quiet();
  });

  it.each([
    ['a cache miss', () => ({ from: unique(), to: '+442079460999', callId: unique() })],
    ['a bank number with a PASSporT (verify, replay, campaign, velocity)', () => ({ from: '+442079460123', to: '+447400123456', identity, receivedAt: '2026-12-01T12:00:02Z', callId: unique() })],
    ['a withheld caller', () => ({ from: 'anonymous', to: '+442079460999', callId: unique() })],
  ])('%s: at most two, on a miss and on a hit', async (_what, body) => {
    const call = body();
    expect(await tripsFor(call)).toBeLessThanOrEqual(2);
    // The decision record rode in the write: no round trip of its own.
    await recorded(call.callId);
    // The same call again: served from the verdict cache.
    const again = { ...call, callId: unique() };
    expect(await tripsFor(again)).toBeLessThanOrEqual(2);
    await recorded(again.callId);
  });

  it('a number of an organisation that announces its calls, announced or not: the announcement is one more op of the same read', async () => {
    const unannounced = { from: NORTHWIND_OUT, to: unique(), callId: unique() };
    expect(await tripsFor(unannounced, ['SHAKEN_ABSENT', 'BANK_CALL_UNEXPECTED'])).toBeLessThanOrEqual(2);
    expect(await tripsFor({ ...unannounced, callId: unique() }, ['SHAKEN_ABSENT', 'BANK_CALL_UNEXPECTED'])).toBeLessThanOrEqual(2);
    const announced = { from: NORTHWIND_OUT, to: unique(), callId: unique() };
    const made = await app.inject({ method: 'POST', url: '/v1/calls/expected', payload: { from: announced.from, to: announced.to } });
    expect(made.statusCode).toBe(201);
    expect(await tripsFor(announced, ['SHAKEN_ABSENT', 'BANK_CALL_EXPECTED'])).toBeLessThanOrEqual(2);
    // Served from the verdict cache, and the announcement still read fresh.
    expect(await tripsFor({ ...announced, callId: unique() }, ['SHAKEN_ABSENT', 'BANK_CALL_EXPECTED'])).toBeLessThanOrEqual(2);
  });

  it('a verdict cached by another instance costs no extra round trip', async () => {
    const call = { from: unique(), to: '+442079460999' };
    const other = await build({ REDIS_URL: TEST_REDIS_URL, REDIS_KEY_PREFIX: PREFIX });
    await until(() => other.services.redisGuard!.client.status === 'ready', 5000, 'redis');
    const otherWritesDone = trackWrites(other);
    await other.inject({ method: 'POST', url: '/v1/calls/score', payload: call });
    // Its verdict goes to Redis in the write after the answer: in Redis before the instance closes.
    await otherWritesDone();
    await other.close();
    const res = await app.inject({ method: 'POST', url: '/v1/calls/score', payload: call });
    expect(res.json().cached).toBe(true);
    await writesDone();
    count();
    expect(await tripsFor({ ...call, to: call.to })).toBeLessThanOrEqual(2);
  });
});

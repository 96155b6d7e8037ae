import type Redis from 'ioredis';
import type { Evidence } from '../../src/calls/evidence';
import { UnavailableError } from '../../src/errors';
import { MemoryAnnouncementStore, type Announcement, type AnnouncementStore } from '../../src/state/announcements';
import { MemoryCallState } from '../../src/state/memory/call-state';
import type { CallStateQuery, CallStateStore } from '../../src/state/ports';
import { RedisCallState } from '../../src/state/redis/call-state';
import { keyspace } from '../../src/state/redis/keyspace';
import { guardFor, sharedRedis, T0 } from './support';

/**
 * The announcement store, in process and on Redis: the same answers from both, the per-call
 * match as part of the call state's one read, and what each does at its limits.
 */

const FROM = '+442079460000';
const TO = '+447400123456';
const MIN = 60_000;

let seq = 0;
const announcement = (over: Partial<Announcement> = {}): Announcement => ({
  id: `a${++seq}`,
  from: FROM,
  to: TO,
  bankId: 'examplebank',
  at: T0,
  expiresAt: T0 + 10 * MIN,
  ...over,
});

/** A call's read asking only whether `from` -> `to` was announced, at `at`. */
const matchQuery = (at: number, from = FROM, to = TO): CallStateQuery => ({
  at,
  velocity: null,
  fingerprints: [],
  token: 't',
  reportsOf: null,
  campaign: null,
  announcement: { caller: from, callee: to },
  cacheKey: null,
});
const announced = async (state: CallStateStore<Evidence>, at: number, from = FROM, to = TO) => (await state.read(matchQuery(at, from, to))).announced;

const shared = sharedRedis('announcements');
let client: Redis;
let n = 0;
beforeAll(() => {
  client = shared.client();
});

const redisState = (prefix = `${shared.base}${n++}:`) => new RedisCallState<Evidence>(guardFor(client), { prefix, fallback: new MemoryCallState<Evidence>() });

const impls: [string, () => CallStateStore<Evidence>][] = [
  ['memory', () => new MemoryCallState<Evidence>()],
  ['redis', () => redisState()],
];

describe.each(impls)('%s announcements', (_name, make) => {
  let state: CallStateStore<Evidence>;
  let store: AnnouncementStore;
  beforeEach(() => {
    state = make();
    store = state.announcements;
  });

  it('a call from the number to the number announced matches until the end of the window, not after', async () => {
    await store.add(announcement());
    expect(await announced(state, T0 + MIN)).toBe(true);
    expect(await announced(state, T0 + 10 * MIN - 1)).toBe(true);
    expect(await announced(state, T0 + 10 * MIN)).toBe(false);
    expect(await announced(state, T0 + MIN, FROM, '+447400999888')).toBe(false);
    expect(await announced(state, T0 + MIN, '+442079460001')).toBe(false);
  });

  it('a later, shorter window does not cut an earlier, longer one short', async () => {
    await store.add(announcement({ expiresAt: T0 + 60 * MIN }));
    await store.add(announcement({ at: T0 + MIN, expiresAt: T0 + 2 * MIN }));
    expect(await announced(state, T0 + 30 * MIN)).toBe(true);
  });

  it('the read answers null when not asked', async () => {
    await store.add(announcement());
    expect((await state.read({ ...matchQuery(T0), announcement: null })).announced).toBeNull();
  });

  it('is read back by id, and withdrawn: no call matches it, no list shows it', async () => {
    const a = announcement({ reference: 'case 42' });
    await store.add(a);
    expect(await store.get(a.id)).toEqual(a);
    expect(await store.get('nope')).toBeNull();
    await store.remove(a);
    expect(await store.get(a.id)).toBeNull();
    expect(await announced(state, T0 + MIN)).toBe(false);
    expect(await store.active({ bankIds: ['examplebank'], now: T0 + MIN, limit: 10 })).toEqual([]);
    expect(await store.toNumber({ to: TO, bankId: 'examplebank', since: T0 - MIN, limit: 10 })).toEqual([]);
  });

  it('lists the active ones of the banks asked for, newest first, filtered and bounded', async () => {
    const first = announcement({ at: T0, expiresAt: T0 + 10 * MIN });
    const second = announcement({ at: T0 + 1000, to: '+447400999888', reference: 'r' });
    const ended = announcement({ at: T0 - 20 * MIN, expiresAt: T0 - 5 * MIN });
    const other = announcement({ at: T0 + 2000, bankId: 'northwind', from: '+441614960200' });
    for (const a of [ended, first, second, other]) await store.add(a);
    const now = T0 + MIN;
    expect(await store.active({ bankIds: ['examplebank'], now, limit: 10 })).toEqual([second, first]);
    expect(await store.active({ bankIds: ['examplebank', 'northwind'], now, limit: 10 })).toEqual([other, second, first]);
    expect(await store.active({ bankIds: ['examplebank', 'northwind'], now, limit: 2 })).toEqual([other, second]);
    expect(await store.active({ bankIds: ['examplebank'], to: TO, now, limit: 10 })).toEqual([first]);
    expect(await store.active({ bankIds: ['examplebank', 'northwind'], from: '+441614960200', now, limit: 10 })).toEqual([other]);
    expect(await store.active({ bankIds: [], now, limit: 10 })).toEqual([]);
    expect(await store.active({ bankIds: ['examplebank'], now: T0 + 11 * MIN, limit: 10 })).toEqual([]);
  });

  it("lists a bank's announcements to a number whose window reached `since`, past ones included", async () => {
    const old = announcement({ at: T0 - 3 * 86400_000, expiresAt: T0 - 3 * 86400_000 + 10 * MIN });
    const recent = announcement({ at: T0 - 3600_000, expiresAt: T0 - 3600_000 + 10 * MIN });
    const active = announcement({ at: T0, from: '+442079460001' });
    const otherBank = announcement({ at: T0, bankId: 'northwind', from: '+441614960200' });
    const otherCustomer = announcement({ at: T0, to: '+447400999888' });
    for (const a of [old, recent, active, otherBank, otherCustomer]) await store.add(a);
    expect(await store.toNumber({ to: TO, bankId: 'examplebank', since: T0 - 86400_000, limit: 10 })).toEqual([active, recent]);
    expect(await store.toNumber({ to: TO, bankId: 'examplebank', since: T0 - 7 * 86400_000, limit: 10 })).toEqual([active, recent, old]);
    expect(await store.toNumber({ to: TO, bankId: 'examplebank', since: T0 - 7 * 86400_000, limit: 1 })).toEqual([active]);
    expect(await store.toNumber({ to: TO, bankId: 'northwind', since: T0 - 86400_000, limit: 10 })).toEqual([otherBank]);
  });
});

describe('on Redis', () => {
  it("the per-call key is tagged by the caller, so the match rides in the caller's script call", async () => {
    const prefix = `${shared.base}layout:`;
    const state = redisState(prefix);
    const a = announcement();
    await state.announcements.add(a);
    const keys = keyspace(prefix);
    expect(keys.announced(FROM, TO)).toBe(`${prefix}ann:{${FROM}}:${TO}`);
    expect(await client.zscore(keys.announced(FROM, TO), a.id)).toBe(String(a.expiresAt));
    expect(await client.pttl(keys.announced(FROM, TO))).toBeGreaterThan(0);
    expect(state.announcements.matchOp(FROM, TO, T0).tag).toBe(FROM);
  });

  it('an announcement made through one instance matches on another, and withdrawn through that other, stops matching on the first', async () => {
    const prefix = `${shared.base}two:`;
    const one = redisState(prefix);
    const two = redisState(prefix);
    const a = announcement();
    await one.announcements.add(a);
    expect(await announced(two, T0 + MIN)).toBe(true);
    const found = await two.announcements.get(a.id);
    expect(found).toEqual(a);
    await two.announcements.remove(found!);
    // The first instance's own copy does not outvote Redis while Redis answers.
    expect(await announced(one, T0 + MIN)).toBe(false);
    expect(await one.announcements.get(a.id)).toBeNull();
  });

  describe('while Redis is away', () => {
    it("a change is refused, not kept on this instance alone; this instance's confirmed announcements go on matching", async () => {
      const state = redisState();
      const guard = state.guard;
      const before = announcement();
      await state.announcements.add(before);
      const release = guard.bypass(60_000);
      try {
        const during = announcement({ to: '+447400999888' });
        await expect(state.announcements.add(during)).rejects.toMatchObject({ code: 'announcements_unavailable', confirmed: false });
        await expect(state.announcements.add(during)).rejects.toBeInstanceOf(UnavailableError);
        expect(await announced(state, T0 + MIN, FROM, '+447400999888')).toBe(false);
        // Made before the outage, through this instance: matched from its own copy, read and listed from it too.
        expect(await announced(state, T0 + MIN)).toBe(true);
        expect(await state.announcements.get(before.id)).toEqual(before);
        expect(await state.announcements.active({ bankIds: ['examplebank'], now: T0 + MIN, limit: 10 })).toEqual([before]);
        // A withdrawal Redis did not confirm is said so; this instance stops matching at once all the same.
        await expect(state.announcements.remove(before)).rejects.toMatchObject({ code: 'announcements_unavailable' });
        expect(await announced(state, T0 + MIN)).toBe(false);
      } finally {
        release();
      }
      // Redis never heard of the withdrawal: the announcement stands there until withdrawn again.
      expect(await announced(state, T0 + MIN)).toBe(true);
    });
  });
});

describe('in process, at its limits', () => {
  it('refuses a new announcement when every one it holds is still in its window, and makes room from those that ended', async () => {
    const store = new MemoryAnnouncementStore({ maxAnnouncements: 3 });
    const short = announcement({ expiresAt: T0 + MIN });
    await store.add(short);
    await store.add(announcement());
    await store.add(announcement());
    await expect(store.add(announcement({ at: T0 + 1000 }))).rejects.toMatchObject({ code: 'announcements_full', confirmed: true });
    expect(store.size).toBe(3);
    // Once the short one has ended, it makes room.
    const next = announcement({ at: T0 + 2 * MIN });
    await store.add(next);
    expect(store.size).toBe(3);
    expect(store.getSync(short.id)).toBeNull();
    expect(store.getSync(next.id)).toEqual(next);
  });

  it("as Redis's local copy, drops the oldest rather than refuse", () => {
    const store = new MemoryAnnouncementStore({ maxAnnouncements: 2 });
    const [a, b, c] = [announcement(), announcement(), announcement()];
    for (const x of [a, b, c]) store.keep(x);
    expect([a, b, c].map((x) => store.getSync(x.id) !== null)).toEqual([false, true, true]);
  });

  it('drops announcements past their retention as new ones come', async () => {
    const store = new MemoryAnnouncementStore({ retentionS: 86400 });
    const old = announcement();
    await store.add(old);
    expect((await store.toNumber({ to: TO, bankId: 'examplebank', since: 0, limit: 10 })).length).toBe(1);
    await store.add(announcement({ at: old.expiresAt + 86400_000 + 1, expiresAt: old.expiresAt + 86400_000 + MIN }));
    expect(store.getSync(old.id)).toBeNull();
    expect(store.size).toBe(1);
  });
});

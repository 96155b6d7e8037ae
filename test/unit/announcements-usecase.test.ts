import { ForbiddenError, NotFoundError, UnavailableError, ValidationError } from '../../src/errors';
import { parseRegistryDocument } from '../../src/registry/format';
import { RegistryIndex } from '../../src/registry/registry-index';
import { MemoryAnnouncementStore, type Announcement } from '../../src/state/announcements';
import { CallAnnouncements, CallbackVerification, type Principal } from '../../src/usecases';
import { MemoryHistoryStore } from '../../src/state/history';
import { ANNOUNCING_REGISTRY, EXAMPLE_OUT, NORTHWIND_OUT } from '../helpers/announcing-registry';

/** The announcement use cases on their own: authority, validation, scoping, what is stored. */

const NOW = Date.parse('2026-12-07T10:00:00.000Z');
let now = NOW;
const CUSTOMER = '+447400123456';
const registry = new RegistryIndex(parseRegistryDocument(ANNOUNCING_REGISTRY, 'GB').data, 'v1');

const admin: Principal = { name: 'ops', role: 'admin', bankId: null };
const example: Principal = { name: 'example-cc', role: 'bank', bankId: 'examplebank' };
const northwind: Principal = { name: 'northwind-cc', role: 'bank', bankId: 'northwind' };
const switchKey: Principal = { name: 'sbc', role: 'switch', bankId: null };
const unscoped: Principal = { name: 'broken', role: 'bank', bankId: null };

let store: MemoryAnnouncementStore;
let uc: CallAnnouncements;
beforeEach(() => {
  now = NOW;
  store = new MemoryAnnouncementStore();
  uc = new CallAnnouncements({ registry: () => registry, store, now: () => now, defaultCountry: 'GB' });
});

/** The error `p` rejects with, for matching its kind and field. */
const failure = (p: Promise<unknown>) => p.then(() => null, (err: unknown) => err);

describe('announce', () => {
  it('stores the announcement with E.164 numbers, the bank of the entry, its window and reference', async () => {
    const a = await uc.announce(example, { from: '020 7946 0000', to: '07400 123456', validForS: 120, reference: 'r1' });
    expect(a).toEqual({ id: expect.any(String), from: EXAMPLE_OUT, to: CUSTOMER, bankId: 'examplebank', at: NOW, expiresAt: NOW + 120_000, reference: 'r1' });
    expect(store.getSync(a.id)).toEqual(a);
    expect((await uc.announce(admin, { from: NORTHWIND_OUT, to: CUSTOMER })).expiresAt).toBe(NOW + 600_000);
  });

  it('holds each key to its own bank; a switch announces nothing', async () => {
    expect(await failure(uc.announce(example, { from: NORTHWIND_OUT, to: CUSTOMER }))).toBeInstanceOf(ForbiddenError);
    expect(await failure(uc.announce(northwind, { from: '+443450000000', to: CUSTOMER }))).toBeInstanceOf(ForbiddenError);
    expect(await failure(uc.announce(switchKey, { from: EXAMPLE_OUT, to: CUSTOMER }))).toBeInstanceOf(ForbiddenError);
    // A bank key that lost its bank is no bank's: every owned number is someone else's.
    expect(await failure(uc.announce(unscoped, { from: EXAMPLE_OUT, to: CUSTOMER }))).toBeInstanceOf(ForbiddenError);
    expect(store.size).toBe(0);
  });

  it.each([
    ['from', { from: '+443450000000', to: CUSTOMER }],
    ['from', { from: '+441134960000', to: CUSTOMER }],
    ['from', { from: 'withheld', to: CUSTOMER }],
    ['to', { from: EXAMPLE_OUT, to: '112' }],
    ['to', { from: EXAMPLE_OUT, to: '+4474001234' }],
    ['validForS', { from: EXAMPLE_OUT, to: CUSTOMER, validForS: 0 }],
    ['validForS', { from: EXAMPLE_OUT, to: CUSTOMER, validForS: 86_401 }],
    ['validForS', { from: EXAMPLE_OUT, to: CUSTOMER, validForS: 2.5 }],
    ['reference', { from: EXAMPLE_OUT, to: CUSTOMER, reference: 'r'.repeat(129) }],
  ])('a bad %s is a ValidationError naming it', async (field, input) => {
    const err = await failure(uc.announce(example, input));
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).field).toBe(field);
  });

  it('a store that cannot promise the announcement: the error goes to the caller', async () => {
    class Refusing extends MemoryAnnouncementStore {
      override add(): Promise<void> {
        return Promise.reject(new UnavailableError('announcements_unavailable', 'not confirmed', { confirmed: false }));
      }
    }
    const failing = new CallAnnouncements({ registry: () => registry, store: new Refusing(), now: () => now, defaultCountry: 'GB' });
    expect(await failure(failing.announce(example, { from: EXAMPLE_OUT, to: CUSTOMER }))).toBeInstanceOf(UnavailableError);
  });
});

describe('list and withdraw', () => {
  let mine: Announcement;
  let theirs: Announcement;
  beforeEach(async () => {
    mine = await uc.announce(example, { from: EXAMPLE_OUT, to: CUSTOMER });
    now += 1000;
    theirs = await uc.announce(northwind, { from: NORTHWIND_OUT, to: CUSTOMER, validForS: 60 });
  });

  it('a bank key lists its own; an admin all, or those of a number; a bank key without its bank, none', async () => {
    expect(await uc.list(example)).toEqual([mine]);
    expect(await uc.list(admin)).toEqual([theirs, mine]);
    expect(await uc.list(admin, { from: '01614960201' })).toEqual([theirs]);
    expect(await uc.list(admin, { to: CUSTOMER, limit: 1 })).toEqual([theirs]);
    expect(await uc.list(unscoped)).toEqual([]);
    expect(await failure(uc.list(switchKey))).toBeInstanceOf(ForbiddenError);
    now += 60_000;
    expect(await uc.list(admin)).toEqual([mine]);
  });

  it('checks the filters', async () => {
    for (const [field, filter] of [['from', { from: 'anonymous' }], ['to', { to: 'x' }], ['limit', { limit: 0 }], ['limit', { limit: 1001 }]] as const) {
      const err = await failure(uc.list(admin, filter));
      expect([field, (err as ValidationError).field]).toEqual([field, field]);
    }
  });

  it("withdraws a bank's own; another bank's is not found, as an unknown id is", async () => {
    expect(await failure(uc.withdraw(example, theirs.id))).toBeInstanceOf(NotFoundError);
    expect(await failure(uc.withdraw(example, 'nope'))).toBeInstanceOf(NotFoundError);
    expect(await failure(uc.withdraw(unscoped, theirs.id))).toBeInstanceOf(NotFoundError);
    expect(await failure(uc.withdraw(switchKey, theirs.id))).toBeInstanceOf(ForbiddenError);
    expect(store.getSync(theirs.id)).toEqual(theirs);
    expect(await uc.withdraw(northwind, theirs.id)).toEqual(theirs);
    expect(store.matchSync(NORTHWIND_OUT, CUSTOMER, now)).toBe(false);
    expect(await uc.withdraw(admin, mine.id)).toEqual(mine);
    expect(store.size).toBe(0);
  });
});

describe('callback verification: expectedCalls', () => {
  const callbacks = () => new CallbackVerification({ registry: () => registry, history: new MemoryHistoryStore(), announcements: store, now: () => now, defaultCountry: 'GB' });

  it("the announcements of the number's bank to the customer, for the keys that may see them", async () => {
    const a = await uc.announce(example, { from: EXAMPLE_OUT, to: CUSTOMER });
    await uc.announce(northwind, { from: NORTHWIND_OUT, to: CUSTOMER });
    const ask = (p: Principal, number: string, customer?: string) => callbacks().verify(p, { number, ...(customer ? { customer } : {}) });
    expect((await ask(example, '+443450000000', CUSTOMER)).expectedCalls).toEqual([a]);
    expect((await ask(northwind, EXAMPLE_OUT, CUSTOMER)).expectedCalls).toEqual([]);
    expect((await ask(switchKey, EXAMPLE_OUT, CUSTOMER)).expectedCalls).toEqual([a]);
    expect((await ask(unscoped, EXAMPLE_OUT, CUSTOMER)).expectedCalls).toEqual([]);
    expect((await ask(admin, '+441134960000', CUSTOMER)).expectedCalls).toEqual([]);
    expect(await ask(admin, EXAMPLE_OUT)).not.toHaveProperty('expectedCalls');
  });
});

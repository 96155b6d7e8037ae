/**
 * The recency order of at most `max` keys, each given a slot (0 .. max - 1) that stays its own
 * until the key is evicted. What a key holds lives in its owner's arrays, indexed by slot, so an
 * entry costs a Map entry and a few array cells and no object of its own. Slots are handed out
 * in order (0, 1, 2, ...) until there are `max` of them, so those arrays grow by appending and
 * stay packed; past that, a new key takes the least recent key's slot, as LRUCache would evict
 * it (without LRUCache's TTL bookkeeping and parallel arrays sized for `max` up front).
 */
export class LruSlots {
  private readonly slots = new Map<string, number>();
  private readonly keys: string[] = [];
  /** Each slot's neighbours in recency order (-1 past either end). */
  private older = new Int32Array(0);
  private newer = new Int32Array(0);
  private oldest = -1;
  private newest = -1;
  /** Slots given up by `dropOldest`, handed out again before any new one. */
  private readonly free: number[] = [];

  constructor(readonly max: number) {}

  get size(): number {
    return this.slots.size;
  }

  /** The key's slot, now the most recent; -1 when the key is not held. */
  use(key: string): number {
    const slot = this.slots.get(key);
    if (slot === undefined) return -1;
    if (slot !== this.newest) {
      this.unlink(slot);
      this.append(slot);
    }
    return slot;
  }

  /** The keys held, in no particular order, their recency untouched. */
  held(): IterableIterator<string> {
    return this.slots.keys();
  }

  /** The key's slot, its recency untouched; -1 when the key is not held. */
  peek(key: string): number {
    return this.slots.get(key) ?? -1;
  }

  /**
   * A slot for a key that is not held (see `use`), as the most recent: a new slot while fewer
   * than `max` are held, else the least recent key's, that key being forgotten. The owner then
   * overwrites whatever the slot held.
   */
  add(key: string): number {
    let slot: number;
    if (this.free.length > 0) {
      slot = this.free.pop()!;
    } else if (this.slots.size >= this.max) {
      slot = this.oldest;
      this.slots.delete(this.keys[slot]!);
      this.unlink(slot);
    } else {
      slot = this.keys.length;
      if (slot === this.older.length) this.grow();
    }
    this.keys[slot] = key;
    this.slots.set(key, slot);
    this.append(slot);
    return slot;
  }

  /**
   * Forgets the least recent key before `max` would (its owner holds too much in all); its slot
   * is handed out again by `add`. Returns that slot, or -1 when no key is held.
   */
  dropOldest(): number {
    const slot = this.oldest;
    if (slot === -1) return -1;
    this.slots.delete(this.keys[slot]!);
    this.keys[slot] = '';
    this.unlink(slot);
    this.free.push(slot);
    return slot;
  }

  /** The least recent key's slot, its recency untouched; -1 when no key is held. */
  get oldestSlot(): number {
    return this.oldest;
  }

  /** Keys from the least to the most recent. */
  *keysByAge(): IterableIterator<string> {
    for (let slot = this.oldest; slot !== -1; slot = this.newer[slot]!) yield this.keys[slot]!;
  }

  private unlink(slot: number): void {
    const older = this.older[slot]!;
    const newer = this.newer[slot]!;
    if (older === -1) this.oldest = newer;
    else this.newer[older] = newer;
    if (newer === -1) this.newest = older;
    else this.older[newer] = older;
  }

  private append(slot: number): void {
    this.older[slot] = this.newest;
    this.newer[slot] = -1;
    if (this.newest === -1) this.oldest = slot;
    else this.newer[this.newest] = slot;
    this.newest = slot;
  }

  private grow(): void {
    const size = Math.min(this.max, Math.max(64, this.older.length * 2));
    const older = new Int32Array(size);
    const newer = new Int32Array(size);
    older.set(this.older);
    newer.set(this.newer);
    this.older = older;
    this.newer = newer;
  }
}

/**
 * Writes made while Redis was down, kept (bounded, oldest dropped first) to be sent once it
 * is back: history and reports are records, not just counters, and should not vanish
 * because of an outage.
 */
export class Backlog<T> {
  private items: T[] = [];
  dropped = 0;

  constructor(private readonly max: number) {}

  get size(): number {
    return this.items.length;
  }

  push(item: T): void {
    this.items.push(item);
    if (this.items.length > this.max) {
      const over = this.items.length - this.max;
      this.items.splice(0, over);
      this.dropped += over;
    }
  }

  take(n: number): T[] {
    return this.items.splice(0, n);
  }

  /** Puts back what could not be sent, ahead of anything written since. */
  restore(items: T[]): void {
    this.items.unshift(...items);
    if (this.items.length > this.max) {
      const over = this.items.length - this.max;
      this.items.splice(0, over);
      this.dropped += over;
    }
  }
}

/** The drill's clock: what happened when, in milliseconds since the load started. */
import { sleep } from '../lib/process';

export interface TimelineEvent {
  atMs: number;
  event: string;
}

export class Timeline {
  readonly events: TimelineEvent[] = [];
  /** performance.now() when the load started (until then, when the drill did). */
  t0 = performance.now();

  constructor(private readonly log: (line: string) => void) {}

  /** The load starts now: every time after this is measured from here. */
  start(): void {
    this.t0 = performance.now();
  }

  /** Milliseconds since the load started. */
  at(): number {
    return performance.now() - this.t0;
  }

  /** Records an event, and prints it as progress. */
  readonly mark = (event: string): void => {
    this.events.push({ atMs: Math.round(this.at()), event });
    this.log(`+${(this.at() / 1000).toFixed(1)}s ${event}`);
  };

  /** Waits until `seconds` into the load (returns at once when that is past). */
  reach(seconds: number): Promise<void> {
    return sleep(Math.max(0, seconds * 1000 - this.at()));
  }

  /** A performance.now() time as the report writes it: `+1.23s` into the load. */
  stamp(t: number): string {
    return `+${((t - this.t0) / 1000).toFixed(2)}s`;
  }
}

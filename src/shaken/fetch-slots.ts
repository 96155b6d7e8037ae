import { isIP } from 'node:net';

/**
 * Who may fetch now. x5u URLs are chosen by whoever sends the call, so one sender can point
 * thousands of calls at a host that never answers. Fetches are therefore limited per site (a
 * registrable domain, roughly: see siteOf) and in total, waiting fetches queue per site, and a
 * freed slot goes to the sites in turn, so a flood aimed at one site queues behind itself and
 * an honest certificate repository elsewhere still gets its fetch at once.
 *
 * Two levels of limits: the verifier also caps the certificates one call may load (verifier.ts),
 * so that no single call costs more than a few fetches and chain judgements of CPU.
 */

export interface FetchSlotsOptions {
  /** Fetches running at once for one site (default 4). */
  perSite?: number;
  /** Fetches running at once in all (default 64). */
  total?: number;
  /** Fetches waiting for one site; past it a new one is refused at once (default 8). */
  queuePerSite?: number;
  /** Fetches waiting in all (default 256). */
  queueTotal?: number;
  /** How long a fetch may wait for a slot before it is refused (ms). */
  maxWaitMs: number;
}

interface Waiter {
  site: string;
  grant: (release: (() => void) | null) => void;
  timer: NodeJS.Timeout;
}

// Second-level labels under which a country-code TLD registers names (example.co.uk, example.com.au).
const SECOND_LEVEL = new Set(['ac', 'co', 'com', 'edu', 'gov', 'ltd', 'me', 'net', 'ne', 'or', 'org', 'plc', 'sch']);

/**
 * The site a host belongs to, for fairness: the last two labels of a name (three under a
 * country code's usual second level, e.g. example.co.uk), so that cr1.evil.example and
 * cr2.evil.example (a wildcard DNS record makes any number of them) share one allowance. An IP
 * address is its own site. A heuristic, not the Public Suffix List: it only needs to keep one
 * sender from spreading over many names cheaply.
 */
export function siteOf(hostname: string): string {
  const host = hostname.replace(/^\[|\]$/g, '').replace(/\.$/, '').toLowerCase();
  if (isIP(host) !== 0) return host;
  const labels = host.split('.');
  if (labels.length <= 2) return host;
  const tld = labels[labels.length - 1]!;
  const second = labels[labels.length - 2]!;
  const keep = tld.length === 2 && SECOND_LEVEL.has(second) ? 3 : 2;
  return labels.slice(-keep).join('.');
}

export class FetchSlots {
  private readonly o: Required<FetchSlotsOptions>;
  private readonly running = new Map<string, number>();
  private runningTotal = 0;
  /** Waiting fetches by site; the Map's order is the round-robin order. */
  private readonly queues = new Map<string, Waiter[]>();
  private queuedTotal = 0;

  constructor(opts: FetchSlotsOptions) {
    this.o = { perSite: 4, total: 64, queuePerSite: 8, queueTotal: 256, ...opts };
  }

  /**
   * A slot for one fetch from `site`: resolves to its release function, or to null when the
   * site's queue (or all queues) is full, or the wait outlasted maxWaitMs. Never rejects.
   */
  acquire(site: string): Promise<(() => void) | null> {
    if (this.canRun(site) && !this.queues.has(site)) return Promise.resolve(this.start(site));
    const queue = this.queues.get(site);
    if ((queue?.length ?? 0) >= this.o.queuePerSite || this.queuedTotal >= this.o.queueTotal) return Promise.resolve(null);
    return new Promise((grant) => {
      const waiter: Waiter = {
        site,
        grant,
        timer: setTimeout(() => {
          this.remove(waiter);
          grant(null);
        }, this.o.maxWaitMs),
      };
      waiter.timer.unref();
      if (queue) queue.push(waiter);
      else this.queues.set(site, [waiter]);
      this.queuedTotal++;
    });
  }

  /** Refuses every waiting fetch (shutdown). */
  clear(): void {
    for (const queue of this.queues.values()) {
      for (const w of queue) {
        clearTimeout(w.timer);
        w.grant(null);
      }
    }
    this.queues.clear();
    this.queuedTotal = 0;
  }

  get inUse(): { running: number; queued: number } {
    return { running: this.runningTotal, queued: this.queuedTotal };
  }

  private canRun(site: string): boolean {
    return this.runningTotal < this.o.total && (this.running.get(site) ?? 0) < this.o.perSite;
  }

  private start(site: string): () => void {
    this.runningTotal++;
    this.running.set(site, (this.running.get(site) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.runningTotal--;
      const n = this.running.get(site)! - 1;
      if (n === 0) this.running.delete(site);
      else this.running.set(site, n);
      this.dispatch();
    };
  }

  /**
   * Hands free slots to waiting fetches, each time to the site with the fewest fetches running
   * (the earliest queued among equals): a site that already holds slots waits behind one that
   * holds none, however long its own queue.
   */
  private dispatch(): void {
    while (this.runningTotal < this.o.total && this.queues.size > 0) {
      let best: string | undefined;
      let fewest = Infinity;
      for (const site of this.queues.keys()) {
        const n = this.running.get(site) ?? 0;
        if (n < this.o.perSite && n < fewest) {
          best = site;
          fewest = n;
        }
      }
      if (best === undefined) return;
      const queue = this.queues.get(best)!;
      const w = queue.shift()!;
      this.queuedTotal--;
      clearTimeout(w.timer);
      // Served sites go to the back of the line.
      this.queues.delete(best);
      if (queue.length > 0) this.queues.set(best, queue);
      w.grant(this.start(best));
    }
  }

  private remove(w: Waiter): void {
    const queue = this.queues.get(w.site);
    if (!queue) return;
    const i = queue.indexOf(w);
    if (i < 0) return;
    queue.splice(i, 1);
    this.queuedTotal--;
    if (queue.length === 0) this.queues.delete(w.site);
  }
}

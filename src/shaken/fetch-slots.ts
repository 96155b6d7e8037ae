import { isIP } from 'node:net';
import { LRUCache } from 'lru-cache';

/**
 * Who may fetch now. x5u URLs are chosen by whoever sends the call, so one sender can point
 * thousands of calls at a host that never answers. Fetches are therefore limited per site (a
 * registrable domain, roughly: see siteOf) and in total, waiting fetches queue per site, and a
 * freed slot goes to the sites in turn, so a flood aimed at one site queues behind itself and
 * an honest certificate repository elsewhere still gets its fetch at once.
 *
 * A share of the slots is kept for sites that have served a chain to a trust anchor before
 * (trust): a sender who spreads a flood over many sites of its own can hold all the other
 * slots, but not keep a known carrier's repository from being fetched.
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
  /** Slots only trusted sites (see trust) may use (default a quarter of total, rounded down). */
  reservedForTrusted?: number;
  /** Trusted sites remembered, least recently trusted forgotten first (default 1,000). */
  maxTrustedSites?: number;
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
 * The one site of every IP-literal host. Brackets cannot occur in a host name, so no name's
 * site can be this.
 */
export const IP_LITERAL_SITE = '[ip-literal]';

/**
 * The site a host belongs to, for fairness: the last two labels of a name (three under a
 * country code's usual second level, e.g. example.co.uk), so that cr1.evil.example and
 * cr2.evil.example (a wildcard DNS record makes any number of them) share one allowance. A
 * heuristic, not the Public Suffix List: it only needs to keep one sender from spreading over
 * many names cheaply.
 *
 * Every IP address, v4 or v6, is one and the same site (IP_LITERAL_SITE). Addresses cost an
 * attacker nothing (one IPv6 /64 holds 2^64 of them, and one host can answer, or black-hole,
 * all of them), and grouping them by network would still hand out a site per /48 or /24, of
 * which anyone with a /32 or a cloud account has thousands. Certificate repositories are named
 * (an STI-CR is reached by an https URL with a name its TLS certificate vouches for), so a
 * literal is at best a lab, and sharing one allowance costs honest traffic nothing.
 */
export function siteOf(hostname: string): string {
  const host = hostname.replace(/^\[|\]$/g, '').replace(/\.$/, '').toLowerCase();
  if (isIP(host) !== 0) return IP_LITERAL_SITE;
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
  /** Slots held by fetches that started for sites not trusted at the time. */
  private runningUntrusted = 0;
  private readonly trusted: LRUCache<string, true>;
  /** Waiting fetches by site; the Map's order is the round-robin order. */
  private readonly queues = new Map<string, Waiter[]>();
  private queuedTotal = 0;

  constructor(opts: FetchSlotsOptions) {
    const total = opts.total ?? 64;
    this.o = { perSite: 4, total, queuePerSite: 8, queueTotal: 256, reservedForTrusted: Math.floor(total / 4), maxTrustedSites: 1000, ...opts };
    this.trusted = new LRUCache({ max: this.o.maxTrustedSites });
  }

  /**
   * Marks a site as having served a chain to a trust anchor: from now on it may use the slots
   * kept for trusted sites. IP literals are never trusted: every one shares one site, and one
   * trusted lab address must not open the reserve to all the others.
   */
  trust(site: string): void {
    if (site !== IP_LITERAL_SITE) this.trusted.set(site, true);
  }

  isTrusted(site: string): boolean {
    return this.trusted.has(site);
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

  get inUse(): { running: number; queued: number; untrusted: number } {
    return { running: this.runningTotal, queued: this.queuedTotal, untrusted: this.runningUntrusted };
  }

  private canRun(site: string): boolean {
    if (this.runningTotal >= this.o.total || (this.running.get(site) ?? 0) >= this.o.perSite) return false;
    return this.runningUntrusted < this.o.total - this.o.reservedForTrusted || this.trusted.has(site);
  }

  private start(site: string): () => void {
    // Counted as it started: a site trusted while its fetch runs must not free a slot it never took from the reserve.
    const untrusted = !this.trusted.has(site);
    this.runningTotal++;
    if (untrusted) this.runningUntrusted++;
    this.running.set(site, (this.running.get(site) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.runningTotal--;
      if (untrusted) this.runningUntrusted--;
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
        if (n < fewest && this.canRun(site)) {
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

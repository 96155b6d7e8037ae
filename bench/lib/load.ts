/** Bounded autocannon runs against one URL, with a body made per request, and what they add up to. */
import autocannon from 'autocannon';

export interface LoadSpec {
  url: string;
  headers?: Record<string, string>;
  /** Called once per request: a fresh body (cache misses) or the same one (cache hits). */
  body: () => string;
  seconds: number;
  connections: number;
}

export interface LoadResult {
  rps: number;
  requests: number;
  seconds: number;
  /** Connection errors, timeouts included. */
  errors: number;
  non2xx: number;
}

/** One run; every response time (ms) is appended to `latencies` when given. */
export function load(spec: LoadSpec, latencies?: number[]): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url: spec.url,
        method: 'POST',
        connections: spec.connections,
        duration: spec.seconds,
        ...(spec.headers ? { headers: spec.headers } : {}),
        requests: [{ setupRequest: (req) => ({ ...req, body: spec.body() }) }],
      },
      (err, r) => {
        if (err) return reject(err instanceof Error ? err : new Error(String(err)));
        resolve({ rps: r.requests.total / r.duration, requests: r.requests.total, seconds: r.duration, errors: r.errors, non2xx: r.non2xx });
      },
    );
    if (latencies) instance.on('response', (_client, _status, _bytes, ms) => latencies.push(ms));
  });
}

/** One request, for the sanity check before a path is timed. */
export async function send(spec: Pick<LoadSpec, 'url' | 'headers' | 'body'>): Promise<{ status: number; text: string }> {
  const res = await fetch(spec.url, { method: 'POST', ...(spec.headers ? { headers: spec.headers } : {}), body: spec.body(), signal: AbortSignal.timeout(5000) });
  return { status: res.status, text: await res.text() };
}

export interface Totals extends LoadResult {
  /** Latency over every request of every run, ms. */
  p50: number;
  p99: number;
  /** CPU the server process spent per request (all its threads), µs. */
  serverCpuUsPerRequest?: number;
}

/** Several runs of one path pooled: requests and time add up, latencies are merged before percentiles are taken. */
export class Tally {
  readonly latencies: number[] = [];
  private requests = 0;
  private seconds = 0;
  private errors = 0;
  private non2xx = 0;
  private cpuMs = 0;

  add(r: LoadResult, serverCpuMs?: number): void {
    this.requests += r.requests;
    this.seconds += r.seconds;
    this.errors += r.errors;
    this.non2xx += r.non2xx;
    this.cpuMs += serverCpuMs ?? NaN;
  }

  totals(): Totals | undefined {
    if (this.seconds === 0) return undefined;
    const sorted = Float64Array.from(this.latencies).sort();
    const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? NaN;
    return {
      rps: this.requests / this.seconds,
      requests: this.requests,
      seconds: this.seconds,
      errors: this.errors,
      non2xx: this.non2xx,
      p50: at(0.5),
      p99: at(0.99),
      ...(Number.isFinite(this.cpuMs) && this.requests > 0 ? { serverCpuUsPerRequest: (this.cpuMs * 1000) / this.requests } : {}),
    };
  }
}

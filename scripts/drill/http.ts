/**
 * HTTP as a switch sees it: one request's outcome with its timings (when it was handed to the
 * OS, whether it went on a kept-alive connection), and what a switch's dispatcher makes of it.
 */
import http from 'node:http';

export type HttpResult =
  | { kind: 'response'; status: number; body: string; started: number; sentAt: number | null; ended: number; reused?: boolean }
  | { kind: 'error'; code: string; responded: boolean; started: number; sentAt: number | null; ended: number; reused?: boolean };

export interface Target {
  url: string;
  host: string;
  port: number;
}

export function target(url: string): Target {
  const u = new URL(url);
  if (u.protocol !== 'http:') throw new Error(`${url}: only http:// targets (put the drill next to the instances, or behind the TLS terminator)`);
  return { url: url.replace(/\/$/, ''), host: u.hostname, port: Number(u.port || 80) };
}

export function send(t: Target, agent: http.Agent | false, method: string, path: string, body: string | null, headers: Record<string, string>, timeoutMs: number): Promise<HttpResult> {
  return new Promise((resolveResult) => {
    const started = performance.now();
    let sentAt: number | null = null;
    let responded = false;
    let settled = false;
    const finish = (r: { kind: 'response'; status: number; body: string } | { kind: 'error'; code: string; responded: boolean }) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolveResult({ ...r, started, sentAt, ended: performance.now(), reused: req.reusedSocket });
    };
    const req = http.request(
      {
        host: t.host,
        port: t.port,
        method,
        path,
        agent,
        headers: { ...headers, ...(body !== null ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) } : {}) },
      },
      (res) => {
        responded = true;
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => finish({ kind: 'response', status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
        res.on('error', (err: NodeJS.ErrnoException) => finish({ kind: 'error', code: `response ${err.code ?? err.message}`, responded: true }));
        res.on('aborted', () => finish({ kind: 'error', code: 'response aborted', responded: true }));
      },
    );
    req.on('finish', () => (sentAt = performance.now()));
    req.on('error', (err: NodeJS.ErrnoException) => finish({ kind: 'error', code: err.code ?? err.message, responded }));
    const timer = setTimeout(() => {
      finish({ kind: 'error', code: 'TIMEOUT', responded });
      req.destroy();
    }, timeoutMs);
    req.end(body ?? undefined);
  });
}

/** What a switch's dispatcher makes of one attempt. */
export type Outcome = 'ok' | 'refused' | 'reset' | 'closing' | 'shed' | 'error';
export const FAILOVER: ReadonlySet<Outcome> = new Set(['refused', 'reset', 'closing', 'shed']);

export function jsonOf(body: string): Record<string, unknown> | null {
  try {
    const v = JSON.parse(body) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

export function classify(r: HttpResult, isOk: (status: number, json: Record<string, unknown> | null) => boolean): { outcome: Outcome; detail: string } {
  if (r.kind === 'error') {
    if (r.code === 'ECONNREFUSED') return { outcome: 'refused', detail: r.code };
    if (!r.responded && (r.code === 'ECONNRESET' || r.code === 'EPIPE')) return { outcome: 'reset', detail: r.code };
    return { outcome: 'error', detail: r.code };
  }
  const json = jsonOf(r.body);
  if (isOk(r.status, json)) return { outcome: 'ok', detail: String(r.status) };
  // Fastify's answer on a connection that carries a request while the instance closes.
  if (r.status === 503 && json?.error === 'Service Unavailable') return { outcome: 'closing', detail: '503 closing' };
  if (r.status === 503 && json?.error === 'overloaded') return { outcome: 'shed', detail: '503 overloaded' };
  return { outcome: 'error', detail: `HTTP ${r.status} ${r.body.slice(0, 120)}` };
}

/** A request whose headers and first half of body go now, and the rest on `rest()`. */
export function halfSent(t: Target, method: string, path: string, body: string, headers: Record<string, string>) {
  let rest: () => void = () => undefined;
  let headersSent: () => void = () => undefined;
  const sent = new Promise<void>((r) => (headersSent = r));
  const result = new Promise<HttpResult>((resolveResult) => {
    const started = performance.now();
    const req = http.request(
      { host: t.host, port: t.port, method, path, agent: false, headers: { ...headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) } },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolveResult({ kind: 'response', status: res.statusCode ?? 0, body: text, started, sentAt: null, ended: performance.now() }));
      },
    );
    req.on('error', (err: NodeJS.ErrnoException) => resolveResult({ kind: 'error', code: err.code ?? err.message, responded: false, started, sentAt: null, ended: performance.now() }));
    req.on('socket', (s) => s.once('connect', () => headersSent()));
    req.write(body.slice(0, Math.floor(body.length / 2)));
    rest = () => req.end(body.slice(Math.floor(body.length / 2)));
    setTimeout(() => req.destroy(new Error('TIMEOUT')), 20_000).unref();
  });
  return { headersSent: sent, result, rest: () => rest() };
}

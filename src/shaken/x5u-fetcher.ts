import { lookup as dnsLookup } from 'node:dns/promises';
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import type { CertificateFetcher } from './types';
import { checkX5uUrl, isPublicAddress, X5uPolicyError } from './url-policy';

export { X5uPolicyError } from './url-policy';

export interface ResolvedAddress {
  address: string;
  family: number;
}

export interface X5uFetcherOptions {
  /** Lab only (SHAKEN_X5U_ALLOW_INSECURE): also allow http: and loopback/private hosts. */
  allowInsecure?: boolean;
  /** Largest answer accepted, in bytes (default 16 KiB; a SHAKEN chain is 2-4 KiB). */
  maxBytes?: number;
  /** Extra CA certificates for the TLS connection (tests with a local HTTPS server). */
  ca?: string | Buffer | Array<string | Buffer>;
  /** Resolves a host to all its addresses; dns.lookup by default. Injected by tests. */
  resolve?: (hostname: string) => Promise<ResolvedAddress[]>;
  /** How long the TCP connection may take to open (default DEFAULT_X5U_CONNECT_TIMEOUT_MS). */
  connectTimeoutMs?: number;
}

/**
 * A fetch holds one of a few fetch slots (fetch-slots.ts) for as long as it runs, and an
 * address that drops SYNs would hold it until the background limit (10 s): a connection
 * that has not opened within a second is given up. A certificate repository opens one in a
 * round trip, well under that; only a connection whose first SYN was lost (resent after the
 * initial one-second RTO of RFC 6298) is given up with it, and its URL is tried again after
 * the negative lifetime.
 */
export const DEFAULT_X5U_CONNECT_TIMEOUT_MS = 1000;

// Four certificates at most are read from an answer (chain.ts); 16 KiB holds four ordinary ones
// several times over, and nothing bigger has to be downloaded, decoded and scanned.
export const DEFAULT_MAX_X5U_BYTES = 16 * 1024;

/** A fetch that failed for a reason other than policy: reported as X5U_FETCH_FAILED. */
export class X5uFetchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'X5uFetchError';
  }
}

/** `max-age` from a Cache-Control header, in seconds; 0 for no-store/no-cache; undefined when it says nothing. */
export function parseMaxAge(cacheControl: string | string[] | undefined): number | undefined {
  const value = Array.isArray(cacheControl) ? cacheControl.join(',') : cacheControl;
  if (!value) return undefined;
  if (/(?:^|[,\s])(?:no-store|no-cache)(?:$|[,\s=])/i.test(value)) return 0;
  const m = /(?:^|[,\s])max-age\s*=\s*"?(\d+)"?/i.exec(value);
  return m ? Number(m[1]) : undefined;
}

const defaultResolve = async (hostname: string): Promise<ResolvedAddress[]> =>
  dnsLookup(hostname, { all: true, verbatim: true });

function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new X5uFetchError('aborted'));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new X5uFetchError('aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

/**
 * The production CertificateFetcher. Policy (X5uPolicyError): https only (http too when
 * allowInsecure), and unless allowInsecure every address the host resolves to must be public.
 * The connection then goes to the address that was checked, through a pinned `lookup`, so a
 * DNS answer that changes between check and connect (rebinding) cannot reach an internal host.
 * No redirects, a size cap, and the caller's AbortSignal as the deadline.
 */
export function createX5uFetcher(opts: X5uFetcherOptions = {}): CertificateFetcher {
  const allowInsecure = opts.allowInsecure ?? false;
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_X5U_BYTES;
  const resolve = opts.resolve ?? defaultResolve;
  const connectTimeoutMs = opts.connectTimeoutMs ?? DEFAULT_X5U_CONNECT_TIMEOUT_MS;

  return {
    async fetch(rawUrl: string, signal: AbortSignal) {
      const url = checkX5uUrl(rawUrl, allowInsecure);
      const hostname = url.hostname.replace(/^\[|\]$/g, '');

      let addresses: ResolvedAddress[];
      try {
        addresses = await abortable(resolve(hostname), signal);
      } catch (err) {
        throw new X5uFetchError(`cannot resolve ${hostname}: ${(err as Error).message}`);
      }
      if (addresses.length === 0) throw new X5uFetchError(`no address for ${hostname}`);
      // Refuse when any address is internal: which one a client would pick is not ours to predict.
      if (!allowInsecure && addresses.some((a) => !isPublicAddress(a.address))) {
        throw new X5uPolicyError(`x5u host ${hostname} resolves to a non-public address`);
      }
      const pinned = addresses[0]!;
      const lookup = ((_host: string, options: { all?: boolean }, cb: (...args: unknown[]) => void) => {
        if (options?.all) cb(null, [{ address: pinned.address, family: pinned.family }]);
        else cb(null, pinned.address, pinned.family);
      }) as unknown as LookupFunction;

      return new Promise<{ body: Buffer; maxAgeS?: number }>((resolveFetch, rejectFetch) => {
        let settled = false;
        let connectTimer: NodeJS.Timeout | undefined;
        const fail = (err: Error) => {
          clearTimeout(connectTimer);
          if (settled) return;
          settled = true;
          req.destroy();
          rejectFetch(err instanceof X5uPolicyError || err instanceof X5uFetchError ? err : new X5uFetchError(err.message));
        };
        const mod = url.protocol === 'https:' ? https : http;
        const req = mod.request(
          url,
          {
            method: 'GET',
            lookup,
            signal,
            agent: false,
            headers: { accept: 'application/pem-certificate-chain, application/x-pem-file, text/plain;q=0.5', 'user-agent': 'callguard-x5u' },
            ...(url.protocol === 'https:' && opts.ca !== undefined ? { ca: opts.ca } : {}),
          },
          (res) => {
            const status = res.statusCode ?? 0;
            if (status !== 200) {
              res.resume();
              // Redirects are refused outright: following one would re-open every check above.
              fail(new X5uFetchError(status >= 300 && status < 400 ? `redirect (${status}) refused` : `HTTP ${status}`));
              return;
            }
            const declared = Number(res.headers['content-length']);
            if (Number.isFinite(declared) && declared > maxBytes) {
              fail(new X5uFetchError(`answer of ${declared} bytes exceeds ${maxBytes}`));
              return;
            }
            const chunks: Buffer[] = [];
            let size = 0;
            res.on('data', (chunk: Buffer) => {
              size += chunk.length;
              if (size > maxBytes) fail(new X5uFetchError(`answer exceeds ${maxBytes} bytes`));
              else chunks.push(chunk);
            });
            res.on('error', fail);
            res.on('close', () => fail(new X5uFetchError('connection closed before the answer ended')));
            res.on('end', () => {
              clearTimeout(connectTimer);
              if (settled) return;
              settled = true;
              const maxAgeS = parseMaxAge(res.headers['cache-control']);
              resolveFetch({ body: Buffer.concat(chunks), ...(maxAgeS !== undefined ? { maxAgeS } : {}) });
            });
          },
        );
        req.on('error', fail);
        req.on('socket', (socket) => {
          if (!socket.connecting) return;
          connectTimer = setTimeout(() => fail(new X5uFetchError(`no connection to ${hostname} within ${connectTimeoutMs} ms`)), connectTimeoutMs);
          connectTimer.unref();
          socket.once('connect', () => clearTimeout(connectTimer));
        });
        req.end();
      });
    },
  };
}

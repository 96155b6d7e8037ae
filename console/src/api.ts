/**
 * The console's one way to the API. The key lives in this tab's sessionStorage only: it goes out
 * in the Authorization header of each request, never in a URL, and is gone when the tab closes.
 */

const KEY_ITEM = 'callguard.apiKey';

export const session = {
  key: (): string | null => sessionStorage.getItem(KEY_ITEM),
  keep: (key: string): void => sessionStorage.setItem(KEY_ITEM, key),
  forget: (): void => sessionStorage.removeItem(KEY_ITEM),
};

export type Role = 'switch' | 'bank' | 'admin';
export interface Me {
  name: string;
  role: Role;
  bankId: string | null;
}

export interface FieldProblem {
  field: string;
  message: string;
}

/** An answer other than 2xx: the API's `{ error, message, details? }`. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: FieldProblem[] = [],
  ) {
    super(message);
  }
}

type Query = Record<string, string | number | undefined>;

function pathWith(path: string, query?: Query): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined && v !== '') params.set(k, String(v));
  const qs = params.toString();
  return qs ? `${path}?${qs}` : path;
}

/** One request with the tab's key; `key` overrides it (signing in, before it is kept). */
export async function api<T>(method: string, path: string, opts: { body?: unknown; query?: Query; key?: string } = {}): Promise<T> {
  const key = opts.key ?? session.key();
  const headers: Record<string, string> = { accept: 'application/json' };
  if (key) headers.authorization = `Bearer ${key}`;
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(pathWith(path, opts.query), {
      method,
      headers,
      body: opts.body === undefined ? null : JSON.stringify(opts.body),
      credentials: 'omit',
      cache: 'no-store',
      referrerPolicy: 'no-referrer',
    });
  } catch {
    throw new ApiError(0, 'network', 'The service did not answer. Check the connection and try again.');
  }
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    // Not JSON (a proxy's error page): the status says what happened.
    body = null;
  }
  if (!res.ok) {
    const e = (body ?? {}) as { error?: string; message?: string; details?: FieldProblem[] };
    throw new ApiError(res.status, e.error ?? 'error', e.message ?? `The service answered ${res.status}.`, Array.isArray(e.details) ? e.details : []);
  }
  return body as T;
}

/** Path segments are data: encoded, so a number or call id cannot change the path it goes to. */
export const seg = (s: string): string => encodeURIComponent(s);

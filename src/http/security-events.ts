import type { FastifyRequest } from 'fastify';

/**
 * Security events: the lines an operator alerts on and an auditor reads. Logged for every one
 * (never sampled, whatever ACCESS_LOG_SAMPLE says), each with `event` naming what happened and
 * who did it: refusals at `warn`, registry changes at `info`. The one place they are written.
 */
export type SecurityEvent = 'auth_failed' | 'forbidden' | 'rate_limited' | 'registry_change';

/** The security event an answer's status is, if any. */
export function refusalOf(status: number): Exclude<SecurityEvent, 'registry_change'> | null {
  switch (status) {
    case 401:
      return 'auth_failed';
    case 403:
      return 'forbidden';
    case 429:
      return 'rate_limited';
    default:
      return null;
  }
}

/** Who made a request, as far as is known: the key's name and role, never the key itself. */
function actorOf(request: FastifyRequest): { key?: string; role?: string; bankId?: string } {
  const p = request.principal;
  if (!p) return {};
  return { key: p.name, role: p.role, ...(p.bankId !== null ? { bankId: p.bankId } : {}) };
}

/**
 * A request refused for who made it: no or a bad key (401), a key that may not do this (403),
 * a key over its limit (429). `reason` is the answer's message.
 */
export function logRefusal(request: FastifyRequest, event: Exclude<SecurityEvent, 'registry_change'>, reason: string | undefined): void {
  request.log.warn(
    {
      event,
      method: request.method,
      route: request.routeOptions.url,
      ip: request.ip,
      ...(event === 'auth_failed' ? { keyPresented: request.headers.authorization !== undefined } : actorOf(request)),
      ...(reason !== undefined ? { reason } : {}),
    },
    `security: ${event}`,
  );
}

/** A change the registry made durable: its action (as the audit log names it) and target. */
export interface RegistryChange {
  /** `bank.create`, `number.delete`, `import.replace`, ... */
  action: string;
  /** `bank:<id>`, `number:<number>`, `prefix:<prefix>`; for an import, `registry` or the bank key's `bank:<id>`. */
  target: string;
  /** What an import did, in counts. */
  counts?: { added: number; updated: number; removed: number; rejected: number };
}

export function logRegistryChange(request: FastifyRequest, change: RegistryChange): void {
  request.log.info({ event: 'registry_change' satisfies SecurityEvent, ...actorOf(request), ...change }, `security: registry_change ${change.action} ${change.target}`);
}

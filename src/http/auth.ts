import type { FastifyReply, FastifyRequest } from 'fastify';
import { ForbiddenError } from '../errors';
import type { Metrics } from '../ops/metrics';
import type { KeyRing, Principal, Role } from '../usecases';
import { HttpError } from './errors';

export type { Principal, Role };
// The key ring is read at start by the composition root; it lives beside the principals it resolves.
export { KeyFileError, KeyRing, sha256Hex } from '../usecases';

const LOCAL_ADMIN: Principal = { name: 'local (no API keys configured)', role: 'admin', bankId: null };

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal;
  }
  interface FastifyContextConfig {
    /** Roles allowed on the route; routes without it are public (health, docs, metrics). */
    roles?: readonly Role[];
  }
}

/** An onRequest hook: 401 without a valid key, 403 for a key whose role the route does not allow; each refusal counted. */
export function authenticate(keys: KeyRing, metrics?: Pick<Metrics, 'authFailure'>) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const roles = request.routeOptions.config.roles;
    if (!roles) return;
    if (keys.isOpen) {
      request.principal = LOCAL_ADMIN;
      return;
    }
    const header = request.headers.authorization;
    const match = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    const principal = match?.[1] ? keys.identify(match[1]) : null;
    if (!principal) {
      metrics?.authFailure(header ? 'invalid' : 'missing');
      reply.header('www-authenticate', 'Bearer realm="callguard"');
      throw new HttpError(401, 'unauthorized', header ? 'the API key is not valid' : 'an API key is required: Authorization: Bearer <key>');
    }
    // Known before it is refused: the refusal's security event names the key.
    request.principal = principal;
    if (!roles.includes(principal.role)) {
      metrics?.authFailure('forbidden');
      throw new ForbiddenError(`a ${principal.role} key may not use ${request.method} ${request.routeOptions.url}`);
    }
  };
}

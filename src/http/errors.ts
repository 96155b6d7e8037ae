import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  ConflictError,
  DomainError,
  ForbiddenError,
  NotFoundError,
  UnavailableError,
  UnprocessableError,
  ValidationError,
  type FieldProblem,
} from '../errors';

/**
 * An error of the HTTP exchange itself, not of the domain: no or a bad API key (401), a
 * content type the route does not read (415), too many requests (429). Domain rules throw the
 * kinds of src/errors.ts instead.
 */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The HTTP status of each kind of domain error: the only place one is chosen. */
const STATUS_OF: [new (...args: never[]) => DomainError, number][] = [
  [ValidationError, 400],
  [ForbiddenError, 403],
  [NotFoundError, 404],
  [ConflictError, 409],
  [UnprocessableError, 422],
  [UnavailableError, 503],
];

export interface ErrorAnswer {
  status: number;
  body: { error: string; message: string; details?: FieldProblem[] };
}

/** How a domain error is answered; null for anything that is not one. */
export function answerOf(err: unknown): ErrorAnswer | null {
  if (!(err instanceof DomainError)) return null;
  const status = STATUS_OF.find(([kind]) => err instanceof kind)?.[1] ?? 500;
  const details = err instanceof ValidationError ? err.details : undefined;
  return { status, body: { error: err.code, message: err.message, ...(details ? { details } : {}) } };
}

interface ValidationIssue {
  instancePath?: string;
  message?: string;
  /** zod's issue code (`invalid_type`, ...), as the type provider passes it. */
  keyword?: string;
}

/** The part of the request a validation context names (body, querystring, params, headers). */
function inputOf(request: FastifyRequest, context: string | undefined): unknown {
  switch (context) {
    case 'body':
      return request.body;
    case 'querystring':
      return request.query;
    case 'params':
      return request.params;
    case 'headers':
      return request.headers;
    default:
      return undefined;
  }
}

/**
 * Whether an issue is about a field that is not there at all: zod reports it as a wrong type or
 * value (expected string, received undefined) under whatever wording the schema gives, which
 * tells a client who left the field out nothing it can act on.
 */
function isMissing(input: unknown, issue: ValidationIssue): boolean {
  // A refinement's own message (a field required with another, ...) says more than this would.
  if (issue.keyword === 'custom') return false;
  const path = (issue.instancePath ?? '').split('/').filter(Boolean);
  if (path.length === 0) return false;
  let here: unknown = input;
  for (const step of path.slice(0, -1)) {
    if (typeof here !== 'object' || here === null) return false;
    here = (here as Record<string, unknown>)[step];
  }
  return typeof here === 'object' && here !== null && !Array.isArray(here) && (here as Record<string, unknown>)[path[path.length - 1]!] === undefined;
}

function fieldOf(context: string | undefined, issue: ValidationIssue): string {
  const path = (issue.instancePath ?? '').replace(/^\//, '').replace(/\//g, '.');
  return path || context || 'body';
}

/** Fastify's own client errors, by code, with the error code and wording this API uses. */
const FASTIFY_CLIENT_ERRORS: Record<string, { error: string; message?: string }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { error: 'payload_too_large', message: 'request body is larger than the limit' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { error: 'unsupported_media_type', message: 'content-type must be application/json' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { error: 'bad_request', message: 'body: a JSON body is required' },
  FST_ERR_CTP_INVALID_JSON_BODY: { error: 'invalid_json', message: 'body is not valid JSON' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { error: 'bad_request', message: 'content-length does not match the body' },
};

/**
 * One error handler for the whole app: every error becomes `{ error, message, details? }`.
 * Client errors keep their 4xx status; anything unexpected is logged and answered with a
 * generic 500 that leaks nothing (the tests make sure no input reaches it).
 */
export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const answer = answerOf(err);
    if (answer) {
      if (answer.status === 503) request.log.error({ err }, 'a dependency could not do its part');
      return reply.status(answer.status).send(answer.body);
    }
    if (err instanceof HttpError) return reply.status(err.status).send({ error: err.code, message: err.message });
    if (err.validation) {
      const input = inputOf(request, err.validationContext);
      const details = (err.validation as ValidationIssue[]).map((issue) => ({
        field: fieldOf(err.validationContext, issue),
        message: isMissing(input, issue) ? 'is required' : (issue.message ?? 'is invalid'),
      }));
      const first = details[0];
      return reply.status(400).send({
        error: 'validation_failed',
        message: first ? `${first.field}: ${first.message}` : 'request is invalid',
        details,
      });
    }
    const known = err.code ? FASTIFY_CLIENT_ERRORS[err.code] : undefined;
    const status = err.statusCode ?? 500;
    if (known || (status >= 400 && status < 500)) {
      if (err.statusCode === 429) return reply.status(429).send({ error: 'rate_limited', message: err.message });
      // JSON syntax errors and prototype-poisoning refusals arrive as plain 400s.
      const message = known?.message ?? (status === 400 ? `body: ${err.message}` : err.message);
      return reply.status(status).send({ error: known?.error ?? 'bad_request', message });
    }
    request.log.error({ err }, 'unexpected error');
    return reply.status(500).send({ error: 'internal', message: 'internal error' });
  });

  app.setNotFoundHandler((request, reply) => {
    reply.status(404).send({ error: 'not_found', message: `no route ${request.method} ${request.url.split('?')[0]}` });
  });
}

/**
 * The service's errors, by kind. A leaf: it imports nothing of ours, so every room may throw
 * these without knowing who answers them. Each carries the machine-readable `code` the API
 * answers with; which HTTP status a kind gets is decided in one place (src/http/errors.ts).
 */

/** A field of a request that is wrong, and why. */
export interface FieldProblem {
  field: string;
  message: string;
}

/** A rule of the domain said no. `code` is the `error` of the answer. */
export abstract class DomainError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** The input is wrong: `field` names what (null when it is the whole input). */
export class ValidationError extends DomainError {
  readonly field: string | null;
  /** Per-field problems, answered as `details` when given. */
  readonly details: FieldProblem[] | undefined;

  constructor(field: string | null, message: string, opts: { code?: string; details?: FieldProblem[] } = {}) {
    super(opts.code ?? 'validation_failed', message);
    this.field = field;
    this.details = opts.details;
  }
}

/** The thing asked for does not exist (or is not the caller's to see). */
export class NotFoundError extends DomainError {
  constructor(message: string, code = 'not_found') {
    super(code, message);
  }
}

/** The caller may not do this. */
export class ForbiddenError extends DomainError {
  constructor(message: string, code = 'forbidden') {
    super(code, message);
  }
}

/** The change clashes with what is there (another bank's range, a bank that still has entries). */
export class ConflictError extends DomainError {
  constructor(message: string, code = 'conflict') {
    super(code, message);
  }
}

/** The input is well formed but refers to something that makes it impossible (a bank that does not exist). */
export class UnprocessableError extends DomainError {
  constructor(message: string, code = 'validation_failed') {
    super(code, message);
  }
}

/**
 * A dependency could not do its part. `confirmed` says whether the outcome is known: true,
 * nothing was changed; false, a change was sent and not confirmed, so it may or may not have
 * been made (the caller should read it back before trying again).
 */
export class UnavailableError extends DomainError {
  readonly confirmed: boolean;

  constructor(code: string, message: string, opts: { confirmed: boolean; cause?: unknown }) {
    super(code, message);
    this.confirmed = opts.confirmed;
    if (opts.cause !== undefined) this.cause = opts.cause;
  }
}

/**
 * The process cannot start as configured (bad environment, unreadable key or registry file,
 * unsafe production settings). The process entry catches it once and exits with its message.
 */
export class StartupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

import { NotFoundError } from '../errors';
import type { DecisionEntry, DecisionStore } from '../state/decisions';
import type { Principal } from './principal';

export interface DecisionRecordsDeps {
  decisions: Pick<DecisionStore, 'forCall' | 'recent'>;
}

/** The operator's "why was this call blocked?", and traceback: the decisions recorded for a call id. */
export class DecisionRecords {
  constructor(private readonly deps: DecisionRecordsDeps) {}

  /**
   * The call id's decisions a principal may see, newest first. A bank key sees only decisions on
   * calls that presented its own bank's numbers when they were scored (as the callback history
   * does). Nothing to see is `NotFoundError` whether the call id has no record or only other
   * banks' ones: the answer must not tell a bank that another bank's call exists.
   */
  async forCall(principal: Principal, callId: string): Promise<DecisionEntry[]> {
    const all = await this.deps.decisions.forCall(callId);
    // Fails closed: a bank key is always scoped, and no scope must never read as "every call".
    const visible = principal.role === 'admin' ? all : principal.role === 'bank' && principal.bankId !== null ? all.filter((d) => d.bankId === principal.bankId) : [];
    if (visible.length === 0) throw new NotFoundError(`no decision is recorded for call id ${JSON.stringify(callId)}`);
    return visible;
  }

  /** The newest decisions this instance made, newest first, as many as `limit`, that the principal may see. */
  async recent(principal: Principal, limit: number): Promise<DecisionEntry[]> {
    const all = await this.deps.decisions.recent(limit);
    return principal.role === 'admin' ? all : principal.role === 'bank' && principal.bankId !== null ? all.filter((d) => d.bankId === principal.bankId) : [];
  }
}

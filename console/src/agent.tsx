import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, seg, type FieldProblem as Problem_, type Me } from './api';
import { FieldProblem, Panel, Problem, VerdictBadge } from './ui';
import { reasonWords, when, type Verdict } from './words';

interface RegistryLine {
  number?: string;
  prefix?: string;
  bankId: string;
  inboundOnly: boolean;
  authorisedSpcs?: string[];
  overseasOrigins?: string[];
}
interface BankFile {
  banks: { id: string; name: string; callbackNumbers: string[] }[];
  numbers: RegistryLine[];
}
interface RecentCall {
  callId?: string;
  at: string;
  verdict: Verdict;
  score: number;
  reasons: string[];
}
interface ExpectedCall {
  from: string;
  at: string;
  expiresAt: string;
  reference?: string;
}
interface Verification {
  number: { e164: string; valid: boolean };
  genuine: boolean;
  bank: { id: string; name: string } | null;
  inboundOnly: boolean;
  callbackNumbers: string[];
  recentCalls?: RecentCall[];
  expectedCalls?: ExpectedCall[];
}
interface Announcement {
  id: string;
  from: string;
  to: string;
  at: string;
  expiresAt: string;
  reference?: string;
}

/** How many of the bank's own numbers one look-up asks about: one request each. */
const NUMBERS_ASKED = 20;

const exportOwn = () => api<BankFile>('GET', '/v1/registry/export');

interface Findings {
  customer: string;
  calls: (RecentCall & { from: string })[];
  announced: ExpectedCall[];
  quoted: Verification | null;
}

/**
 * "Did we call this customer?": the calls that presented the bank's numbers to the customer
 * (the callback answer, asked of each of the bank's own numbers and of the number the customer
 * quotes), and the calls the bank announced to the customer.
 */
async function lookUp(customer: string, quoted: string, ownNumbers: string[]): Promise<Findings> {
  const asked = [...new Set([...(quoted ? [quoted] : []), ...ownNumbers])].slice(0, NUMBERS_ASKED);
  const answers = await Promise.all(asked.map((number) => api<Verification>('POST', '/v1/callbacks/verify', { body: { number, customer } })));
  const calls = new Map<string, RecentCall & { from: string }>();
  const announced = new Map<string, ExpectedCall>();
  answers.forEach((a) => {
    for (const c of a.recentCalls ?? []) calls.set(`${a.number.e164}|${c.callId ?? ''}|${c.at}`, { ...c, from: a.number.e164 });
    for (const e of a.expectedCalls ?? []) announced.set(`${e.from}|${e.at}`, e);
  });
  const byNewest = <T extends { at: string }>(xs: T[]) => xs.sort((x, y) => Date.parse(y.at) - Date.parse(x.at));
  return { customer, calls: byNewest([...calls.values()]), announced: byNewest([...announced.values()]), quoted: quoted ? (answers[0] ?? null) : null };
}

function QuotedAnswer({ v, me }: { v: Verification; me: Me }) {
  const ours = v.bank !== null && v.bank.id === me.bankId;
  return (
    <div class={`answer ${v.genuine && !v.inboundOnly ? 'answer-good' : 'answer-bad'}`} data-testid="quoted-answer">
      <p>
        <strong>{v.number.e164}</strong>{' '}
        {!v.genuine
          ? 'is not a number of any bank or organisation we know.'
          : ours
            ? v.inboundOnly
              ? 'is ours, but we never call from it: a call showing it was not from us.'
              : 'is genuinely ours.'
            : `is not ours: it belongs to ${v.bank?.name ?? 'another organisation'}.`}
      </p>
      {v.callbackNumbers.length > 0 && (
        <p>
          Official numbers to call back{v.bank ? ` (${v.bank.name})` : ''}: {v.callbackNumbers.join(', ')}
        </p>
      )}
    </div>
  );
}

function AnnounceButton({ me, customer, outbound, onDone }: { me: Me; customer: string; outbound: string[]; onDone: () => void }) {
  const [from, setFrom] = useState(outbound[0] ?? '');
  const [reference, setReference] = useState('');
  const [made, setMade] = useState<Announcement | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  if (outbound.length === 0) return <p class="muted">The registry gives {me.bankId ?? 'this bank'} no number to call from, so no call can be announced.</p>;
  const announce = async (ev: Event) => {
    ev.preventDefault();
    setBusy(true);
    setError(null);
    try {
      setMade(await api<Announcement>('POST', '/v1/calls/expected', { body: { from, to: customer, ...(reference ? { reference } : {}) } }));
      onDone();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="announce" onSubmit={announce} aria-labelledby="announce-title">
      <h3 id="announce-title">About to call this customer?</h3>
      <div class="row">
        <label>
          Call from
          <select value={from} onChange={(e) => setFrom((e.target as HTMLSelectElement).value)}>
            {outbound.map((n) => (
              <option value={n} key={n}>
                {n}
              </option>
            ))}
          </select>
        </label>
        <label>
          Your reference (optional)
          <input value={reference} maxLength={128} onInput={(e) => setReference((e.target as HTMLInputElement).value)} />
        </label>
        <button type="submit" disabled={busy}>
          Announce a call to {customer}
        </button>
      </div>
      <Problem error={error} />
      {made && (
        <p role="status" class="done">
          Announced: a call from {made.from} to {made.to} is expected until {when(made.expiresAt)}.
        </p>
      )}
    </form>
  );
}

/** The bank agent's screen: the customer's number in, what the bank did to it out. */
export function CustomerCalls({ me }: { me: Me }) {
  const [customer, setCustomer] = useState('');
  const [quoted, setQuoted] = useState('');
  const [own, setOwn] = useState<BankFile | null>(null);
  const [found, setFound] = useState<Findings | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const agent = me.role === 'bank';

  useEffect(() => {
    if (agent) exportOwn().then(setOwn, setError);
  }, [agent]);

  const ownNumbers = own ? [...own.numbers.flatMap((l) => (l.number ? [l.number] : [])), ...own.banks.flatMap((b) => b.callbackNumbers)] : [];
  const outbound = own ? own.numbers.flatMap((l) => (l.number && !l.inboundOnly ? [l.number] : [])) : [];

  const search = async (ev?: Event) => {
    ev?.preventDefault();
    if (!customer.trim()) return;
    setBusy(true);
    setError(null);
    try {
      setFound(await lookUp(customer.trim(), quoted.trim(), agent ? ownNumbers : []));
    } catch (e) {
      setError(e);
      setFound(null);
    } finally {
      setBusy(false);
    }
  };

  return (
    <Panel title={agent ? 'Did we call this customer?' : 'Is this number genuine?'}>
      <form class="search" onSubmit={search}>
        <div class="row">
          <label>
            Customer's number
            <input name="customer" required autoComplete="off" inputMode="tel" value={customer} onInput={(e) => setCustomer((e.target as HTMLInputElement).value)} />
          </label>
          <label>
            Number the customer quotes {agent ? '(optional)' : ''}
            <input name="quoted" required={!agent} autoComplete="off" inputMode="tel" value={quoted} onInput={(e) => setQuoted((e.target as HTMLInputElement).value)} />
          </label>
          <button type="submit" disabled={busy}>
            Look up
          </button>
        </div>
      </form>
      <Problem error={error} />
      {found && (
        <div class="findings" aria-live="polite">
          {found.quoted && <QuotedAnswer v={found.quoted} me={me} />}
          {agent && (
            <>
              <h3>Calls we announced to {found.customer}</h3>
              {found.announced.length === 0 ? (
                <p class="muted">None in the last 7 days.</p>
              ) : (
                <table>
                  <caption class="sr-only">Announced calls</caption>
                  <thead>
                    <tr>
                      <th scope="col">From</th>
                      <th scope="col">Announced</th>
                      <th scope="col">Expected until</th>
                      <th scope="col">Reference</th>
                    </tr>
                  </thead>
                  <tbody>
                    {found.announced.map((a) => (
                      <tr key={`${a.from}${a.at}`}>
                        <td>{a.from}</td>
                        <td>{when(a.at)}</td>
                        <td>{when(a.expiresAt)}</td>
                        <td>{a.reference ?? ''}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              )}
            </>
          )}
          <h3>Recent calls {agent ? 'showing our numbers' : 'from that number'} to {found.customer}</h3>
          {found.calls.length === 0 ? (
            <p class="muted">None in the last 7 days.</p>
          ) : (
            <table>
              <caption class="sr-only">Recent calls</caption>
              <thead>
                <tr>
                  <th scope="col">When</th>
                  <th scope="col">Number shown</th>
                  <th scope="col">What happened</th>
                  <th scope="col">Why</th>
                </tr>
              </thead>
              <tbody>
                {found.calls.map((c) => (
                  <tr key={`${c.from}${c.callId ?? ''}${c.at}`}>
                    <td>{when(c.at)}</td>
                    <td>{c.from}</td>
                    <td>
                      <VerdictBadge verdict={c.verdict} />
                    </td>
                    <td>
                      <ul class="reasons">
                        {c.reasons.map((r) => (
                          <li key={r}>{reasonWords(r)}</li>
                        ))}
                      </ul>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          {agent && <AnnounceButton me={me} customer={found.customer} outbound={outbound} onDone={() => void search()} />}
        </div>
      )}
      {agent && own && ownNumbers.length > NUMBERS_ASKED && (
        <p class="muted">Calls are looked up from the first {NUMBERS_ASKED} of the bank's numbers and the number the customer quotes.</p>
      )}
    </Panel>
  );
}

/** Which form field a problem the API named belongs to (`authorisedSpcs.0` is the SPC list's). */
const fieldOf = (p: Problem_): string => p.field.split(/[.[]/)[0] ?? p.field;

/** The fields the editor shows, as the API names them. */
const EDITED = ['number', 'prefix', 'inboundOnly', 'authorisedSpcs', 'overseasOrigins'];

/**
 * The field problems of an error: its `details`, or else a message that names its field first
 * ("authorisedSpcs: a service provider code is ...").
 */
function problemsOf(e: unknown): Problem_[] {
  if (!(e instanceof ApiError)) return [];
  if (e.details.length > 0) return e.details;
  const named = /^([A-Za-z]+(?:\.\d+)?): (.+)$/.exec(e.message);
  return named?.[1] && named[2] ? [{ field: named[1], message: named[2] }] : [];
}

const list = (s: string): string[] =>
  s
    .split(/[,;\s]+/)
    .map((x) => x.trim())
    .filter(Boolean);

function EntryEditor({ line, bankId, onSaved, onCancel }: { line: RegistryLine | null; bankId: string; onSaved: () => void; onCancel: () => void }) {
  const isNew = line === null;
  const [kind, setKind] = useState<'number' | 'prefix'>(line?.prefix !== undefined ? 'prefix' : 'number');
  const [key, setKey] = useState(line?.number ?? line?.prefix ?? '');
  const [inboundOnly, setInboundOnly] = useState(line?.inboundOnly ?? false);
  const [spcs, setSpcs] = useState((line?.authorisedSpcs ?? []).join(', '));
  const [origins, setOrigins] = useState((line?.overseasOrigins ?? []).join(', '));
  const [problems, setProblems] = useState<Record<string, string>>({});
  const [error, setError] = useState<unknown>(null);
  const save = async (ev: Event) => {
    ev.preventDefault();
    setProblems({});
    setError(null);
    try {
      const path = `/v1/registry/${kind === 'number' ? 'numbers' : 'prefixes'}/${seg(key.trim())}`;
      await api('PUT', path, { body: { bankId, inboundOnly, ...(spcs.trim() ? { authorisedSpcs: list(spcs) } : {}), ...(origins.trim() ? { overseasOrigins: list(origins) } : {}) } });
      onSaved();
    } catch (e) {
      const byField: Record<string, string> = {};
      for (const d of problemsOf(e)) byField[fieldOf(d)] ??= d.message;
      setProblems(byField);
      // A problem no field shows is said above the form.
      if (!Object.keys(byField).some((f) => EDITED.includes(f))) setError(e);
    }
  };
  const keyProblem = problems.number ?? problems.prefix;
  return (
    <form class="editor" onSubmit={save} aria-labelledby="editor-title">
      <h3 id="editor-title">{isNew ? 'Add a number or prefix' : `Edit ${key}`}</h3>
      <Problem error={error} />
      {isNew && (
        <label>
          Kind
          <select value={kind} onChange={(e) => setKind((e.target as HTMLSelectElement).value as 'number' | 'prefix')}>
            <option value="number">Number</option>
            <option value="prefix">Prefix</option>
          </select>
        </label>
      )}
      <label>
        {kind === 'number' ? 'Number' : 'Prefix'}
        <input name="key" value={key} readOnly={!isNew} required aria-invalid={keyProblem ? 'true' : undefined} aria-describedby={keyProblem ? 'key-problem' : undefined} onInput={(e) => setKey((e.target as HTMLInputElement).value)} />
        <FieldProblem id="key-problem" message={keyProblem} />
      </label>
      <label class="check">
        <input type="checkbox" name="inboundOnly" checked={inboundOnly} onChange={(e) => setInboundOnly((e.target as HTMLInputElement).checked)} />
        Inbound only (we never call out from it)
      </label>
      <label>
        Phone companies allowed to call from it (service provider codes, comma-separated; empty: any)
        <input name="authorisedSpcs" value={spcs} aria-invalid={problems.authorisedSpcs ? 'true' : undefined} aria-describedby={problems.authorisedSpcs ? 'spcs-problem' : undefined} onInput={(e) => setSpcs((e.target as HTMLInputElement).value)} />
        <FieldProblem id="spcs-problem" message={problems.authorisedSpcs} />
      </label>
      <label>
        Approved routes from abroad (trunks or carriers, comma-separated)
        <input name="overseasOrigins" value={origins} aria-invalid={problems.overseasOrigins ? 'true' : undefined} aria-describedby={problems.overseasOrigins ? 'origins-problem' : undefined} onInput={(e) => setOrigins((e.target as HTMLInputElement).value)} />
        <FieldProblem id="origins-problem" message={problems.overseasOrigins} />
      </label>
      <div class="row">
        <button type="submit">Save</button>
        <button type="button" class="secondary" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}

/** The bank's own registry entries: what the service knows of its numbers, and their edit. */
export function Registry({ me }: { me: Me }) {
  const [file, setFile] = useState<BankFile | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [editing, setEditing] = useState<RegistryLine | null | 'new'>(null);
  const load = () => exportOwn().then(setFile, setError);
  useEffect(() => void load(), []);
  const bank = file?.banks[0];
  return (
    <Panel title="Our numbers in the registry">
      <Problem error={error} />
      {bank && (
        <p>
          <strong>{bank.name}</strong> ({bank.id}). Official numbers for customers to call back: {bank.callbackNumbers.join(', ') || 'none'}.
        </p>
      )}
      {editing !== null && (
        <EntryEditor
          line={editing === 'new' ? null : editing}
          bankId={me.bankId ?? ''}
          onCancel={() => setEditing(null)}
          onSaved={() => {
            setEditing(null);
            void load();
          }}
        />
      )}
      {editing === null && (
        <button type="button" onClick={() => setEditing('new')}>
          Add a number or prefix
        </button>
      )}
      {file && (
        <table>
          <caption class="sr-only">Registry entries</caption>
          <thead>
            <tr>
              <th scope="col">Number or prefix</th>
              <th scope="col">Use</th>
              <th scope="col">Phone companies allowed</th>
              <th scope="col">Approved routes from abroad</th>
              <th scope="col">
                <span class="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {file.numbers.map((l) => {
              const key = l.number ?? `${l.prefix ?? ''}…`;
              return (
                <tr key={key}>
                  <td>{key}</td>
                  <td>{l.inboundOnly ? 'Inbound only' : 'Calls out'}</td>
                  <td>{l.authorisedSpcs?.join(', ') ?? 'any'}</td>
                  <td>{l.overseasOrigins?.join(', ') ?? 'none'}</td>
                  <td>
                    <button type="button" class="secondary" onClick={() => setEditing(l)} aria-label={`Edit ${key}`}>
                      Edit
                    </button>
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </Panel>
  );
}

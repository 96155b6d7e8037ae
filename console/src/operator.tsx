import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, seg } from './api';
import { Json, Panel, Problem, VerdictBadge } from './ui';
import { reasonWords, when, type Verdict } from './words';

interface Decision {
  callId?: string;
  at: string;
  decidedAt: string;
  from: string | null;
  to: string | null;
  bankId?: string;
  verdict: Verdict;
  score: number;
  presentation: string;
  reasons: string[];
  reasonDetails: { code: string; weight: number; message: string }[];
  cached: boolean;
  shaken: { source: string; verstat: string; attestation: string | null; spc?: string; origid?: string; x5u?: string; errors: string[] };
  origin?: { trunk?: string; carrier?: string; country?: string; international?: boolean; roamingVerified?: boolean };
  policyVersion: string;
  registryVersion: string;
}

/** How often the live list asks for the latest verdicts, and how many it shows. */
const POLL_MS = 3000;
const LIVE_ROWS = 25;

/** The latest verdicts, asked for every few seconds while the panel is open and the tab is seen. */
export function LiveVerdicts() {
  const [rows, setRows] = useState<Decision[]>([]);
  const [paused, setPaused] = useState(false);
  const [updated, setUpdated] = useState<Date | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    if (paused) return;
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const tick = async () => {
      if (document.visibilityState === 'visible') {
        try {
          const { decisions } = await api<{ decisions: Decision[] }>('GET', '/v1/calls', { query: { limit: LIVE_ROWS } });
          if (stopped) return;
          setRows(decisions);
          setUpdated(new Date());
          setError(null);
        } catch (e) {
          if (!stopped) setError(e);
        }
      }
      // The next request only after this one has answered: a slow service is never asked twice at once.
      if (!stopped) timer = setTimeout(() => void tick(), POLL_MS);
    };
    void tick();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [paused]);
  return (
    <Panel title="Latest verdicts">
      <div class="row">
        <button type="button" class="secondary" aria-pressed={paused ? 'true' : 'false'} onClick={() => setPaused(!paused)}>
          {paused ? 'Resume' : 'Pause'} updates
        </button>
        <span class="muted">
          {paused ? 'Paused.' : `Updates every ${POLL_MS / 1000} s.`} {updated ? `Last updated ${updated.toLocaleTimeString('en-GB')}.` : ''} Calls decided by the instance that answers.
        </span>
      </div>
      <Problem error={error} />
      {rows.length === 0 ? (
        <p class="muted">No call with a call id has been decided yet.</p>
      ) : (
        <table data-testid="live-verdicts">
          <caption class="sr-only">Latest verdicts, newest first</caption>
          <thead>
            <tr>
              <th scope="col">When</th>
              <th scope="col">Call id</th>
              <th scope="col">From</th>
              <th scope="col">To</th>
              <th scope="col">Verdict</th>
              <th scope="col">Score</th>
              <th scope="col">Reasons</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((d, i) => (
              <tr key={`${d.callId ?? ''}${d.decidedAt}${i}`}>
                <td class="when">{when(d.at)}</td>
                <td class="mono callid">{d.callId ?? ''}</td>
                <td>{d.from ?? 'withheld'}</td>
                <td>{d.to ?? ''}</td>
                <td>
                  <VerdictBadge verdict={d.verdict} />
                </td>
                <td>{d.score}</td>
                <td class="codes">
                  {d.reasons.map((code) => (
                    <span key={code}>{code}</span>
                  ))}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Panel>
  );
}

interface Campaign {
  bankId: string;
  bankName: string;
  numbers: { number: string; calls: number }[];
  failedCalls: number;
  since: string;
  lastSeen: string;
}

export function Campaigns() {
  const [list, setList] = useState<Campaign[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const load = () => api<{ campaigns: Campaign[] }>('GET', '/v1/campaigns').then((r) => setList(r.campaigns), setError);
  useEffect(() => void load(), []);
  return (
    <Panel title="Spoofing campaigns running now">
      <button type="button" class="secondary" onClick={() => void load()}>
        Refresh
      </button>
      <Problem error={error} />
      {list && list.length === 0 && <p class="muted">No campaign is running.</p>}
      {list && list.length > 0 && (
        <table data-testid="campaigns">
          <caption class="sr-only">Campaigns</caption>
          <thead>
            <tr>
              <th scope="col">Organisation</th>
              <th scope="col">Numbers abused (calls)</th>
              <th scope="col">Failed calls</th>
              <th scope="col">Since</th>
              <th scope="col">Last seen</th>
            </tr>
          </thead>
          <tbody>
            {list.map((c) => (
              <tr key={c.bankId}>
                <td>
                  {c.bankName} <span class="muted">({c.bankId})</span>
                </td>
                <td>{c.numbers.map((n) => `${n.number} (${n.calls})`).join(', ')}</td>
                <td>{c.failedCalls}</td>
                <td>{when(c.since)}</td>
                <td>{when(c.lastSeen)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Panel>
  );
}

function DecisionView({ d }: { d: Decision }) {
  return (
    <article class="decision">
      <h3>
        <VerdictBadge verdict={d.verdict} /> score {d.score}, {when(d.decidedAt)}
      </h3>
      <dl>
        <dt>From</dt>
        <dd>{d.from ?? 'withheld or unreadable'}</dd>
        <dt>To</dt>
        <dd>{d.to ?? 'unreadable'}</dd>
        <dt>Registry match</dt>
        <dd>{d.bankId ?? 'none'}</dd>
        <dt>STIR/SHAKEN</dt>
        <dd>
          {d.shaken.source}, {d.shaken.verstat}, attestation {d.shaken.attestation ?? 'none'}
          {d.shaken.spc ? `, signed by SPC ${d.shaken.spc}` : ''}
          {d.shaken.origid ? `, origid ${d.shaken.origid}` : ''}
          {d.shaken.errors.length ? `, errors: ${d.shaken.errors.join(', ')}` : ''}
        </dd>
        {d.shaken.x5u && (
          <>
            <dt>Certificate</dt>
            <dd class="mono">{d.shaken.x5u}</dd>
          </>
        )}
        <dt>Origin</dt>
        <dd>{d.origin ? [d.origin.trunk && `trunk ${d.origin.trunk}`, d.origin.carrier && `carrier ${d.origin.carrier}`, d.origin.country && `country ${d.origin.country}`].filter(Boolean).join(', ') || 'given, empty' : 'not given'}</dd>
        <dt>Policy, registry</dt>
        <dd class="mono">
          {d.policyVersion}, {d.registryVersion}
        </dd>
      </dl>
      <table>
        <caption>Reasons</caption>
        <thead>
          <tr>
            <th scope="col">Code</th>
            <th scope="col">Weight</th>
            <th scope="col">Meaning</th>
          </tr>
        </thead>
        <tbody>
          {d.reasonDetails.map((r) => (
            <tr key={r.code}>
              <td class="mono">{r.code}</td>
              <td>{r.weight > 0 ? `+${r.weight}` : r.weight}</td>
              <td>
                {reasonWords(r.code)}
                <br />
                <span class="muted">{r.message}</span>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </article>
  );
}

export function DecisionLookup() {
  const [callId, setCallId] = useState('');
  const [found, setFound] = useState<{ callId: string; decisions: Decision[] } | null>(null);
  const [error, setError] = useState<unknown>(null);
  const look = async (ev: Event) => {
    ev.preventDefault();
    setError(null);
    setFound(null);
    try {
      setFound(await api('GET', `/v1/calls/${seg(callId.trim())}`));
    } catch (e) {
      setError(e instanceof ApiError && e.status === 404 ? new ApiError(404, 'not_found', `No decision is recorded for call id ${callId.trim()}.`) : e);
    }
  };
  return (
    <Panel title="Why did this call get its verdict?">
      <form class="search" onSubmit={look}>
        <div class="row">
          <label>
            Call id
            <input name="callId" required maxLength={256} autoComplete="off" value={callId} onInput={(e) => setCallId((e.target as HTMLInputElement).value)} />
          </label>
          <button type="submit">Look up</button>
        </div>
      </form>
      <Problem error={error} />
      {found && (
        <div data-testid="decisions">
          <p>
            {found.decisions.length} decision{found.decisions.length === 1 ? '' : 's'} for call id <span class="mono">{found.callId}</span>, newest first.
          </p>
          {found.decisions.map((d, i) => (
            <DecisionView d={d} key={`${d.decidedAt}${i}`} />
          ))}
        </div>
      )}
    </Panel>
  );
}

interface AuditRecord {
  id: string;
  at: string;
  actor: string;
  action: string;
  bankId: string | null;
  target: string;
  before: unknown;
  after: unknown;
}
const AUDIT_PAGE = 20;

export function AuditLog() {
  const [page, setPage] = useState<{ records: AuditRecord[]; next: string | null } | null>(null);
  const [cursors, setCursors] = useState<string[]>([]);
  const [error, setError] = useState<unknown>(null);
  const load = (before?: string) =>
    api<{ records: AuditRecord[]; next: string | null }>('GET', '/v1/registry/audit', { query: { limit: AUDIT_PAGE, before } }).then((p) => {
      setPage(p);
      setError(null);
    }, setError);
  useEffect(() => void load(), []);
  const older = () => {
    if (!page?.next) return;
    setCursors([...cursors, page.next]);
    void load(page.next);
  };
  const newer = () => {
    const rest = cursors.slice(0, -1);
    setCursors(rest);
    void load(rest[rest.length - 1]);
  };
  return (
    <Panel title="Registry audit log">
      <Problem error={error} />
      {page && page.records.length === 0 && <p class="muted">Nothing on this page.</p>}
      {page && page.records.length > 0 && (
        <table data-testid="audit">
          <caption class="sr-only">Audit records, newest first</caption>
          <thead>
            <tr>
              <th scope="col">When</th>
              <th scope="col">Who</th>
              <th scope="col">What</th>
              <th scope="col">Target</th>
              <th scope="col">Before</th>
              <th scope="col">After</th>
            </tr>
          </thead>
          <tbody>
            {page.records.map((r) => (
              <tr key={r.id}>
                <td>{when(r.at)}</td>
                <td>{r.actor}</td>
                <td>{r.action}</td>
                <td>
                  {r.target}
                  {r.bankId ? <span class="muted"> ({r.bankId})</span> : null}
                </td>
                <td>
                  <Json value={r.before} />
                </td>
                <td>
                  <Json value={r.after} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <nav class="row" aria-label="Audit pages">
        <button type="button" class="secondary" disabled={cursors.length === 0} onClick={newer}>
          Newer
        </button>
        <span class="muted">Page {cursors.length + 1}</span>
        <button type="button" class="secondary" disabled={!page?.next} onClick={older}>
          Older
        </button>
      </nav>
    </Panel>
  );
}

interface ShadowReport {
  version: string;
  since: string;
  calls: number;
  changed: { live: Verdict; shadow: Verdict; count: number }[];
  examples: { callId?: string; at: string; live: Verdict; shadow: Verdict; liveScore: number; shadowScore: number; reasons: string[] }[];
}

export function ShadowPolicy() {
  const [report, setReport] = useState<ShadowReport | null>(null);
  const [none, setNone] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const load = () =>
    api<ShadowReport>('GET', '/v1/policy/shadow/report').then(
      (r) => {
        setReport(r);
        setNone(false);
      },
      (e: unknown) => {
        if (e instanceof ApiError && e.status === 404) setNone(true);
        else setError(e);
      },
    );
  useEffect(() => void load(), []);
  return (
    <Panel title="Shadow policy">
      <button type="button" class="secondary" onClick={() => void load()}>
        Refresh
      </button>
      <Problem error={error} />
      {none && <p class="muted">No shadow policy is set. An administrator sets one with PUT /v1/policy/shadow.</p>}
      {report && (
        <div data-testid="shadow">
          <p>
            Candidate <span class="mono">{report.version}</span>, set {when(report.since)}: {report.calls} calls decided under it.
          </p>
          <h3>Verdicts it would change</h3>
          {report.changed.length === 0 ? (
            <p class="muted">None so far.</p>
          ) : (
            <ul>
              {report.changed.map((c) => (
                <li key={`${c.live}${c.shadow}`}>
                  {c.count} from <VerdictBadge verdict={c.live} /> to <VerdictBadge verdict={c.shadow} />
                </li>
              ))}
            </ul>
          )}
          {report.examples.length > 0 && (
            <table>
              <caption>Recent examples</caption>
              <thead>
                <tr>
                  <th scope="col">When</th>
                  <th scope="col">Call id</th>
                  <th scope="col">Live</th>
                  <th scope="col">Candidate</th>
                  <th scope="col">Candidate's reasons</th>
                </tr>
              </thead>
              <tbody>
                {report.examples.map((x, i) => (
                  <tr key={`${x.at}${i}`}>
                    <td>{when(x.at)}</td>
                    <td class="mono">{x.callId ?? ''}</td>
                    <td>
                      <VerdictBadge verdict={x.live} /> {x.liveScore}
                    </td>
                    <td>
                      <VerdictBadge verdict={x.shadow} /> {x.shadowScore}
                    </td>
                    <td>{x.reasons.join(', ')}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </div>
      )}
    </Panel>
  );
}

interface Report {
  id: string;
  number: string;
  category: string;
  callId?: string;
  note?: string;
  at: string;
  reporter: string;
}

/** Calls someone said were genuine though flagged or blocked: what a policy change should look at. */
export function GenuineReports() {
  const [list, setList] = useState<Report[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const load = () => api<{ reports: Report[] }>('GET', '/v1/reports', { query: { category: 'genuine', limit: 100 } }).then((r) => setList(r.reports), setError);
  useEffect(() => void load(), []);
  return (
    <Panel title="Calls reported as genuine">
      <button type="button" class="secondary" onClick={() => void load()}>
        Refresh
      </button>
      <Problem error={error} />
      {list && list.length === 0 && <p class="muted">No call has been reported as genuine.</p>}
      {list && list.length > 0 && (
        <table data-testid="genuine-reports">
          <caption class="sr-only">Genuine reports, newest first</caption>
          <thead>
            <tr>
              <th scope="col">When</th>
              <th scope="col">Number</th>
              <th scope="col">Call id</th>
              <th scope="col">Note</th>
              <th scope="col">Reported by</th>
            </tr>
          </thead>
          <tbody>
            {list.map((r) => (
              <tr key={r.id}>
                <td>{when(r.at)}</td>
                <td>{r.number}</td>
                <td class="mono">{r.callId ?? ''}</td>
                <td>{r.note ?? ''}</td>
                <td>{r.reporter}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Panel>
  );
}

import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { CustomerCalls, Registry } from './agent';
import { api, ApiError, session, type Me } from './api';
import { AuditLog, Campaigns, DecisionLookup, GenuineReports, LiveVerdicts, ShadowPolicy } from './operator';
import { Problem } from './ui';
import './console.css';

interface Screen {
  id: string;
  label: string;
  show: (me: Me) => preact.JSX.Element;
}

/** What each role may see: the screens of the routes its key may use, nothing else. */
const SCREENS: Record<Me['role'], Screen[]> = {
  bank: [
    { id: 'customer', label: 'Customer calls', show: (me) => <CustomerCalls me={me} /> },
    { id: 'registry', label: 'Our numbers', show: (me) => <Registry me={me} /> },
  ],
  admin: [
    { id: 'live', label: 'Latest verdicts', show: () => <LiveVerdicts /> },
    { id: 'campaigns', label: 'Campaigns', show: () => <Campaigns /> },
    { id: 'decision', label: 'Decision record', show: () => <DecisionLookup /> },
    { id: 'audit', label: 'Audit log', show: () => <AuditLog /> },
    { id: 'shadow', label: 'Shadow policy', show: () => <ShadowPolicy /> },
    { id: 'genuine', label: 'Genuine reports', show: () => <GenuineReports /> },
  ],
  switch: [{ id: 'verify', label: 'Check a number', show: (me) => <CustomerCalls me={me} /> }],
};

function SignIn({ onSignedIn }: { onSignedIn: (me: Me) => void }) {
  const [key, setKey] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (ev: Event) => {
    ev.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const me = await api<Me>('GET', '/v1/me', { key: key.trim() });
      session.keep(key.trim());
      onSignedIn(me);
    } catch (e) {
      setError(e instanceof ApiError && e.status === 401 ? new ApiError(401, 'unauthorized', 'That API key is not valid.') : e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main id="main" class="signin">
      <h1>callguard console</h1>
      <form onSubmit={submit}>
        <label>
          API key
          <input type="password" name="apiKey" required autoComplete="off" spellcheck={false} value={key} onInput={(e) => setKey((e.target as HTMLInputElement).value)} />
        </label>
        <p class="muted">The key is kept in this tab only, until you sign out or close it.</p>
        <button type="submit" disabled={busy}>
          Sign in
        </button>
        <Problem error={error} />
      </form>
    </main>
  );
}

function Console({ me, onSignOut }: { me: Me; onSignOut: () => void }) {
  const screens = SCREENS[me.role];
  const [current, setCurrent] = useState(screens[0]?.id ?? '');
  const screen = screens.find((s) => s.id === current) ?? screens[0];
  return (
    <>
      <header class="top">
        <span class="brand">callguard console</span>
        <span class="who">
          Signed in as <strong>{me.name}</strong> ({me.role}
          {me.bankId ? `, ${me.bankId}` : ''})
        </span>
        <button type="button" class="secondary" onClick={onSignOut}>
          Sign out
        </button>
      </header>
      <nav class="tabs" aria-label="Screens">
        <ul>
          {screens.map((s) => (
            <li key={s.id}>
              <button type="button" aria-current={s.id === screen?.id ? 'page' : undefined} onClick={() => setCurrent(s.id)}>
                {s.label}
              </button>
            </li>
          ))}
        </ul>
      </nav>
      <main id="main">
        <h1 class="sr-only">callguard console</h1>
        {screen?.show(me)}
      </main>
    </>
  );
}

function App() {
  const [me, setMe] = useState<Me | null>(null);
  const [checking, setChecking] = useState(session.key() !== null);
  useEffect(() => {
    if (!checking) return;
    // A key kept from earlier in this tab: still valid, and whose?
    api<Me>('GET', '/v1/me').then(setMe, () => session.forget()).finally(() => setChecking(false));
  }, []);
  if (checking) return <p role="status">Signing in…</p>;
  if (!me) return <SignIn onSignedIn={setMe} />;
  return (
    <Console
      me={me}
      onSignOut={() => {
        session.forget();
        setMe(null);
      }}
    />
  );
}

const root = document.getElementById('app');
if (root) render(<App />, root);

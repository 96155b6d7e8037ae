import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Browser, ConsoleMessage, Page } from 'playwright-core';
import { chromium } from 'playwright-core';
import { buildConsole } from '../../scripts/build-console';
import { freePort, httpStatus, startChild, type Child } from '../../scripts/lib/process';
import { CONSOLE_HEADERS } from '../../src/http/console';
import { bearer, KEYS, KEYS_FILE } from '../helpers/keys';

/**
 * The console in a real browser (Debian's chromium, driven by playwright-core) against the real
 * server process: each role signs in and sees its screens only; the bank agent's flow end to end;
 * the operator's; strings from outside shown as text; no console error; axe-core finds nothing
 * serious on each screen. The README's pictures of the console come from
 * scripts/console-screenshots.ts, with realistic data, not from here.
 */

const ROOT = resolve(__dirname, '../..');
const TSX = resolve(ROOT, 'node_modules/.bin/tsx');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const AXE_SOURCE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

/** What an attacker may put in any text the console shows. */
const HOSTILE_HTML = '<img src=x onerror=alert(1)>';
const HOSTILE_SCRIPT = '"><script>alert(2)</script>';
const CUSTOMER = '+447400123456';
/** The sample registry's examplebank: an outbound number, and an inbound-only one (a call showing it is spoofed). */
const OUTBOUND = '+442079460000';
const INBOUND_ONLY = '+443450000000';
const HOSTILE_CALL_ID = `call-${HOSTILE_SCRIPT}`;

// The page's globals, as the functions evaluated in it use them (the tests compile without the DOM library).
declare const document: { activeElement: { getAttribute(name: string): string | null } | null };
declare const sessionStorage: { getItem(key: string): string | null };
declare const localStorage: { length: number };

const haveChromium = existsSync(CHROMIUM);
if (!haveChromium && process.env.REQUIRE_CHROMIUM === '1') {
  throw new Error(`REQUIRE_CHROMIUM=1 but there is no chromium at ${CHROMIUM}: install Debian's chromium package (apt-get install chromium) or set CHROMIUM_PATH`);
}
const describeIfChromium = haveChromium ? describe : describe.skip;

jest.setTimeout(60_000);

describeIfChromium('the console in a browser', () => {
  let server: Child;
  let base: string;
  let browser: Browser;
  const problems: string[] = [];
  const requested: string[] = [];

  const api = async (who: keyof typeof KEYS, method: string, path: string, body?: unknown) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { ...bearer(who), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
    return res.status === 204 ? null : ((await res.json()) as unknown);
  };
  const score = (from: string, to: string, extra: object = {}) => api('switch', 'POST', '/v1/calls/score', { from, to, ...extra });

  beforeAll(async () => {
    await buildConsole();
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    server = startChild(TSX, ['src/server.ts'], {
      cwd: ROOT,
      env: {
        ...process.env,
        PORT: String(port),
        HOST: '127.0.0.1',
        LOG_LEVEL: 'info',
        API_KEYS_FILE: KEYS_FILE,
        REGISTRY_FILE: resolve(ROOT, 'src/registry/sample-registry.json'),
        REGISTRY_DATA_DIR: mkdtempSync(join(tmpdir(), 'callguard-console-')),
        SHAKEN_VERIFY: 'false',
        REDIS_URL: '',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    await server.whenReady('the server', async () => (await httpStatus(`${base}/readyz`)) === 200, 20_000, 100);

    // What the screens will show: strings from outside in every field that is shown.
    await api('admin', 'PUT', '/v1/registry/banks/examplebank', { name: `Example Bank ${HOSTILE_HTML}`, callbackNumbers: [INBOUND_ONLY] });
    await score(OUTBOUND, CUSTOMER, { callId: 'call-genuine-1', origin: { trunk: `trunk-${HOSTILE_HTML}` } });
    await score(INBOUND_ONLY, CUSTOMER, { callId: HOSTILE_CALL_ID, origin: { trunk: HOSTILE_SCRIPT, country: 'GB' } });
    // Enough spoofed calls showing the bank's numbers to make a campaign (the policy's 10 in 10 minutes).
    for (let i = 0; i < 10; i++) await score(INBOUND_ONLY, `+4474001230${String(i).padStart(2, '0')}`, { callId: `campaign-${i}` });
    await api('examplebank', 'POST', '/v1/reports', { number: OUTBOUND, category: 'genuine', callId: 'call-genuine-1', note: `It was us ${HOSTILE_HTML} ${HOSTILE_SCRIPT}` });
    await api('admin', 'PUT', '/v1/policy/shadow', { baseScore: 60 });
    await score(OUTBOUND, '+447400123999', { callId: 'shadow-example' });

    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  /** A new tab, watched: a dialog (script ran), a console error or a page error fails the test. */
  async function open(): Promise<Page> {
    const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
    page.on('dialog', (d) => {
      problems.push(`a dialog opened: ${d.message()}`);
      void d.dismiss();
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m: ConsoleMessage) => {
      if (m.type() !== 'error') return;
      // The errors the test causes on purpose: the registry's 400 for a bad field, the 401 for a bad key.
      if (/status of 400/.test(m.text()) && m.location().url.includes('/v1/registry/numbers/')) return;
      if (/status of 401/.test(m.text()) && m.location().url.endsWith('/v1/me')) return;
      problems.push(`console error: ${m.text()} (${m.location().url})`);
    });
    page.on('request', (r) => requested.push(r.url()));
    const res = await page.goto(`${base}/console/`);
    expect(res?.status()).toBe(200);
    expect(res?.headers()['content-security-policy']).toBe(CONSOLE_HEADERS['content-security-policy']);
    return page;
  }

  async function signIn(page: Page, who: keyof typeof KEYS): Promise<void> {
    await page.getByLabel('API key').fill(KEYS[who]);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('button', { name: 'Sign out' }).waitFor();
  }

  /** axe-core on the screen as it is: nothing serious or critical. */
  async function accessible(page: Page, screen: string): Promise<void> {
    // Evaluated through the debugging protocol: the page's own CSP (rightly) refuses a script tag.
    await page.evaluate(AXE_SOURCE);
    const violations = await page.evaluate(async () => {
      const axe = (globalThis as unknown as { axe: { run: (ctx: unknown, opts: object) => Promise<{ violations: { id: string; impact: string | null; nodes: { target: unknown }[] }[] }> } }).axe;
      const result = await axe.run(document, { resultTypes: ['violations'] });
      return result.violations.map((v) => ({ id: v.id, impact: v.impact, targets: v.nodes.map((n) => JSON.stringify(n.target)) }));
    });
    expect({ screen, violations: violations.filter((v) => v.impact === 'serious' || v.impact === 'critical') }).toEqual({ screen, violations: [] });
  }

  it('signs in with the keyboard alone, keeps the key for the tab, and refuses a bad key', async () => {
    const page = await open();
    await accessible(page, 'sign-in');
    // Tab to the key field, type, Enter: no mouse.
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.getAttribute('name'))).toBe('apiKey');
    await page.keyboard.type('not-a-key');
    await page.keyboard.press('Enter');
    await expect(page.getByRole('alert').textContent()).resolves.toContain('not valid');
    await page.keyboard.press('Control+A');
    await page.keyboard.type(KEYS.examplebank);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Did we call this customer?' }).waitFor();
    expect(await page.evaluate(() => sessionStorage.getItem('callguard.apiKey'))).toBe(KEYS.examplebank);
    expect(await page.evaluate(() => localStorage.length)).toBe(0);
    // A reload in the same tab stays signed in; signing out forgets the key.
    await page.reload();
    await page.getByRole('heading', { name: 'Did we call this customer?' }).waitFor();
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('API key').waitFor();
    expect(await page.evaluate(() => sessionStorage.getItem('callguard.apiKey'))).toBeNull();
    await page.close();
  });

  it("the agent's flow: did we call this customer, is the quoted number ours, announce a call", async () => {
    const page = await open();
    await signIn(page, 'examplebank');
    // A bank key sees the agent's screens and no operator's.
    const tabs = await page.getByRole('navigation', { name: 'Screens' }).getByRole('button').allTextContents();
    expect(tabs).toEqual(['Customer calls', 'Our numbers']);

    await page.getByLabel("Customer's number").fill(CUSTOMER);
    await page.getByLabel('Number the customer quotes (optional)').fill(OUTBOUND);
    await page.getByRole('button', { name: 'Look up' }).click();
    const quoted = page.getByTestId('quoted-answer');
    await expect(quoted.textContent()).resolves.toContain(`${OUTBOUND} is genuinely ours.`);
    // The bank's name came from outside: shown as the literal text.
    await expect(quoted.textContent()).resolves.toContain(`Example Bank ${HOSTILE_HTML}`);
    const calls = page.getByRole('table', { name: 'Recent calls' });
    await calls.waitFor();
    const callsText = (await calls.textContent()) ?? '';
    // Both calls that showed the bank's numbers: the genuine one, and the spoof of the inbound-only number, in plain words.
    expect(callsText).toContain(INBOUND_ONLY);
    expect(callsText).toContain('Blocked');
    expect(callsText).toContain('The number shown only ever receives calls, so whoever used it was pretending');
    expect(callsText).toContain(OUTBOUND);
    await accessible(page, 'agent');

    // One click announces the call the agent is about to make.
    await page.getByLabel('Your reference (optional)').fill(`case 42 ${HOSTILE_SCRIPT}`);
    await page.getByRole('button', { name: `Announce a call to ${CUSTOMER}` }).click();
    await expect(page.getByRole('status').textContent()).resolves.toContain(`Announced: a call from ${OUTBOUND} to ${CUSTOMER}`);
    const announced = page.getByRole('table', { name: 'Announced calls' });
    await announced.waitFor();
    await expect(announced.textContent()).resolves.toContain(`case 42 ${HOSTILE_SCRIPT}`);
    // The network knows of it: the same call now gets BANK_CALL_EXPECTED.
    const scored = (await score(OUTBOUND, CUSTOMER)) as { reasons: { code: string }[] };
    expect(scored.reasons.map((r) => r.code)).toContain('BANK_CALL_EXPECTED');
    await page.close();
  });

  it("the bank's registry entries: read, edited, and a validation error beside its field", async () => {
    const page = await open();
    await signIn(page, 'examplebank');
    await page.getByRole('button', { name: 'Our numbers' }).click();
    await page.getByRole('heading', { name: 'Our numbers in the registry' }).waitFor();
    await page.getByRole('button', { name: `Edit ${OUTBOUND}` }).click();
    const spcs = page.getByLabel(/Phone companies allowed to call from it/);
    await spcs.fill('1234, not an spc!');
    await page.getByRole('button', { name: 'Save' }).click();
    const problem = page.locator('#spcs-problem');
    await expect(problem.textContent()).resolves.toMatch(/service provider code/);
    // Beside its field: inside the field's label, and named by the field's aria-describedby.
    await expect(spcs.getAttribute('aria-describedby')).resolves.toBe('spcs-problem');
    await expect(spcs.getAttribute('aria-invalid')).resolves.toBe('true');
    await accessible(page, 'registry-error');

    await spcs.fill('1234, 4321');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('button', { name: 'Add a number or prefix' }).waitFor();
    // The list is read again after the save: the row shows the new codes once that answer is in.
    await page.getByRole('row').filter({ hasText: OUTBOUND }).filter({ hasText: '1234, 4321' }).waitFor({ timeout: 5000 });
    await page.close();
  });

  it('a switch key sees only the number check', async () => {
    const page = await open();
    await signIn(page, 'switch');
    const tabs = await page.getByRole('navigation', { name: 'Screens' }).getByRole('button').allTextContents();
    expect(tabs).toEqual(['Check a number']);
    await page.getByLabel("Customer's number").fill(CUSTOMER);
    await page.getByLabel('Number the customer quotes').fill(INBOUND_ONLY);
    await page.getByRole('button', { name: 'Look up' }).click();
    await expect(page.getByTestId('quoted-answer').textContent()).resolves.toContain('is not ours');
    expect(await page.getByRole('button', { name: /Announce/ }).count()).toBe(0);
    await accessible(page, 'switch');
    await page.close();
  });

  it("the operator's flow: latest verdicts, campaigns, a decision record, the audit log, the shadow policy, genuine reports", async () => {
    const page = await open();
    await signIn(page, 'admin');
    const tabs = await page.getByRole('navigation', { name: 'Screens' }).getByRole('button').allTextContents();
    expect(tabs).toEqual(['Latest verdicts', 'Campaigns', 'Decision record', 'Audit log', 'Shadow policy', 'Genuine reports']);

    const live = page.getByTestId('live-verdicts');
    await live.waitFor();
    await expect(live.textContent()).resolves.toContain(HOSTILE_CALL_ID);
    // Live: a call scored now shows up without a click.
    await score(OUTBOUND, '+447400123555', { callId: 'live-now' });
    await page.getByRole('cell', { name: 'live-now' }).waitFor({ timeout: 10_000 });
    await accessible(page, 'live');

    await page.getByRole('button', { name: 'Campaigns' }).click();
    await expect(page.getByTestId('campaigns').textContent()).resolves.toContain(`Example Bank ${HOSTILE_HTML}`);
    await accessible(page, 'campaigns');

    await page.getByRole('button', { name: 'Decision record' }).click();
    await page.getByLabel('Call id').fill(HOSTILE_CALL_ID);
    await page.getByRole('button', { name: 'Look up' }).click();
    const record = page.getByTestId('decisions');
    await expect(record.textContent()).resolves.toContain(`trunk ${HOSTILE_SCRIPT}`);
    await expect(record.textContent()).resolves.toContain('CLI_DNO');
    await accessible(page, 'decision');

    await page.getByRole('button', { name: 'Audit log' }).click();
    const audit = page.getByTestId('audit');
    await expect(audit.textContent()).resolves.toContain(HOSTILE_HTML);
    await accessible(page, 'audit');

    await page.getByRole('button', { name: 'Shadow policy' }).click();
    await expect(page.getByTestId('shadow').textContent()).resolves.toMatch(/\d+ calls decided under it/);
    await accessible(page, 'shadow');

    await page.getByRole('button', { name: 'Genuine reports' }).click();
    await expect(page.getByTestId('genuine-reports').textContent()).resolves.toContain(`It was us ${HOSTILE_HTML} ${HOSTILE_SCRIPT}`);
    await accessible(page, 'genuine');

    // Nothing from outside became markup anywhere it was shown.
    expect(await page.locator('img, script:not([src])').count()).toBe(0);
    await page.close();
  });

  it('ran no script from outside, logged no console error, and never put a key in a URL or the log', () => {
    expect(problems).toEqual([]);
    for (const key of Object.values(KEYS)) {
      expect(requested.filter((u) => u.includes(key))).toEqual([]);
      expect(server.output()).not.toContain(key);
    }
  });
});

/**
 * `npm run console:screenshots`: the README's pictures of the console (docs/console-*.png).
 *
 * Starts the built server (dist/server.js; the npm script builds first) on a free port, with
 * fresh keys in a temporary keys file and a temporary registry data directory, puts the last
 * three quarters of an hour of ordinary and spoofed traffic through it, then drives Debian's
 * chromium through each screen and saves it. The data is made to read like a real deployment:
 * the pictures are what a reader of the README learns the console from. The browser test
 * (test/e2e) checks the console's behaviour, with hostile strings; this script only takes pictures.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import { sha256Hex } from '../src/http/auth';
import { newKey, type KeyEntry } from './key-file';
import { freePort, httpStatus, runScript, startChild, until, type Child } from './lib/process';

const ROOT = resolve(__dirname, '..');
const SERVER_JS = resolve(ROOT, 'dist/server.js');
const CONSOLE_PAGE = resolve(ROOT, 'dist/console/index.html');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const DOCS = resolve(ROOT, 'docs');

/** Who uses the console: each a fresh key, named as an operator would name it (the names show in the audit log and the reports). */
const USERS = {
  switch: { name: 'sbc-london-1', role: 'switch' },
  examplebank: { name: 'examplebank-callcentre', role: 'bank', bankId: 'examplebank' },
  northwind: { name: 'northwind-callcentre', role: 'bank', bankId: 'northwind' },
  admin: { name: 'fraud-ops', role: 'admin' },
} as const;
type Who = keyof typeof USERS;

// The sample registry's numbers (src/registry/sample-registry.json).
const EXAMPLE_OUT = '+442079460000';
const EXAMPLE_INBOUND = '+443450000000';
/** Inside examplebank's inbound-only prefix +4420794601. */
const EXAMPLE_INBOUND_PREFIX = '+442079460155';
const NORTHWIND_INBOUND = '+443069990100';
const NORTHWIND_OUT = '+441614960200';
const HARBOUR_OFFSHORE = '+441214960300';

/** The customer who rings Example Bank: "you called me a few minutes ago, from 0345 000 0000". */
const CUSTOMER = '+447400123456';
/** A caller ringing far more people than anyone does: VELOCITY_HIGH past the policy's 20 in a minute. */
const DIALLER = '+447400555010';
const BURST_BEFORE_LIMIT = 20;
const REFERENCE = 'Fraud team case 4711';
/** The latest verdicts' picture shows this many of the list's rows. */
const LIVE_ROWS_SHOWN = 12;

const mobile = (n: number) => `+447400${String(100000 + n).padStart(6, '0')}`;

// The page's globals, as the functions evaluated in it use them (scripts compile without the DOM library).
declare const document: { body: { innerText: string } };

interface Run {
  base: string;
  keys: Record<Who, string>;
  /** When the traffic began: the calls are received before it. */
  started: number;
}

async function api(run: Run, who: Who, method: string, path: string, body?: unknown): Promise<unknown> {
  const res = await fetch(`${run.base}${path}`, {
    method,
    headers: { authorization: `Bearer ${run.keys[who]}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return res.status === 204 ? null : ((await res.json()) as unknown);
}

let callSeq = 4200;
interface Call {
  from: string;
  to: string;
  /** Received this many seconds before the traffic began; absent: received now. */
  ago?: number;
  origin?: object;
}

/** Scores a call through the switch's key, with the next call id as an SBC numbers its calls; answers its verdict and call id. */
async function call(run: Run, c: Call): Promise<{ verdict: string; callId: string }> {
  const callId = `lon1-${String(++callSeq).padStart(6, '0')}`;
  const receivedAt = c.ago === undefined ? {} : { receivedAt: new Date(run.started - c.ago * 1000).toISOString() };
  const res = (await api(run, 'switch', 'POST', '/v1/calls/score', { from: c.from, to: c.to, callId, ...receivedAt, ...(c.origin ? { origin: c.origin } : {}) })) as { verdict: string };
  return { verdict: res.verdict, callId };
}

/** Scores a call the pictures rely on, and stops the run when it does not get the verdict they are meant to show. */
async function expectVerdict(run: Run, what: string, c: Call, want: string): Promise<string> {
  const { verdict, callId } = await call(run, c);
  if (verdict !== want) throw new Error(`${what}: the service said ${verdict}, the screenshots expect ${want}`);
  return callId;
}

/** The calls of the traffic that the screens look up or that reports name. */
interface Named {
  /** Example Bank's genuine call, flagged during the campaign. */
  collections: string;
  /** Northwind's call from its Dublin call centre, blocked before the registry knew the trunk. */
  dublin: string;
  /** A call from abroad presenting Example Bank's number: the decision record shown. */
  decision: string;
}

/** A call's origin when it arrived from abroad. */
const abroad = (trunk: string, country: string, carrier?: string) => ({ trunk, international: true, country, ...(carrier ? { carrier } : {}) });

/**
 * The traffic the screens show: the last three quarters of an hour at a UK network's edge, with
 * Example Bank's numbers being spoofed. Calls are given the times they were received (each one's
 * `receivedAt`), in order, so the screens show a stretch of time rather than one second; the campaign and
 * the dialler's burst fall inside the policy's windows (10 minutes, 60 seconds) before now.
 */
async function traffic(run: Run): Promise<Named> {
  // A candidate policy watched from the start, so its report counts every call below.
  await api(run, 'admin', 'PUT', '/v1/policy/shadow', { baseScore: 20 });

  // Example Bank really called the customer, before anyone spoofed it.
  await expectVerdict(run, "the bank's own call", { from: EXAMPLE_OUT, to: CUSTOMER, ago: 42 * 60 }, 'allow');
  for (let i = 0; i < 6; i++) await expectVerdict(run, 'an ordinary mobile call', { from: mobile(i), to: mobile(50 + i), ago: (35 - 2 * i) * 60 }, 'allow');

  // The campaign: Example Bank's numbers presented on calls that cannot be the bank's, over the last 8 minutes.
  const spoofs: Call[] = [
    { from: EXAMPLE_INBOUND, to: CUSTOMER, origin: { trunk: 'trunk-peer-04' } },
    ...Array.from({ length: 6 }, (_, i) => ({ from: EXAMPLE_INBOUND, to: mobile(120 + i), origin: { trunk: i % 2 ? 'trunk-peer-04' : 'trunk-peer-11' } })),
    { from: EXAMPLE_INBOUND_PREFIX, to: mobile(140), origin: { trunk: 'trunk-peer-11' } },
    { from: EXAMPLE_OUT, to: mobile(150), origin: abroad('trunk-intl-07', 'IN') },
    { from: EXAMPLE_INBOUND_PREFIX, to: mobile(141), origin: { trunk: 'trunk-peer-11' } },
    { from: EXAMPLE_OUT, to: mobile(151), origin: abroad('trunk-intl-07', 'IN') },
  ];
  for (const [i, c] of spoofs.entries()) await expectVerdict(run, 'a spoof of Example Bank', { ...c, ago: 8 * 60 - i * 30 }, 'block');

  // One caller dialling through a list, a call a second: ordinary until it passes the policy's 20 in a minute.
  for (let i = 0; i < BURST_BEFORE_LIMIT; i++) await call(run, { from: DIALLER, to: mobile(300 + i), ago: 75 - i });

  // The last minute, as it comes; the dialler still within a minute of its burst.
  const dialler = (n: number) => ({ from: DIALLER, to: mobile(300 + BURST_BEFORE_LIMIT + n) });
  const mixed: [string | null, Call, string?, (keyof Named)?][] = [
    [null, { from: mobile(7), to: mobile(57) }],
    [null, { from: 'anonymous', to: mobile(58) }],
    ['a UK landline from abroad', { from: '+441174960123', to: mobile(59), origin: abroad('trunk-intl-02', 'NG') }, 'block'],
    [null, { from: mobile(8), to: '+441614960999' }],
    [null, { from: EXAMPLE_INBOUND, to: mobile(127), origin: { trunk: 'trunk-peer-04' } }],
    ["Harbour's offshore call centre", { from: HARBOUR_OFFSHORE, to: mobile(61), origin: abroad('trunk-offshore-in', 'IN') }, 'allow'],
    ["a spoof of Northwind's helpline", { from: NORTHWIND_INBOUND, to: mobile(62), origin: { trunk: 'trunk-peer-11' } }, 'block'],
    [null, { from: mobile(10), to: mobile(63) }],
    [null, { from: 'withheld', to: '+441134960777' }],
    ['the dialler past its limit', dialler(0), 'flag'],
    ["Northwind's Dublin call centre, not yet registered", { from: NORTHWIND_OUT, to: mobile(64), origin: abroad('trunk-dub-01', 'IE') }, 'block', 'dublin'],
    [null, { from: mobile(11), to: mobile(65) }],
    ['a UK mobile from abroad', { from: mobile(9), to: mobile(60), origin: abroad('trunk-intl-02', 'ES') }, 'flag'],
    ['the dialler still past its limit', dialler(1), 'flag'],
    ["Example Bank's collections call during the campaign", { from: EXAMPLE_OUT, to: '+447400765432' }, 'flag', 'collections'],
    [null, { from: EXAMPLE_INBOUND_PREFIX, to: mobile(142), origin: { trunk: 'trunk-peer-04' } }],
    [null, { from: mobile(12), to: '+442079460888' }],
    ['the dialler still past its limit', dialler(2), 'flag'],
    ['the call shown in the decision record', { from: EXAMPLE_OUT, to: mobile(152), origin: abroad('trunk-intl-07', 'IN', 'VX22') }, 'block', 'decision'],
    [null, { from: mobile(13), to: mobile(66) }],
  ];
  const named: Partial<Named> = {};
  for (const [i, [what, c, want, name]] of mixed.entries()) {
    const timed = { ...c, ago: 54 - i * 2 };
    const callId = what && want ? await expectVerdict(run, what, timed, want) : (await call(run, timed)).callId;
    if (name) named[name] = callId;
  }
  const { collections, dublin, decision } = named;
  if (!collections || !dublin || !decision) throw new Error('a call the screens need was not made');

  // The organisations say which of their flagged or blocked calls were really theirs.
  await api(run, 'examplebank', 'POST', '/v1/reports', {
    number: EXAMPLE_OUT,
    category: 'genuine',
    callId: collections,
    note: 'Collections team call; the customer confirmed it was us (flagged during the 0345 campaign)',
  });
  await api(run, 'northwind', 'POST', '/v1/reports', {
    number: NORTHWIND_OUT,
    category: 'genuine',
    callId: dublin,
    note: 'Our Dublin call centre; its trunk is being added to the registry',
  });

  // Registry changes, for the audit log.
  await api(run, 'northwind', 'PUT', `/v1/registry/numbers/${NORTHWIND_OUT}`, { bankId: 'northwind', inboundOnly: false, authorisedSpcs: ['5678'], overseasOrigins: ['trunk-dub-01'] });
  await api(run, 'admin', 'PUT', '/v1/registry/numbers/+443069990301', { bankId: 'revenueoffice', inboundOnly: true });
  return { collections, dublin, decision };
}

/** The whole page, or its top down to the bottom of `lastRow` (a long list: its first rows tell enough). */
async function shoot(page: Page, name: string, lastRow?: Locator): Promise<void> {
  const path = resolve(DOCS, `console-${name}.png`);
  const box = await lastRow?.boundingBox();
  await page.screenshot({ path, fullPage: true, ...(box ? { clip: { x: 0, y: 0, width: page.viewportSize()?.width ?? 1280, height: Math.ceil(box.y + box.height + 1) } } : {}) });
  console.log(`saved ${path}`);
}

async function open(browser: Browser, run: Run, who?: Who): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  page.on('pageerror', (e) => console.error(`page error: ${e.message}`));
  await page.goto(`${run.base}/console/`);
  if (who) {
    await page.getByLabel('API key').fill(run.keys[who]);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('button', { name: 'Sign out' }).waitFor();
  }
  return page;
}

/** Waits until the page's text holds `text`: a screen is shot once its data has arrived. */
async function shows(page: Page, text: string): Promise<void> {
  await until(async () => (await page.evaluate(() => document.body.innerText)).includes(text), 10_000, `the page to show ${JSON.stringify(text)}`, 100);
}

async function screens(browser: Browser, run: Run, named: Named): Promise<void> {
  const signIn = await open(browser, run);
  await signIn.getByLabel('API key').waitFor();
  await shoot(signIn, 'sign-in');
  await signIn.close();

  // The agent: the customer says the bank called from 0345 000 0000; the agent then announces a callback.
  const agent = await open(browser, run, 'examplebank');
  await agent.getByLabel("Customer's number").fill(CUSTOMER);
  await agent.getByLabel('Number the customer quotes (optional)').fill('0345 000 0000');
  await agent.getByRole('button', { name: 'Look up' }).click();
  await agent.getByRole('table', { name: 'Recent calls' }).waitFor();
  await agent.getByLabel('Your reference (optional)').fill(REFERENCE);
  await agent.getByRole('button', { name: `Announce a call to ${CUSTOMER}` }).click();
  await agent.getByRole('table', { name: 'Announced calls' }).waitFor();
  await shows(agent, REFERENCE);
  await shoot(agent, 'agent');

  // The bank's registry entry, with a carrier's name typed where its code belongs; then corrected.
  await agent.getByRole('button', { name: 'Our numbers' }).click();
  await agent.getByRole('button', { name: `Edit ${EXAMPLE_OUT}` }).click();
  const spcs = agent.getByLabel(/Phone companies allowed to call from it/);
  await spcs.fill('1234, BT-Wholesale');
  await agent.getByRole('button', { name: 'Save' }).click();
  await agent.locator('#spcs-problem').waitFor();
  await shoot(agent, 'registry');
  await spcs.fill('1234, 4321');
  await agent.getByRole('button', { name: 'Save' }).click();
  await agent.getByRole('button', { name: 'Add a number or prefix' }).waitFor();
  await agent.close();

  // The callback the agent announced: the network knows of it.
  await expectVerdict(run, 'the announced callback', { from: EXAMPLE_OUT, to: CUSTOMER }, 'allow');

  const ops = await open(browser, run, 'admin');
  const live = ops.getByTestId('live-verdicts');
  await live.waitFor();
  await shoot(ops, 'live', live.locator('tbody tr').nth(LIVE_ROWS_SHOWN - 1));

  await ops.getByRole('button', { name: 'Campaigns' }).click();
  await ops.getByTestId('campaigns').waitFor();
  await shoot(ops, 'campaigns');

  await ops.getByRole('button', { name: 'Decision record' }).click();
  await ops.getByLabel('Call id').fill(named.decision);
  await ops.getByRole('button', { name: 'Look up' }).click();
  await ops.getByTestId('decisions').waitFor();
  await shoot(ops, 'decision');

  await ops.getByRole('button', { name: 'Audit log' }).click();
  await ops.getByTestId('audit').waitFor();
  await shoot(ops, 'audit');

  await ops.getByRole('button', { name: 'Shadow policy' }).click();
  await ops.getByTestId('shadow').waitFor();
  await shows(ops, 'Recent examples');
  await shoot(ops, 'shadow');

  await ops.getByRole('button', { name: 'Genuine reports' }).click();
  await ops.getByTestId('genuine-reports').waitFor();
  await shoot(ops, 'genuine');
  await ops.close();
}

async function main(): Promise<void> {
  for (const [file, fix] of [
    [SERVER_JS, 'run `npm run build` first (npm run console:screenshots does)'],
    [CONSOLE_PAGE, 'run `npm run build` first (npm run console:screenshots does)'],
    [CHROMIUM, "install Debian's chromium (apt-get install chromium) or set CHROMIUM_PATH"],
  ] as const) {
    if (!existsSync(file)) throw new Error(`${file} is missing: ${fix}`);
  }
  const temp = mkdtempSync(join(tmpdir(), 'callguard-screenshots-'));
  const keys = {} as Record<Who, string>;
  const entries: KeyEntry[] = [];
  for (const [who, user] of Object.entries(USERS) as [Who, (typeof USERS)[Who]][]) {
    keys[who] = newKey();
    entries.push({ ...user, sha256: sha256Hex(keys[who]) });
  }
  const keysFile = join(temp, 'keys.json');
  writeFileSync(keysFile, JSON.stringify(entries, null, 2), { mode: 0o600 });
  const dataDir = join(temp, 'data');
  mkdirSync(dataDir);

  const port = await freePort();
  const run: Run = { base: `http://127.0.0.1:${port}`, keys, started: Date.now() };
  let server: Child | undefined;
  let browser: Browser | undefined;
  try {
    server = startChild(process.execPath, [SERVER_JS], {
      cwd: ROOT,
      env: {
        ...process.env,
        PORT: String(port),
        HOST: '127.0.0.1',
        LOG_LEVEL: 'warn',
        API_KEYS_FILE: keysFile,
        REGISTRY_FILE: resolve(ROOT, 'src/registry/sample-registry.json'),
        REGISTRY_DATA_DIR: dataDir,
        SHAKEN_VERIFY: 'false',
        REDIS_URL: '',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
      keepOutput: 4000,
    });
    await server.whenReady('the server', async () => (await httpStatus(`${run.base}/readyz`)) === 200, 20_000, 100);
    run.started = Date.now();
    const named = await traffic(run);
    mkdirSync(DOCS, { recursive: true });
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
    await screens(browser, run, named);
  } finally {
    await browser?.close();
    await server?.stop();
    rmSync(temp, { recursive: true, force: true });
  }
}

runScript(main);

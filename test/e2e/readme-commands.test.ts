import { spawnSync } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Child, freePort } from '../../scripts/lib/process';
import { KEYS } from '../helpers/keys';

/**
 * Every shell command in the README's code blocks works as written: each is run, in README order,
 * by bash, against a real server this test starts, except those in SKIPPED (each with its reason).
 * What is rewritten, and only that: the README's address (127.0.0.1:8080) becomes the test
 * server's; /var/lib/callguard becomes a scratch folder; the announcement id the README shows
 * becomes the one the server gave. Commands run in a scratch copy of the checkout (symlinks to
 * its files), so files they write (keys.json) land there, and `~` is a scratch home.
 */

const ROOT = resolve(__dirname, '../..');

/** Commands not run here, and why. A skip that matches no README command fails the test. */
const SKIPPED: { match: RegExp; why: string }[] = [
  // Installs into node_modules (shared by every checkout here) and listens on 8080; the test starts
  // the same server (src/server.ts, as `npm start` runs it after the build) on a free port instead.
  { match: /^npm ci && npm start\b/, why: 'installs dependencies and starts the server the test starts itself' },
  // The whole suite, this test among it.
  { match: /^npm test\b/, why: 'runs the test suite itself' },
  // No Docker engine on a test machine; the compose file is checked by test/unit/deploy-files.test.ts.
  { match: /docker compose/, why: 'needs a Docker engine' },
  // About 40 s with three instances and a redis-server of its own: test/e2e/faults.test.ts runs a
  // shorter drill of the same code.
  { match: /^npm run fault:drill\s+#/, why: 'the full fault drill takes about 40 s (test/e2e/faults.test.ts runs a short one)' },
  { match: /^npm run fault:drill -- --cluster\s+#/, why: 'the fault drill on a Redis Cluster takes about 35 s (test/e2e/faults-cluster.test.ts runs a short one)' },
  // Loads the machine for about 2.5 minutes with HAProxy, three instances and a redis-server of its own.
  { match: /^(BENCH_\w+=\S+ )*npm run bench:scale\b/, why: 'the scale-out bench runs for minutes and needs haproxy and redis-server' },
  { match: /^LOAD_CPS=\d+ test\/e2e\/kamailio\/load\.sh/, why: 'the switch load runs Kamailio and SIPp for about 30 s; CI runs it after the tests (test/e2e/kamailio/run.sh)' },
];

/** The shell commands of the README's `sh` code blocks, a command per entry (continued lines and quoted newlines kept). */
function readmeCommands(markdown: string): string[] {
  const commands: string[] = [];
  for (const block of markdown.matchAll(/^```(?:sh|bash|shell)\n([\s\S]*?)^```/gm)) {
    let current = '';
    let quote: '"' | "'" | null = null;
    for (const line of block[1]!.split('\n')) {
      if (!current && !quote && (line.trim() === '' || line.trimStart().startsWith('#'))) continue;
      current += (current ? '\n' : '') + line;
      for (let i = 0; i < line.length; i++) {
        const c = line[i]!;
        if (quote) {
          if (c === quote) quote = null;
          else if (c === '\\' && quote === '"') i++;
        } else if (c === '\\') i++;
        else if (c === '"' || c === "'") quote = c;
        else if (c === '#' && (i === 0 || /\s/.test(line[i - 1]!))) break; // a comment: the rest of the line
      }
      if (quote || /\\\s*$/.test(line.replace(/\s+#.*$/, ''))) continue;
      commands.push(current.trim());
      current = '';
    }
    if (current.trim()) commands.push(current.trim());
  }
  return commands;
}

interface Run {
  command: string;
  code: number | null;
  stdout: string;
  stderr: string;
}

let server: Child;
let port: number;
let scratch: string;
let checkout: string;
let home: string;
const runs: Run[] = [];
let announcementId: string | null = null;

const README_ANNOUNCEMENT_ID = '0f6c3c1e-5d2b-4f0e-9a53-7c1d8e2b9a41';

function rewrite(command: string): string {
  let c = command.replace(/(127\.0\.0\.1|localhost):8080\b/g, `127.0.0.1:${port}`).replace(/\/var\/lib\/callguard\b/g, join(scratch, 'var-lib-callguard'));
  if (announcementId) c = c.split(README_ANNOUNCEMENT_ID).join(announcementId);
  return c;
}

function run(command: string): Run {
  const r = spawnSync('bash', ['-c', rewrite(command)], {
    cwd: checkout,
    env: {
      PATH: process.env.PATH,
      HOME: home,
      // The variables the README's commands name.
      ADMIN_KEY: KEYS.admin,
      BANK_KEY: KEYS.examplebank,
      SWITCH_KEY: KEYS.switch,
      KEY: KEYS.admin,
      npm_config_update_notifier: 'false',
      npm_config_fund: 'false',
    },
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { command, code: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'callguard-readme-'));
  // A copy of the checkout made of links to its files: npm runs scripts in it, and what they write stays here.
  checkout = join(scratch, 'checkout');
  mkdirSync(checkout);
  for (const name of ['package.json', 'node_modules', 'scripts', 'src', 'tsconfig.json']) symlinkSync(join(ROOT, name), join(checkout, name));
  // `~/ofcom-2026-01-05`, the README's download of Ofcom's files: the sample in Ofcom's layout.
  home = join(scratch, 'home');
  cpSync(join(ROOT, 'test/fixtures/ofcom'), join(home, 'ofcom-2026-01-05'), { recursive: true });
  // A signing key, for the README's POST /stir/v1/signing.
  const signingKey = join(scratch, 'signing.key');
  writeFileSync(signingKey, generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'pkcs8', format: 'pem' }));

  // The README's own start: embedded defaults, open on loopback.
  port = await freePort();
  server = new Child(resolve(ROOT, 'node_modules/.bin/tsx'), ['src/server.ts'], {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      REGISTRY_DATA_DIR: join(scratch, 'data'),
      LOAD_SHED_EVENT_LOOP_DELAY_MS: '0',
      SHAKEN_SIGNING_KEY: signingKey,
      SHAKEN_SIGNING_X5U: 'https://certs.example-carrier.co.uk/shaken/sp.pem',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  await server.whenReady('the server', async () => (await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.status).catch(() => 0)) === 200, 20_000, 50);

  const commands = readmeCommands(readFileSync(join(ROOT, 'README.md'), 'utf8'));
  for (const command of commands) {
    if (SKIPPED.some((s) => s.match.test(command))) continue;
    const r = run(command);
    runs.push(r);
    // The README announces a call, then withdraws "it": the id it shows stands for the one the server gives.
    if (/\/v1\/calls\/expected\b/.test(command) && /-d\s/.test(command)) announcementId = (JSON.parse(r.stdout) as { id?: string }).id ?? null;
  }
}, 120_000);

afterAll(async () => {
  await server?.stop();
});

const ranLike = (pattern: RegExp): Run => {
  const r = runs.find((x) => pattern.test(x.command));
  if (!r) throw new Error(`no README command ran that matches ${pattern}`);
  return r;
};

describe('the README', () => {
  it('has commands, and every skip names one of them (no stale skips)', () => {
    const commands = readmeCommands(readFileSync(join(ROOT, 'README.md'), 'utf8'));
    expect(commands.length).toBeGreaterThan(10);
    expect(SKIPPED.filter((s) => !commands.some((c) => s.match.test(c))).map((s) => s.why)).toEqual([]);
  });

  it('every command run exits 0, and none answers an error', () => {
    const failed = runs
      .filter((r) => r.code !== 0 || (/^\s*\{/.test(r.stdout) && 'error' in (JSON.parse(r.stdout) as object)))
      .map((r) => ({ command: r.command, code: r.code, stdout: r.stdout.slice(0, 500), stderr: r.stderr.slice(-500) }));
    expect(failed).toEqual([]);
    // Commands of every kind were run: curl against the server, and npm scripts.
    expect(runs.filter((r) => r.command.startsWith('curl')).length).toBeGreaterThanOrEqual(8);
    expect(runs.filter((r) => r.command.startsWith('npm run')).length).toBeGreaterThanOrEqual(3);
  });

  it('the score example answers as the README shows', () => {
    expect(JSON.parse(ranLike(/^curl .*\/v1\/calls\/score/s).stdout)).toMatchObject({ callId: 'c-1', score: 90, verdict: 'block' });
  });

  it('the decision record of that call is there, and the announcement is withdrawn', () => {
    expect(JSON.parse(ranLike(/\/v1\/calls\/c-1/).stdout)).toMatchObject({ callId: 'c-1', decisions: [{ verdict: 'block' }] });
    expect(announcementId).toEqual(expect.any(String));
    expect(ranLike(/-X DELETE .*\/v1\/calls\/expected\//s).stdout).toBe('');
  });

  it('signing and the status answer', () => {
    expect(JSON.parse(ranLike(/\/stir\/v1\/signing/).stdout).signingResponse.identity).toMatch(/;info=<https:\/\/certs\.example-carrier\.co\.uk\/shaken\/sp\.pem>;alg=ES256;ppt=shaken$/);
    expect(JSON.parse(ranLike(/\/v1\/status/).stdout)).toMatchObject({ service: { name: 'callguard' }, keys: { open: true } });
  });

  it('npm run key:new -- --help prints the usage; --append adds the line to keys.json, a JSON array', () => {
    expect(ranLike(/key:new -- --help/).stdout).toMatch(/usage: npm run key:new -- --role switch\|bank\|admin[\s\S]*--append/);
    const keys = JSON.parse(readFileSync(join(checkout, 'keys.json'), 'utf8')) as { name: string; role: string; bankId?: string; sha256: string }[];
    expect(keys).toEqual([
      { name: 'Example Bank call centre', role: 'bank', bankId: 'examplebank', sha256: expect.stringMatching(/^[0-9a-f]{64}$/) },
      { name: 'ops', role: 'admin', sha256: expect.stringMatching(/^[0-9a-f]{64}$/) },
    ]);
    // The key printed is the one whose hash was added.
    const printed = /^\s+(cg_\S+)$/m.exec(ranLike(/--role admin --name ops --append keys\.json/).stdout)?.[1];
    expect(printed).toBeDefined();
    expect(keys[1]!.sha256).toBe(createHash('sha256').update(printed!).digest('hex'));
  });

  it('--append refuses a name already in the file, leaves the file as it was and shows no key', () => {
    const before = readFileSync(join(checkout, 'keys.json'), 'utf8');
    const again = run('npm run key:new -- --role admin --name ops --append keys.json');
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already has a key named "ops"/);
    expect(again.stdout).not.toMatch(/cg_/);
    expect(readFileSync(join(checkout, 'keys.json'), 'utf8')).toBe(before);
  });

  it('the numbering import writes its data where NUMBERING_DATA_DIR says', () => {
    expect(ranLike(/numbering:import/).code).toBe(0);
    expect(existsSync(join(scratch, 'var-lib-callguard/numbering/numbering.json'))).toBe(true);
  });

  it('npm run fault:drill -- --help prints the options', () => {
    expect(ranLike(/fault:drill -- --help/).stdout).toMatch(/--targets/);
  });
});

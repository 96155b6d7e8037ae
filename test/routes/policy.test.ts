import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { reloadPolicy } from '../../src/app';
import { DEFAULT_POLICY, policyVersion } from '../../src/scoring';
import { build } from '../helpers/build';
import { bearer, headersFor, KEYS_FILE, type Who } from '../helpers/keys';

/** POLICY_FILE: read at start, picked per trunk, answered by GET /v1/policy, re-read on SIGHUP. */
const dir = mkdtempSync(join(tmpdir(), 'callguard-policy-'));
const file = (name: string, doc: unknown) => {
  const path = join(dir, name);
  writeFileSync(path, typeof doc === 'string' ? doc : JSON.stringify(doc));
  return path;
};

interface PolicyAnswer {
  version: string;
  source: string;
  path?: string;
  loadedAt: string;
  policy: typeof DEFAULT_POLICY;
  profiles: Record<string, typeof DEFAULT_POLICY>;
}

const getPolicy = async (app: FastifyInstance, who: Who = 'admin') => app.inject({ method: 'GET', url: '/v1/policy', headers: headersFor(who) });
const score = async (app: FastifyInstance, body: object) => {
  const res = await app.inject({ method: 'POST', url: '/v1/calls/score', headers: bearer('switch'), payload: body });
  expect(res.statusCode).toBe(200);
  return res.json() as { verdict: string; score: number };
};
// An ordinary UK mobile caller without attestation: base score + SHAKEN_ABSENT.
const CALL = { from: '+447400123456', to: '+442079460123' };

describe('the built-in policy', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await build({ API_KEYS_FILE: KEYS_FILE });
  });
  afterAll(async () => app?.close());

  it('is answered to admin, with its version', async () => {
    const res = await getPolicy(app);
    expect(res.statusCode).toBe(200);
    const body = res.json() as PolicyAnswer;
    expect(body).toMatchObject({ version: policyVersion(DEFAULT_POLICY), source: 'built-in', policy: DEFAULT_POLICY, profiles: {} });
    expect(body.path).toBeUndefined();
    expect(Number.isNaN(Date.parse(body.loadedAt))).toBe(false);
  });

  it.each(['switch', 'examplebank', 'none'] as const)('refuses %s', async (who) => {
    expect((await getPolicy(app, who)).statusCode).toBe(who === 'none' ? 401 : 403);
  });
});

describe('POLICY_FILE', () => {
  it('refuses to start on a bad file, naming it and its problems', async () => {
    const bad = file('bad.json', { thresholds: { flag: 90, block: 50 }, weights: { VELOCITY_HIGH: -1 } });
    await expect(build({ API_KEYS_FILE: KEYS_FILE, POLICY_FILE: bad })).rejects.toThrow(/POLICY_FILE .*bad\.json is invalid: .*weights\.VELOCITY_HIGH/);
    await expect(build({ API_KEYS_FILE: KEYS_FILE, POLICY_FILE: file('broken.json', '{ nope') })).rejects.toThrow(/POLICY_FILE .*broken\.json cannot be read as JSON/);
  });

  it('decides calls by the file, a trunk by its profile, and reloads on SIGHUP', async () => {
    const path = file('policy.json', { baseScore: 40, profiles: { 'intl-7': { baseScore: 70 } } });
    const app = await build({ API_KEYS_FILE: KEYS_FILE, POLICY_FILE: path });
    try {
      const first = (await getPolicy(app)).json() as PolicyAnswer;
      expect(first).toMatchObject({ source: 'file', path });
      expect(first.policy.baseScore).toBe(40);
      expect(first.profiles['intl-7']?.baseScore).toBe(70);
      expect(first.version).not.toBe(policyVersion(DEFAULT_POLICY));

      expect(await score(app, CALL)).toMatchObject({ score: 45, verdict: 'flag' });
      expect(await score(app, { ...CALL, origin: { trunk: 'intl-7' } })).toMatchObject({ score: 75, verdict: 'block' });
      expect(await score(app, { ...CALL, origin: { trunk: 'other' } })).toMatchObject({ score: 45, verdict: 'flag' });

      // A bad file keeps the running policy, and the log says why.
      const errors: unknown[] = [];
      const log = { info: () => undefined, error: (o: unknown) => errors.push(o) };
      writeFileSync(path, JSON.stringify({ baseScore: 500 }));
      reloadPolicy({ policySource: app.services.policySource, log: log as never }, 'test');
      expect(errors).toEqual([expect.objectContaining({ problem: expect.stringMatching(/baseScore/) })]);
      expect(((await getPolicy(app)).json() as PolicyAnswer).version).toBe(first.version);
      expect(await score(app, CALL)).toMatchObject({ score: 45 });

      // A good one is in force for every later call, cached verdicts included.
      writeFileSync(path, JSON.stringify({ baseScore: 0 }));
      reloadPolicy({ policySource: app.services.policySource, log: log as never }, 'test');
      const second = (await getPolicy(app)).json() as PolicyAnswer;
      expect(second.version).not.toBe(first.version);
      expect(second.profiles).toEqual({});
      expect(await score(app, CALL)).toMatchObject({ score: 5, verdict: 'allow' });
      expect(await score(app, { ...CALL, origin: { trunk: 'intl-7' } })).toMatchObject({ score: 5 });
      expect(errors).toHaveLength(1);
    } finally {
      await app.close();
    }
  });

  it('refuses a reload that changes how long reports are kept', async () => {
    const path = file('reports.json', {});
    const app = await build({ API_KEYS_FILE: KEYS_FILE, POLICY_FILE: path });
    try {
      const before = app.services.policySource.current().version;
      writeFileSync(path, JSON.stringify({ reports: { maxAgeS: 86400, halfLifeS: 3600 } }));
      expect(app.services.policySource.reload()).toEqual({ ok: false, reason: expect.stringMatching(/reports\.maxAgeS .*restart/) });
      expect(app.services.policySource.current().version).toBe(before);
    } finally {
      await app.close();
    }
  });

  it('changes velocity windows on reload', async () => {
    const path = file('velocity.json', { velocity: { windows: [{ seconds: 60, maxDistinct: 100 }] } });
    const app = await build({ API_KEYS_FILE: KEYS_FILE, POLICY_FILE: path });
    try {
      const caller = '+447400123457';
      for (let i = 0; i < 3; i++) await score(app, { from: caller, to: `+44207946${String(1000 + i)}` });
      expect((await score(app, { from: caller, to: '+442079462000' })).score).toBe(15);
      writeFileSync(path, JSON.stringify({ velocity: { windows: [{ seconds: 60, maxDistinct: 2 }] } }));
      reloadPolicy({ policySource: app.services.policySource, log: { info: () => undefined, error: () => undefined } as never }, 'test');
      expect((await score(app, { from: caller, to: '+442079462001' })).score).toBe(15 + DEFAULT_POLICY.weights.VELOCITY_HIGH);
    } finally {
      await app.close();
    }
  });
});

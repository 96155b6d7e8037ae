import type { FastifyInstance } from 'fastify';
import { build } from '../helpers/build';
import { bearer, headersFor, KEYS_FILE, type Who } from '../helpers/keys';
import { requireRedis, TEST_REDIS_URL } from '../helpers/redis';

const HARBOUR = '+441134960300';
const NORTHWIND = '+441614960200';
const NOBODY = '+447400123456';

for (const store of ['memory', 'redis'] as const) {
  describe(`reviewing reports (${store})`, () => {
    let app: FastifyInstance;
    beforeEach(async () => {
      if (store === 'redis') await requireRedis();
      app = await build({ API_KEYS_FILE: KEYS_FILE, ...(store === 'redis' ? { REDIS_URL: TEST_REDIS_URL } : {}) });
    });
    afterEach(() => app.close());

    const report = (who: Who, payload: object) => app.inject({ method: 'POST', url: '/v1/reports', headers: headersFor(who), payload });
    const list = (who: Who, query = '') => app.inject({ method: 'GET', url: `/v1/reports${query}`, headers: headersFor(who) });
    const score = (body: object) => app.inject({ method: 'POST', url: '/v1/calls/score', headers: bearer('switch'), payload: body }).then((r) => r.json());

    it('the role matrix: admin and bank keys may list, a switch key may not (403), no or a bad key 401', async () => {
      for (const who of ['switch', 'examplebank', 'northwind', 'admin', 'none', 'bad'] as Who[]) {
        const res = await list(who);
        const expected = who === 'none' || who === 'bad' ? 401 : who === 'switch' ? 403 : 200;
        expect([who, res.statusCode]).toEqual([who, expected]);
        if (expected === 200) expect(res.json()).toEqual({ reports: [] });
      }
    });

    it('lists reports newest first, genuine included, narrowed by category, since and limit', async () => {
      const made: string[] = [];
      for (const [who, number, category] of [
        ['admin', HARBOUR, 'spoof'],
        ['northwind', NORTHWIND, 'genuine'],
        ['admin', NOBODY, 'scam'],
        ['admin', HARBOUR, 'genuine'],
      ] as const) {
        const res = await report(who, { number, category, note: `${number} ${category}` });
        expect(res.statusCode).toBe(201);
        made.push(res.json().id);
        await new Promise((r) => setTimeout(r, 5));
      }
      const all = (await list('admin')).json().reports;
      expect(all.map((r: { id: string }) => r.id)).toEqual([...made].reverse());
      expect(all[0]).toMatchObject({ number: HARBOUR, category: 'genuine', reporter: 'test-admin', note: `${HARBOUR} genuine` });
      const genuine = (await list('admin', '?category=genuine')).json().reports;
      expect(genuine.map((r: { number: string }) => r.number)).toEqual([HARBOUR, NORTHWIND]);
      expect((await list('admin', '?limit=2')).json().reports.map((r: { id: string }) => r.id)).toEqual([made[3], made[2]]);
      const since = all[1].at;
      expect((await list('admin', `?since=${encodeURIComponent(since)}`)).json().reports.map((r: { id: string }) => r.id)).toEqual([made[3], made[2]]);
      expect((await list('admin', `?since=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`)).json().reports).toEqual([]);
    });

    it("a bank key sees the reports about its own bank's numbers only", async () => {
      await report('admin', { number: HARBOUR, category: 'spoof' });
      await report('admin', { number: NORTHWIND, category: 'genuine' });
      await report('northwind', { number: NOBODY, category: 'scam' });
      const northwind = (await list('northwind')).json().reports;
      expect(northwind.map((r: { number: string; category: string }) => [r.number, r.category])).toEqual([[NORTHWIND, 'genuine']]);
      expect((await list('examplebank')).json().reports).toEqual([]);
      expect((await list('admin')).json().reports).toHaveLength(3);
    });

    it.each([
      ['?category=fraud', /^category: category must be one of spoof, scam, nuisance, genuine/],
      ['?since=yesterday', /^since: since must be an RFC 3339 date-time/],
      ['?limit=0', /^limit: limit must be at least 1/],
      ['?limit=1001', /^limit: limit must be at most 1000/],
      ['?limit=ten', /^limit: /],
    ])('bad query %s -> 400 naming the field', async (query, message) => {
      const res = await list('admin', query);
      expect(res.statusCode).toBe(400);
      expect(res.json()).toMatchObject({ error: 'validation_failed', message: expect.stringMatching(message) });
    });

    it('a genuine report neither raises nor lowers the score: REPORTED_FRAUD and its count ignore it', async () => {
      const call = { from: NOBODY, to: '+442079460999' };
      const before = await score({ ...call, callId: 'g1' });
      expect((await report('admin', { number: NOBODY, category: 'genuine' })).statusCode).toBe(201);
      const afterGenuine = await score({ ...call, callId: 'g2' });
      expect(afterGenuine.reasons.map((r: { code: string }) => r.code)).not.toContain('REPORTED_FRAUD');
      expect([afterGenuine.verdict, afterGenuine.score]).toEqual([before.verdict, before.score]);
      // A fraud report then counts alone, and a later genuine one takes nothing off it.
      expect((await report('admin', { number: NOBODY, category: 'scam' })).statusCode).toBe(201);
      const reported = await score({ ...call, callId: 'g3' });
      const reason = reported.reasons.find((r: { code: string }) => r.code === 'REPORTED_FRAUD');
      expect(reason).toMatchObject({ message: expect.stringMatching(/reported for fraud 1 time\(s\) \(scam\)/) });
      expect((await report('admin', { number: NOBODY, category: 'genuine' })).statusCode).toBe(201);
      const after = await score({ ...call, callId: 'g4' });
      expect([after.verdict, after.score]).toEqual([reported.verdict, reported.score]);
      expect(after.reasons.find((r: { code: string }) => r.code === 'REPORTED_FRAUD')).toEqual(reason);
    });
  });
}

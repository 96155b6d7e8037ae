import type { FastifyInstance } from 'fastify';
import { build } from '../helpers/build';
import { sleep } from '../../scripts/lib/process';
import { shedOrPass } from '../../src/http/load-shedding';

/** When the event loop is drowning, API calls get an immediate 503; health keeps answering. */
let app: FastifyInstance;
beforeAll(async () => {
  app = await build({ LOAD_SHED_EVENT_LOOP_DELAY_MS: '20' });
});
afterAll(() => app.close());

function blockEventLoop(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // busy: what a flood of work does to the loop
  }
}

it('sheds API requests with 503 and Retry-After under event-loop pressure, and recovers', async () => {
  // under-pressure samples once a second: block the loop across a sample.
  for (let i = 0; i < 12; i++) {
    blockEventLoop(150);
    await new Promise((r) => setImmediate(r));
  }
  const shed = await app.inject({ method: 'POST', url: '/v1/calls/score', payload: { from: '+447400123456', to: '+442079460999' } });
  expect(shed.statusCode).toBe(503);
  expect(shed.headers['retry-after']).toBe('1');
  expect(shed.json()).toMatchObject({ error: 'overloaded' });
  expect((await app.inject('/healthz')).statusCode).toBe(200);
  // Counted, and the metrics keep answering while the API sheds.
  const metrics = await app.inject('/metrics');
  expect(metrics.statusCode).toBe(200);
  expect(Number(/^callguard_load_shed_total (\S+)$/m.exec(metrics.body)?.[1])).toBeGreaterThanOrEqual(1);

  // Calm again: after the next sample, calls are scored.
  await sleep(2100);
  const ok = await app.inject({ method: 'POST', url: '/v1/calls/score', payload: { from: '+447400123456', to: '+442079460999' } });
  expect(ok.statusCode).toBe(200);
}, 15_000);

it('is off with LOAD_SHED_EVENT_LOOP_DELAY_MS=0', async () => {
  const calm = await build({ LOAD_SHED_EVENT_LOOP_DELAY_MS: '0' });
  blockEventLoop(1200);
  expect((await calm.inject({ method: 'POST', url: '/v1/calls/score', payload: { from: '+447400123456', to: '+442079460999' } })).statusCode).toBe(200);
  await calm.close();
});

it('does not shed for want of a measurement: a loop blocked across a whole sample (a start, a big reload) is not taken for infinite delay', async () => {
  // A limit no real delay here reaches: only a delay taken for infinite can pass it.
  const starting = await build({ LOAD_SHED_EVENT_LOOP_DELAY_MS: '10000' });
  const codes: number[] = [];
  for (let i = 0; i < 3; i++) {
    // under-pressure's once-a-second sample then finds the delay histogram empty (no timer
    // could tick), which it reports as an infinite delay.
    blockEventLoop(2200);
    await new Promise((r) => setTimeout(r, 5));
    codes.push((await starting.inject({ method: 'POST', url: '/v1/calls/score', payload: { from: '+447400123456', to: '+442079460999' } })).statusCode);
  }
  await starting.close();
  expect(codes).toEqual([200, 200, 200]);
}, 20_000);

describe('the pressure handler', () => {
  const replyDouble = () => {
    const sent: unknown[] = [];
    const reply = { statusCode: 200, headers: {} as Record<string, string> } as { statusCode: number; headers: Record<string, string>; status: (c: number) => unknown; header: (k: string, v: string) => unknown; send: (b: unknown) => unknown };
    reply.status = (c: number) => ((reply.statusCode = c), reply);
    reply.header = (k: string, v: string) => ((reply.headers[k] = v), reply);
    reply.send = (b: unknown) => (sent.push(b), reply);
    return { reply, sent };
  };

  it('lets a request through when the delay is no measurement (an empty sample, reported as infinite)', () => {
    const counted: number[] = [];
    const { reply, sent } = replyDouble();
    shedOrPass({ loadShed: () => counted.push(1) })({} as never, reply as never, 'eventLoopDelay', Infinity);
    expect(sent).toEqual([]);
    expect(counted).toEqual([]);
  });

  it('sheds with a 503, Retry-After and a count when the delay is measured over the limit', () => {
    const counted: number[] = [];
    const { reply, sent } = replyDouble();
    shedOrPass({ loadShed: () => counted.push(1) })({} as never, reply as never, 'eventLoopDelay', 512.4);
    expect(reply.statusCode).toBe(503);
    expect(reply.headers['retry-after']).toBe('1');
    expect(sent).toEqual([{ error: 'overloaded', message: 'the service is overloaded (eventLoopDelay 512); retry in a second' }]);
    expect(counted).toEqual([1]);
  });
});

import pino from 'pino';
import { Writable } from 'node:stream';
import { requestLogger } from '../../src/http/request-log';

function capture(level: pino.LevelWithSilent = 'info') {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  const parent = pino({ level }, stream);
  const child = jest.spyOn(parent, 'child');
  return { parent, child, lines };
}

describe('requestLogger (the per-request logger fastify makes for every call)', () => {
  it('makes no pino child while nothing is logged', () => {
    const { parent, child } = capture();
    const log = requestLogger(parent, { reqId: 'r1' }, {});
    expect(log.level).toBe('info');
    expect(child).not.toHaveBeenCalled();
  });

  it('makes none for a line below the level in force, and writes nothing', () => {
    const { parent, child, lines } = capture('info');
    const log = requestLogger(parent, { reqId: 'r1' }, {});
    log.debug({ a: 1 }, 'not written');
    log.trace('nor this');
    expect(child).not.toHaveBeenCalled();
    expect(lines).toEqual([]);
  });

  it('writes a line with the request id bound, through one child made once', async () => {
    const { parent, child, lines } = capture('info');
    const log = requestLogger(parent, { reqId: 'r1' }, {});
    log.info({ route: '/v1/calls/score' }, 'access');
    log.warn('second');
    await new Promise((r) => setImmediate(r));
    expect(child).toHaveBeenCalledTimes(1);
    expect(lines).toEqual([
      expect.objectContaining({ reqId: 'r1', route: '/v1/calls/score', msg: 'access', level: 30 }),
      expect.objectContaining({ reqId: 'r1', msg: 'second', level: 40 }),
    ]);
  });

  it('follows a level set on it, and hands out children that keep the request id', async () => {
    const { parent, lines } = capture('info');
    const log = requestLogger(parent, { reqId: 'r2' }, {});
    log.level = 'debug';
    log.debug('now written');
    log.child({ part: 'x' }).info('from a child');
    await new Promise((r) => setImmediate(r));
    expect(parent.level).toBe('info');
    expect(lines).toEqual([
      expect.objectContaining({ reqId: 'r2', msg: 'now written', level: 20 }),
      expect.objectContaining({ reqId: 'r2', part: 'x', msg: 'from a child' }),
    ]);
  });

  it("answers for the rest of a pino child's members: its bindings, level value, levels, flush", () => {
    const { parent } = capture('info');
    const log = requestLogger(parent, { reqId: 'r4' }, {}) as unknown as pino.Logger;
    expect(log.levelVal).toBe(30);
    expect(log.levels.values.info).toBe(30);
    expect(log.bindings()).toEqual({ reqId: 'r4' });
    log.setBindings({ route: '/x' });
    expect(log.bindings()).toEqual({ reqId: 'r4', route: '/x' });
    expect(() => log.flush()).not.toThrow();
  });

  it('gives a route with a log level of its own a plain child at that level', () => {
    const { parent } = capture('info');
    const log = requestLogger(parent, { reqId: 'r3' }, { level: 'warn' });
    expect(log.level).toBe('warn');
  });
});

import type Redis from 'ioredis';
import { RedisGuard } from '../../src/state/redis/client';

/**
 * While a registry import's script holds Redis, the importing instance's hot path skips Redis
 * (RedisGuard.bypass) instead of each call waiting out a command timeout.
 */
describe('RedisGuard.bypass', () => {
  const log = { warn: jest.fn(), info: jest.fn() };
  let now = 0;
  const guard = () => new RedisGuard({ status: 'ready' } as unknown as Redis, log, { now: () => now });

  beforeEach(() => {
    now = 1_000;
    log.warn.mockClear();
  });

  it('skips Redis until released, without counting it as a failure or degrading', async () => {
    const g = guard();
    const op = jest.fn(() => Promise.resolve('redis'));
    const release = g.bypass(5000);
    for (let i = 0; i < 5; i++) expect(await g.run(op, 'local')).toBe('local');
    expect(op).not.toHaveBeenCalled();
    expect(g.degraded).toBe(false);
    expect(log.warn).not.toHaveBeenCalled();
    release();
    expect(await g.run(op, 'local')).toBe('redis');
  });

  it('ends by itself after maxMs, and holds while any bypass is held', async () => {
    const g = guard();
    const op = jest.fn(() => Promise.resolve('redis'));
    const first = g.bypass(5000);
    const second = g.bypass(1000);
    first();
    first(); // twice: still one release
    expect(await g.run(op, 'local')).toBe('local');
    second();
    expect(await g.run(op, 'local')).toBe('redis');
    g.bypass(1000); // never released
    now += 1001;
    expect(await g.run(op, 'local')).toBe('redis');
  });
});

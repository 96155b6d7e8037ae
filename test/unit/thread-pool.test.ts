import { availableParallelism } from 'node:os';
import { sizeThreadPool } from '../../src/ops/thread-pool';

describe('sizeThreadPool', () => {
  it("sizes libuv's pool to the machine's cores, two at least", () => {
    const env: NodeJS.ProcessEnv = {};
    expect(sizeThreadPool(env)).toBe(String(Math.max(2, availableParallelism())));
    expect(env.UV_THREADPOOL_SIZE).toBe(String(Math.max(2, availableParallelism())));
  });

  it("keeps the operator's choice", () => {
    const env: NodeJS.ProcessEnv = { UV_THREADPOOL_SIZE: '16' };
    expect(sizeThreadPool(env)).toBe('16');
  });
});

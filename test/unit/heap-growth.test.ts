import { spawnSync } from 'node:child_process';
import { DEFAULT_HEAP_GROWING_PERCENT, limitHeapGrowth } from '../../src/ops/heap-growth';

describe('limitHeapGrowth', () => {
  it("bounds V8's heap growth when the operator gave no heap flag", () => {
    expect(limitHeapGrowth([], {})).toBe(`--heap-growing-percent=${DEFAULT_HEAP_GROWING_PERCENT}`);
  });

  it("keeps the operator's heap flags, on the command line or in NODE_OPTIONS", () => {
    expect(limitHeapGrowth(['--max-old-space-size=512'], {})).toBeNull();
    expect(limitHeapGrowth([], { NODE_OPTIONS: '--enable-source-maps --heap-growing-percent=80' })).toBeNull();
    expect(limitHeapGrowth([], { NODE_OPTIONS: '--max-semi-space-size=32' })).toBeNull();
  });

  it('names a flag this V8 knows (an unknown one is only reported, on the output, and ignored)', () => {
    const flag = `--heap-growing-percent=${DEFAULT_HEAP_GROWING_PERCENT}`;
    const run = (f: string) => spawnSync(process.execPath, ['-e', `require('node:v8').setFlagsFromString('${f}')`], { encoding: 'utf8' });
    // The check can fail: a flag V8 does not have is reported.
    expect(run('--no-such-heap-flag').stdout + run('--no-such-heap-flag').stderr).toMatch(/unrecognized flag/);
    const r = run(flag);
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});

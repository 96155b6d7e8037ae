import { readPolicyDocument, type Decision, type PolicyDocument } from '../../src/scoring';
import { MemoryShadowStore, type ShadowTally } from '../../src/state';
import { ShadowPolicy } from '../../src/usecases/shadow-policy';

/**
 * A report counts every call recorded before it was asked for, even while the timer's sync is
 * still on its way to the store with the tally it took when it began.
 */
function documentOf(raw: unknown): PolicyDocument {
  const read = readPolicyDocument(raw);
  if ('problems' in read) throw new Error(read.problems.join('; '));
  return read.document;
}

const decision = (verdict: 'allow' | 'block', score: number) => ({ verdict, score, reasons: [] }) as unknown as Decision;

/** The memory store, with syncs that wait for the test to let them through while `held`. */
class SlowStore extends MemoryShadowStore {
  held = false;
  private waiting: (() => void)[] = [];
  override async sync(version: string | null, tally: ShadowTally | null) {
    if (this.held) await new Promise<void>((resolve) => this.waiting.push(resolve));
    return super.sync(version, tally);
  }
  release(): void {
    this.held = false;
    for (const go of this.waiting.splice(0)) go();
  }
}

function policy(store: SlowStore): ShadowPolicy {
  const live = documentOf({});
  return new ShadowPolicy({ store, live: () => live, now: () => 1_700_000_000_000, log: { warn: () => undefined, info: () => undefined } });
}

describe('the shadow policy sync', () => {
  it('a report asked for during a sync under way counts the calls recorded after it began', async () => {
    const store = new SlowStore();
    const shadow = policy(store);
    const { version } = await shadow.set({ baseScore: 70 });
    const call = (id: string) => shadow.record(version, id, 1_700_000_000_000, decision('allow', 15), decision('block', 75));

    call('before');
    store.held = true;
    const timerSync = shadow.sync(); // took the tally holding 'before'
    call('during'); // recorded while that sync is on its way
    const report = shadow.report();
    store.release();
    await timerSync;

    const r = await report;
    expect(r.calls).toBe(2);
    expect(r.examples.map((e) => e.callId)).toEqual(['during', 'before']);
  });

  it('a sync asked for with nothing new recorded shares the one under way', async () => {
    const store = new SlowStore();
    const shadow = policy(store);
    const { version } = await shadow.set({ baseScore: 70 });
    shadow.record(version, 'one', 1_700_000_000_000, decision('allow', 15), decision('block', 75));
    const sync = jest.spyOn(store, 'sync');
    store.held = true;
    const first = shadow.sync();
    const second = shadow.sync();
    store.release();
    await Promise.all([first, second]);
    expect(sync).toHaveBeenCalledTimes(1);
    expect((await store.counts())?.calls).toBe(1);
  });
});

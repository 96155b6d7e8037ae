import { generateTraffic } from '../../scripts/sim/traffic';
import { simulate, type SimulationResult } from '../../scripts/sim/run';

/**
 * The spoofing the default policy must catch and the genuine calls it must leave alone, on a
 * smaller run of the README's simulation (npm run simulate): fraud and genuine traffic at the
 * same time, a campaign presenting a bank's numbers while the bank's own calls go on.
 */
const OPTIONS = { seed: 7, calls: 3000, durationS: 3600, start: Date.parse('2026-03-02T09:00:00Z') };
let result: SimulationResult;

beforeAll(async () => {
  result = await simulate(OPTIONS);
}, 120_000);

it('is deterministic: a seed gives the same calls at the same times', () => {
  const a = generateTraffic(OPTIONS);
  expect(generateTraffic(OPTIONS)).toEqual(a);
  expect(generateTraffic({ ...OPTIONS, seed: 8 })).not.toEqual(a);
});

it('every request the simulator makes is one the service accepts', () => {
  expect(result.failures).toEqual([]);
});

it('every kind of call occurs', () => {
  for (const k of result.kinds) expect([k.kind, k.calls > 0]).toEqual([k.kind, true]);
});


/**
 * An organisation's genuine call that a transit network hands over shows nothing of where it came
 * from, exactly like a spoofer's call presenting the same number through a transit: no rule can
 * tell the two apart, and while a campaign presents the organisation's numbers both are flagged
 * (delivered, marked). The goal is held on everything else; these are flagged, never blocked.
 */
const INDISTINGUISHABLE = new Set(['organisation via transit, carrier unknown', 'organisation number via transit, carrier unknown']);

it('catches at least 99% of the fraud that shows anything against it, and at least 95% of every kind of it', () => {
  const told = result.kinds.filter((k) => k.fraud && !INDISTINGUISHABLE.has(k.kind));
  expect(told.reduce((s, k) => s + k.caughtOrHarmed, 0) / told.reduce((s, k) => s + k.calls, 0)).toBeGreaterThanOrEqual(0.99);
  for (const k of told) expect([k.kind, k.caughtOrHarmed / k.calls >= 0.95]).toEqual([k.kind, true]);
});

it("catches a spoofer's call that shows nothing once a campaign against the organisation runs, and blocks no genuine one like it", () => {
  const [genuine, spoofed] = [...INDISTINGUISHABLE].map((kind) => result.kinds.find((k) => k.kind === kind)!);
  expect(spoofed!.caughtOrHarmed / spoofed!.calls).toBeGreaterThanOrEqual(0.5);
  expect(genuine!.block).toBe(0);
});

it('blocks no legitimate call', () => {
  expect(result.legitimate.blocked).toBe(0);
});

it('flags or withholds at most 1% of the legitimate calls that carry any evidence of their own', () => {
  const told = result.kinds.filter((k) => !k.fraud && !INDISTINGUISHABLE.has(k.kind));
  const harmed = told.reduce((s, k) => s + k.caughtOrHarmed, 0);
  const calls = told.reduce((s, k) => s + k.calls, 0);
  expect(harmed / calls).toBeLessThanOrEqual(0.01);
});

it("leaves the organisations' own calls alone while a campaign presents their numbers", () => {
  const own = ['organisation, own carrier', 'bank, offshore call centre', 'bank, announced call'];
  for (const k of result.kinds.filter((x) => own.includes(x.kind))) expect([k.kind, k.caughtOrHarmed]).toEqual([k.kind, 0]);
});

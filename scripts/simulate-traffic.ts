import { parseArgs } from 'node:util';
import { formatTable, simulate } from './sim/run';

/**
 * How well the service catches spoofing: a seeded mix of legitimate UK traffic and iSpoof-style
 * fraud, at the same time, through the HTTP API on the default policy.
 *
 *   npm run simulate -- [--seed 2026] [--calls 20000] [--hours 2] [--json]
 */
async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seed: { type: 'string', default: '2026' },
      calls: { type: 'string', default: '20000' },
      hours: { type: 'string', default: '2' },
      json: { type: 'boolean', default: false },
    },
  });
  const result = await simulate({
    seed: Number(values.seed),
    calls: Number(values.calls),
    durationS: Number(values.hours) * 3600,
    start: Date.parse('2026-03-02T09:00:00Z'),
  });
  if (values.json) console.log(JSON.stringify(result, null, 2));
  else console.log(formatTable(result));
  if (result.failures.length > 0) {
    console.error('requests the service refused:', result.failures);
    process.exitCode = 1;
  }
}

void main();

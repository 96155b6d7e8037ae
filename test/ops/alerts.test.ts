import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { parse } from 'yaml';
import { build } from '../helpers/build';
import { bearer, KEYS_FILE } from '../helpers/keys';

/**
 * The alert rules cannot drift from the code: every metric that docker/prometheus/alerts.yml
 * names is in the service's /metrics, and so is every label it matches on, with the values it
 * matches (a rule on a renamed metric, label or route would otherwise never fire, silently).
 * promtool checks the rules' syntax and behaviour (.ci/run); this checks their names.
 */
const ALERTS = resolve(__dirname, '../../docker/prometheus/alerts.yml');
/** Series Prometheus makes itself, and labels it adds to every series it scrapes. */
const FROM_PROMETHEUS = new Set(['up']);
const TARGET_LABELS = new Set(['job', 'instance']);

interface Exposition {
  /** Metric names from the # TYPE lines, with their type. */
  types: Map<string, string>;
  /** Series name -> label -> values seen. */
  labels: Map<string, Map<string, Set<string>>>;
}

function readExposition(text: string): Exposition {
  const types = new Map<string, string>();
  const labels = new Map<string, Map<string, Set<string>>>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) types.set(type[1]!, type[2]!);
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? \S+$/.exec(line);
    if (!sample) continue;
    const byLabel = labels.get(sample[1]!) ?? new Map<string, Set<string>>();
    labels.set(sample[1]!, byLabel);
    for (const [, name, value] of (sample[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      const values = byLabel.get(name!) ?? new Set<string>();
      byLabel.set(name!, values.add(value!));
    }
  }
  return { types, labels };
}

/** A series name is exposed when a # TYPE line names it, or names the histogram it belongs to. */
function isExposed(name: string, { types }: Exposition): boolean {
  if (types.has(name)) return true;
  const base = /^(.*)_(bucket|sum|count)$/.exec(name)?.[1];
  return base !== undefined && (types.get(base) === 'histogram' || types.get(base) === 'summary');
}

const rules = (parse(readFileSync(ALERTS, 'utf8')) as { groups: { rules: { alert: string; expr: string }[] }[] }).groups.flatMap((g) => g.rules);

/** Every `name{matchers}` and bare metric name of an expression. */
function selectors(expr: string): { name: string; matchers: { label: string; op: string; value: string }[] }[] {
  const out: { name: string; matchers: { label: string; op: string; value: string }[] }[] = [];
  for (const m of expr.matchAll(/\b([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?/g)) {
    const name = m[1]!;
    const isMetric = /^(callguard|process|nodejs)_/.test(name) || (m[2] !== undefined && !name.startsWith('$'));
    if (!isMetric) continue;
    const matchers = [...(m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"([^"]*)"/g)].map(([, label, op, value]) => ({ label: label!, op: op!, value: value! }));
    out.push({ name, matchers });
  }
  return out;
}

describe('docker/prometheus/alerts.yml against the service', () => {
  let app: FastifyInstance;
  let exposition: Exposition;

  beforeAll(async () => {
    app = await build({ API_KEYS_FILE: KEYS_FILE });
    // One scored call, so the score route's latency series exist as they do in production.
    const scored = await app.inject({ method: 'POST', url: '/v1/calls/score', payload: { from: '+447400123456', to: '+442079460999' }, headers: bearer('switch') });
    expect(scored.statusCode).toBe(200);
    exposition = readExposition((await app.inject('/metrics')).body);
  });
  afterAll(() => app.close());

  it('has rules, each naming metrics', () => {
    expect(rules.length).toBeGreaterThanOrEqual(5);
    for (const rule of rules) expect(selectors(rule.expr).length).toBeGreaterThan(0);
  });

  it.each(rules.map((r) => [r.alert, r.expr] as const))('%s names only metrics the service exposes', (_alert, expr) => {
    for (const { name } of selectors(expr)) {
      if (FROM_PROMETHEUS.has(name)) continue;
      expect({ name, exposed: isExposed(name, exposition) }).toEqual({ name, exposed: true });
    }
  });

  it.each(rules.map((r) => [r.alert, r.expr] as const))('%s matches on labels and values the service gives', (_alert, expr) => {
    for (const { name, matchers } of selectors(expr)) {
      if (FROM_PROMETHEUS.has(name)) continue;
      for (const { label, op, value } of matchers) {
        if (TARGET_LABELS.has(label)) continue;
        const values = exposition.labels.get(name)?.get(label);
        expect({ name, label, exists: values !== undefined }).toEqual({ name, label, exists: true });
        // An exact (in)equality must name a value the service really gives.
        if (op === '=' || op === '!=') expect({ name, label, value, given: values!.has(value) }).toEqual({ name, label, value, given: true });
      }
    }
  });
});

import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { loadConfig, productionSafetyProblems } from '../../src/config';

/**
 * The deployment files cannot be run here (no container engine), so what can be checked is
 * checked: that the environment they give the service passes its own production checks, that
 * nothing is published beyond loopback, and that no working key ships with them.
 */
const DOCKER = resolve(__dirname, '../../docker');

interface ComposeService {
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
}
const compose = parse(readFileSync(resolve(DOCKER, 'docker-compose.yml'), 'utf8'), { merge: true }) as { services: Record<string, ComposeService> };
const instances = Object.entries(compose.services).filter(([name]) => name.startsWith('callguard'));

describe('docker-compose.yml', () => {
  it('runs at least two instances', () => {
    expect(instances.length).toBeGreaterThanOrEqual(2);
  });

  it.each(instances)('gives %s an environment that passes the production checks', (_name, service) => {
    const config = loadConfig(service.environment);
    expect(config.hostIsLoopback).toBe(false);
    expect(productionSafetyProblems(config)).toEqual([]);
  });

  it('publishes every port on 127.0.0.1 only', () => {
    const published = Object.values(compose.services).flatMap((s) => s.ports ?? []);
    expect(published.length).toBeGreaterThan(0);
    for (const p of published) expect(p).toMatch(/^127\.0\.0\.1:\d+:\d+$/);
  });

  it('has no default for the keys or the registry: the operator must name their own', () => {
    for (const [, service] of instances) {
      const mounts = service.volumes ?? [];
      expect(mounts).toContainEqual(expect.stringMatching(/^\$\{CALLGUARD_KEYS_FILE:\?[^}]+\}:/));
      expect(mounts).toContainEqual(expect.stringMatching(/^\$\{CALLGUARD_REGISTRY_FILE:\?[^}]+\}:/));
      expect(mounts.join('\n')).not.toMatch(/keys\.example\.json/);
    }
  });

  it('ships no working key: the example names no SHA-256 of a key anyone holds', () => {
    const example = JSON.parse(readFileSync(resolve(DOCKER, 'keys.example.json'), 'utf8')) as { sha256: string }[];
    for (const k of example) expect(k.sha256).toMatch(/^0{64}$/);
    expect(readFileSync(resolve(DOCKER, 'docker-compose.yml'), 'utf8')).not.toMatch(/change-me/);
  });
});

describe('Prometheus', () => {
  const prometheus = parse(readFileSync(resolve(DOCKER, 'prometheus/prometheus.yml'), 'utf8')) as {
    rule_files: string[];
    scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[];
  };

  it('scrapes each instance on its METRICS_PORT, not through the API port', () => {
    const targets = prometheus.scrape_configs.find((c) => c.job_name === 'callguard')!.static_configs.flatMap((c) => c.targets);
    expect(targets.sort()).toEqual(instances.map(([name, service]) => `${name}:${loadConfig(service.environment).metricsPort}`).sort());
  });

  it('loads the alert rules, mounted beside its configuration in the compose file', () => {
    expect(prometheus.rule_files).toEqual(['alerts.yml']);
    expect(compose.services.prometheus!.volumes).toContainEqual('./prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro');
    expect(compose.services.prometheus!.volumes).toContainEqual('./prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro');
  });
});

describe('k8s manifests', () => {
  const k8s = (file: string): unknown => parse(readFileSync(resolve(DOCKER, 'k8s', file), 'utf8'));

  it('carry the alert rules of docker/prometheus/alerts.yml in the PrometheusRule, unchanged', () => {
    const alerts = parse(readFileSync(resolve(DOCKER, 'prometheus/alerts.yml'), 'utf8')) as { groups: unknown[] };
    const rule = k8s('prometheusrule.yaml') as { kind: string; spec: { groups: unknown[] } };
    expect(rule.kind).toBe('PrometheusRule');
    expect(rule.spec.groups).toEqual(alerts.groups);
  });

  it('scrape the pods on the port METRICS_PORT opens, through the Service', () => {
    const configMap = k8s('configmap.yaml') as { data: Record<string, string> };
    const deployment = k8s('deployment.yaml') as {
      spec: { template: { metadata: { annotations: Record<string, string> }; spec: { containers: { ports: { name: string; containerPort: number }[] }[] } } };
    };
    const service = k8s('service.yaml') as { spec: { ports: { name: string; targetPort: string }[] } };
    const monitor = k8s('servicemonitor.yaml') as { kind: string; spec: { endpoints: { port: string; path: string }[] } };
    const metricsPort = loadConfig(configMap.data).metricsPort;
    expect(metricsPort).toBeDefined();
    const containerPort = deployment.spec.template.spec.containers[0]!.ports.find((p) => p.name === 'metrics');
    expect(containerPort?.containerPort).toBe(metricsPort);
    expect(deployment.spec.template.metadata.annotations['prometheus.io/port']).toBe(String(metricsPort));
    expect(service.spec.ports.find((p) => p.name === 'metrics')?.targetPort).toBe('metrics');
    expect(monitor.kind).toBe('ServiceMonitor');
    expect(monitor.spec.endpoints).toEqual([expect.objectContaining({ port: 'metrics', path: '/metrics' })]);
  });

  it('give the pods an environment that passes the production checks', () => {
    const configMap = parse(readFileSync(resolve(DOCKER, 'k8s/configmap.yaml'), 'utf8')) as { data: Record<string, string> };
    const deployment = parseAllDocuments(readFileSync(resolve(DOCKER, 'k8s/deployment.yaml'), 'utf8')).map((d) => d.toJS())[0] as {
      spec: { template: { spec: { containers: { env: { name: string; value?: string }[] }[] } } };
    };
    const env: Record<string, string> = { ...configMap.data, REDIS_URL: 'redis://redis:6379' };
    for (const e of deployment.spec.template.spec.containers[0]!.env) if (e.value !== undefined) env[e.name] = e.value;
    expect(productionSafetyProblems(loadConfig(env))).toEqual([]);
  });
});

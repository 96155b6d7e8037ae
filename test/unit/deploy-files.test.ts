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

describe('k8s manifests', () => {
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

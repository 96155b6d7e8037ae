import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { freePort } from '../../scripts/lib/process';
import { build } from '../helpers/build';
import { bearer, KEYS_FILE } from '../helpers/keys';

/**
 * METRICS_PORT, against real sockets: the metrics on a listener of their own at HOST, none on
 * the API port, and the listener gone when the app closes.
 */
describe('METRICS_PORT', () => {
  let app: FastifyInstance;
  let metricsPort: number;
  let api: string;
  let metricsUrl: string;

  beforeAll(async () => {
    metricsPort = await freePort();
    app = await build({ API_KEYS_FILE: KEYS_FILE, HOST: '127.0.0.1', METRICS_PORT: String(metricsPort) });
    await app.listen({ host: '127.0.0.1', port: 0 });
    api = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    metricsUrl = `http://127.0.0.1:${metricsPort}`;
  });
  afterAll(() => app.close());

  it('serves GET /metrics on its own port, counting what the API port answered', async () => {
    const scored = await fetch(`${api}/v1/calls/score`, {
      method: 'POST',
      headers: { ...bearer('switch'), 'content-type': 'application/json' },
      body: JSON.stringify({ from: '+447400123456', to: '+442079460999' }),
    });
    expect(scored.status).toBe(200);

    const res = await fetch(`${metricsUrl}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const text = await res.text();
    expect(text).toMatch(/^callguard_http_request_duration_seconds_count\{method="POST",route="\/v1\/calls\/score",status_code="200"\} 1$/m);
    expect(text).toMatch(/^callguard_build_info\{/m);
    expect(text).toContain('# TYPE process_resident_memory_bytes gauge');
  });

  it('does not serve /metrics on the API port', async () => {
    const res = await fetch(`${api}/metrics`);
    expect(res.status).toBe(404);
    expect(await res.text()).not.toContain('callguard_');
    // The API port still answers the rest.
    expect((await fetch(`${api}/healthz`)).status).toBe(200);
  });

  it('serves nothing else on the metrics port', async () => {
    expect((await fetch(`${metricsUrl}/healthz`)).status).toBe(404);
    expect((await fetch(`${metricsUrl}/v1/calls/score`, { method: 'POST', body: '{}' })).status).toBe(404);
    const post = await fetch(`${metricsUrl}/metrics`, { method: 'POST', body: '' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    const head = await fetch(`${metricsUrl}/metrics`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
  });

  it('stops listening when the app closes, a scraper\'s kept-alive connection notwithstanding', async () => {
    const other = await build({ METRICS_PORT: String(await freePort()) });
    const url = `http://127.0.0.1:${other.services.config.metricsPort}/metrics`;
    // fetch keeps its connection alive for the next scrape, as Prometheus does.
    expect((await fetch(url)).status).toBe(200);
    await other.close();
    await expect(fetch(url)).rejects.toThrow();
  });

  it('fails the start when its port is taken', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    try {
      const port = (taken.address() as AddressInfo).port;
      await expect(build({ METRICS_PORT: String(port) })).rejects.toThrow(/EADDRINUSE/);
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });
});

describe('without METRICS_PORT', () => {
  it('serves /metrics on the API port', async () => {
    const app = await build();
    try {
      expect(app.services.config.metricsPort).toBeUndefined();
      expect((await app.inject('/metrics')).statusCode).toBe(200);
    } finally {
      await app.close();
    }
  });
});

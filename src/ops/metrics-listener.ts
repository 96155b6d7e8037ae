import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * The metrics' own listener (METRICS_PORT): `GET /metrics` and nothing else, so the scrape can
 * be reached on a port that switches and banks never see, and the API port serves no metrics.
 * A plain Node server rather than a second fastify: one route needs no router, no hooks, and
 * its requests stay out of the API's request-latency histogram.
 */
export interface MetricsListener {
  /** The port it listens on (the one asked for, or the one given for 0). */
  readonly port: number;
  close(): Promise<void>;
}

/** What the listener serves: the exposition text and its content type (Metrics.render). */
export interface MetricsSource {
  render(): Promise<{ contentType: string; body: string }>;
}

export async function listenForMetrics(metrics: MetricsSource, host: string, port: number): Promise<MetricsListener> {
  const server: Server = createServer((request, response) => {
    const path = (request.url ?? '').split('?', 1)[0];
    if (path !== '/metrics') {
      response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: only GET /metrics is served here\n');
      return;
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('method not allowed\n');
      return;
    }
    metrics.render().then(
      ({ contentType, body }) => {
        response.writeHead(200, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
        response.end(request.method === 'HEAD' ? undefined : body);
      },
      () => {
        response.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('metrics could not be collected\n');
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Prometheus keeps its scrape connection alive: without this the close would wait for it.
        server.closeAllConnections();
      }),
  };
}

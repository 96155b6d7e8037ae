import { connect, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { build } from '../helpers/build';

/**
 * A client that trickles its request in holds a socket and a parser for as long as it likes,
 * unless the request timeout is enforced on the listening server: a few thousand of them are a
 * denial of service. These run against a real socket, since inject() has no wire to trickle on.
 */
const TIMEOUT_MS = 1000;
let app: FastifyInstance;
let port: number;

beforeAll(async () => {
  app = await build({ REQUEST_TIMEOUT_MS: String(TIMEOUT_MS) });
  await app.listen({ port: 0, host: '127.0.0.1' });
  port = (app.server.address() as AddressInfo).port;
});
afterAll(() => app.close());

/** Sends `head`, then one byte every `everyMs`; resolves with what the server said and when it hung up. */
function trickle(head: string, everyMs: number): Promise<{ answer: string; closedAfterMs: number }> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const socket: Socket = connect(port, '127.0.0.1');
    let answer = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (answer += d));
    socket.on('error', () => undefined);
    socket.write(head);
    const drip = setInterval(() => {
      if (!socket.destroyed) socket.write(' ');
    }, everyMs);
    const giveUp = setTimeout(() => {
      clearInterval(drip);
      socket.destroy();
      reject(new Error(`still connected after ${Date.now() - started} ms`));
    }, TIMEOUT_MS * 8);
    socket.on('close', () => {
      clearInterval(drip);
      clearTimeout(giveUp);
      resolve({ answer, closedAfterMs: Date.now() - started });
    });
  });
}

it('cuts off a request whose body trickles in, with 408, at the request timeout', async () => {
  const head = 'POST /v1/calls/score HTTP/1.1\r\nHost: callguard\r\nContent-Type: application/json\r\nContent-Length: 30000\r\n\r\n{';
  const { answer, closedAfterMs } = await trickle(head, 100);
  expect(answer).toMatch(/^HTTP\/1\.1 408/);
  // The timeout, plus at most one sweep of the connections (every second).
  expect(closedAfterMs).toBeLessThan(TIMEOUT_MS + 1000 + 1500);
});

it('cuts off headers that trickle in (slowloris) too', async () => {
  const { answer, closedAfterMs } = await trickle('GET /healthz HTTP/1.1\r\nHost: callguard\r\nX-Slow: a', 100);
  expect(answer).toMatch(/^HTTP\/1\.1 408/);
  expect(closedAfterMs).toBeLessThan(TIMEOUT_MS + 1000 + 1500);
});

it('still answers an ordinary request on the same server', async () => {
  const res = await fetch(`http://127.0.0.1:${port}/v1/calls/score`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ from: '+447400123456', to: '+442079460999' }),
  });
  expect(res.status).toBe(200);
});

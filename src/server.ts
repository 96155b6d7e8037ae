// First: sizes libuv's thread pool before anything starts it, and bounds how far V8 lets the heap
// outgrow its live data before it collects (see the modules).
import './ops/thread-pool';
import './ops/heap-growth';
import type { Server, ServerResponse } from 'node:http';
import { Server as NetServer, type Socket } from 'node:net';
import { buildApp, reloadPolicy } from './app';
import { assertProductionSafe, loadConfig } from './config';
import { StartupError } from './errors';

/** Process entry: configuration, the app, the listening socket, and a clean shutdown. */
async function main(): Promise<void> {
  // Checked before anything is built, so nothing is seeded or listened on.
  const config = loadConfig();
  assertProductionSafe(config);
  const app = await buildApp({ config });

  // Asked of the keys themselves: a key file that lists none leaves the service as open as no file.
  if (app.services.keys.isOpen) {
    if (!config.hostIsLoopback) {
      app.log.fatal({ host: config.host }, 'no API keys configured (API_KEYS_FILE unset or empty): refusing to listen on a non-loopback address');
      throw new StartupError(`no API keys configured (API_KEYS_FILE unset or empty) and HOST=${config.host} is not a loopback address: refusing to start open`);
    }
    app.log.warn({ host: config.host }, 'no API keys configured: running OPEN, reachable only on loopback');
  }

  // Open connections, for the drain on shutdown (switches keep theirs open for hours: one entry each).
  const connections: Connections = { open: new Set(), accepted: 0 };
  app.server.on('connection', (socket: Socket) => {
    connections.accepted++;
    connections.open.add(socket);
    socket.once('close', () => connections.open.delete(socket));
  });

  let closing = false;
  const shutdown = (signal: string) => {
    if (closing) return;
    closing = true;
    app.log.info({ signal }, 'shutting down: finishing in-flight requests');
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    drain(app.server, connections)
      .then(() => app.close())
      .then(
        () => process.exit(0),
        () => process.exit(1),
      );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  // SIGHUP re-reads SHAKEN_TRUST_ANCHORS (a broken new set is logged and the old one kept).
  // The reload logs its own outcome and never rejects; the catch only keeps a signal from ever taking the process down.
  process.on('SIGHUP', () => void app.services.trustAnchors.reload('SIGHUP').catch(() => undefined));
  // SIGHUP also re-reads POLICY_FILE (a bad file is logged and the running policy kept).
  process.on('SIGHUP', () => reloadPolicy(app.services, 'SIGHUP'));

  await app.listen({ port: config.port, host: config.host });
}

interface Connections {
  open: Set<Socket>;
  /** Connections accepted so far. */
  accepted: number;
}

/**
 * Lets the open connections finish before the app closes. `server.close()` alone resets requests
 * that had already reached the process: it closes the listening socket with connections still in
 * its backlog (Node accepts one per turn of the event loop, so a busy process has a backlog), and
 * the kept-alive connections it finds idle, though a request may be waiting unread on them. Under
 * load that is a few calls at every restart (the fault drill counts them), each one a switch
 * cannot know was scored. So: every request from now on, and every one in flight, is answered
 * with `Connection: close`; the listening socket closes once a turn of the event loop has found
 * nothing left to accept (new connections are then refused, and go to another instance); then a
 * connection is closed only once it is idle and nothing was read from it between two looks, with a
 * poll of the sockets in between, so data already there is read first, however busy the machine.
 * The process exits once every connection has closed (or at the forced exit after 10 s).
 */
async function drain(server: Server, connections: Connections): Promise<void> {
  // The response a connection is busy with, if any (the property http-terminator and stoppable use too).
  const busyWith = (socket: Socket) => (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage ?? null;
  const nextTurn = () => new Promise((resolve) => setImmediate(resolve)); // after the next poll phase
  server.prependListener('request', (_req: unknown, res: ServerResponse) => res.setHeader('connection', 'close'));
  for (const socket of connections.open) {
    const res = busyWith(socket);
    if (res && !res.headersSent) res.setHeader('connection', 'close');
  }
  await new Promise((resolve) => setTimeout(resolve, 50));
  for (const giveUp = Date.now() + 2000; Date.now() < giveUp; ) {
    const accepted = connections.accepted;
    await nextTurn();
    if (connections.accepted === accepted) break; // the poll phase found the backlog empty
  }
  // net.Server's close: stops listening, keeps the open connections (http.Server's would cut every idle one).
  const closed = new Promise<void>((resolve) => NetServer.prototype.close.call(server, () => resolve()));
  const lastLook = new Map<Socket, number>();
  const reap = () => {
    for (const socket of connections.open) {
      if (busyWith(socket)) lastLook.delete(socket);
      else if (lastLook.get(socket) === socket.bytesRead) socket.destroy();
      else lastLook.set(socket, socket.bytesRead);
    }
  };
  reap();
  const reaper = setInterval(() => setImmediate(reap), 50);
  await closed;
  clearInterval(reaper);
}

main().catch((err: unknown) => {
  if (err instanceof StartupError) {
    process.stderr.write(`callguard: ${err.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`callguard: failed to start: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});

'use strict';
/**
 * The bench's yardstick: a bare Fastify app in its own process, with nothing of callguard's
 * (no plugins, no hooks, no schemas, no logger), answering the score route's path with the same
 * JSON body parsing and a small JSON answer. Plain JavaScript run by plain node, so no loader
 * stands between it and the measurement. Listens on 127.0.0.1:$PORT.
 */
const fastify = require('fastify');

const app = fastify({ logger: false });
app.post('/v1/calls/score', async () => ({ ok: true }));
app.listen({ host: '127.0.0.1', port: Number(process.env.PORT) }).catch((err) => {
  console.error(err);
  process.exit(1);
});
for (const sig of ['SIGTERM', 'SIGINT']) process.once(sig, () => app.close().then(() => process.exit(0)));

import { buildApp } from './src/app';
import { createMetrics, metricsRoutes } from './src/ops/metrics';
async function main() {
  const app = await buildApp({ logger: false });
  const metrics = createMetrics();
  metrics.bind({ registrySize: () => app.services.registry().size, redis: () => null });
  await app.register(metricsRoutes, { metrics });
  app.addHook('onSend', async (req, reply, payload) => {
    if (req.routeOptions.url === '/v1/calls/score' && reply.statusCode === 200 && typeof payload === 'string') {
      metrics.observeDecision(JSON.parse(payload));
    }
    return payload;
  });
  await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' });
}
void main();

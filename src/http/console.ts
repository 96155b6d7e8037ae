import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

/**
 * Where `npm run build` puts the console (scripts/build-console.ts): src/http and dist/http both
 * sit two levels below the package root, so the source and the build find the same folder.
 */
export const CONSOLE_DIR = resolve(__dirname, '../../dist/console');

/**
 * The console's headers. The page is public (it holds no data until a key signs in) but it
 * handles keys and shows text that came from outside, so nothing runs or loads that is not its
 * own file: no inline script or style, no other origin, no framing, and no referrer that could
 * carry a path elsewhere.
 */
export const CONSOLE_HEADERS = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  // The files are small and change with each build; revalidating (ETag) beats a stale console.
  'cache-control': 'no-cache',
} as const;

/** The web console at /console: the built page, its script and its stylesheet, nothing else. */
export const consoleRoutes: FastifyPluginAsync<{ dir?: string }> = async (app: FastifyInstance, opts) => {
  const dir = opts.dir ?? CONSOLE_DIR;
  // Scoped to this plugin: the Swagger UI at /docs needs inline script, and keeps its own headers.
  app.addHook('onSend', async (_request, reply, payload) => {
    reply.headers(CONSOLE_HEADERS);
    return payload;
  });
  app.get('/console', { schema: { hide: true } }, (_request, reply) => reply.redirect('/console/', 301));
  if (!existsSync(resolve(dir, 'index.html'))) {
    // From source without a build: say what to do rather than a bare 404.
    app.get('/console/*', { schema: { hide: true } }, (_request, reply) =>
      reply.status(503).type('text/plain; charset=utf-8').send('The console is not built: run `npm run build`.\n'),
    );
    return;
  }
  await app.register(fastifyStatic, { root: dir, prefix: '/console/', index: ['index.html'], redirect: false, wildcard: false, schemaHide: true, etag: true, lastModified: false });
};

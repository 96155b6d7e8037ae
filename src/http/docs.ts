import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { PACKAGE_INFO } from '../config';
import { documentRoute, finishDocument } from './openapi';

const { version, license } = PACKAGE_INFO;

/** OpenAPI document built from the routes' own schemas, and Swagger UI at /docs. */
export async function registerDocs(app: FastifyInstance): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'callguard',
        version,
        description:
          'Caller-ID spoof detection: scores the claimed caller ID of each incoming call for spoofing risk ' +
          '(registry of the numbers of banks and other organisations, STIR/SHAKEN attestation, numbering rules, behaviour across calls).\n\n' +
          'Keys are sent as `Authorization: Bearer <key>`; health, readiness, metrics and these docs need none. ' +
          'Every error is answered as `{ error, message, details? }`.',
        // package.json's licence: the service is not licensed for use outside its owner.
        license: { name: license },
        contact: { name: 'callguard operators' },
      },
      servers: [
        // Relative: Swagger UI at /docs tries requests on the instance that serves it.
        { url: '/', description: 'The instance serving this document' },
        { url: 'http://127.0.0.1:8080', description: 'A local instance at the default HOST and PORT' },
      ],
      tags: [
        { name: 'calls', description: 'Per-call decisions for switches' },
        { name: 'stir', description: 'STIR/SHAKEN verification service (STI-VS) in the 3GPP Ms REST shape' },
        { name: 'callbacks', description: "Bank call centres: is this number the bank's, and what became of recent calls" },
        { name: 'registry', description: 'Registry administration: the numbers of banks and other organisations (government bodies, utilities), each a "bank" of the API (bank keys: their own organisation only)' },
        { name: 'operators', description: 'Running spoofing campaigns and fraud reports' },
        { name: 'ops', description: 'Health, readiness and metrics' },
      ],
      components: {
        securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'API key' } },
      },
    },
    transform: documentRoute,
    transformObject: finishDocument,
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
}

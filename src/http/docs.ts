import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { jsonSchemaTransform, jsonSchemaTransformObject } from '@fastify/type-provider-zod';
import type { FastifyInstance } from 'fastify';
import { SERVICE_VERSION as version } from '../ops/status';

function isZod(value: unknown): boolean {
  return typeof value === 'object' && value !== null && '_zod' in value;
}

function usesZod(schema: object | undefined): boolean {
  if (!schema) return false;
  const { body, params, querystring, headers, response } = schema as Record<string, unknown>;
  return [body, params, querystring, headers, ...Object.values((response as object | undefined) ?? {})].some(isZod);
}

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
          '(registry of the numbers of banks and other organisations, STIR/SHAKEN attestation, numbering rules, behaviour across calls).',
      },
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
    // Routes of the JSON API carry zod schemas; ops routes (health) plain JSON Schema.
    transform: (route) => (usesZod(route.schema) ? jsonSchemaTransform(route) : { schema: route.schema, url: route.url }),
    transformObject: jsonSchemaTransformObject,
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
}

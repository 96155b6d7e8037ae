import { jsonSchemaTransform, jsonSchemaTransformObject } from '@fastify/type-provider-zod';
import type { SwaggerTransform, SwaggerTransformObject } from '@fastify/swagger';
import type { FastifySchema } from 'fastify';
import type { z } from 'zod';

/**
 * The conventions of the OpenAPI document, in one place, so a route states only what is its own
 * (operationId, summary, description, tags, its schemas and the answers peculiar to it):
 *
 * - security follows the route's `roles`, the same thing the authentication hook reads: a route
 *   with roles takes a bearer key, one without is public (`security: []`);
 * - the errors every route of a kind can give are added here: 401, 403, 429 and 503 for a route
 *   with roles, 400/413/415 for one that reads a body, 400 for one that reads a query or path;
 * - every answer is described in words; an error a route lists without words of its own gets the
 *   standard ones, with an example body;
 * - a route whose body is read by its own parser (the registry import) names its media types in
 *   `documentedBody`, documentation only;
 * - schemas nothing refers to are dropped, and a request schema is named without the `Input`
 *   suffix when no response schema shares its name.
 */

declare module 'fastify' {
  interface FastifySchema {
    /**
     * Documentation only: the request body by media type, for a route that reads its body with
     * its own content-type parsers rather than a validated schema.
     */
    documentedBody?: { description: string; content: Record<string, z.ZodType> };
  }
}

interface ErrorConvention {
  description: string;
  example: { error: string; message: string; details?: { field: string; message: string }[] };
  headers?: Record<string, { description: string; schema: object }>;
}

const RETRY_AFTER = { 'Retry-After': { description: 'Seconds to wait before trying again', schema: { type: 'integer', minimum: 1, example: 1 } } };

/** What each error status means across the API, in words and with an example body. */
export const STANDARD_ERRORS: Record<number, ErrorConvention> = {
  400: {
    description:
      'The request is invalid: `validation_failed` (`message` names the first field, `details` every one), `invalid_json` or `bad_request`',
    example: { error: 'validation_failed', message: 'from: is required', details: [{ field: 'from', message: 'is required' }] },
  },
  401: {
    description: '`unauthorized`: no API key, or one that is not valid (send `Authorization: Bearer <key>`)',
    example: { error: 'unauthorized', message: 'an API key is required: Authorization: Bearer <key>' },
    headers: { 'WWW-Authenticate': { description: 'The scheme to authenticate with: `Bearer realm="callguard"`', schema: { type: 'string', example: 'Bearer realm="callguard"' } } },
  },
  403: {
    description: "`forbidden`: the key's role may not use this operation, or the key's bank may not touch what the request names",
    example: { error: 'forbidden', message: 'a switch key may not use GET /v1/registry/banks' },
  },
  404: {
    description: '`not_found`: nothing of that name (or nothing the key may see)',
    example: { error: 'not_found', message: 'no decisions for call c-404' },
  },
  409: {
    description: '`conflict`: the change collides with what is already there',
    example: { error: 'conflict', message: 'bank examplebank still has 3 numbers: delete them first or pass ?cascade=true' },
  },
  413: {
    description: '`payload_too_large`: the body is larger than the limit',
    example: { error: 'payload_too_large', message: 'request body is larger than the limit' },
  },
  415: {
    description: '`unsupported_media_type`: the body is not of a media type the operation reads',
    example: { error: 'unsupported_media_type', message: 'content-type must be application/json' },
  },
  422: {
    description: '`validation_failed`: the request is well formed, but a rule of the registry refuses it',
    example: { error: 'validation_failed', message: 'callbackNumbers: +443450000001 is not a number of examplebank' },
  },
  429: {
    description: '`rate_limited`: this API key has made its requests for the minute (bank and admin keys; switch keys are never limited)',
    example: { error: 'rate_limited', message: 'this API key may make 600 requests a minute; retry in 12 seconds' },
    headers: RETRY_AFTER,
  },
  503: {
    description:
      '`overloaded`: the instance is shedding load (retry in a second, or on another instance); or a shared store it needs did not answer',
    example: { error: 'overloaded', message: 'the service is overloaded (eventLoopDelay 212); retry in a second' },
    headers: RETRY_AFTER,
  },
};

const ERROR_REF = '#/components/schemas/Error';
const errorSchema = () => ({ $ref: ERROR_REF });

type JsonSchema = Record<string, unknown>;
type RouteSchema = Record<string, unknown> & { response?: Record<string, JsonSchema>; documentedBody?: { description: string; content: Record<string, z.ZodType> } };

/** A described reference, as zod writes `Schema.describe(...)` of a named schema. */
function unwrapDescribedRef(schema: JsonSchema): { description?: string; schema: JsonSchema } {
  const { description, allOf, ...rest } = schema as { description?: string; allOf?: JsonSchema[] };
  if (description !== undefined && Array.isArray(allOf) && allOf.length === 1 && Object.keys(rest).length === 0) {
    return { description, schema: allOf[0]! };
  }
  return { ...(description !== undefined ? { description } : {}), schema };
}

/** One answer of an operation, in the content form @fastify/swagger copies as it is. */
function responseOf(status: number, given: JsonSchema | undefined): JsonSchema {
  const standard = STANDARD_ERRORS[status];
  if (!given) {
    if (!standard) throw new Error(`no standard answer for status ${status}`);
    return {
      description: standard.description,
      ...(standard.headers ? { headers: headersOf(standard.headers) } : {}),
      content: { 'application/json': { schema: errorSchema(), example: standard.example } },
    };
  }
  // No body, or the route wrote its answer out by media type (metrics: text): as it is.
  if (given.type === 'null' || given.content) return given;
  const { description, schema } = unwrapDescribedRef(given);
  const isError = schema.$ref === ERROR_REF;
  return {
    ...(description ?? standard?.description ? { description: description ?? standard?.description } : {}),
    ...(isError && standard?.headers ? { headers: headersOf(standard.headers) } : {}),
    content: { 'application/json': { schema, ...(isError && standard ? { example: standard.example } : {}) } },
  };
}

/** Response headers as @fastify/swagger reads them from a response: a schema with its description. */
function headersOf(headers: Record<string, { description: string; schema: object }>): JsonSchema {
  return Object.fromEntries(Object.entries(headers).map(([name, h]) => [name, { ...h.schema, description: h.description }]));
}

/** The statuses a route can answer by what it is, beyond those its own schema lists. */
function conventionalStatuses(schema: RouteSchema, isProtected: boolean): number[] {
  const statuses = new Set<number>();
  if (schema.body || schema.documentedBody) [400, 413, 415].forEach((s) => statuses.add(s));
  if (schema.querystring || schema.params) statuses.add(400);
  // The authentication hook, the per-key rate limit and load shedding guard the API's routes only.
  if (isProtected) [401, 403, 429, 503].forEach((s) => statuses.add(s));
  return [...statuses];
}

function isZod(value: unknown): boolean {
  return typeof value === 'object' && value !== null && '_zod' in value;
}

function usesZod(schema: object | undefined): boolean {
  if (!schema) return false;
  const { body, params, querystring, headers, response } = schema as Record<string, unknown>;
  return [body, params, querystring, headers, ...Object.values((response as object | undefined) ?? {})].some(isZod);
}

/** The JSON Schema of a request schema, as the type provider writes it (a reference when named). */
function requestJsonSchema(args: Parameters<SwaggerTransform>[0], zodSchema: z.ZodType): JsonSchema {
  const { schema } = jsonSchemaTransform({ ...args, schema: { body: zodSchema } }) as { schema: { body: JsonSchema } };
  return schema.body;
}

/** Per route: the type provider's JSON Schemas, then the conventions above. */
export const documentRoute: SwaggerTransform = (args) => {
  const base = usesZod(args.schema) ? jsonSchemaTransform(args) : { schema: args.schema, url: args.url };
  const schema = base.schema as RouteSchema | undefined;
  if (!schema || schema.hide) return base;
  const isProtected = Boolean(args.route.config?.roles);
  const given = schema.response ?? {};
  const statuses = new Set([...Object.keys(given).map(Number), ...conventionalStatuses(schema, isProtected)]);
  const response = Object.fromEntries([...statuses].sort((a, b) => a - b).map((status) => [status, responseOf(status, given[status])]));

  const { documentedBody, ...rest } = schema;
  const body = documentedBody
    ? {
        description: documentedBody.description,
        content: Object.fromEntries(Object.entries(documentedBody.content).map(([type, zodSchema]) => [type, { schema: requestJsonSchema(args, zodSchema) }])),
      }
    : rest.body;
  return {
    url: base.url,
    schema: { ...rest, ...(body ? { body } : {}), response, security: isProtected ? [{ bearer: [] }] : [] } as FastifySchema,
  };
};

/** Every `$ref` target in a part of the document. */
function refsIn(value: unknown, into: Set<string>): Set<string> {
  if (Array.isArray(value)) value.forEach((v) => refsIn(v, into));
  else if (typeof value === 'object' && value !== null) {
    for (const [key, v] of Object.entries(value)) {
      if (key === '$ref' && typeof v === 'string') into.add(v.replace('#/components/schemas/', ''));
      else refsIn(v, into);
    }
  }
  return into;
}

/** OpenAPI 3.0 schemas take one `example`, where zod writes JSON Schema's `examples` list; and null in a nullable enum. */
function toOpenApi30(value: unknown): void {
  if (Array.isArray(value)) value.forEach(toOpenApi30);
  else if (typeof value === 'object' && value !== null) {
    const schema = value as JsonSchema;
    if (Array.isArray(schema.examples) && schema.example === undefined) {
      schema.example = schema.examples[0];
      delete schema.examples;
    }
    // OpenAPI 3.0.3: a nullable enum admits null only when null is one of its values.
    if (schema.nullable === true && Array.isArray(schema.enum) && !schema.enum.includes(null)) schema.enum = [...schema.enum, null];
    // An example is data, not schema: a report's own `examples` field stays as it is.
    for (const [key, v] of Object.entries(schema)) if (key !== 'example') toOpenApi30(v);
  }
}

function renameRefs(value: unknown, from: string, to: string): void {
  if (Array.isArray(value)) value.forEach((v) => renameRefs(v, from, to));
  else if (typeof value === 'object' && value !== null) {
    const node = value as JsonSchema;
    if (node.$ref === `#/components/schemas/${from}`) node.$ref = `#/components/schemas/${to}`;
    Object.values(node).forEach((v) => renameRefs(v, from, to));
  }
}

/** The whole document: the type provider's named schemas, then only those in use, well named. */
export const finishDocument: SwaggerTransformObject = (documentObject) => {
  const doc = jsonSchemaTransformObject(documentObject) as JsonSchema & { paths: JsonSchema; components: { schemas: Record<string, JsonSchema> } };
  const schemas = doc.components.schemas;
  // Keep what the paths use, and what that uses in turn.
  const used = new Set<string>();
  let frontier = refsIn(doc.paths, new Set());
  while (frontier.size > 0) {
    const next = new Set<string>();
    for (const name of frontier) {
      if (used.has(name) || !schemas[name]) continue;
      used.add(name);
      refsIn(schemas[name], next);
    }
    frontier = next;
  }
  const kept: Record<string, JsonSchema> = {};
  for (const name of Object.keys(schemas).sort()) if (used.has(name)) kept[name] = schemas[name]!;
  for (const name of Object.keys(kept)) {
    const plain = name.replace(/Input$/, '');
    if (plain !== name && !kept[plain]) {
      kept[plain] = kept[name]!;
      delete kept[name];
      renameRefs(doc.paths, name, plain);
      renameRefs(kept, name, plain);
    }
  }
  toOpenApi30(kept);
  toOpenApi30(doc.paths);
  const sorted = Object.fromEntries(Object.keys(kept).sort().map((name) => [name, kept[name]!]));
  return { ...doc, components: { ...doc.components, schemas: sorted } } as ReturnType<SwaggerTransformObject>;
};

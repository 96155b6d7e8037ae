import type { FastifyInstance } from 'fastify';
import { build } from '../helpers/build';
import { KEYS_FILE } from '../helpers/keys';

/**
 * What operators reading /docs and code generators reading the document rely on. The document is
 * the one the app serves (and `npm run openapi` commits), with API keys configured, so that what
 * it says of security can be held against what the app does.
 */

interface Operation {
  operationId?: string;
  summary?: string;
  description?: string;
  tags?: string[];
  security?: Record<string, string[]>[];
  requestBody?: { content: Record<string, { schema: { $ref?: string; example?: unknown }; example?: unknown }> };
  responses: Record<string, { description?: string; content?: Record<string, { schema: { $ref?: string }; example?: unknown }> }>;
}
interface Doc {
  tags: { name: string; description?: string }[];
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, { example?: unknown }> };
}

const PUBLIC = ['GET /healthz', 'GET /readyz', 'GET /metrics'];

let app: FastifyInstance;
let doc: Doc;
let operations: { name: string; method: string; path: string; op: Operation }[];
beforeAll(async () => {
  app = await build({ API_KEYS_FILE: KEYS_FILE });
  doc = (await app.inject('/docs/json')).json();
  operations = Object.entries(doc.paths).flatMap(([path, ops]) =>
    Object.entries(ops).map(([method, op]) => ({ name: `${method.toUpperCase()} ${path}`, method, path, op })),
  );
});
afterAll(() => app.close());

/** The example of a body: on its media type, or on the named schema it refers to. */
function exampleOf(media: { schema: { $ref?: string; example?: unknown }; example?: unknown }): unknown {
  if (media.example !== undefined) return media.example;
  if (media.schema.$ref) return doc.components.schemas[media.schema.$ref.replace('#/components/schemas/', '')]?.example;
  return media.schema.example;
}

describe('the OpenAPI document', () => {
  it('names every operation once, with a summary, a description and one tag defined at the top with a description', () => {
    const tags = new Map(doc.tags.map((t) => [t.name, t.description]));
    for (const { name, op } of operations) {
      expect({ name, operationId: op.operationId }).toEqual({ name, operationId: expect.stringMatching(/^[a-z][A-Za-z]+$/) });
      expect({ name, summary: Boolean(op.summary), description: Boolean(op.description) }).toEqual({ name, summary: true, description: true });
      expect({ name, tags: op.tags?.length }).toEqual({ name, tags: 1 });
      expect({ name, tag: tags.get(op.tags![0]!) }).toEqual({ name, tag: expect.any(String) });
    }
    const ids = operations.map((o) => o.op.operationId);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('describes every answer in words (no "Default Response")', () => {
    for (const { name, op } of operations) {
      for (const [status, response] of Object.entries(op.responses)) {
        expect({ name, status, description: response.description }).toEqual({ name, status, description: expect.stringMatching(/\w/) });
        expect(response.description).not.toBe('Default Response');
      }
    }
  });

  it('gives every protected operation bearer security and its 401, 403, 429 and 503; the public ones need no key', () => {
    for (const { name, op } of operations) {
      if (PUBLIC.includes(name)) {
        expect({ name, security: op.security }).toEqual({ name, security: [] });
        continue;
      }
      expect({ name, security: op.security }).toEqual({ name, security: [{ bearer: [] }] });
      expect({ name, statuses: ['401', '403', '429', '503'].filter((s) => op.responses[s]) }).toEqual({ name, statuses: ['401', '403', '429', '503'] });
    }
    expect(operations.filter((o) => PUBLIC.includes(o.name))).toHaveLength(PUBLIC.length);
  });

  it('says of security what the app does: without a key, a protected operation is 401 and a public one is not', async () => {
    for (const { name, method, path, op } of operations) {
      const url = path.replace(/\{[^}]+\}/g, 'x');
      const res = await app.inject({ method: method.toUpperCase() as 'GET', url });
      expect({ name, unauthorised: res.statusCode === 401 }).toEqual({ name, unauthorised: op.security!.length > 0 });
    }
    // The docs themselves are public too, and not operations of the API.
    expect((await app.inject('/docs/json')).statusCode).toBe(200);
    expect((await app.inject('/docs/')).statusCode).toBe(200);
  });

  it('documents the 4xx a body brings (400, 413, 415) on every operation that takes one', () => {
    for (const { name, op } of operations.filter((o) => o.op.requestBody)) {
      expect({ name, statuses: ['400', '413', '415'].filter((s) => op.responses[s]) }).toEqual({ name, statuses: ['400', '413', '415'] });
    }
  });

  it('gives an example for every request body and every JSON answer', () => {
    for (const { name, op } of operations) {
      for (const [type, media] of Object.entries(op.requestBody?.content ?? {})) {
        expect({ name, type, example: exampleOf(media) !== undefined }).toEqual({ name, type, example: true });
      }
      for (const [status, response] of Object.entries(op.responses)) {
        for (const [type, media] of Object.entries(response.content ?? {})) {
          expect({ name, status, type, example: exampleOf(media) !== undefined }).toEqual({ name, status, type, example: true });
        }
      }
    }
  });

  it('takes the registry import as the registry file in JSON or as CSV', () => {
    const body = doc.paths['/v1/registry/import']!.post!.requestBody!;
    expect(Object.keys(body.content).sort()).toEqual(['application/json', 'text/csv']);
    // The file as a request (its defaults optional), beside RegistryFile as export answers it.
    expect(body.content['application/json']!.schema.$ref).toBe('#/components/schemas/RegistryFileInput');
    expect(body.content['text/csv']!.example).toMatch(/^number,bankId,inboundOnly,authorisedSpcs\n\+44/);
  });

  it('gives a reason weight its real bounds, not the largest safe integer', () => {
    expect(JSON.stringify(doc)).not.toContain('"minimum":-9007199254740991');
    expect(JSON.stringify(doc.components.schemas.ScoreResponse)).toContain('"weight":{"type":"integer","minimum":-100,"maximum":100');
  });

  it('holds no schema that nothing refers to', () => {
    const json = JSON.stringify({ paths: doc.paths, components: doc.components });
    for (const name of Object.keys(doc.components.schemas)) {
      expect({ name, used: json.includes(`"#/components/schemas/${name}"`) }).toEqual({ name, used: true });
    }
  });
});

import type { FastifyPluginAsyncZod } from '@fastify/type-provider-zod';
import { z } from 'zod';
import {
  entryKey,
  planDeleteBank,
  planDeleteEntry,
  planImport,
  planPutBank,
  planPutEntry,
  readCsvRows,
  readJsonRows,
  RegistryAdminError,
  RegistryUnconfirmedError,
  toRegistryDocument,
  type Actor,
  type Plan,
  type RegistryIndex,
} from '../../registry';
import { HttpError } from '../errors';
import type { Principal } from '../auth';
import {
  AuditRecordSchema,
  authErrorResponses,
  BankBodySchema,
  BankSchema,
  EntryBodySchema,
  EntrySchema,
  ErrorResponseSchema,
  ImportResultSchema,
  RegistryFileSchema,
} from '../schemas';

const EDITORS = ['bank', 'admin'] as const;
const errors = { 400: ErrorResponseSchema, ...authErrorResponses, 404: ErrorResponseSchema, 409: ErrorResponseSchema, 422: ErrorResponseSchema, 503: ErrorResponseSchema };

const actorOf = (p: Principal): Actor => ({ name: p.name, bankId: p.role === 'admin' ? null : p.bankId });

/** Largest import body: 100,000 entries as JSON are about 10 MB. */
const IMPORT_BODY_LIMIT = 64 * 1024 * 1024;

export const registryRoutes: FastifyPluginAsyncZod = async (app) => {
  const { registryStore: store, config } = app.services;
  const country = config.defaultCountry;

  /** Runs a plan; the store's refusal to persist (Redis down) becomes a 503, never a 500. */
  async function run<T>(plan: (index: RegistryIndex) => Plan<T>): Promise<T> {
    try {
      return await store.change(plan);
    } catch (err) {
      if (err instanceof RegistryAdminError) throw err;
      app.log.error({ err }, 'registry change could not be made durable');
      // A timeout means Redis got the change and did not confirm it in time: it may yet be made.
      // So does a change Redis made but did not confirm on its disk: a crash may still lose it.
      if (err instanceof RegistryUnconfirmedError || /timed out/i.test((err as Error).message)) {
        throw new HttpError(503, 'registry_unconfirmed', 'the registry did not confirm the change in time: it may or may not have been made; read it back before trying again');
      }
      throw new HttpError(503, 'registry_unavailable', 'the registry cannot store changes right now; nothing was changed, try again');
    }
  }

  app.addContentTypeParser(['text/csv', 'text/plain'], { parseAs: 'string', bodyLimit: IMPORT_BODY_LIMIT }, (_req, body, done) => done(null, body));

  app.get(
    '/v1/registry/banks',
    {
      config: { roles: EDITORS },
      schema: { tags: ['registry'], summary: 'List banks (a bank key sees its own)', security: [{ bearer: [] }], response: { 200: z.object({ banks: z.array(BankSchema) }), ...authErrorResponses } },
    },
    async (request) => {
      const banks = store.index.allBanks();
      const bankId = actorOf(request.principal).bankId;
      return { banks: bankId === null ? banks : banks.filter((b) => b.id === bankId) };
    },
  );

  app.put(
    '/v1/registry/banks/:bankId',
    {
      config: { roles: EDITORS },
      schema: {
        tags: ['registry'],
        summary: 'Create or update a bank',
        security: [{ bearer: [] }],
        params: z.object({ bankId: z.string().max(64) }),
        body: BankBodySchema,
        response: { 200: BankSchema, 201: BankSchema, ...errors },
      },
    },
    async (request, reply) => {
      const { bank, created } = await run((i) => planPutBank(i, actorOf(request.principal), request.params.bankId, request.body, country));
      return reply.status(created ? 201 : 200).send(bank);
    },
  );

  app.delete(
    '/v1/registry/banks/:bankId',
    {
      config: { roles: EDITORS },
      schema: {
        tags: ['registry'],
        summary: 'Delete a bank (with ?cascade=true, its numbers and prefixes too)',
        security: [{ bearer: [] }],
        params: z.object({ bankId: z.string().max(64) }),
        querystring: z.object({ cascade: z.enum(['true', 'false']).optional() }),
        response: { 200: z.object({ deleted: z.string(), removedEntries: z.number().int() }), ...errors },
      },
    },
    async (request) => {
      const { removedEntries } = await run((i) => planDeleteBank(i, actorOf(request.principal), request.params.bankId, request.query.cascade === 'true'));
      return { deleted: request.params.bankId, removedEntries };
    },
  );

  for (const kind of ['number', 'prefix'] as const) {
    const path = `/v1/registry/${kind === 'number' ? 'numbers' : 'prefixes'}/:${kind}`;
    const params = z.object({ [kind]: z.string().min(1).max(64) }) as z.ZodObject<Record<typeof kind, z.ZodString>>;

    if (kind === 'number') {
      app.get(
        path,
        {
          config: { roles: EDITORS },
          schema: {
            tags: ['registry'],
            summary: 'What the registry says of a number: its own entry, or the longest prefix covering it',
            security: [{ bearer: [] }],
            params,
            response: { 200: EntrySchema.extend({ match: z.enum(['number', 'prefix']), bankName: z.string() }), ...errors },
          },
        },
        async (request) => {
          const key = entryKey('number', request.params[kind], country);
          const match = store.index.lookup(key);
          const bankId = actorOf(request.principal).bankId;
          // A bank key sees only its own bank's entries: others are simply not found.
          if (!match || (bankId !== null && match.bankId !== bankId)) throw new HttpError(404, 'not_found', `${key} is not in the registry`);
          const entry = store.index.entry(match.match, match.key)!;
          return { ...entry, match: match.match, bankName: match.bankName };
        },
      );
    }

    app.put(
      path,
      {
        config: { roles: EDITORS },
        schema: {
          tags: ['registry'],
          summary: `Create or update a ${kind}`,
          security: [{ bearer: [] }],
          params,
          body: EntryBodySchema,
          response: { 200: EntrySchema, 201: EntrySchema, ...errors },
        },
      },
      async (request, reply) => {
        const key = entryKey(kind, request.params[kind], country);
        const { entry, created } = await run((i) => planPutEntry(i, actorOf(request.principal), kind, key, request.body, country));
        return reply.status(created ? 201 : 200).send(entry);
      },
    );

    app.delete(
      path,
      {
        config: { roles: EDITORS },
        schema: { tags: ['registry'], summary: `Delete a ${kind}`, security: [{ bearer: [] }], params, response: { 200: z.object({ deleted: EntrySchema }), ...errors } },
      },
      async (request) => {
        const key = entryKey(kind, request.params[kind], country);
        const { entry } = await run((i) => planDeleteEntry(i, actorOf(request.principal), kind, key));
        return { deleted: entry };
      },
    );
  }

  app.get(
    '/v1/registry/export',
    {
      config: { roles: EDITORS },
      schema: { tags: ['registry'], summary: 'The registry file (a bank key gets its own bank)', security: [{ bearer: [] }], response: { 200: RegistryFileSchema, ...authErrorResponses } },
    },
    async (request) => {
      const bankId = actorOf(request.principal).bankId;
      const data = store.index.data();
      return toRegistryDocument(
        bankId === null ? data : { banks: data.banks.filter((b) => b.id === bankId), entries: data.entries.filter((e) => e.bankId === bankId) },
      );
    },
  );

  app.post(
    '/v1/registry/import',
    {
      config: { roles: EDITORS },
      bodyLimit: IMPORT_BODY_LIMIT,
      schema: {
        tags: ['registry'],
        summary: 'Import the registry file (JSON) or CSV (number,bankId,inboundOnly,authorisedSpcs)',
        description:
          '`mode=merge` (default) adds and updates; `mode=replace` makes the registry (a bank key: its own bank) exactly the import, ' +
          'and applies nothing when any line is rejected (then answers 422). CSV: header row, one entry a line, ' +
          '`authorisedSpcs` separated by `;`, a `prefix` column may stand for `number`.',
        security: [{ bearer: [] }],
        querystring: z.object({ mode: z.enum(['merge', 'replace']).default('merge') }),
        response: { 200: ImportResultSchema, 422: ImportResultSchema, ...authErrorResponses, 400: ErrorResponseSchema, 503: ErrorResponseSchema },
      },
    },
    async (request, reply) => {
      const rows = typeof request.body === 'string' ? readCsvRows(request.body) : readJsonRows(request.body);
      const result = await run((i) => planImport(i, actorOf(request.principal), rows, request.query.mode, country));
      return reply.status(result.applied ? 200 : 422).send(result);
    },
  );

  app.get(
    '/v1/registry/audit',
    {
      config: { roles: EDITORS },
      schema: {
        tags: ['registry'],
        summary: 'The audit log of registry changes, newest first (a bank key sees its own bank)',
        security: [{ bearer: [] }],
        querystring: z.object({ limit: z.coerce.number().int().min(1).max(1000).default(100) }),
        response: { 200: z.object({ records: z.array(AuditRecordSchema) }), ...authErrorResponses },
      },
    },
    async (request) => {
      const bankId = actorOf(request.principal).bankId;
      const records = await store.readAudit({ limit: request.query.limit, ...(bankId !== null ? { bankId } : {}) });
      return { records };
    },
  );
};

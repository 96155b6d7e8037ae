import { Readable } from 'node:stream';
import type { FastifyPluginAsyncZod, ZodTypeProvider } from '@fastify/type-provider-zod';
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { ValidationError } from '../../errors';
import {
  BankBodySchema,
  BankSchema,
  EntryBodySchema,
  ImportResultSchema,
  LoggedAuditRecordSchema,
  REJECTED_SHOWN,
  RegistryEntrySchema,
  RegistryFileSchema,
  type Actor,
  type ImportBody,
  type RegistryAdministration,
} from '../../registry';
import type { Principal } from '../../usecases';
import { HttpError } from '../errors';
import { logRegistryChange } from '../security-events';
import { errorAnswer } from '../schemas';

const EDITORS = ['bank', 'admin'] as const;
const forbidden = errorAnswer(
  "`forbidden`: the key's role may not use the route, or a bank key touched another bank's entry or created an entry outside its own bank's prefixes (an administrator adds those)",
);
/** The answers of a change to the registry, beyond the conventional ones. */
const editErrors = {
  403: forbidden,
  409: errorAnswer("`conflict`: a bank key may not place an entry inside another bank's range (or, deleting a bank, it still has entries: pass ?cascade=true)"),
  503: errorAnswer('The registry store did not confirm the change; read the entry before trying again'),
};

const CsvImportSchema = z.string().meta({
  description: 'A header row `number,bankId,inboundOnly,authorisedSpcs[,overseasOrigins]`, one entry a line; lists separated by `;`',
  examples: ['number,bankId,inboundOnly,authorisedSpcs\n+443450000000,examplebank,true,\n+442079460000,examplebank,false,1234;5678\n'],
});

const RegistryLookupSchema = RegistryEntrySchema.extend({ match: z.enum(['number', 'prefix']), bankName: z.string() }).meta({
  id: 'RegistryLookup',
  examples: [{ kind: 'number', key: '+442079460000', bankId: 'examplebank', inboundOnly: false, authorisedSpcs: ['1234'], match: 'number', bankName: 'Example Bank' }],
});

const BankListSchema = z.object({ banks: z.array(BankSchema) }).meta({ id: 'BankList', examples: [{ banks: BankSchema.meta()?.examples ?? [] }] });
const AuditPageSchema = z
  .object({ records: z.array(LoggedAuditRecordSchema), next: z.string().nullable().describe('cursor of the next, older page; null at the oldest') })
  .meta({
    id: 'AuditPage',
    examples: [
      {
        records: [
          {
            id: '1733565720000-0',
            at: '2026-12-07T10:02:00.000Z',
            actor: 'examplebank-admin',
            action: 'number.put',
            bankId: 'examplebank',
            target: '+442079460000',
            before: null,
            after: { bankId: 'examplebank', inboundOnly: false, authorisedSpcs: ['1234'] },
          },
        ],
        next: '1733565720000-0',
      },
    ],
  });

const actorOf = (p: Principal): Actor => ({ name: p.name, bankId: p.role === 'admin' ? null : p.bankId });

/** Largest import body: 32 MB, about 400,000 entries as JSON, more as CSV. */
export const IMPORT_BODY_LIMIT = 32 * 1024 * 1024;

const unsupported = (accepted: string) => new HttpError(415, 'unsupported_media_type', `content-type must be ${accepted}`);

/** Registry administration: each route validates, authorises, calls one use case of `registry` and shapes the answer. */
export const registryRoutes: FastifyPluginAsyncZod<{ registry: RegistryAdministration }> = async (app, { registry }) => {
  // Bodies here are JSON; anything else is refused before it is read (the import, below, also takes CSV).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, app.getDefaultJsonParser('error', 'error'));
  app.addContentTypeParser('*', (_req: FastifyRequest, _payload: unknown, done: (err: Error | null) => void) => done(unsupported('application/json')));

  app.get(
    '/v1/registry/banks',
    {
      config: { roles: EDITORS },
      schema: {
        operationId: 'listBanks',
        tags: ['registry'],
        summary: 'List banks (a bank key sees its own)',
        description: 'The organisations the registry protects, with their kind, whether they announce their calls, and their callback numbers.',
        response: { 200: BankListSchema.describe('The organisations') },
      },
    },
    async (request) => ({ banks: registry.listBanks(actorOf(request.principal)) }),
  );

  app.put(
    '/v1/registry/banks/:bankId',
    {
      config: { roles: EDITORS },
      schema: {
        operationId: 'putBank',
        tags: ['registry'],
        summary: 'Create or update a bank',
        description:
          "Creates the organisation (201) or replaces its fields (200). Each callback number must be one the registry gives to it (400 otherwise). A bank key may change its own bank only.",
        params: z.object({ bankId: z.string().max(64).describe('the organisation\'s id, e.g. examplebank') }),
        body: BankBodySchema,
        response: { 200: BankSchema.describe('Updated'), 201: BankSchema.describe('Created'), ...editErrors },
      },
    },
    async (request, reply) => {
      const { bank, created } = await registry.putBank(actorOf(request.principal), request.params.bankId, request.body);
      logRegistryChange(request, { action: created ? 'bank.create' : 'bank.update', target: `bank:${bank.id}` });
      return reply.status(created ? 201 : 200).send(bank);
    },
  );

  app.delete(
    '/v1/registry/banks/:bankId',
    {
      config: { roles: EDITORS },
      schema: {
        operationId: 'deleteBank',
        tags: ['registry'],
        summary: 'Delete a bank (with ?cascade=true, its numbers and prefixes too)',
        description: 'Without `cascade`, a bank that still has numbers or prefixes is 409. Written to the audit log.',
        params: z.object({ bankId: z.string().max(64).describe('the organisation\'s id, e.g. examplebank') }),
        querystring: z.object({ cascade: z.enum(['true', 'false']).optional().describe('true: delete its numbers and prefixes with it') }),
        response: {
          200: z
            .object({ deleted: z.string(), removedEntries: z.number().int().min(0) })
            .meta({ description: 'Deleted', examples: [{ deleted: 'examplebank', removedEntries: 3 }] }),
          404: errorAnswer('`not_found`: no bank of that id'),
          ...editErrors,
        },
      },
    },
    async (request) => {
      const { removedEntries } = await registry.deleteBank(actorOf(request.principal), request.params.bankId, request.query.cascade === 'true');
      logRegistryChange(request, { action: 'bank.delete', target: `bank:${request.params.bankId}` });
      return { deleted: request.params.bankId, removedEntries };
    },
  );

  for (const kind of ['number', 'prefix'] as const) {
    const path = `/v1/registry/${kind === 'number' ? 'numbers' : 'prefixes'}/:${kind}`;
    const params = z.object({ [kind]: z.string().min(1).max(64).describe(kind === 'number' ? 'the number, E.164 or national form (URL-encode the +), e.g. %2B442079460000' : 'the prefix, E.164 or national digits (URL-encode the +), e.g. %2B4420794600') }) as z.ZodObject<Record<typeof kind, z.ZodString>>;

    if (kind === 'number') {
      app.get(
        path,
        {
          config: { roles: EDITORS },
          schema: {
            operationId: 'lookupNumber',
            tags: ['registry'],
            summary: 'What the registry says of a number: its own entry, or the longest prefix covering it',
            description: 'The number may be given in any input form. A bank key sees only what the registry gives its own bank (another bank\'s entry: 403).',
            params,
            response: {
              200: RegistryLookupSchema.describe('The entry that covers the number, and whether it is its own (`number`) or a prefix'),
              403: forbidden,
              404: errorAnswer('`not_found`: no entry covers the number'),
            },
          },
        },
        async (request) => registry.lookupNumber(actorOf(request.principal), request.params[kind]),
      );
    }

    app.put(
      path,
      {
        config: { roles: EDITORS },
        schema: {
          operationId: kind === 'number' ? 'putNumber' : 'putPrefix',
          tags: ['registry'],
          summary: `Create or update a ${kind}`,
          description:
            kind === 'number'
              ? 'Creates (201) or replaces (200) the entry of one number. A bank key creates numbers only under a prefix of its own bank.'
              : 'Creates (201) or replaces (200) the entry of every number starting with the prefix (the longest match wins). No prefix may be shorter than REGISTRY_MIN_PREFIX_DIGITS digits (400).',
          params,
          body: EntryBodySchema,
          response: { 200: RegistryEntrySchema.describe('Updated'), 201: RegistryEntrySchema.describe('Created'), 404: errorAnswer('`not_found`: the bank the entry names does not exist'), ...editErrors },
        },
      },
      async (request, reply) => {
        const { entry, created } = await registry.putEntry(actorOf(request.principal), kind, request.params[kind], request.body);
        logRegistryChange(request, { action: `${kind}.${created ? 'create' : 'update'}`, target: `${kind}:${entry.key}` });
        return reply.status(created ? 201 : 200).send(entry);
      },
    );

    app.delete(
      path,
      {
        config: { roles: EDITORS },
        schema: {
          operationId: kind === 'number' ? 'deleteNumber' : 'deletePrefix',
          tags: ['registry'],
          summary: `Delete a ${kind}`,
          description: `Removes the ${kind}'s entry; a callback number it held leaves its bank's list. Written to the audit log.`,
          params,
          response: {
            200: z
              .object({ deleted: RegistryEntrySchema })
              .meta({ description: 'Deleted: the entry as it was', examples: [{ deleted: { kind: 'number', key: '+442079460000', bankId: 'examplebank', inboundOnly: false, authorisedSpcs: ['1234'] } }] }),
            404: errorAnswer(`\`not_found\`: no entry of that ${kind}`),
            ...editErrors,
          },
        },
      },
      async (request) => {
        const { entry } = await registry.deleteEntry(actorOf(request.principal), kind, request.params[kind]);
        logRegistryChange(request, { action: `${kind}.delete`, target: `${kind}:${entry.key}` });
        return { deleted: entry };
      },
    );
  }

  app.get(
    '/v1/registry/export',
    {
      config: { roles: EDITORS },
      schema: {
        operationId: 'exportRegistry',
        tags: ['registry'],
        summary: 'The registry file (a bank key gets its own bank)',
        description: 'Streamed as it is made: the registry as it was when the request arrived, whatever changes meanwhile.',
        response: { 200: RegistryFileSchema.describe('The registry file, as POST /v1/registry/import takes it') },
      },
    },
    async (request, reply) => {
      // A stream is sent as it is, past the response serialiser (and the type provider's typing
      // of send): the schema above documents what it carries.
      const stream = Readable.from(registry.exportFile(actorOf(request.principal)));
      return reply.type('application/json; charset=utf-8').send(stream as never);
    },
  );

  // The import reads its own body (JSON or CSV) in slices: fastify only collects the bytes.
  await app.register(async (plugin) => {
    const sub = plugin.withTypeProvider<ZodTypeProvider>();
    sub.removeAllContentTypeParsers();
    const raw = (format: ImportBody['format']) => (_req: FastifyRequest, bytes: Buffer, done: (err: Error | null, body?: ImportBody) => void) => done(null, { format, bytes });
    sub.addContentTypeParser('application/json', { parseAs: 'buffer', bodyLimit: IMPORT_BODY_LIMIT }, raw('json'));
    sub.addContentTypeParser('text/csv', { parseAs: 'buffer', bodyLimit: IMPORT_BODY_LIMIT }, raw('csv'));
    sub.addContentTypeParser('*', (_req: FastifyRequest, _payload: unknown, done: (err: Error | null) => void) => done(unsupported('application/json or text/csv')));

    sub.post(
      '/v1/registry/import',
      {
        config: { roles: EDITORS },
        bodyLimit: IMPORT_BODY_LIMIT,
        schema: {
          operationId: 'importRegistry',
          tags: ['registry'],
          summary: 'Import the registry file (JSON) or CSV (number,bankId,inboundOnly,authorisedSpcs[,overseasOrigins])',
          description:
            '`mode=merge` (default) adds and updates; `mode=replace` makes the registry (a bank key: its own bank) exactly the import, ' +
            'and applies nothing when any line is rejected (then answers 422). CSV: header row, one entry a line, ' +
            '`authorisedSpcs` and `overseasOrigins` separated by `;` (the `overseasOrigins` column may be left out), a `prefix` column may stand for `number`. Every line is held to the rules of a single edit ' +
            '(a bank key may not place an entry inside another bank\'s range, nor create one outside its own bank\'s prefixes; no new prefix shorter than REGISTRY_MIN_PREFIX_DIGITS), ' +
            "and the banks' callbackNumbers are judged against the registry as the import would leave it. The body is at most 32 MB (413 past it); " +
            `the answer lists the first ${REJECTED_SHOWN} rejected lines and counts them all (\`rejectedCount\`).`,
          documentedBody: {
            description: 'The registry file as JSON, or CSV with a header row',
            content: { 'application/json': RegistryFileSchema, 'text/csv': CsvImportSchema },
          },
          querystring: z.object({ mode: z.enum(['merge', 'replace']).default('merge').describe('merge: add and update; replace: make the registry exactly the import') }),
          response: {
            200: ImportResultSchema.describe('Applied: what was added, updated and removed, and the lines rejected'),
            422: ImportResultSchema.describe('mode=replace with rejected lines: nothing was applied'),
            403: forbidden,
            503: editErrors[503],
          },
        },
      },
      async (request, reply) => {
        const body = request.body as ImportBody | undefined;
        if (!body) throw new ValidationError('body', 'body: the registry file (JSON) or CSV is required', { code: 'bad_request' });
        const result = await registry.importFile(actorOf(request.principal), body, request.query.mode);
        if (result.applied) {
          const { bankId } = request.principal;
          logRegistryChange(request, {
            action: `import.${result.mode}`,
            target: request.principal.role === 'bank' && bankId !== null ? `bank:${bankId}` : 'registry',
            counts: { added: result.added, updated: result.updated, removed: result.removed, rejected: result.rejectedCount },
          });
        }
        return reply.status(result.applied ? 200 : 422).send(result);
      },
    );
  });

  app.get(
    '/v1/registry/audit',
    {
      config: { roles: EDITORS },
      schema: {
        operationId: 'listAuditRecords',
        tags: ['registry'],
        summary: 'The audit log of registry changes, newest first, a page at a time (a bank key sees its own bank)',
        description:
          'Pass `next` of one page as `before` to read the next, older page; `next` is null when nothing older is left. ' +
          'A page may hold fewer than `limit` records and still have a `next` (a bank key\'s page stops after scanning a stretch of the log).',
        querystring: z.object({
          limit: z.coerce.number().int().min(1).max(1000).default(100).describe('records a page, 1-1000'),
          before: z.string().min(1).max(64).optional().describe("a record's `id` or a page's `next`: only older records"),
        }),
        response: { 200: AuditPageSchema.describe('A page of the audit log, newest first') },
      },
    },
    async (request) => {
      const { limit, before } = request.query;
      return registry.auditPage(actorOf(request.principal), { limit, ...(before !== undefined ? { before } : {}) });
    },
  );
};

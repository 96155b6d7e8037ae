import type { FastifyPluginAsyncZod } from '@fastify/type-provider-zod';
import { z } from 'zod';
import type { Announcement } from '../../state/announcements';
import type { CallAnnouncements } from '../../usecases';
import { MAX_LIST_LIMIT, DEFAULT_LIST_LIMIT } from '../../usecases/announcements';
import { AnnouncementRequestSchema, AnnouncementSchema, errorAnswer } from '../schemas';

type AnnouncementView = z.infer<typeof AnnouncementSchema>;

/** The API's announcement, from the store's: the one place the two meet. */
const viewOf = (a: Announcement): AnnouncementView => ({
  id: a.id,
  from: a.from,
  to: a.to,
  bankId: a.bankId,
  at: new Date(a.at).toISOString(),
  expiresAt: new Date(a.expiresAt).toISOString(),
  ...(a.reference !== undefined ? { reference: a.reference } : {}),
});

const ANNOUNCERS = ['bank', 'admin'] as const;
const unavailable = errorAnswer(
  '`announcements_unavailable`: the shared store (Redis) did not confirm the change, which may or may not have been made (list before trying again); `announcements_full`: the embedded store holds as many announcements in their window as it keeps',
);

const AnnouncementListSchema = z
  .object({ announcements: z.array(AnnouncementSchema) })
  .meta({ id: 'AnnouncementList', examples: [{ announcements: AnnouncementSchema.meta()?.examples ?? [] }] });

/** 204 has no body: `type` says so to the OpenAPI document (zod writes a null as a nullable string for OpenAPI 3.0). */
const NO_BODY = z.null().meta({ description: 'withdrawn: no body', type: 'null' });

/** Announced bank calls: a bank tells the network which calls it is about to make. */
export const expectedCallRoutes: FastifyPluginAsyncZod<{ announcements: CallAnnouncements }> = async (app, { announcements }) => {
  const { metrics } = app.services;

  app.post(
    '/v1/calls/expected',
    {
      config: { roles: ANNOUNCERS },
      schema: {
        operationId: 'announceCall',
        tags: ['calls'],
        summary: 'Announce a call the bank is about to make',
        description:
          'Until `expiresAt` (now + `validForS`, default 600 s), every call from `from` to `to`, on every instance, gets ' +
          'BANK_CALL_EXPECTED (a strong negative weight), unless the call itself says otherwise (a carrier the registry does not ' +
          'authorise, a UK number from abroad, a failed or replayed PASSporT). When the organisation announces every call ' +
          '(`announcesCalls` in the registry), a call from its outbound numbers that no announcement matches gets ' +
          'BANK_CALL_UNEXPECTED (at least flag). A bank key announces from its own bank\'s outbound numbers only: another ' +
          "bank's number is 403, a number that is inbound-only or has no entry of the bank is 400. An admin key announces for " +
          "the bank whose entry covers `from`.",
        body: AnnouncementRequestSchema,
        response: { 201: AnnouncementSchema.describe('Announced: it matches calls from `from` to `to` until `expiresAt`, on every instance'), 503: unavailable },
      },
    },
    async (request, reply) => {
      const made = await announcements.announce(request.principal, request.body);
      metrics.announcement('created');
      return reply.status(201).send(viewOf(made));
    },
  );

  app.get(
    '/v1/calls/expected',
    {
      config: { roles: ANNOUNCERS },
      schema: {
        operationId: 'listAnnouncements',
        tags: ['calls'],
        summary: 'The announcements in their window now (a bank key sees its own bank\'s)',
        description: `Newest first, at most \`limit\` (default ${DEFAULT_LIST_LIMIT}, at most ${MAX_LIST_LIMIT}). \`from\` and \`to\` narrow the list and take any number form.`,
        querystring: z.object({
          from: z.string().max(256).optional().describe('only announcements from this number'),
          to: z.string().max(256).optional().describe('only announcements to this number'),
          limit: z.coerce
            .number({ error: 'limit must be a number' })
            .int({ error: 'limit must be a whole number' })
            .min(1, { error: 'limit must be at least 1' })
            .max(MAX_LIST_LIMIT, { error: `limit must be at most ${MAX_LIST_LIMIT}` })
            .default(DEFAULT_LIST_LIMIT)
            .describe(`announcements listed at most, 1-${MAX_LIST_LIMIT}`),
        }),
        response: { 200: AnnouncementListSchema.describe('The announcements in their window, newest first') },
      },
    },
    async (request) => {
      const { from, to, limit } = request.query;
      const list = await announcements.list(request.principal, { ...(from !== undefined ? { from } : {}), ...(to !== undefined ? { to } : {}), limit });
      return { announcements: list.map(viewOf) };
    },
  );

  app.delete(
    '/v1/calls/expected/:id',
    {
      config: { roles: ANNOUNCERS },
      schema: {
        operationId: 'withdrawAnnouncement',
        tags: ['calls'],
        summary: 'Withdraw an announcement',
        description:
          'From then on no call matches it, and the callback answers no longer list it. An id that is unknown, or another ' +
          "bank's (to a bank key), is 404.",
        params: z.object({ id: z.string().min(1).max(64).describe('the announcement\'s id, as its creation answered') }),
        response: { 204: NO_BODY, 404: errorAnswer('`not_found`: no announcement of that id (or none the key may see)'), 503: unavailable },
      },
    },
    async (request, reply) => {
      await announcements.withdraw(request.principal, request.params.id);
      metrics.announcement('withdrawn');
      return reply.status(204).send(null);
    },
  );
};

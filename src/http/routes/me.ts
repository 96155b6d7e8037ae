import type { FastifyPluginAsyncZod } from '@fastify/type-provider-zod';
import { z } from 'zod';

export const MeSchema = z
  .object({
    name: z.string().describe("the key's name in the key file (API_KEYS_FILE): what audit records and reports name as the actor"),
    role: z.enum(['switch', 'bank', 'admin']).describe('switch: scores and verifies calls; bank: held to its own bank; admin: everything'),
    bankId: z.string().nullable().describe('the bank a `bank` key is held to; null for other roles'),
  })
  .meta({ id: 'Me', example: { name: 'examplebank-callcentre', role: 'bank', bankId: 'examplebank' } });

/** Who the key is: what a client (the console) needs to show only what the key may do. */
export const meRoutes: FastifyPluginAsyncZod = async (app) => {
  app.get(
    '/v1/me',
    {
      config: { roles: ['switch', 'bank', 'admin'] },
      schema: {
        tags: ['ops'],
        operationId: 'whoAmI',
        summary: 'The key making the request: its name, role and bank',
        description:
          'Any valid key may ask. The console signs in with it: a key that answers here is valid, and its role says which ' +
          'screens to show. With no API keys configured (open on loopback) every request is the local administrator.',
        response: { 200: MeSchema.describe('The key: its name, role and bank') },
      },
    },
    async (request) => {
      const { name, role, bankId } = request.principal;
      return { name, role, bankId };
    },
  );
};

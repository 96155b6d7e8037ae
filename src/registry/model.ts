import { z } from 'zod';

/**
 * The registry's concepts, each defined once as a zod schema with its type inferred from it:
 * the bank, the registry entry (a number or a prefix), a line of the registry file, the registry
 * file itself, and what a caller ID matched. The file reader, the administration plans, the
 * routes and the OpenAPI document all use these.
 */

export const EntryKindSchema = z.enum(['number', 'prefix']);
export type EntryKind = z.infer<typeof EntryKindSchema>;

export const OrganisationKindSchema = z.enum(['bank', 'government', 'utility', 'other']);
export type OrganisationKind = z.infer<typeof OrganisationKindSchema>;

const OVERSEAS_ORIGINS_DESCRIPTION =
  'the `origin.trunk` or `origin.carrier` values authorised to present this number on calls from abroad (an offshore call centre): such a call gets CLI_OVERSEAS_AUTHORISED instead of CLI_DOMESTIC_FROM_ABROAD or CLI_MOBILE_FROM_ABROAD. A carrier listed here must also pass `authorisedSpcs`; a trunk needs only this list. At most 100; an empty list is the same as none';

/**
 * One overseas origin: a trunk name or carrier code as the switch passes it in `origin.trunk` or
 * `origin.carrier`, 1-64 printable ASCII characters. Not a space, and not `,` `;` or `|`: those
 * separate the values of the CSV import's list columns. ASCII only, because the value is
 * compared byte for byte with what the switch sends, and a look-alike Unicode letter would make
 * an entry that silently never matches.
 */
export const OVERSEAS_ORIGIN_RE = /^[!-+\--:<-{}~]{1,64}$/;
export const OVERSEAS_ORIGINS_MAX = 100;

/**
 * An organisation whose numbers the registry protects: a bank, a government body, a utility.
 * The contract calls it a bank (`bankId`, `/v1/registry/banks`), after the first ones it served.
 */
export const BankSchema = z
  .strictObject({
    id: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, {
      error: 'bank id must be 1-64 lowercase letters, digits, - or _',
    }),
    name: z.string().trim().min(1).max(200),
    kind: OrganisationKindSchema.optional().describe('what kind of organisation this is (absent: `bank`): the registry protects any organisation whose numbers are spoofed (HMRC is `government`)'),
    announcesCalls: z
      .boolean()
      .optional()
      .describe(
        '(absent: false) true: the organisation announces every call it makes from its outbound numbers (POST /v1/calls/expected), so a call from them that no announcement matches gets BANK_CALL_UNEXPECTED (at least flag)',
      ),
    callbackNumbers: z
      .array(z.string().max(64))
      .max(100)
      .default([])
      .describe(
        "the bank's official numbers customers can call back: each must be a number the registry gives to this bank (its own entry, or under its prefix; the longest match decides), otherwise 400. A callback number that the registry later moves away from the bank (deleted, or given to another bank) leaves this list, with an audit record",
      ),
  })
  .meta({ id: 'Bank', examples: [{ id: 'examplebank', name: 'Example Bank', callbackNumbers: ['+443450000000'] }] });

/** A bank as the registry holds it: callback numbers in E.164. */
export type Bank = z.output<typeof BankSchema>;

/** The body of PUT /v1/registry/banks/{bankId}: a bank without its id (the path names it); unknown fields are dropped. */
export const BankBodySchema = z
  .object(BankSchema.omit({ id: true }).shape)
  .meta({ id: 'BankBody', examples: [{ name: 'Example Bank', kind: 'bank', announcesCalls: true, callbackNumbers: ['+443450000000'] }] });

/** A validated registry entry: `key` is the normalised E.164 number or prefix. */
export const RegistryEntrySchema = z
  .object({
    kind: EntryKindSchema,
    key: z.string().describe('E.164 number or prefix'),
    bankId: z.string(),
    inboundOnly: z.boolean().describe('true: the bank only receives calls on it; never a genuine caller ID (do-not-originate)'),
    authorisedSpcs: z.array(z.string()).optional().describe('service provider codes allowed to originate calls from it; absent means any'),
    overseasOrigins: z.array(z.string()).optional().describe(OVERSEAS_ORIGINS_DESCRIPTION),
  })
  .meta({ id: 'RegistryEntry', examples: [{ kind: 'number', key: '+442079460000', bankId: 'examplebank', inboundOnly: false, authorisedSpcs: ['1234'] }] });

export type RegistryEntry = z.infer<typeof RegistryEntrySchema>;

/**
 * One line of the registry file's `numbers`: exactly one of `number` and `prefix`, as written.
 * The reader checks lines by hand (readEntryInput, format.ts) to the same rules, and more
 * strictly (service provider codes, exactly one key): a million of them are read at start.
 */
export const RegistryFileEntrySchema = z.object({
  number: z.string().max(64).optional(),
  prefix: z.string().max(64).optional(),
  bankId: z.string().min(1).max(64),
  inboundOnly: RegistryEntrySchema.shape.inboundOnly,
  authorisedSpcs: z.array(z.string().max(16)).max(1000).optional().describe('service provider codes allowed to originate calls from it; absent means any'),
  overseasOrigins: z
    .array(z.string().regex(OVERSEAS_ORIGIN_RE, { error: 'an overseas origin is 1-64 printable ASCII characters, without spaces, commas, semicolons or |' }))
    .max(OVERSEAS_ORIGINS_MAX)
    .optional()
    .describe(OVERSEAS_ORIGINS_DESCRIPTION),
});

export type NumberEntryInput = z.infer<typeof RegistryFileEntrySchema>;

/** The body of PUT /v1/registry/{numbers|prefixes}/{key}: a line without its key (the path names it). */
export const EntryBodySchema = RegistryFileEntrySchema.pick({ bankId: true, inboundOnly: true, authorisedSpcs: true, overseasOrigins: true }).meta({
  id: 'RegistryEntryBody',
  examples: [{ bankId: 'examplebank', inboundOnly: false, authorisedSpcs: ['1234'] }],
});

/** The registry file of the contract: what the service loads at start, and import and export use. */
export const RegistryFileSchema = z
  .object({
    banks: z.array(BankSchema),
    numbers: z.array(RegistryFileEntrySchema),
  })
  .meta({
    id: 'RegistryFile',
    examples: [
      {
        banks: [{ id: 'examplebank', name: 'Example Bank', callbackNumbers: ['+443450000000'] }],
        numbers: [
          { number: '+443450000000', bankId: 'examplebank', inboundOnly: true },
          { number: '+442079460000', bankId: 'examplebank', inboundOnly: false, authorisedSpcs: ['1234'] },
          { prefix: '+4420794601', bankId: 'examplebank', inboundOnly: true },
        ],
      },
    ],
  });

export type RegistryFile = z.infer<typeof RegistryFileSchema>;

/** What a caller ID matched in the registry: the entry, with its bank's name. */
export const RegistryMatchSchema = RegistryEntrySchema.pick({ bankId: true, inboundOnly: true, authorisedSpcs: true, overseasOrigins: true, key: true }).extend({
  bankName: z.string(),
  /** The organisation's kind; absent for a bank (the default), to keep a million cached matches small. */
  bankKind: OrganisationKindSchema.exclude(['bank']).optional(),
  /** Present (true) when the organisation announces all its calls. */
  announcesCalls: z.literal(true).optional(),
  match: EntryKindSchema,
});

export type RegistryMatch = z.infer<typeof RegistryMatchSchema>;

/** What an import did, or would have done (replace mode with rejected lines applies nothing). */
export const ImportResultSchema = z
  .object({
    mode: z.enum(['merge', 'replace']),
    applied: z.boolean().describe('false when mode=replace had rejected lines: nothing was changed'),
    added: z.number().int().min(0),
    updated: z.number().int().min(0),
    removed: z.number().int().min(0),
    rejected: z.array(z.object({ line: z.number().int().min(0), error: z.string() })).describe('the first 100 rejected lines, in line order'),
    rejectedCount: z.number().int().min(0).describe('how many lines were rejected in all'),
    callbackNumbersDropped: z
      .array(z.object({ bankId: z.string(), number: z.string() }))
      .describe("callback numbers that left a bank's list because the import moved them away from that bank"),
  })
  .meta({
    id: 'ImportResult',
    examples: [
      {
        mode: 'merge',
        applied: true,
        added: 2,
        updated: 1,
        removed: 0,
        rejected: [{ line: 4, error: 'number: +4420 is not a valid number' }],
        rejectedCount: 1,
        callbackNumbersDropped: [],
      },
    ],
  });

export type ImportResult = z.infer<typeof ImportResultSchema>;

/** Who changed what, when, from what to what. */
export const AuditRecordSchema = z.object({
  at: z.string(),
  actor: z.string(),
  action: z.string(),
  /** The bank the change concerns: a bank key reads only its own bank's records. */
  bankId: z.string().nullable(),
  target: z.string(),
  before: z.unknown(),
  after: z.unknown(),
});

export type AuditRecord = z.infer<typeof AuditRecordSchema>;

/** An audit record as the log answers it, with its place in the log. */
export const LoggedAuditRecordSchema = AuditRecordSchema.extend({
  id: z.string().describe("the record's place in the log: pass it as `before` to read older records"),
}).meta({ id: 'AuditRecord' });

/** The registry's content as entry objects (tests, Redis, small data). */
export interface RegistryData {
  banks: Bank[];
  entries: RegistryEntry[];
}

/** One thing wrong with a registry document. */
export interface RegistryProblem {
  /** Where the problem is: `banks[2]`, `numbers[14]`, or a CSV line number. */
  at: string;
  error: string;
}

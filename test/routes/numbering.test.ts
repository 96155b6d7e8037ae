import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { importOfcomFolder, writeNumbering } from '../../src/numbering';
import { build } from '../helpers/build';

/** Ofcom's number block statuses, imported from the sample files, reach the score. */
let app: FastifyInstance;
beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'callguard-numbering-'));
  writeNumbering(dir, importOfcomFolder(resolve(__dirname, '../fixtures/ofcom')).document);
  app = await build({ NUMBERING_DATA_DIR: dir });
});
afterAll(() => app.close());

const score = (from: string) => app.inject({ method: 'POST', url: '/v1/calls/score', payload: { from, to: '+447400123456' } }).then((r) => r.json());

it('a caller ID in a free block is CLI_INVALID, with the status in the message', async () => {
  const json = await score('+441134962000');
  expect(json.verdict).toBe('block');
  expect(json.reasons).toEqual(expect.arrayContaining([expect.objectContaining({ code: 'CLI_INVALID', message: expect.stringMatching(/free \(not allocated\)/) })]));
});

it('a caller ID in an allocated block is not', async () => {
  const json = await score('+441134961000');
  expect(json.reasons.map((r: { code: string }) => r.code)).not.toContain('CLI_INVALID');
});

it('a configured folder without data stops the start with a message naming the import', async () => {
  await expect(build({ NUMBERING_DATA_DIR: mkdtempSync(join(tmpdir(), 'callguard-empty-')) })).rejects.toThrow(/numbering:import/);
});

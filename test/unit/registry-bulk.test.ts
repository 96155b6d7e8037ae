import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config';
import { planImport, planPutEntry, readCsvRows, readJsonRows, type Actor } from '../../src/registry/admin';
import { exportChunks, readCsvImport, readJsonImport } from '../../src/registry/bulk';
import { FileRegistryBackend } from '../../src/registry/file-backend';
import { parseRegistryDocument } from '../../src/registry/format';
import type { AuditRecord } from '../../src/registry/model';
import { RegistryIndex } from '../../src/registry/registry-index';
import { RegistryStore } from '../../src/registry/store';
import { answered } from '../helpers/answered';

const ADMIN: Actor = { name: 'ops-admin', bankId: null };

describe('reading a JSON import in slices', () => {
  const read = (text: string) => readJsonImport(Buffer.from(text));

  it('reads what JSON.parse reads, element by element, whatever the strings hold', async () => {
    const doc = {
      banks: [{ id: 'b', name: 'Bank "B" [], {x}' }],
      version: 'v1',
      numbers: Array.from({ length: 2500 }, (_, n) => ({ number: `+4420794${String(n).padStart(5, '0')}`, bankId: n % 3 ? 'b' : 'x\\"],{', inboundOnly: n % 2 === 0 })),
    };
    for (const text of [JSON.stringify(doc), JSON.stringify(doc, null, 2)]) {
      const input = await read(text);
      expect(input).toEqual(readJsonRows(JSON.parse(text)));
    }
    expect(await read('{"numbers":[]}')).toEqual({ banks: null, rows: [], rejected: [] });
    expect(await read(' { "numbers" : [ ] , "banks": [] } ')).toEqual({ banks: [], rows: [], rejected: [] });
  });

  it('refuses what JSON.parse refuses, and says what is wrong with the shape', async () => {
    for (const bad of ['{"numbers":[1,]}', '{"numbers":[,1]}', '{"numbers":[1 2]}', '{"numbers":[{"a":1}', '{"numbers":[1]', '{"numbers":[1]}x', '{"numbers":["\\"]}']) {
      await expect(answered(read(bad))).resolves.toMatchObject({ status: 400, code: 'invalid_json' });
    }
    await expect(read('[1,2]')).rejects.toThrow(/object/);
    await expect(read('{"numbers":"all"}')).rejects.toThrow(/numbers must be an array/);
    await expect(read('{"banks":{},"numbers":[]}')).rejects.toThrow(/banks must be an array/);
    await expect(read('{"numbers":[],"numbers":[]}')).rejects.toThrow(/more than once/);
  });
});

describe('reading a CSV import in slices', () => {
  it('never cuts a record, and numbers lines from the top of the body', async () => {
    const lines = ['number,bankId,inboundOnly,authorisedSpcs'];
    for (let n = 0; n < 20_000; n++) {
      // A quoted field holding a line break, now and then: a slice must not end inside it.
      lines.push(n % 997 === 0 ? `+4420794${String(n).padStart(5, '0')},"b",maybe,"12\n34"` : `+4420794${String(n).padStart(5, '0')},b,${n % 2 === 0},1234`);
    }
    const text = lines.join('\n') + '\n';
    expect(text.length).toBeGreaterThan(3 * 128 * 1024);
    const sliced = await readCsvImport(Buffer.from(text));
    expect(sliced).toEqual(readCsvRows(text));
    expect(sliced.rejected[1]).toMatchObject({ line: expect.any(Number), error: 'inboundOnly must be true or false, not "maybe"' });
    expect(sliced.rows.length + sliced.rejected.length).toBe(20_000);
  });

  it('reports malformed CSV with its line', async () => {
    const text = `number,bankId,inboundOnly\n${'+442079460000,b,true\n'.repeat(10_000)}"unterminated,b,true\n`;
    await expect(answered(readCsvImport(Buffer.from(text)))).resolves.toMatchObject({ status: 400, code: 'invalid_csv' });
  });
});

describe('export in chunks', () => {
  it('makes the registry file, for every bank or one', async () => {
    const doc = {
      banks: [{ id: 'b', name: 'B', callbackNumbers: [] }, { id: 'c', name: 'C', callbackNumbers: [] }],
      numbers: [
        ...Array.from({ length: 4500 }, (_, n) => ({ number: `+4420794${String(n).padStart(5, '0')}`, bankId: n % 2 ? 'b' : 'c', inboundOnly: true })),
        { prefix: '+4411349', bankId: 'c', inboundOnly: false, authorisedSpcs: ['1'] },
      ],
    };
    const index = new RegistryIndex(parseRegistryDocument(doc, 'GB').data, 'v');
    const text = async (bankId: string | null) => {
      let out = '';
      for await (const chunk of exportChunks(index.view(), bankId)) out += chunk;
      return JSON.parse(out) as typeof doc;
    };
    expect(await text(null)).toEqual(doc);
    const c = await text('c');
    expect(c.banks).toEqual([doc.banks[1]]);
    expect(c.numbers).toEqual(doc.numbers.filter((n) => n.bankId === 'c'));
  });
});

describe('the audit file, rotated and read by page', () => {
  it('rotates by size, keeps a few files, and pages back across them with stable ids', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'callguard-audit-'));
    const seed = () => ({ data: parseRegistryDocument({ banks: [{ id: 'b', name: 'B' }], numbers: [] }, 'GB').data, version: 's' });
    const store = await RegistryStore.open(new FileRegistryBackend(dir, 'GB', 1000, { rotateBytes: 2000, keep: 3 }), seed);
    for (let n = 0; n < 60; n++) await store.change((i) => planPutEntry(i, ADMIN, 'number', `+4420794607${String(n).padStart(2, '0')}`, { bankId: 'b', inboundOnly: n % 2 === 0 }, 'GB'));
    const rotated = readdirSync(dir).filter((f) => /^audit-\d{16}\.jsonl$/.test(f));
    expect(rotated).toHaveLength(3);

    const first = await store.readAuditPage({ limit: 5 });
    expect(first.records[0]).toMatchObject({ target: 'number:+442079460759' });
    // Every page, to the oldest kept record: newest first, ids strictly falling, nothing twice.
    const all: (AuditRecord & { id: string })[] = [];
    let before: string | undefined;
    do {
      const page = await store.readAuditPage({ limit: 7, ...(before ? { before } : {}) });
      all.push(...page.records);
      before = page.next ?? undefined;
    } while (before);
    const ids = all.map((r) => Number(r.id));
    expect(ids).toEqual([...ids].sort((a, b) => b - a));
    expect(new Set(ids).size).toBe(ids.length);
    const numbers = all.map((r) => Number(r.target.slice(-2)));
    expect(numbers).toEqual(Array.from({ length: numbers.length }, (_, k) => 59 - k));
    // Older records went with the oldest files: what is left is the newest stretch.
    expect(numbers.length).toBeLessThan(60);
    expect(numbers.length).toBeGreaterThan(10);
    // An id read before a rotation still finds the same place afterwards.
    const again = await store.readAuditPage({ limit: 1, before: all[3]!.id });
    expect(again.records[0]).toEqual(all[4]);
    await store.close();
  });
});

describe('REGISTRY_MIN_PREFIX_DIGITS', () => {
  it('is a whole number from 1 to 15, 6 by default', () => {
    expect(loadConfig({}).registryMinPrefixDigits).toBe(6);
    expect(loadConfig({ REGISTRY_MIN_PREFIX_DIGITS: '8' }).registryMinPrefixDigits).toBe(8);
    for (const bad of ['0', '16', 'six', '6.5']) expect(() => loadConfig({ REGISTRY_MIN_PREFIX_DIGITS: bad })).toThrow(/REGISTRY_MIN_PREFIX_DIGITS/);
  });

  it('holds in plans made without the route too', async () => {
    const index = new RegistryIndex(parseRegistryDocument({ banks: [{ id: 'b', name: 'B' }], numbers: [] }, 'GB').data, 'v');
    expect(() => planPutEntry(index, ADMIN, 'prefix', '+44207', { bankId: 'b', inboundOnly: true }, 'GB')).toThrow(/REGISTRY_MIN_PREFIX_DIGITS/);
    expect(planPutEntry(index, ADMIN, 'prefix', '+44207', { bankId: 'b', inboundOnly: true }, 'GB', 5).result.created).toBe(true);
    const plan = await planImport(index, ADMIN, readCsvRows('prefix,bankId,inboundOnly\n+4420,b,true\n+442079,b,true\n'), 'merge', 'GB');
    expect(plan.result).toMatchObject({ added: 1, rejectedCount: 1, rejected: [{ line: 2 }] });
  });
});

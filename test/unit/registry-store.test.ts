import { appendFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { planDeleteBank, planDeleteEntry, planImport, planPutBank, planPutEntry, readCsvRows, readJsonRows, type Actor } from '../../src/registry/admin';
import { FileRegistryBackend } from '../../src/registry/file-backend';
import { parseRegistryDocument } from '../../src/registry/format';
import { RegistryStore } from '../../src/registry/store';
import { answered } from '../helpers/answered';
import { ValidationError } from '../../src/errors';

const ADMIN: Actor = { name: 'ops-admin', bankId: null };
const BANK: Actor = { name: 'example-bank-key', bankId: 'examplebank' };
const seedDoc = {
  banks: [
    { id: 'examplebank', name: 'Example Bank', callbackNumbers: ['+443450000000'] },
    { id: 'other', name: 'Other Bank' },
  ],
  numbers: [
    { number: '+443450000000', bankId: 'examplebank', inboundOnly: true },
    { number: '+441614960200', bankId: 'other', inboundOnly: false },
  ],
};
const seed = () => ({ data: parseRegistryDocument(seedDoc, 'GB').data, version: 'seed' });

async function open(dir = mkdtempSync(join(tmpdir(), 'callguard-store-')), compactEvery = 1000) {
  const store = await RegistryStore.open(new FileRegistryBackend(dir, 'GB', compactEvery), seed);
  return { store, dir };
}

describe('registry administration plans', () => {
  it('a bank key edits its own bank and nothing else', async () => {
    const { store } = await open();
    // The range the registry gives the bank, where it may add numbers of its own.
    await store.change((i) => planPutEntry(i, ADMIN, 'prefix', '+44207946', { bankId: 'examplebank', inboundOnly: false }, 'GB'));
    const put = await store.change((i) => planPutEntry(i, BANK, 'number', '+442079460000', { bankId: 'examplebank', inboundOnly: false, authorisedSpcs: ['1234'] }, 'GB'));
    expect(put.created).toBe(true);
    expect(store.index.lookup('+442079460000')?.authorisedSpcs).toEqual(['1234']);
    await expect(answered(store.change((i) => planPutEntry(i, BANK, 'number', '+442079460001', { bankId: 'other', inboundOnly: true }, 'GB')))).resolves.toMatchObject({ status: 403 });
    await expect(answered(store.change((i) => planDeleteEntry(i, BANK, 'number', '+441614960200')))).resolves.toMatchObject({ status: 403 });
    await expect(answered(store.change((i) => planPutBank(i, BANK, 'other', { name: 'Mine now' }, 'GB')))).resolves.toMatchObject({ status: 403 });
    // Taking over another bank's number by re-assigning it is refused too.
    await expect(answered(store.change((i) => planPutEntry(i, BANK, 'number', '+441614960200', { bankId: 'examplebank', inboundOnly: true }, 'GB')))).resolves.toMatchObject({ status: 403 });
    await store.close();
  });

  it('a bank key adds entries only inside a prefix of its own bank, and never widens one', async () => {
    const { store } = await open();
    await store.change((i) => planPutEntry(i, ADMIN, 'prefix', '+4420794601', { bankId: 'examplebank', inboundOnly: true }, 'GB'));
    const put = (kind: 'number' | 'prefix', key: string, inboundOnly = true) => store.change((i) => planPutEntry(i, BANK, kind, key, { bankId: 'examplebank', inboundOnly }, 'GB'));
    const adminMust = { status: 403, code: 'forbidden', message: expect.stringMatching(/an administrator must add numbers outside the bank's own ranges/) };
    // Numbers nobody holds, and a range nobody holds.
    await expect(answered(put('number', '+447911123456'))).resolves.toMatchObject(adminMust);
    await expect(answered(put('prefix', '+447911'))).resolves.toMatchObject(adminMust);
    // Broader than its own prefix, or the prefix its own number would make.
    await expect(answered(put('prefix', '+442079460'))).resolves.toMatchObject(adminMust);
    await expect(answered(put('prefix', '+443450000000'))).resolves.toMatchObject(adminMust);
    expect(store.index.lookup('+447911123456')).toBeNull();
    // Inside its own prefix, and its own existing entries: fine.
    expect((await put('number', '+442079460155', false)).created).toBe(true);
    expect((await put('prefix', '+44207946019')).created).toBe(true);
    expect((await put('number', '+443450000000', false)).created).toBe(false);
    // An import with a bank key: the same, line by line.
    const csv = 'number,bankId,inboundOnly\n+447911123456,examplebank,true\n+442079460156,examplebank,true\n';
    const merged = await store.change((i) => planImport(i, BANK, readCsvRows(csv), 'merge', 'GB'));
    expect(merged).toMatchObject({ applied: true, added: 1, rejected: [{ line: 2, error: expect.stringMatching(/administrator must add/) }] });
    const wider = await store.change((i) => planImport(i, BANK, readJsonRows({ numbers: [{ prefix: '+44207946', bankId: 'examplebank', inboundOnly: false }] }), 'merge', 'GB'));
    expect(wider).toMatchObject({ added: 0, rejectedCount: 1 });
    await store.close();
  });

  it('validates entries and names what is wrong', async () => {
    const { store } = await open();
    await expect(store.change((i) => planPutEntry(i, ADMIN, 'number', '+442079460000', { bankId: 'examplebank' }, 'GB'))).rejects.toThrow(/inboundOnly/);
    await expect(answered(store.change((i) => planPutEntry(i, ADMIN, 'number', '+442079460000', { bankId: 'nobank', inboundOnly: true }, 'GB')))).resolves.toMatchObject({ status: 422 });
    await expect(store.change((i) => planPutBank(i, ADMIN, 'newbank', { name: '' }, 'GB'))).rejects.toBeInstanceOf(ValidationError);
    await store.close();
  });

  it('refuses to delete a bank that still has numbers unless told to cascade', async () => {
    const { store } = await open();
    await expect(answered(store.change((i) => planDeleteBank(i, ADMIN, 'other', false)))).resolves.toMatchObject({ status: 409 });
    expect(await store.change((i) => planDeleteBank(i, ADMIN, 'other', true))).toEqual({ removedEntries: 1 });
    expect(store.index.lookup('+441614960200')).toBeNull();
    expect(store.index.bank('other')).toBeUndefined();
    await store.close();
  });

  it('changes the version with every change, and only then', async () => {
    const { store } = await open();
    const v0 = store.version;
    await store.change((i) => planPutBank(i, ADMIN, 'newbank', { name: 'New Bank' }, 'GB'));
    expect(store.version).not.toBe(v0);
    const v1 = store.version;
    await expect(store.change((i) => planDeleteEntry(i, ADMIN, 'number', '+449999'))).rejects.toThrow();
    expect(store.version).toBe(v1);
    await store.close();
  });
});

describe('imports', () => {
  it('merges CSV, rejecting broken lines with their line numbers', async () => {
    const { store } = await open();
    const csv = [
      'number,bankId,inboundOnly,authorisedSpcs',
      '+442079460000,examplebank,false,1234;5678',
      'not-a-number,examplebank,true,',
      '+442079460001,nobank,true,',
      '+442079460002,examplebank,maybe,',
      '"020 7946 0003",examplebank,yes,',
      '+443450000000,examplebank,true,',
    ].join('\n');
    const result = await store.change((i) => planImport(i, ADMIN, readCsvRows(csv), 'merge', 'GB'));
    expect(result).toMatchObject({ applied: true, added: 2, updated: 1, removed: 0 });
    expect(result.rejected.map((r) => r.line)).toEqual([3, 4, 5]);
    expect(result.rejected[0]?.error).toMatch(/not a valid phone number/);
    expect(result.rejected[1]?.error).toMatch(/nobank/);
    expect(result.rejected[2]?.error).toMatch(/inboundOnly/);
    expect(store.index.lookup('+442079460000')?.authorisedSpcs).toEqual(['1234', '5678']);
    expect(store.index.lookup('+442079460003')?.inboundOnly).toBe(true);
    await store.close();
  });

  it('replace applies nothing when any line is rejected', async () => {
    const { store } = await open();
    const before = store.version;
    const result = await store.change((i) =>
      planImport(
        i,
        ADMIN,
        readJsonRows({
          banks: seedDoc.banks,
          numbers: [
            { number: '+443450000000', bankId: 'examplebank', inboundOnly: true },
            { number: 'x', bankId: 'examplebank', inboundOnly: true },
          ],
        }),
        'replace',
        'GB',
      ),
    );
    expect(result).toMatchObject({ applied: false, added: 0, removed: 0, rejected: [{ line: 2 }], rejectedCount: 1 });
    expect(store.version).toBe(before);
    expect(store.index.lookup('+443450000000')).not.toBeNull();
    await store.close();
  });

  it('replace makes the registry exactly the import', async () => {
    const { store } = await open();
    const result = await store.change((i) =>
      planImport(i, ADMIN, readJsonRows({ banks: [{ ...seedDoc.banks[0], callbackNumbers: [] }], numbers: [{ prefix: '+4420794601', bankId: 'examplebank', inboundOnly: true }] }), 'replace', 'GB'),
    );
    expect(result).toMatchObject({ applied: true, added: 1, removed: 2 });
    expect(store.index.size).toEqual({ banks: 1, numbers: 0, prefixes: 1 });
    await store.close();
  });

  it("a bank key's replace touches only its own bank", async () => {
    const { store } = await open();
    await store.change((i) => planPutEntry(i, ADMIN, 'prefix', '+44207946', { bankId: 'examplebank', inboundOnly: false }, 'GB'));
    const mine = readJsonRows({ numbers: [{ prefix: '+44207946', bankId: 'examplebank', inboundOnly: false }, { number: '+442079460000', bankId: 'examplebank', inboundOnly: false }] });
    const result = await store.change((i) => planImport(i, BANK, mine, 'replace', 'GB'));
    expect(result).toMatchObject({ applied: true, added: 1, updated: 1, removed: 1 });
    expect(store.index.lookup('+441614960200')?.bankId).toBe('other');
    const refused = await store.change((i) => planImport(i, BANK, readCsvRows('number,bankId,inboundOnly\n+442079460009,other,false\n'), 'merge', 'GB'));
    expect(refused.rejected[0]?.error).toMatch(/may only change bank "examplebank"/);
    await store.close();
  });

  it('reports malformed CSV as a 400', () => {
    expect(() => readCsvRows('number,bankId,inboundOnly\n"unterminated,examplebank,true\n')).toThrow(ValidationError);
  });
});

describe('durability on the embedded default', () => {
  it('a restart loses nothing that was acknowledged, audit included', async () => {
    const { store, dir } = await open();
    await store.change((i) => planPutEntry(i, ADMIN, 'number', '+442079460000', { bankId: 'examplebank', inboundOnly: false }, 'GB'));
    await store.change((i) => planDeleteEntry(i, ADMIN, 'number', '+441614960200'));
    const version = store.version;
    await store.close();

    const { store: again } = await open(dir);
    expect(again.version).toBe(version);
    expect(again.index.lookup('+442079460000')?.bankId).toBe('examplebank');
    expect(again.index.lookup('+441614960200')).toBeNull();
    const audit = await again.readAudit({ limit: 10 });
    expect(audit.map((a) => a.action)).toEqual(['number.delete', 'number.create']);
    expect(audit[0]).toMatchObject({ actor: 'ops-admin', bankId: 'other', target: 'number:+441614960200', after: null });
    expect(audit[0]?.before).toMatchObject({ key: '+441614960200' });
    expect(await again.readAudit({ limit: 10, bankId: 'examplebank' })).toHaveLength(1);
    await again.close();
  });

  it('concurrent edits are all kept, in order', async () => {
    const { store, dir } = await open();
    await Promise.all(
      Array.from({ length: 50 }, (_, n) =>
        store.change((i) => planPutEntry(i, ADMIN, 'number', `+4420794600${String(n).padStart(2, '0')}`, { bankId: 'examplebank', inboundOnly: n % 2 === 0 }, 'GB')),
      ),
    );
    await store.close();
    const { store: again } = await open(dir);
    expect(again.index.size.numbers).toBe(52);
    await again.close();
  });

  it('folds the journal into the snapshot and still restarts to the same registry', async () => {
    const { store, dir } = await open(undefined, 5);
    for (let n = 0; n < 12; n++) {
      await store.change((i) => planPutEntry(i, ADMIN, 'prefix', `+44161496${n}`, { bankId: 'other', inboundOnly: true }, 'GB'));
    }
    const version = store.version;
    await store.close();
    expect(readFileSync(join(dir, 'registry.journal'), 'utf8').trim().split('\n')).toHaveLength(2);
    const { store: again } = await open(dir, 5);
    expect(again.version).toBe(version);
    expect(again.index.size.prefixes).toBe(12);
    await again.close();
  });

  it("keeps an organisation's kind and an entry's overseas origins through the journal and the snapshot", async () => {
    const { store, dir } = await open(undefined, 3);
    await store.change((i) => planPutBank(i, ADMIN, 'other', { name: 'Other Water', kind: 'utility', announcesCalls: true }, 'GB'));
    await store.change((i) => planPutEntry(i, ADMIN, 'number', '+441614960200', { bankId: 'other', inboundOnly: false, overseasOrigins: ['trunk-offshore-in'] }, 'GB'));
    await store.close();
    const expected = { bankKind: 'utility', announcesCalls: true, overseasOrigins: ['trunk-offshore-in'] };
    // From the journal...
    const { store: second } = await open(dir, 3);
    expect(second.index.lookup('+441614960200')).toMatchObject(expected);
    await second.change((i) => planPutEntry(i, ADMIN, 'prefix', '+4416149603', { bankId: 'other', inboundOnly: false, overseasOrigins: ['7788'] }, 'GB'));
    await second.close();
    // ...and from the snapshot the third change folded it into.
    expect(readFileSync(join(dir, 'registry.journal'), 'utf8')).toBe('');
    const { store: third } = await open(dir, 3);
    expect(third.index.lookup('+441614960200')).toMatchObject(expected);
    expect(third.index.lookup('+441614960399')).toMatchObject({ match: 'prefix', overseasOrigins: ['7788'] });
    await third.close();
  });

  it('ignores a torn last journal line (a crash mid-write) and keeps appending safely', async () => {
    const { store, dir } = await open();
    await store.change((i) => planPutBank(i, ADMIN, 'newbank', { name: 'New Bank' }, 'GB'));
    await store.close();
    appendFileSync(join(dir, 'registry.journal'), '{"version":"torn","mutations":[{"type":"ba');
    const { store: second } = await open(dir);
    expect(second.index.bank('newbank')?.name).toBe('New Bank');
    await second.change((i) => planPutBank(i, ADMIN, 'later', { name: 'Later Bank' }, 'GB'));
    await second.close();
    const { store: third } = await open(dir);
    expect(third.index.bank('later')?.name).toBe('Later Bank');
    await third.close();
  });
});

describe('the data folder before and after the first change', () => {
  it('holds nothing until a change, then pins the registry it changed', async () => {
    const { readdirSync } = await import('node:fs');
    const { store, dir } = await open();
    expect(readdirSync(dir)).toEqual([]);
    await store.change((i) => planPutBank(i, ADMIN, 'newbank', { name: 'New Bank' }, 'GB'));
    await store.close();
    expect(readdirSync(dir).sort()).toEqual(['audit.jsonl', 'registry.journal', 'registry.snapshot']);
    // A different seed no longer matters: the data folder holds the registry now.
    const again = await RegistryStore.open(new FileRegistryBackend(dir, 'GB'), () => ({ data: { banks: [], entries: [] }, version: 'other' }));
    expect(again.index.bank('newbank')?.name).toBe('New Bank');
    expect(again.index.bank('examplebank')).toBeDefined();
    await again.close();
  });
});

describe('snapshots written by earlier versions', () => {
  it('a JSON snapshot (registry.json) still loads with its journal, and is replaced when the journal is folded', async () => {
    const { readdirSync, writeFileSync } = await import('node:fs');
    const dir = mkdtempSync(join(tmpdir(), 'callguard-store-'));
    // What an earlier version wrote: the registry file plus its version, and a journal on top.
    writeFileSync(join(dir, 'registry.json'), JSON.stringify({ version: 'old-v1', ...seedDoc, banks: seedDoc.banks.map((b) => ({ callbackNumbers: [], ...b })) }));
    const change = { type: 'entry', kind: 'number', key: '+442079460000', value: { kind: 'number', key: '+442079460000', bankId: 'other', inboundOnly: true } };
    writeFileSync(join(dir, 'registry.journal'), JSON.stringify({ version: 'old-v2', mutations: [change] }) + '\n');

    const { store } = await open(dir, 3);
    expect(store.version).toBe('old-v2');
    expect(store.index.lookup('+443450000000')?.bankId).toBe('examplebank');
    expect(store.index.lookup('+442079460000')).toMatchObject({ bankId: 'other', inboundOnly: true });
    await store.change((i) => planPutBank(i, ADMIN, 'newbank', { name: 'New Bank' }, 'GB'));
    expect(readdirSync(dir).sort()).toEqual(['audit.jsonl', 'registry.journal', 'registry.json']);
    await store.change((i) => planPutEntry(i, ADMIN, 'number', '+442079460001', { bankId: 'newbank', inboundOnly: false }, 'GB'));
    const version = store.version;
    await store.close();
    // Three journal lines: folded into the compact snapshot, which takes the old one's place.
    expect(readdirSync(dir).sort()).toEqual(['audit.jsonl', 'registry.journal', 'registry.snapshot']);

    const { store: again } = await open(dir, 3);
    expect(again.version).toBe(version);
    expect(again.index.size).toEqual({ banks: 3, numbers: 4, prefixes: 0 });
    expect(again.index.lookup('+442079460000')).toMatchObject({ bankId: 'other', inboundOnly: true });
    expect(again.index.lookup('+442079460001')?.bankId).toBe('newbank');
    await again.close();
  });

  it('a damaged snapshot stops the start, naming the file', async () => {
    const { writeFileSync } = await import('node:fs');
    const { store, dir } = await open();
    await store.change((i) => planPutBank(i, ADMIN, 'newbank', { name: 'New Bank' }, 'GB'));
    await store.close();
    writeFileSync(join(dir, 'registry.snapshot'), readFileSync(join(dir, 'registry.snapshot')).subarray(0, 100));
    await expect(open(dir)).rejects.toThrow(/registry snapshot .*registry\.snapshot is damaged/);
  });

  it('a snapshot whose header rotted (a bank renamed, still valid JSON) is damaged too', async () => {
    const { writeFileSync } = await import('node:fs');
    const { store, dir } = await open();
    await store.change((i) => planPutBank(i, ADMIN, 'newbank', { name: 'New Bank' }, 'GB'));
    await store.close();
    const file = join(dir, 'registry.snapshot');
    writeFileSync(file, Buffer.from(readFileSync(file).toString('latin1').replace('Other Bank', 'Otter Bank'), 'latin1'));
    await expect(open(dir)).rejects.toThrow(/checksum mismatch/);
  });
});

import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, copyFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import fc from 'fast-check';
import {
  compact,
  decodeOfcomFile,
  importOfcomFolder,
  loadNumbering,
  normaliseStatus,
  NumberingDataError,
  NumberingIndex,
  NUMBERING_FILE,
  OfcomFormatError,
  parseOfcomCsv,
  unallocatedReason,
  writeNumbering,
  type RangeStatus,
} from '../../src/numbering';

const FIXTURES = resolve(__dirname, '../fixtures/ofcom');
const tmp = () => mkdtempSync(join(tmpdir(), 'callguard-numbering-'));

describe('parseOfcomCsv', () => {
  it("reads Ofcom's current layout: the spaced number block, Block Status and CP Name", () => {
    const csv =
      'NMS Number Block: Number Block,Block Status,CP Name,Geographic Number Length,Allocation Date,Notes\n' +
      '1134 96 1,Allocated,Example Telecom Ltd,3+7,21/05/1997,\n' +
      '1134 97,Allocated(Closed Range),Example Telecom Ltd,3+7,15/07/1994,\n' +
      '1134 96 2,Free,,3+7,,\n';
    const file = parseOfcomCsv(csv, 'S1.csv');
    expect(file.columns).toEqual({ block: ['NMS Number Block: Number Block'], status: 'Block Status', operator: 'CP Name' });
    expect(file.ranges).toEqual([
      { prefix: '1134961', status: 'allocated', operator: 'Example Telecom Ltd', line: 2 },
      { prefix: '113497', status: 'allocated', operator: 'Example Telecom Ltd', line: 3 },
      { prefix: '1134962', status: 'free', line: 4 },
    ]);
    expect(file).toMatchObject({ rows: 3, rejected: [] });
  });

  it('reads the earlier layout: SABC, D/DE and F columns, Status, and Communications Provider or Operator', () => {
    const csv =
      'SABC,D/DE,F,Status,Date,Communications Provider,Number Length,Change\n' +
      '1134,96,0,Protected,,,3+7,\n' +
      '01632,96,,Allocated,01/01/2000,Example Telecom Ltd,4+6,\n' +
      '7790,0-9,,Allocated,N/A,Example Mobile Ltd,10 Digit Numbers,08/1999\n';
    const file = parseOfcomCsv(csv, 's1_code.csv');
    expect(file.columns.block).toEqual(['SABC', 'D/DE', 'F']);
    expect(file.ranges.map((r) => `${r.prefix}:${r.status}`)).toEqual([
      '1134960:protected',
      '163296:allocated',
      ...['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'].map((d) => `7790${d}:allocated`),
    ]);
    const operatorVariant = parseOfcomCsv('SABC,D/DE,Status,Operator\n7700,90,Allocated,Example Mobile Ltd\n', 's7_code.csv');
    expect(operatorVariant.ranges).toEqual([{ prefix: '770090', status: 'allocated', operator: 'Example Mobile Ltd', line: 2 }]);
  });

  it('copes with a byte-order mark, CRLF line ends, quoted commas and header spelling', () => {
    const csv = '\uFEFFnms number block: number block , BLOCK STATUS ,cp name\r\n"7700 90",allocated,"Example, Mobile Ltd"\r\n\r\n';
    expect(parseOfcomCsv(csv).ranges).toEqual([{ prefix: '770090', status: 'allocated', operator: 'Example, Mobile Ltd', line: 2 }]);
  });

  it('rejects a bad line with its line number and reads the rest', () => {
    const csv =
      'NMS Number Block: Number Block,Block Status,CP Name\n' +
      '7700 90,Allocated,Example Mobile Ltd\n' +
      '7700 91,Sort of allocated,Example Mobile Ltd\n' +
      'not a block,Free,\n' +
      '0 12345678901,Free,\n' +
      '7700 92,Free,\n';
    const file = parseOfcomCsv(csv, 'S7.csv');
    expect(file.ranges.map((r) => r.prefix)).toEqual(['770090', '770092']);
    expect(file.rejected).toEqual([
      { line: 3, error: 'unknown status "Sort of allocated"' },
      { line: 4, error: expect.stringMatching(/not a UK number block/) },
      { line: 5, error: expect.stringMatching(/not a UK number block/) },
    ]);
  });

  it('rejects runs it cannot expand', () => {
    const file = parseOfcomCsv('SABC,D/DE,Status\n7790,9-0,Free\n7790,0-999,Free\n7790,1-23,Free\n');
    expect(file.ranges).toEqual([]);
    expect(file.rejected.map((r) => r.line)).toEqual([2, 3, 4]);
    expect(file.rejected[0]!.error).toMatch(/D\/DE/);
  });

  it('refuses a file that is not in the format, naming what is missing', () => {
    expect(() => parseOfcomCsv('number,owner\n01134960000,BT\n', 'other.csv')).toThrow(OfcomFormatError);
    expect(() => parseOfcomCsv('number,owner\n', 'other.csv')).toThrow(/other\.csv: the header names no number block/);
    expect(() => parseOfcomCsv('SABC,D/DE,Provider\n', 'x.csv')).toThrow(/no status/);
    expect(() => parseOfcomCsv('', 'empty.csv')).toThrow(/it reads: \(empty\)/);
  });

  it('knows the statuses Ofcom uses, and nothing else', () => {
    expect(
      ['Allocated', 'Allocated(Closed Range)', 'Free', 'Protected', 'Withdrawn', 'Quarantined', 'Reserved', 'Reserved (Drama)', 'Designated', 'Unavailable'].map(
        normaliseStatus,
      ),
    ).toEqual(['allocated', 'allocated', 'free', 'protected', 'withdrawn', 'quarantined', 'reserved', 'reserved', 'designated', 'unavailable']);
    expect(normaliseStatus('Spare')).toBeNull();
    expect(normaliseStatus('')).toBeNull();
  });

  it('decodes UTF-8 and falls back to Windows-1252', () => {
    expect(decodeOfcomFile(Buffer.from('Télécom', 'utf8'))).toBe('Télécom');
    expect(decodeOfcomFile(Buffer.from([0x54, 0xe9, 0x6c, 0xe9, 0x63, 0x6f, 0x6d]))).toBe('Télécom');
  });
});

const r = (prefix: string, status: RangeStatus['status'], operator?: string) => ({ prefix, status, ...(operator ? { operator } : {}) });

describe('NumberingIndex and rangeStatus', () => {
  const index = NumberingIndex.fromRanges([
    r('113496', 'free'),
    r('1134961', 'allocated', 'Example Telecom Ltd'),
    r('11349612', 'withdrawn', 'Former Networks plc'),
    r('7700', 'designated'),
  ]);

  it('answers with the longest range covering the number', () => {
    expect(index.rangeStatus('+441134960123')).toEqual({ status: 'free' });
    expect(index.rangeStatus('+441134961000')).toEqual({ status: 'allocated', operator: 'Example Telecom Ltd' });
    expect(index.rangeStatus('+441134961200')).toEqual({ status: 'withdrawn', operator: 'Former Networks plc' });
    expect(index.rangeStatus('+447700123456')).toEqual({ status: 'designated' });
  });

  it('has no opinion on numbers no range covers, and on numbers outside +44', () => {
    expect(index.rangeStatus('+441214960000')).toBeNull();
    expect(index.rangeStatus('+33113496012')).toBeNull();
    expect(index.rangeStatus('+44')).toBeNull();
    expect(index.rangeStatus('+44abc')).toBeNull();
    expect(index.rangeStatus('')).toBeNull();
  });

  it('is a plain function: it can be handed around unbound', () => {
    const { rangeStatus } = index;
    expect(rangeStatus('+441134961000')?.status).toBe('allocated');
  });

  it('returns one shared, frozen object per kind of range', () => {
    const a = index.rangeStatus('+441134960001');
    expect(a).toBe(index.rangeStatus('+441134969999'));
    expect(Object.isFrozen(a)).toBe(true);
  });

  it('when two sources disagree on a block, allocated wins', () => {
    const i = NumberingIndex.fromRanges([r('770090', 'allocated', 'A'), r('770090', 'free'), r('770091', 'free'), r('770091', 'allocated', 'B')]);
    expect(i.rangeStatus('+447700900000')).toEqual({ status: 'allocated', operator: 'A' });
    expect(i.rangeStatus('+447700910000')).toEqual({ status: 'allocated', operator: 'B' });
  });

  it('compaction drops blocks that repeat their range and folds ten alike siblings into their parent', () => {
    const map = new Map<string, RangeStatus>([
      ['1214', { status: 'free' }],
      ['12149', { status: 'free' }],
      ...[...'0123456789'].map((d): [string, RangeStatus] => [`121496${d}`, { status: 'protected' }]),
      ['1214967', { status: 'protected' }],
      ['12149670', { status: 'allocated', operator: 'X' }],
    ]);
    compact(map);
    expect([...map.keys()].sort()).toEqual(['1214', '121496', '12149670']);
  });

  it('compaction never changes an answer', () => {
    const prefix = fc.string({ unit: fc.constantFrom(...'0123456789'), minLength: 0, maxLength: 4 }).map((s) => `1${s}`);
    const status = fc.constantFrom<RangeStatus['status']>('allocated', 'free', 'protected');
    // Some ranges come as ten alike siblings, the shape compaction folds.
    const family = fc.tuple(prefix, status, fc.boolean()).map(([p, s, siblings]) => (siblings ? [...'0123456789'].map((d) => r(p + d, s)) : [r(p, s)]));
    fc.assert(
      fc.property(fc.array(family, { maxLength: 30 }), fc.array(fc.constantFrom(...'0123456789'), { minLength: 8, maxLength: 8 }), (families, tail) => {
        const ranges = families.flat();
        const naive = new Map<string, RangeStatus>();
        for (const x of ranges) if (naive.get(x.prefix)?.status !== 'allocated' || x.status === 'allocated') naive.set(x.prefix, { status: x.status });
        const lookupNaive = (n: string) => {
          for (let len = n.length; len >= 1; len--) {
            const v = naive.get(n.slice(0, len));
            if (v) return v;
          }
          return null;
        };
        const index = NumberingIndex.fromRanges(ranges);
        // Every range's own numbers, and the numbers just beside it.
        const numbers = ranges.flatMap((x) => [x.prefix, x.prefix.slice(0, -1) + tail[0]]).map((p) => (p + tail.join('')).slice(0, 9));
        for (const n of numbers) expect([n, index.rangeStatus(`+44${n}`)]).toEqual([n, lookupNaive(n)]);
      }),
      { numRuns: 500 },
    );
  });
});

describe('unallocatedReason (the CLI_INVALID message)', () => {
  it('says which status and, when known, who holds the range', () => {
    expect(unallocatedReason({ status: 'free' })).toBe('in a range Ofcom lists as free (not allocated)');
    expect(unallocatedReason({ status: 'withdrawn', operator: 'Former Networks plc' })).toBe(
      'in a range Ofcom lists as withdrawn (not allocated; range holder Former Networks plc)',
    );
  });

  it('raises nothing for an allocated range or no data', () => {
    expect(unallocatedReason({ status: 'allocated', operator: 'X' })).toBeNull();
    expect(unallocatedReason(null)).toBeNull();
    expect(unallocatedReason(undefined)).toBeNull();
  });
});

describe('importing a folder of Ofcom files, and loading the result', () => {
  it('imports the sample: allocated, free, protected, withdrawn and the rest', () => {
    const { index, document, files } = importOfcomFolder(FIXTURES, new Date('2026-01-05T00:00:00Z'));
    expect(files.map((f) => f.file)).toEqual(['S1.csv', 'S3.csv', 'S7.csv']);
    expect(files.every((f) => f.parsed?.rejected.length === 0)).toBe(true);
    const cases: [string, RangeStatus | null][] = [
      ['+441134961234', { status: 'allocated', operator: 'Example Telecom Ltd' }],
      ['+441134971234', { status: 'allocated', operator: 'Example Telecom Ltd' }],
      ['+441134962000', { status: 'free' }],
      ['+441134960000', { status: 'protected' }],
      ['+441134963999', { status: 'withdrawn', operator: 'Former Networks, plc' }],
      ['+441134964000', { status: 'quarantined' }],
      ['+441214965000', { status: 'protected' }],
      ['+442079460123', { status: 'protected' }],
      ['+442079461123', { status: 'allocated', operator: 'Example Telecom Ltd' }],
      ['+442079471234', { status: 'free' }],
      ['+443069990100', { status: 'allocated', operator: 'Example Telecom Ltd' }],
      ['+443069980100', { status: 'withdrawn' }],
      ['+443069970100', { status: 'reserved' }],
      ['+447400123456', { status: 'allocated', operator: 'Example Mobile Ltd' }],
      ['+447400133456', { status: 'designated' }],
      ['+447700900123', { status: 'protected' }],
      ['+447700901123', { status: 'allocated', operator: 'Example Mobile Ltd' }],
      ['+447700911123', { status: 'free' }],
      ['+441615550000', null],
    ];
    for (const [number, expected] of cases) expect([number, index.rangeStatus(number)]).toEqual([number, expected]);
    // Ten protected 1,000-blocks of 0121 496 became one range.
    expect(document.groups.find((g) => g.status === 'protected')?.prefixes).toContain('121496');
    expect(document).toMatchObject({ format: 'callguard-numbering/1', version: index.version, generatedAt: '2026-01-05T00:00:00.000Z' });
    expect(document.sources.map((s) => [s.file, s.rows, s.ranges])).toEqual([
      ['S1.csv', 20, 20],
      ['S3.csv', 3, 3],
      ['S7.csv', 5, 5],
    ]);
  });

  it('writes one file that loads back to the same answers and version', () => {
    const { index, document } = importOfcomFolder(FIXTURES);
    const dir = join(tmp(), 'data');
    const file = writeNumbering(dir, document);
    expect(file).toBe(join(dir, NUMBERING_FILE));
    expect(readdirSync(dir)).toEqual([NUMBERING_FILE]);
    const loaded = loadNumbering(dir);
    expect(loaded.version).toBe(index.version);
    expect(loaded.size).toBe(index.size);
    for (const n of ['+441134961234', '+441134962000', '+447700900123', '+441615550000']) expect(loaded.rangeStatus(n)).toEqual(index.rangeStatus(n));
  });

  it('gives the same version for the same data, and another for other data', () => {
    expect(importOfcomFolder(FIXTURES).index.version).toBe(importOfcomFolder(FIXTURES).index.version);
    const other = tmp();
    writeFileSync(join(other, 'S7.csv'), 'NMS Number Block: Number Block,Block Status,CP Name\n7700 90,Free,\n');
    expect(importOfcomFolder(other).index.version).not.toBe(importOfcomFolder(FIXTURES).index.version);
  });

  it('skips the short-code file and files of other formats, but not a range file it cannot read', () => {
    const dir = tmp();
    copyFileSync(join(FIXTURES, 'S7.csv'), join(dir, 'S7.csv'));
    // S10 lists short codes: read as prefixes, 118118 would claim 0118 118 xxxx numbers.
    writeFileSync(join(dir, 'S10.csv'), 'Code,Status,Communications Provider\n118118,Allocated,Example Directory Ltd\n');
    writeFileSync(join(dir, 'notes.csv'), 'what,why\nthis,that\n');
    writeFileSync(join(dir, 'readme.txt'), 'not a csv');
    const { index, files } = importOfcomFolder(dir);
    expect(files.map((f) => [f.file, f.skipped === undefined])).toEqual([
      ['S10.csv', false],
      ['S7.csv', true],
      ['notes.csv', false],
    ]);
    expect(index.rangeStatus('+441181180000')).toBeNull();
    writeFileSync(join(dir, 'S9.csv'), 'Number,Owner\n9000,X\n');
    expect(() => importOfcomFolder(dir)).toThrow(/S9\.csv: the header names no number block/);
  });

  it('refuses a folder with no ranges, and a data folder without the file or with a broken one', () => {
    expect(() => importOfcomFolder(tmp())).toThrow(/holds no number ranges/);
    expect(() => importOfcomFolder('/nonexistent/ofcom')).toThrow(/is not a folder/);
    const empty = tmp();
    expect(() => loadNumbering(empty)).toThrow(/has no numbering\.json: run npm run numbering:import/);
    writeFileSync(join(empty, NUMBERING_FILE), '{"format":');
    expect(() => loadNumbering(empty)).toThrow(NumberingDataError);
    const bad: [unknown, RegExp][] = [
      [[], /format is undefined/],
      [{ format: 'callguard-numbering/0', groups: [] }, /format is "callguard-numbering\/0"/],
      [{ format: 'callguard-numbering/1', groups: {} }, /groups must be an array/],
      [{ format: 'callguard-numbering/1', groups: [{ status: 'spare', prefixes: [] }] }, /groups\[0\]\.status/],
      [{ format: 'callguard-numbering/1', groups: [{ status: 'free', prefixes: ['07700'] }] }, /not 1-10 digits/],
      [{ format: 'callguard-numbering/1', groups: [{ status: 'free', operator: 7, prefixes: [] }] }, /operator must be a string/],
    ];
    for (const [doc, message] of bad) expect(() => NumberingIndex.fromDocument(doc)).toThrow(message);
  });

  it('npm run numbering:import converts the folder and says which columns it read', async () => {
    const out = join(tmp(), 'numbering');
    const { stdout } = await promisify(execFile)(process.execPath, [require.resolve('tsx/cli'), 'scripts/import-numbering.ts', FIXTURES, '--out', out], {
      cwd: resolve(__dirname, '../..'),
    });
    expect(stdout).toMatch(/S1\.csv: 20 rows, 20 ranges, 0 rejected; columns read: NMS Number Block: Number Block \| Block Status \| CP Name/);
    expect(stdout).toMatch(/wrote .*numbering\.json/);
    expect(JSON.parse(readFileSync(join(out, NUMBERING_FILE), 'utf8')).format).toBe('callguard-numbering/1');
    expect(loadNumbering(out).rangeStatus('+441134962000')).toEqual({ status: 'free' });
  }, 30_000);
});

import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseRegistryDocument } from '../../src/registry/format';
import { contentVersion, loadRegistryFile } from '../../src/registry/load';
import type { RegistryEntry } from '../../src/registry/model';
import { readRegistryBuffer, readRegistryFile } from '../../src/registry/read-document';
import { RegistryIndex } from '../../src/registry/registry-index';
import { decodeSnapshot, encodeSnapshot } from '../../src/registry/snapshot';
import { bufferSource, scanOutline, textOf } from '../../src/registry/json-scan';

const read = (text: string) => readRegistryBuffer(Buffer.from(text), 'GB', { deferPlanCheck: true });
const entriesOf = (text: string) => {
  const { data, problems } = read(text);
  expect(problems).toEqual([]);
  return [...new RegistryIndex(data, 'v').allEntries()];
};
const sortEntries = (entries: RegistryEntry[]) => [...entries].sort((a, b) => (a.kind + a.key < b.kind + b.key ? -1 : 1));

describe('reading a registry file from its bytes', () => {
  it('reads what JSON.parse reads, however awkward the text', () => {
    const text = `
      {
        "note": "a string with ] and } and [ and { and \\" and \\\\",
        "banks" : [ { "id" : "b", "name" : "Banque \\u00e9 \\"Ünïcode\\" ]}[{ 🏦", "callbackNumbers" : [ ] } ] ,
        "numbers":[
          {"number":"+442079460000","bankId":"b","inboundOnly":true}
          ,
          { "bankId" : "b" , "inboundOnly" : false , "number" : "020 7946 0001" , "authorisedSpcs" : [ "1234" , "ab12" ] } ,
          {"prefix":"+4416149","bankId":"\\u0062","inboundOnly":false}
        ],
        "other": {"nested": [1, 2.5e3, null, true, "]", {"}": "{"}]}
      }
    `;
    const { data, problems, rest } = read(text);
    expect(problems).toEqual([]);
    expect(data.banks[0]?.name).toBe('Banque é "Ünïcode" ]}[{ 🏦');
    expect(rest).toEqual({ note: 'a string with ] and } and [ and { and " and \\', other: { nested: [1, 2500, null, true, ']', { '}': '{' }] } });
    expect(sortEntries([...new RegistryIndex(data, 'v').allEntries()])).toEqual([
      { kind: 'number', key: '+442079460000', bankId: 'b', inboundOnly: true },
      { kind: 'number', key: '+442079460001', bankId: 'b', inboundOnly: false, authorisedSpcs: ['1234', 'ab12'] },
      { kind: 'prefix', key: '+4416149', bankId: 'b', inboundOnly: false },
    ]);
  });

  it('takes numbers before banks, empty arrays and an empty object', () => {
    expect(entriesOf('{"numbers":[{"number":"+442079460000","bankId":"b","inboundOnly":true}],"banks":[{"id":"b","name":"B"}]}')).toHaveLength(1);
    expect(entriesOf('{"banks":[],"numbers":[]}')).toEqual([]);
    expect(entriesOf(' {"banks":[ ],"numbers":[\n]} \n')).toEqual([]);
    expect(read('{}').problems).toEqual([
      { at: 'banks', error: 'banks must be an array' },
      { at: 'numbers', error: 'numbers must be an array' },
    ]);
  });

  it('refuses banks or numbers given twice (JSON.parse would keep the last silently, unchecked)', () => {
    const numbersTwice = '{"banks":[{"id":"b","name":"B"}],"numbers":[{"x":1.2.3}],"numbers":[]}';
    expect(read(numbersTwice).problems).toEqual([{ at: '$', error: '"numbers" appears more than once in the registry' }]);
    const banksTwice = '{"banks":[],"numbers":[],"banks":[{"id":"b","name":"B"}]}';
    expect(read(banksTwice).problems).toEqual([{ at: '$', error: '"banks" appears more than once in the registry' }]);
  });

  it('names the problems exactly as parseRegistryDocument does, duplicates included, in file order', () => {
    const doc = {
      banks: [{ id: 'b', name: 'B' }, { id: 'b', name: 'again' }, { id: 'Bad Id', name: 'x' }],
      numbers: [
        { number: '+442079460000', bankId: 'b', inboundOnly: true },
        { number: 'not-a-number', bankId: 'b', inboundOnly: true },
        { number: '+442079460001', bankId: 'nobank', inboundOnly: true },
        { prefix: '44207', bankId: 'b', inboundOnly: true },
        { number: '+442079460000', prefix: '+44', bankId: 'b', inboundOnly: true },
        { number: '+442079460001', bankId: 'b' },
        { number: '+442079460002', bankId: 'b', inboundOnly: false, authorisedSpcs: ['12 34'] },
        { number: '+442079460003', bankId: 'b', inboundOnly: false, colour: 'blue' },
        { number: '020 7946 0000', bankId: 'b', inboundOnly: true },
        { prefix: '+4420', bankId: 'b', inboundOnly: true },
        'just a string',
        { prefix: '+44 20', bankId: 'b', inboundOnly: false },
        { number: '+442079460000', bankId: 'b', inboundOnly: false },
      ],
    };
    const expected = parseRegistryDocument(doc, 'GB', { deferPlanCheck: true }).problems;
    expect(expected.map((p) => p.at)).toEqual(['banks[1]', 'banks[2]', 'numbers[1]', 'numbers[2]', 'numbers[3]', 'numbers[4]', 'numbers[5]', 'numbers[6]', 'numbers[7]', 'numbers[8]', 'numbers[10]', 'numbers[11]', 'numbers[12]']);
    expect(read(JSON.stringify(doc, null, 2)).problems).toEqual(expected);
  });

  it('reads entries in batches, across batch boundaries, and names a bad entry far into the file', () => {
    const numbers = Array.from({ length: 10_000 }, (_, i) => `{"number":"+4416149${String(i).padStart(5, '0')}","bankId":"b","inboundOnly":${i % 2 === 0}}`);
    const text = (nums: string[]) => `{"banks":[{"id":"b","name":"B"}],"numbers":[${nums.join(',\n')}]}`;
    expect(entriesOf(text(numbers))).toHaveLength(10_000);

    const withDuplicate = [...numbers];
    withDuplicate[9000] = numbers[4095]!;
    expect(read(text(withDuplicate)).problems).toEqual([{ at: 'numbers[9000]', error: 'number +441614904095 appears twice' }]);

    const broken = [...numbers];
    broken[8193] = '{"number":"+441614900001","bankId":"b","inboundOnly":tru}';
    expect(read(text(broken)).problems).toEqual([{ at: '$', error: expect.stringMatching(/^not valid JSON: .* \(in numbers\[8193\], at line 8194, column 1\)$/) }]);
  });

  it('says clearly what is wrong with a document that is not valid JSON', () => {
    const cases: [string, RegExp][] = [
      ['', /^not valid JSON: /],
      ['{ not json', /^not valid JSON: expected a member name, found "n" at line 1, column 3$/],
      ['{"banks":[],"numbers":[{"number":"+442079460000","bankId":"b"', /^not valid JSON: the document ends inside a value \(in numbers\[0\]\) at line 1, column 62$/],
      ['{"banks":[],"numbers":[{"number":"+4420794600', /the document ends inside a value \(in numbers\[0\]\)/],
      ['{"banks":[],"numbers":[{"number":"+442079460000"},', /the document ends where a value was expected \(in numbers\[1\]\)/],
      ['{"banks":[],"numbers":[{},{}', /the document ends where "," or "\]" after numbers\[1\] was expected/],
      ['{"banks":[],"numbers":[{} {}]}', /expected "," or "\]" after numbers\[0\], found "\{" at line 1, column 27/],
      ['{"banks":[],"numbers":[{},]}', /unexpected "\]" where a value was expected \(in numbers\[1\]\) at line 1, column 27/],
      ['{"banks":[],"numbers":[1,2}}', /^not valid JSON: expected "," or "\]" after numbers\[1\], found "\}" at line 1, column 27$/],
      ['{"banks":[],"numbers":[]]', /^not valid JSON: expected "," or "\}", found "\]" at line 1, column 25$/],
      ['{,}', /^not valid JSON: expected a member name, found "," at line 1, column 2$/],
      ['{"banks":[],"numbers":[{"a":1]]}', /^not valid JSON: .*\(in numbers\[0\], at line 1, column 24\)$/],
      ['{"banks":[1,,2],"numbers":[]}', /^not valid JSON: .*\(in banks, at line 1, column 10\)$/],
      ['{"banks":[}],"numbers":[]}', /^not valid JSON: expected "," or "\}", found "\]" at line 1, column 12$/],
      ['{"banks":[],"numbers":[]} x', /unexpected "x" after the end of the document/],
      ['{"banks":[] "numbers":[]}', /^not valid JSON: expected "," or "\}", found """ at line 1, column 13$/],
      ['{"banks" [],"numbers":[]}', /^not valid JSON: expected ":", found "\[" at line 1, column 10$/],
      ['{"ba\\qnks":[],"numbers":[]}', /^not valid JSON: .* \(in a member name\) at line 1, column 2$/],
      ['{"banks":[],\n\n  "numbers":[1e]}', /^not valid JSON: .*\(in numbers\[0\], at line 3, column 14\)$/],
      ['\ufeff{"banks":[],"numbers":[]}', /^not valid JSON: /],
    ];
    for (const [text, message] of cases) {
      const { problems } = read(text);
      expect([text, problems.length]).toEqual([text, 1]);
      expect([text, problems[0]?.at, problems[0]?.error]).toEqual([text, '$', expect.stringMatching(message)]);
    }
  });

  it('tells a document that is valid JSON but not an object from one that is not JSON', () => {
    expect(read('[1, 2]').problems).toEqual([{ at: '$', error: 'the registry must be a JSON object with banks and numbers' }]);
    expect(read('"registry"').problems).toEqual([{ at: '$', error: 'the registry must be a JSON object with banks and numbers' }]);
    expect(read('[1, 2').problems[0]?.error).toMatch(/^not valid JSON/);
  });

  it('reports numbers given as something other than an array', () => {
    expect(read('{"banks":[],"numbers":{"number":"+442079460000"}}').problems).toEqual([{ at: 'numbers', error: 'numbers must be an array' }]);
  });

  it('the scanner finds where each element ends, strings and escapes notwithstanding, whatever the window', () => {
    const text = '{"numbers":["]",  "\\\\", "\\"]" , {"a":["}"]}, 12, true],"x":{"y":[1,2]}}';
    for (const windowBytes of [1, 2, 3, 5, 1 << 20]) {
      const src = bufferSource(Buffer.from(text));
      const members = scanOutline(src, 'numbers', undefined, windowBytes)!;
      expect(members.map((m) => m.name)).toEqual(['numbers', 'x']);
      expect(textOf(src, members[1]!.start, members[1]!.end)).toBe('{"y":[1,2]}');
      const { open, ends } = members[0]!.array!;
      const elements = [...ends].map((end, i) => textOf(src, (i === 0 ? open : ends[i - 1]!) + 1, end).trim());
      expect([windowBytes, elements]).toEqual([windowBytes, ['"]"', '"\\\\"', '"\\"]"', '{"a":["}"]}', '12', 'true']]);
      expect(members[1]!.array).toBeNull();
    }
  });

  it('reads the same through a window of any size, problems and messages included', () => {
    const docs = [
      `{"note":"]\\\\\\"}[{","banks":[{"id":"b","name":"B ✓ 🏦"}],"numbers":[ {"number":"+442079460000","bankId":"b","inboundOnly":true},\n{"prefix":"+4416149","bankId":"b","inboundOnly":false}, {"number":"+442079460000","bankId":"b","inboundOnly":false} ],"n":12345}`,
      '{"banks":[],"numbers":[{"number":"+4420794600',
      '{"banks":[],"numbers":[{},]}',
      '{"banks":[],"numbers":[ ]}',
      '{"banks":[],"numbers":[1,2}}',
      '{ }',
      '{"numbers":[12345]}',
    ];
    for (const text of docs) {
      const whole = readRegistryBuffer(Buffer.from(text), 'GB', { deferPlanCheck: true });
      for (const windowBytes of [1, 2, 3, 7]) {
        const windowed = readRegistryBuffer(Buffer.from(text), 'GB', { deferPlanCheck: true, windowBytes });
        expect([text, windowBytes, windowed.problems, windowed.rest]).toEqual([text, windowBytes, whole.problems, whole.rest]);
        expect([...windowed.data.numbers.keys]).toEqual([...whole.data.numbers.keys]);
      }
    }
  });

  it('reads a file through its window, and hands every byte to onBytes once', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'callguard-reg-')), 'registry.json');
    const numbers = Array.from({ length: 3000 }, (_, i) => ({ number: `+4416149${String(i).padStart(5, '0')}`, bankId: 'b', inboundOnly: false }));
    const text = JSON.stringify({ banks: [{ id: 'b', name: 'B' }], numbers }, null, 1);
    writeFileSync(file, text);
    const seen: Buffer[] = [];
    const { data, problems } = readRegistryFile(file, 'GB', { deferPlanCheck: true, windowBytes: 4096, onBytes: (b) => seen.push(Buffer.from(b)) });
    expect(problems).toEqual([]);
    expect(data.numbers.keys.length).toBe(3000);
    expect(Buffer.concat(seen).toString()).toBe(text);
  });
});

describe('the content version', () => {
  it('is the same for the bytes as for the text of a file', () => {
    const text = '{"banks":[{"id":"b","name":"Bänk ✓"}],"numbers":[]}';
    expect(contentVersion(Buffer.from(text))).toBe(contentVersion(text));
  });

  it('loadRegistryFile: the same file, the same version, and a compact registry', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'callguard-reg-')), 'registry.json');
    const text = JSON.stringify({ banks: [{ id: 'b', name: 'B' }], numbers: [{ number: '+442079460000', bankId: 'b', inboundOnly: true }] });
    writeFileSync(file, text);
    const loaded = loadRegistryFile(file, 'GB');
    expect(loaded.version).toBe(contentVersion(text));
    expect(loadRegistryFile(file, 'GB').version).toBe(loaded.version);
    writeFileSync(file, text.replace('"B"', '"B2"'));
    expect(loadRegistryFile(file, 'GB').version).not.toBe(loaded.version);
    expect(loaded.data.numbers.keys.length).toBe(1);
  });
});

describe('the snapshot format', () => {
  const text = JSON.stringify({
    banks: [
      { id: 'a', name: 'A', callbackNumbers: ['+443450000000'] },
      { id: 'b', name: 'B', kind: 'utility', announcesCalls: true },
    ],
    numbers: [
      { number: '+442079460000', bankId: 'a', inboundOnly: true },
      { number: '+15550001234', bankId: 'b', inboundOnly: false, authorisedSpcs: ['1234'] },
      { number: '+15550001235', bankId: 'b', inboundOnly: false, authorisedSpcs: ['1234'], overseasOrigins: ['trunk-offshore-in'] },
      { prefix: '+4420794601', bankId: 'a', inboundOnly: true },
      { prefix: '+4420794602', bankId: 'b', inboundOnly: false, overseasOrigins: ['1234'] },
    ],
  });
  const { data } = read(text);

  it('round-trips the compact registry', () => {
    const back = decodeSnapshot(encodeSnapshot(data, 'v7'), 'GB');
    expect(back.version).toBe('v7');
    expect(sortEntries([...new RegistryIndex(back.data, 'x').allEntries()])).toEqual(sortEntries([...new RegistryIndex(data, 'x').allEntries()]));
    expect(back.data.banks).toEqual(data.banks);
    // What the file says of organisations and overseas origins survives the snapshot.
    expect(back.data.banks[1]).toMatchObject({ kind: 'utility', announcesCalls: true });
    const index = new RegistryIndex(back.data, 'x');
    expect(index.entry('number', '+15550001235')?.overseasOrigins).toEqual(['trunk-offshore-in']);
    expect(index.entry('prefix', '+4420794602')?.overseasOrigins).toEqual(['1234']);
  });

  it('refuses a snapshot whose overseas origins are not what a file may hold', () => {
    const good = encodeSnapshot(data, 'v7');
    const nl = good.indexOf(0x0a);
    const unsigned = JSON.parse(good.toString('utf8', 0, nl)) as { templates: { overseasOrigins?: string[] }[]; sha256?: string };
    delete unsigned.sha256;
    unsigned.templates.find((x) => x.overseasOrigins)!.overseasOrigins = ['two words'];
    // Checksummed afresh: the damage is one a checksum cannot catch (a bug, or a hand-made file).
    const body = good.subarray(nl + 1);
    const sha = createHash('sha256').update(JSON.stringify(unsigned)).update('\n').update(body).digest('hex');
    const bad = Buffer.concat([Buffer.from(`${JSON.stringify({ ...unsigned, sha256: sha })}\n`), body]);
    expect(() => decodeSnapshot(bad, 'GB')).toThrow(/templates\[\d+\]: overseasOrigins/);
  });

  it('refuses a damaged snapshot, saying how', () => {
    const good = encodeSnapshot(data, 'v7');
    const flipped = Buffer.from(good);
    flipped[flipped.length - 3]! ^= 0x40;
    expect(() => decodeSnapshot(flipped, 'GB')).toThrow(/checksum mismatch/);
    expect(() => decodeSnapshot(good.subarray(0, good.length - 1), 'GB')).toThrow(/body is \d+ bytes/);
    expect(() => decodeSnapshot(Buffer.from('{"format":"other"}\n'), 'GB')).toThrow(/format is "other"/);
    expect(() => decodeSnapshot(Buffer.from('garbage'), 'GB')).toThrow(/no header line/);
  });
});

import { createHash } from 'node:crypto';
import { normalisePrefix, readBank, readEntryInput } from './format';
import type { Bank, RegistryEntry } from './model';
import type { CompactRegistry, EntryTemplate } from './number-table';

/**
 * The file backend's snapshot: the compact registry as it is in memory, so a restart reads it
 * back in milliseconds instead of parsing and validating a million JSON entries again.
 *
 *   line 1   JSON header: format, version, banks, prefixes, templates, how many numbers, the
 *            width of a template id, and the SHA-256 of the rest of the header and the body
 *   body     the numbers' keys as little-endian float64s, then their template ids as
 *            little-endian uint16s or uint32s
 *
 * Written by us and read back by us, but a disk can still hand back damage: the checksum, the
 * lengths, the keys' order and every template id are checked before anything is served.
 */
const FORMAT = 'callguard-registry-snapshot/2';

interface Header {
  format: string;
  version: string;
  banks: Bank[];
  prefixes: RegistryEntry[];
  templates: EntryTemplate[];
  numbers: number;
  idBytes: 2 | 4;
  sha256: string;
}

export function encodeSnapshot(data: CompactRegistry, version: string): Buffer {
  const { keys, templateIds, templates } = data.numbers;
  const idBytes = templateIds.BYTES_PER_ELEMENT as 2 | 4;
  const n = keys.length;
  const body = Buffer.alloc(n * (8 + idBytes));
  for (let i = 0; i < n; i++) body.writeDoubleLE(keys[i]!, i * 8);
  for (let i = 0, at = n * 8; i < n; i++, at += idBytes) {
    if (idBytes === 2) body.writeUInt16LE(templateIds[i]!, at);
    else body.writeUInt32LE(templateIds[i]!, at);
  }
  const unsigned: Omit<Header, 'sha256'> = { format: FORMAT, version, banks: data.banks, prefixes: data.prefixes, templates: [...templates], numbers: n, idBytes };
  const header: Header = { ...unsigned, sha256: checksum(unsigned, body) };
  return Buffer.concat([Buffer.from(`${JSON.stringify(header)}\n`), body]);
}

/** Covers the header (but for the checksum itself) as well as the body: a bank's name can rot too. */
function checksum(unsigned: Omit<Header, 'sha256'>, body: Buffer): string {
  return createHash('sha256').update(JSON.stringify(unsigned)).update('\n').update(body).digest('hex');
}

/** The registry in a snapshot; throws, saying what is wrong, when the snapshot is damaged. */
export function decodeSnapshot(buf: Buffer, defaultCountry: string): { data: CompactRegistry; version: string } {
  const nl = buf.indexOf(0x0a);
  if (nl < 0) throw new Error('no header line');
  let header: Header;
  try {
    header = JSON.parse(buf.toString('utf8', 0, nl)) as Header;
  } catch (err) {
    throw new Error(`header is not JSON: ${(err as Error).message}`, { cause: err });
  }
  if (header.format !== FORMAT) throw new Error(`format is ${JSON.stringify(header.format)}, not ${FORMAT}`);
  const { numbers: n, idBytes } = header;
  const body = buf.subarray(nl + 1);
  if (!Number.isInteger(n) || n < 0 || (idBytes !== 2 && idBytes !== 4) || body.length !== n * (8 + idBytes)) {
    throw new Error(`body is ${body.length} bytes, not ${n} numbers of ${8 + idBytes} bytes`);
  }
  const { sha256, ...unsigned } = header;
  if (checksum(unsigned, body) !== sha256) throw new Error('checksum mismatch');

  if (typeof header.version !== 'string') throw new Error('no version');
  const banks = header.banks.map((raw, i) => {
    const bank = readBank(raw, defaultCountry);
    if ('error' in bank) throw new Error(`banks[${i}]: ${bank.error}`);
    return bank;
  });
  const templates = header.templates.map((t, i) => {
    // A template is an entry without its number: checked as one.
    const input = readEntryInput({ number: '', ...t });
    if ('error' in input) throw new Error(`templates[${i}]: ${input.error}`);
    return t;
  });
  const prefixes = header.prefixes.map((e, i) => {
    const input = readEntryInput({
      prefix: e.key,
      bankId: e.bankId,
      inboundOnly: e.inboundOnly,
      ...(e.authorisedSpcs ? { authorisedSpcs: e.authorisedSpcs } : {}),
      ...(e.overseasOrigins ? { overseasOrigins: e.overseasOrigins } : {}),
    });
    if ('error' in input) throw new Error(`prefixes[${i}]: ${input.error}`);
    if (e.kind !== 'prefix' || normalisePrefix(e.key) !== e.key) throw new Error(`prefixes[${i}]: not a prefix`);
    return e;
  });

  const keys = new Float64Array(n);
  const templateIds = idBytes === 2 ? new Uint16Array(n) : new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const key = body.readDoubleLE(i * 8);
    // Ascending, whole, at most 15 digits: what binary search and `numberKey` rely on.
    if (!Number.isInteger(key) || key < 1 || key >= 1e15 || (i > 0 && key <= keys[i - 1]!)) throw new Error(`numbers[${i}] is out of order or not a number`);
    keys[i] = key;
  }
  for (let i = 0, at = n * 8; i < n; i++, at += idBytes) {
    const id = idBytes === 2 ? body.readUInt16LE(at) : body.readUInt32LE(at);
    if (id >= templates.length) throw new Error(`numbers[${i}] names template ${id} of ${templates.length}`);
    templateIds[i] = id;
  }
  return { data: { banks, numbers: { keys, templateIds, templates }, prefixes }, version: header.version };
}

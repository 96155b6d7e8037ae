/**
 * A registry file of a million numbers for the start-up measurement. Numbers are made
 * arithmetically (no parsing per number, so generating stays well under a second) from
 * national leads whose every 10-digit completion libphonenumber-js/max accepts as a valid UK
 * geographic number; a sample is checked with libphonenumber-js itself before writing, so a
 * change of metadata shows up here rather than as a server that refuses to start.
 */
import { parsePhoneNumberFromString } from 'libphonenumber-js/max';
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';

/** +44 then one of these, then six digits: Leeds, Sheffield, Birmingham, Edinburgh, Glasgow, Liverpool, Manchester, Newcastle, London (twice). */
const LEADS = ['1132', '1142', '1212', '1312', '1412', '1512', '1612', '1912', '2071', '2082'];
/** Prefix entries live under a lead of their own, so they never shadow the number entries. */
const PREFIX_LEAD = '2034';
const STRIDE = 7919; // prime, so i * STRIDE mod 10^6 never repeats within one lead

export interface RegistrySpec {
  banks: number;
  numbers: number;
  prefixes: number;
}

export function registryNumber(i: number): string {
  const lead = LEADS[i % LEADS.length]!;
  const k = Math.floor(i / LEADS.length);
  return `+44${lead}${String((k * STRIDE) % 1_000_000).padStart(6, '0')}`;
}

/** Throws when libphonenumber-js disagrees with the generator on a sample of its numbers. */
function checkSample(spec: RegistrySpec): void {
  const step = Math.max(1, Math.floor(spec.numbers / 2000));
  for (let i = 0; i < spec.numbers; i += step) {
    const n = registryNumber(i);
    if (!parsePhoneNumberFromString(n)?.isValid()) throw new Error(`generated registry number ${n} is not valid for libphonenumber-js`);
  }
  if (spec.numbers / LEADS.length > 1_000_000) throw new Error(`at most ${LEADS.length * 1_000_000} distinct numbers`);
}

/** The registry document (contract format) as text pieces of about 1 MB, so a million entries never sit in one string. */
function* registryChunks(spec: RegistrySpec): Generator<string> {
  const bankId = (b: number) => `bank${String(b).padStart(2, '0')}`;
  const banks = Array.from({ length: spec.banks }, (_, b) => ({ id: bankId(b), name: `Bench Bank ${b}`, callbackNumbers: [registryNumber(b)] }));
  let chunk = `{"banks":${JSON.stringify(banks)},"numbers":[`;
  for (let i = 0; i < spec.numbers; i++) {
    // Every tenth number inbound-only (do-not-originate), every seventh with an SPC list: the mix a real registry has.
    const spcs = i % 7 === 0 ? ',"authorisedSpcs":["1234","5678"]' : '';
    chunk += `${i ? ',' : ''}{"number":"${registryNumber(i)}","bankId":"${bankId(i % spec.banks)}","inboundOnly":${i % 10 === 0}${spcs}}`;
    if (chunk.length > 1 << 20) {
      yield chunk;
      chunk = '';
    }
  }
  for (let p = 0; p < spec.prefixes; p++) {
    chunk += `${spec.numbers || p ? ',' : ''}{"prefix":"+44${PREFIX_LEAD}${String(p).padStart(4, '0')}","bankId":"${bankId(p % spec.banks)}","inboundOnly":true}`;
  }
  yield `${chunk}]}`;
}

/** Writes the registry to `file` and returns its size in bytes. */
export async function writeRegistry(file: string, spec: RegistrySpec): Promise<number> {
  checkSample(spec);
  const out = createWriteStream(file);
  let bytes = 0;
  for (const chunk of registryChunks(spec)) {
    bytes += Buffer.byteLength(chunk);
    if (!out.write(chunk)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  return bytes;
}

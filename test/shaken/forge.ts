import { createPrivateKey, createPublicKey, generatePrimeSync, randomBytes, sign as cryptoSign, type KeyObject } from 'node:crypto';

/**
 * A small DER writer for certificates that openssl will not make: public keys an attacker
 * chooses freely (a 16384-bit RSA modulus, a 3072-bit RSA exponent), signatures that are
 * random bytes of the right length, names that chain to anything. The hostile-input tests and
 * bench/shaken-worst-case.ts build their inputs with it.
 */

function len(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export function tlv(tag: number, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from([tag]), len(body.length), body]);
}

export const seq = (...parts: Buffer[]) => tlv(0x30, ...parts);
const set = (...parts: Buffer[]) => tlv(0x31, ...parts);
export const ia5 = (s: string) => tlv(0x16, Buffer.from(s, 'latin1'));

export function derInt(v: bigint | number): Buffer {
  let n = BigInt(v);
  const bytes: number[] = [];
  do {
    bytes.unshift(Number(n & 0xffn));
    n >>= 8n;
  } while (n > 0n);
  if (bytes[0]! & 0x80) bytes.unshift(0);
  return tlv(0x02, Buffer.from(bytes));
}

export function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number) as [number, number, ...number[]];
  const out = [40 * a + b];
  for (const arc of rest) {
    const groups: number[] = [];
    let v = arc;
    do {
      groups.unshift(v & 0x7f);
      v = Math.floor(v / 128);
    } while (v > 0);
    for (let i = 0; i < groups.length - 1; i++) groups[i]! |= 0x80;
    out.push(...groups);
  }
  return tlv(0x06, Buffer.from(out));
}

const name = (cn: string) => seq(set(seq(oid('2.5.4.10'), tlv(0x0c, Buffer.from('Forged')))), set(seq(oid('2.5.4.3'), tlv(0x0c, Buffer.from(cn, 'utf8')))));
const time = (d: Date) => tlv(0x18, Buffer.from(d.toISOString().replace(/[-:T]/g, '').replace(/\.\d+Z$/, 'Z'), 'latin1'));
const ext = (id: string, critical: boolean, value: Buffer) => seq(oid(id), ...(critical ? [tlv(0x01, Buffer.from([0xff]))] : []), tlv(0x04, value));

const SIG_ALGS = {
  'ecdsa-sha256': seq(oid('1.2.840.10045.4.3.2')),
  'ecdsa-sha384': seq(oid('1.2.840.10045.4.3.3')),
  'rsa-sha256': seq(oid('1.2.840.113549.1.1.11'), tlv(0x05)),
} as const;
export type SigAlg = keyof typeof SIG_ALGS;

export interface ForgeSpec {
  subject: string;
  issuer: string;
  publicKey: KeyObject;
  ca?: boolean;
  /** DER of a TNAuthList value (the extension's content). */
  tnAuthList?: Buffer;
  notBefore?: Date;
  notAfter?: Date;
  serial?: bigint;
  /** A real signature with this key, or `bytes` random bytes claimed to be of `alg`. */
  signWith: { key: KeyObject; alg: SigAlg } | { alg: SigAlg; bytes: number };
}

/** A certificate in DER and PEM. */
export function forgeCert(spec: ForgeSpec): { der: Buffer; pem: string } {
  const alg = SIG_ALGS[spec.signWith.alg];
  const exts: Buffer[] = [];
  if (spec.ca !== undefined) exts.push(ext('2.5.29.19', true, spec.ca ? seq(tlv(0x01, Buffer.from([0xff]))) : seq()));
  if (spec.tnAuthList) exts.push(ext('1.3.6.1.5.5.7.1.26', false, spec.tnAuthList));
  const tbs = seq(
    tlv(0xa0, derInt(2)),
    derInt(spec.serial ?? BigInt('0x' + randomBytes(8).toString('hex'))),
    alg,
    name(spec.issuer),
    seq(time(spec.notBefore ?? new Date(Date.now() - 86_400_000)), time(spec.notAfter ?? new Date(Date.now() + 365 * 86_400_000))),
    name(spec.subject),
    spec.publicKey.export({ type: 'spki', format: 'der' }),
    ...(exts.length > 0 ? [tlv(0xa3, seq(...exts))] : []),
  );
  let signature: Buffer;
  if ('key' in spec.signWith) {
    const hash = spec.signWith.alg === 'ecdsa-sha384' ? 'sha384' : 'sha256';
    signature = cryptoSign(hash, tbs, spec.signWith.key);
  } else {
    signature = randomBytes(spec.signWith.bytes);
    // Below any modulus of that length, so RSA does the whole exponentiation before failing.
    signature[0] = 0x01;
  }
  const der = seq(tbs, alg, tlv(0x03, Buffer.from([0]), signature));
  const b64 = der.toString('base64').replace(/.{64}/g, '$&\n');
  return { der, pem: `-----BEGIN CERTIFICATE-----\n${b64}${b64.endsWith('\n') ? '' : '\n'}-----END CERTIFICATE-----\n` };
}

/** An RSA public key with any modulus and exponent: no private key exists for it, none is needed. */
export function rsaPublicKey(modulusBits: number, exponentBits = 17): KeyObject {
  const n = randomBytes(modulusBits / 8);
  n[0]! |= 0x80;
  n[n.length - 1]! |= 1;
  let e: Buffer;
  if (exponentBits <= 17) e = Buffer.from([0x01, 0x00, 0x01]);
  else {
    e = randomBytes(Math.ceil(exponentBits / 8));
    e[0] = 0x40;
    e[e.length - 1]! |= 1;
  }
  return createPublicKey({ key: { kty: 'RSA', n: n.toString('base64url'), e: e.toString('base64url') }, format: 'jwk' });
}

/** DER of a TNAuthList value from its entries, EXPLICIT tagging as RFC 8226's module says. */
export function tnAuthList(entries: ({ spc: string } | { one: string } | { start: string; count: number })[]): Buffer {
  return seq(
    ...entries.map((e) => {
      if ('spc' in e) return tlv(0xa0, ia5(e.spc));
      if ('one' in e) return tlv(0xa2, ia5(e.one));
      return tlv(0xa1, seq(ia5(e.start), derInt(e.count)));
    }),
  );
}

const egcd = (a: bigint, b: bigint): [bigint, bigint, bigint] => {
  if (b === 0n) return [a, 1n, 0n];
  const [g, x, y] = egcd(b, a % b);
  return [g, y, x - (a / b) * y];
};
function modInverse(a: bigint, m: bigint): bigint | null {
  const [g, x] = egcd(((a % m) + m) % m, m);
  return g === 1n ? ((x % m) + m) % m : null;
}
const b64u = (x: bigint) => {
  const h = x.toString(16);
  return Buffer.from(h.length % 2 ? `0${h}` : h, 'hex').toString('base64url');
};

/**
 * A working RSA key pair whose public exponent is as long as its modulus: every verification
 * with it is a full-length modular exponentiation (OpenSSL allows that up to 3072 bits), about
 * 70 times the cost of an ES256 check. What an attacker would put in a CA certificate.
 */
export function rsaHugeExponentKeyPair(modulusBits = 3072): { privateKey: KeyObject; publicKey: KeyObject } {
  const p = generatePrimeSync(modulusBits / 2, { bigint: true }) as bigint;
  const q = generatePrimeSync(modulusBits / 2, { bigint: true }) as bigint;
  const n = p * q;
  const phi = (p - 1n) * (q - 1n);
  for (;;) {
    const e = (BigInt(`0x${randomBytes(modulusBits / 8).toString('hex')}`) % n) | 1n;
    const d = modInverse(e, phi);
    if (d === null) continue;
    const qi = modInverse(q, p)!;
    const privateKey = createPrivateKey({
      key: { kty: 'RSA', n: b64u(n), e: b64u(e), d: b64u(d), p: b64u(p), q: b64u(q), dp: b64u(d % (p - 1n)), dq: b64u(d % (q - 1n)), qi: b64u(qi) },
      format: 'jwk',
    });
    return { privateKey, publicKey: createPublicKey(privateKey) };
  }
}

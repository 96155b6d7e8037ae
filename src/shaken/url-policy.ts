import { BlockList, isIP } from 'node:net';

/**
 * Where an x5u may point. The URL comes from an unauthenticated SIP header, so without these
 * rules any caller could make the service issue requests into its own network (SSRF).
 */

/** A policy refusal: the verifier reports it as X5U_POLICY, and nothing is fetched. */
export class X5uPolicyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'X5uPolicyError';
  }
}

const blocked = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], // "this network", includes the unspecified address
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local, includes cloud metadata endpoints
  ['172.16.0.0', 12],
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // documentation ranges: never a real certificate repository
  ['192.88.99.0', 24], // 6to4 relay anycast (RFC 7526): a gateway into IPv6 transition tunnels
  ['192.168.0.0', 16],
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, includes broadcast
] as const) {
  blocked.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['100::', 64], // discard-only
  ['2001:db8::', 32], // documentation
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['fec0::', 10], // deprecated site-local, still routed inside some networks
  ['ff00::', 8], // multicast
] as const) {
  blocked.addSubnet(net, prefix, 'ipv6');
}

/** Expands an IPv6 literal (with "::", an embedded dotted quad, or a zone) to 16 bytes. */
export function ipv6Bytes(addr: string): Uint8Array | null {
  let s = addr.replace(/^\[|\]$/g, '');
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  if (isIP(s) !== 6) return null;
  const words: number[] = [];
  const halves = s.split('::');
  const parse = (part: string): number[] => {
    if (part === '') return [];
    const out: number[] = [];
    for (const group of part.split(':')) {
      if (group.includes('.')) {
        const [a = 0, b = 0, c = 0, d = 0] = group.split('.').map(Number);
        out.push((a << 8) | b, (c << 8) | d);
      } else {
        out.push(parseInt(group, 16));
      }
    }
    return out;
  };
  const head = parse(halves[0] ?? '');
  const tail = parse(halves[1] ?? '');
  words.push(...head);
  if (halves.length === 2) for (let i = head.length + tail.length; i < 8; i++) words.push(0);
  words.push(...tail);
  const bytes = new Uint8Array(16);
  words.forEach((w, i) => {
    bytes[i * 2] = w >> 8;
    bytes[i * 2 + 1] = w & 0xff;
  });
  return bytes;
}

const REFUSE = Symbol('refuse');

/**
 * How an IPv6 address in a transition range reaches IPv4 (RFC 6052, 4291, 6145, 3056, 4380):
 * the IPv4 address it carries, to be judged as that address ("::ffff:127.0.0.1" is 127.0.0.1),
 * REFUSE for a range that has no place in front of a certificate repository, or null for an
 * ordinary IPv6 address.
 *  - IPv4-mapped ::ffff:0:0/96 and IPv4-translated ::ffff:0:0:0/96 (SIIT): the embedded address.
 *  - NAT64's well-known prefix 64:ff9b::/96: the embedded address, which keeps DNS64 networks
 *    working. The rest of 64:ff9b::/32, including the local-use 64:ff9b:1::/48 (RFC 8215) whose
 *    embedding the local network chooses, is refused.
 *  - 6to4 2002::/16: the embedded address (bytes 2-5).
 *  - IPv4-compatible ::/96 (deprecated since 2006) and Teredo 2001::/32 (whose client address is
 *    obfuscated and whose relay is anyone's): refused.
 */
function embeddedIpv4(b: Uint8Array): string | typeof REFUSE | null {
  const v4 = (o: number) => `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;
  const zeros = (from: number, to: number) => b.subarray(from, to).every((x) => x === 0);
  if (zeros(0, 12)) return REFUSE;
  if (zeros(0, 10) && b[10] === 0xff && b[11] === 0xff) return v4(12);
  if (zeros(0, 8) && b[8] === 0xff && b[9] === 0xff && b[10] === 0 && b[11] === 0) return v4(12);
  if (b[0] === 0x00 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b) return zeros(4, 12) ? v4(12) : REFUSE;
  if (b[0] === 0x20 && b[1] === 0x02) return v4(2);
  if (b[0] === 0x20 && b[1] === 0x01 && b[2] === 0x00 && b[3] === 0x00) return REFUSE;
  return null;
}

/**
 * True when an address may be contacted for an x5u fetch: public unicast only. Applied to
 * literal hosts (checkX5uUrl) and to every address a name resolves to (the fetcher).
 */
export function isPublicAddress(addr: string): boolean {
  const bare = addr.replace(/^\[|\]$/g, '');
  const family = isIP(bare.split('%')[0] ?? '');
  if (family === 4) return !blocked.check(bare, 'ipv4');
  if (family !== 6) return false;
  const bytes = ipv6Bytes(bare);
  if (!bytes) return false;
  const v4 = embeddedIpv4(bytes);
  if (v4 === REFUSE) return false;
  if (v4 !== null && blocked.check(v4, 'ipv4')) return false;
  const canonical = Array.from({ length: 8 }, (_, i) => ((bytes[i * 2]! << 8) | bytes[i * 2 + 1]!).toString(16)).join(':');
  return !blocked.check(canonical, 'ipv6');
}

/**
 * The checks that need no DNS: scheme, credentials, and hosts that are literal addresses or
 * obviously local names. Applied before any fetcher (the injected ones too), so a refused URL is
 * never handed to one. Returns the parsed URL.
 */
export function checkX5uUrl(raw: string, allowInsecure: boolean): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new X5uPolicyError('x5u is not an absolute URL');
  }
  if (url.protocol !== 'https:' && !(allowInsecure && url.protocol === 'http:')) {
    throw new X5uPolicyError(`x5u scheme ${url.protocol} is not allowed`);
  }
  // Userinfo in a certificate URL has no legitimate use and is a classic filter-evasion trick.
  if (url.username !== '' || url.password !== '') throw new X5uPolicyError('x5u carries credentials');
  if (allowInsecure) return url;
  // A trailing dot (fully qualified form) must not slip "localhost." past the name rules.
  const host = url.hostname.replace(/^\[|\]$/g, '').replace(/\.$/, '');
  if (isIP(host) !== 0) {
    if (!isPublicAddress(host)) throw new X5uPolicyError('x5u host is not a public address');
  } else if (host === 'localhost' || host.endsWith('.localhost') || !host.includes('.')) {
    // Single-label names resolve through search domains to internal hosts.
    throw new X5uPolicyError('x5u host is a local name');
  }
  return url;
}

import { checkX5uUrl, isPublicAddress, X5uPolicyError } from '../../src/shaken';

describe('isPublicAddress', () => {
  it.each([
    '127.0.0.1', '127.255.255.254', '10.0.0.1', '10.255.255.255', '172.16.0.1', '172.31.255.255', '192.168.1.1',
    '169.254.169.254', '100.64.0.1', '100.127.255.255', '0.0.0.0', '0.1.2.3', '224.0.0.1', '239.255.255.255',
    '255.255.255.255', '240.0.0.1', '192.0.0.8', '198.18.0.1',
    '::', '::1', 'fc00::1', 'fd12:3456::1', 'fe80::1', 'fe80::1%eth0', 'febf::1', 'ff02::1',
    '::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:10.0.0.1', '::ffff:a9fe:a9fe', '::127.0.0.1',
    '64:ff9b::127.0.0.1', '64:ff9b::a00:1', '2002:7f00:1::1', '2002:c0a8:101::1',
    '[::1]', 'not-an-ip', '',
  ])('%s is not public', (ip) => {
    expect(isPublicAddress(ip)).toBe(false);
  });

  it.each(['8.8.8.8', '1.1.1.1', '172.15.255.255', '172.32.0.1', '100.63.255.255', '100.128.0.1', '2606:4700:4700::1111', '2a00:1450:4009::200e', '::ffff:8.8.8.8', '64:ff9b::8.8.8.8', '2002:808:808::1'])(
    '%s is public',
    (ip) => {
      expect(isPublicAddress(ip)).toBe(true);
    },
  );
});

describe('checkX5uUrl', () => {
  const refused = (url: string, insecure = false) => expect(() => checkX5uUrl(url, insecure)).toThrow(X5uPolicyError);

  it('accepts https to a public name or address', () => {
    expect(checkX5uUrl('https://cr.example.net/sp.pem', false).hostname).toBe('cr.example.net');
    expect(checkX5uUrl('https://8.8.8.8/sp.pem', false).hostname).toBe('8.8.8.8');
  });

  it.each(['http://cr.example.net/sp.pem', 'ftp://cr.example.net/sp.pem', 'file:///etc/passwd', 'data:text/plain,x', 'gopher://cr.example.net/', 'not a url', ''])(
    'refuses %s',
    (url) => refused(url),
  );

  it.each([
    'https://127.0.0.1/sp.pem',
    'https://127.1/sp.pem',
    'https://2130706433/sp.pem',
    'https://0x7f000001/sp.pem',
    'https://10.1.2.3/sp.pem',
    'https://[::1]/sp.pem',
    'https://[::ffff:127.0.0.1]/sp.pem',
    'https://[fd00::1]/sp.pem',
    'https://169.254.169.254/latest/meta-data',
    'https://localhost/sp.pem',
    'https://localhost./sp.pem',
    'https://intranet./sp.pem',
    'https://api.localhost/sp.pem',
    'https://intranet/sp.pem',
    'https://user:pw@cr.example.net/sp.pem',
  ])('refuses %s unless insecure', (url) => refused(url));

  it('allowInsecure opens http and local hosts, but not other schemes', () => {
    expect(checkX5uUrl('http://127.0.0.1:8080/sp.pem', true).port).toBe('8080');
    expect(checkX5uUrl('https://[::1]/sp.pem', true).hostname).toBe('[::1]');
    refused('ftp://127.0.0.1/sp.pem', true);
  });
});

describe('IPv6 transition forms that reach IPv4', () => {
  it.each([
    // IPv4-mapped ::ffff:0:0/96, dotted and hex, compressed and not
    '::ffff:127.0.0.1', '::ffff:7f00:1', '0:0:0:0:0:ffff:7f00:0001', '::FFFF:10.1.2.3', '::ffff:a9fe:a9fe', '::ffff:c0a8:0101',
    // IPv4-translated ::ffff:0:0:0/96 (SIIT)
    '::ffff:0:127.0.0.1', '::ffff:0:7f00:1', '0:0:0:0:ffff:0:a00:1', '::ffff:0:192.168.1.1', '::ffff:0:a9fe:a9fe',
    // IPv4-compatible ::/96, refused whatever it carries
    '::127.0.0.1', '::7f00:1', '::8.8.8.8', '::808:808', '0:0:0:0:0:0:1.1.1.1',
    // NAT64 well-known prefix 64:ff9b::/96 with an internal address
    '64:ff9b::127.0.0.1', '64:ff9b::7f00:1', '64:ff9b:0:0:0:0:a00:1', '64:FF9B::169.254.169.254', '64:ff9b::c0a8:1',
    // the rest of 64:ff9b::/32, including local-use 64:ff9b:1::/48, refused whatever it carries
    '64:ff9b:1::8.8.8.8', '64:ff9b:1::808:808', '64:ff9b:1:abcd::1', '64:ff9b:0:1::8.8.8.8',
    // 6to4 2002::/16 with an internal address (bytes 2-5)
    '2002:7f00:1::', '2002:7f00:0001::1', '2002:a00:1::1', '2002:c0a8:101::1', '2002:a9fe:a9fe::', '2002:c058:6301::1',
    // Teredo 2001::/32, refused whatever it carries
    '2001::1', '2001:0:4136:e378:8000:63bf:3fff:fdd2', '2001:0000:0808:0808::',
    // 6to4 relay anycast
    '192.88.99.1', '192.88.99.255',
  ])('%s is not public', (ip) => {
    expect(isPublicAddress(ip)).toBe(false);
    expect(() => checkX5uUrl(`https://[${ip}]/sp.pem`.replace(/^https:\/\/\[(\d+\.\d+\.\d+\.\d+)\]/, 'https://$1'), false)).toThrow(X5uPolicyError);
  });

  it.each(['::ffff:8.8.8.8', '::ffff:0:8.8.8.8', '64:ff9b::8.8.8.8', '64:ff9b::808:808', '2002:808:808::1', '2001:db9::1', '2001:1::1', '192.88.98.1'])('%s is public', (ip) => {
    expect(isPublicAddress(ip)).toBe(true);
  });
});

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

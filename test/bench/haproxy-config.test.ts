import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { localHaproxyConfig, serverStates } from '../../bench/lib/haproxy';

/** The scale-out bench runs the compose file's HAProxy configuration: only Docker's DNS, the binds and the servers differ. */
const COMMITTED = readFileSync(resolve(__dirname, '../../docker/haproxy/haproxy.cfg'), 'utf8');
const LOCAL = {
  binds: { callguard: '127.0.0.1:41000', stats: '127.0.0.1:41001' },
  backend: 'callguard',
  servers: [
    { name: 'callguard-1', address: '127.0.0.1:42001' },
    { name: 'callguard-2', address: '127.0.0.1:42002' },
    { name: 'callguard-3', address: '127.0.0.1:42003' },
  ],
};

const directives = (cfg: string) => cfg.split('\n').filter((l) => l.trim() && !l.trim().startsWith('#'));

describe('localHaproxyConfig', () => {
  const local = localHaproxyConfig(COMMITTED, LOCAL);

  test('drops the resolvers section and every reference to it', () => {
    expect(COMMITTED).toMatch(/^resolvers docker$/m);
    expect(local).not.toMatch(/resolvers/);
    expect(local).not.toMatch(/127\.0\.0\.11/);
  });

  test('binds each frontend where it is told, and only there', () => {
    expect(local.match(/^\s+bind\s.*$/gm)).toEqual(['    bind 127.0.0.1:41000', '    bind 127.0.0.1:41001']);
  });

  test('has one server line per given server, with the committed health-check defaults', () => {
    expect(local.match(/^\s+server\s.*$/gm)).toEqual(['    server callguard-1 127.0.0.1:42001', '    server callguard-2 127.0.0.1:42002', '    server callguard-3 127.0.0.1:42003']);
    expect(local).toMatch(/^\s+default-server check inter 2s fastinter 500ms downinter 2s fall 2 rise 2 init-addr last,libc,none$/m);
  });

  test('changes nothing else: every other directive is the committed one, in order', () => {
    const changed = /^\s*(resolvers|nameserver|hold|bind|server|default-server)\b/;
    const keep = (cfg: string) => directives(cfg).filter((l) => !changed.test(l));
    expect(keep(local)).toEqual(keep(COMMITTED));
    for (const line of ['timeout connect 250ms', 'retries 1', 'option redispatch 1', 'retry-on conn-failure empty-response 503', 'balance roundrobin', 'http-check send meth GET uri /readyz']) {
      expect(local).toContain(line);
    }
  });

  test('a server keeps the options the committed server line had after its address', () => {
    const cfg = 'resolvers dns\n    nameserver a 1.1.1.1:53\n\nfrontend fe\n    bind :80\n    default_backend be\n\nbackend be\n    server a a:80 maxconn 10 resolvers dns weight 2\n    server b b:80\n';
    const out = localHaproxyConfig(cfg, { binds: { fe: '127.0.0.1:1' }, backend: 'be', servers: [{ name: 'x', address: '127.0.0.1:2' }] });
    expect(out).toBe('frontend fe\n    bind 127.0.0.1:1\n    default_backend be\n\nbackend be\n    server x 127.0.0.1:2 maxconn 10 weight 2\n');
  });

  test('refuses a file that no longer has what it replaces', () => {
    expect(() => localHaproxyConfig(COMMITTED, { ...LOCAL, backend: 'other' })).toThrow(/no backend other/);
    expect(() => localHaproxyConfig(COMMITTED, { ...LOCAL, binds: { callguard: '127.0.0.1:1' } })).toThrow(/no bind given for .* stats/);
    expect(() => localHaproxyConfig(COMMITTED, { ...LOCAL, binds: { ...LOCAL.binds, admin: '127.0.0.1:1' } })).toThrow(/no frontend admin/);
    expect(() => localHaproxyConfig(COMMITTED, { ...LOCAL, servers: [] })).toThrow(/at least one server/);
  });
});

describe('serverStates', () => {
  test("reads each server's state and last check from the stats CSV, not the frontend's or backend's rows", () => {
    const csv = [
      '# pxname,svname,qcur,status,weight,check_status,',
      'callguard,FRONTEND,,OPEN,,,',
      'callguard,callguard-1,0,UP,1,L7OK,',
      'callguard,callguard-2,0,DOWN,1,L4CON,',
      'callguard,BACKEND,0,UP,1,,',
      'stats,FRONTEND,,OPEN,,,',
    ].join('\n');
    expect(serverStates(csv, 'callguard')).toEqual([
      { name: 'callguard-1', status: 'UP', check: 'L7OK' },
      { name: 'callguard-2', status: 'DOWN', check: 'L4CON' },
    ]);
  });
});

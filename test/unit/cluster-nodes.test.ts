import { parseClusterNodes, servesSlot } from '../../scripts/lib/redis-cluster';

/** What the fault drill reads of CLUSTER NODES to tell a promotion and a rejoin (scripts/lib/redis-cluster.ts). */
describe('parseClusterNodes', () => {
  // A cluster after its first master (30001) was killed: its replica 30004 holds slots 0-5460.
  const text = [
    '07c37dfeb235213a872192d90877d0cd55635b91 127.0.0.1:30004@40004 myself,master - 0 0 7 connected 0-5460 12182',
    'e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 127.0.0.1:30001@40001 master,fail - 1426238316232 1426238316000 1 disconnected',
    '67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:30002@40002 master - 0 1426238316232 2 connected 5461-10922 [93->-292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f]',
    '6ec23923021cf3ffec47632106199cb7f496ce01 127.0.0.1:30005@40005 slave 67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 0 1426238316232 5 connected',
    '',
  ].join('\n');

  it('reads each node: its port, role, master, failure flag, link and slots', () => {
    expect(parseClusterNodes(text)).toEqual([
      { id: '07c37dfeb235213a872192d90877d0cd55635b91', port: 30004, role: 'master', masterId: null, failing: false, connected: true, slots: ['0-5460', '12182'] },
      { id: 'e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca', port: 30001, role: 'master', masterId: null, failing: true, connected: false, slots: [] },
      { id: '67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1', port: 30002, role: 'master', masterId: null, failing: false, connected: true, slots: ['5461-10922'] },
      { id: '6ec23923021cf3ffec47632106199cb7f496ce01', port: 30005, role: 'replica', masterId: '67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1', failing: false, connected: true, slots: [] },
    ]);
  });

  it('tells which node serves a slot, by range or alone', () => {
    const [promoted] = parseClusterNodes(text);
    expect([0, 3850, 5460, 12182].map((slot) => servesSlot(promoted!, slot))).toEqual([true, true, true, true]);
    expect([5461, 12181].map((slot) => servesSlot(promoted!, slot))).toEqual([false, false]);
  });
});

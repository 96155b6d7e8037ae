import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Redis from 'ioredis';
import { planPutEntry, type Actor } from '../../src/registry/admin';
import { FileRegistryBackend } from '../../src/registry/file-backend';
import { parseRegistryDocument } from '../../src/registry/format';
import { RedisRegistryBackend } from '../../src/registry/redis-backend';
import { RegistryStore, RegistryUnconfirmedError, type StoreLog } from '../../src/registry/store';
import { createRedisClient } from '../../src/state/redis/client';
import { build } from '../helpers/build';
import { type Child, freePort, sleep, startRedisServer, until } from '../../scripts/lib/process';

/**
 * Registry changes on Redis: acknowledged only once Redis can keep them through a crash (or
 * said loudly when it cannot), never rolled back by a Redis that comes back older, and never
 * audited unless made. Each test runs its own redis-server on its own port.
 */
const ADMIN: Actor = { name: 'admin', bankId: null };
const seed = () => ({
  data: parseRegistryDocument({ banks: [{ id: 'b', name: 'Bank B' }], numbers: [{ number: '+443450000000', bankId: 'b', inboundOnly: true }] }, 'GB').data,
  version: 'seed-v1',
});
const put = (store: RegistryStore, number: string) => store.change((i) => planPutEntry(i, ADMIN, 'number', number, { bankId: 'b', inboundOnly: true }, 'GB'));
/** Reads the change log (and writes nothing): what a poll does, when the test says so. */
const sync = (store: RegistryStore) => store.change(() => ({ mutations: [], audit: [], result: null }));

const servers: Child[] = [];
const clients: Redis[] = [];
const dirs: string[] = [];

afterAll(async () => {
  for (const c of clients) c.disconnect();
  await Promise.all(servers.map((s) => s.kill()));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'callguard-durability-'));
  dirs.push(dir);
  return dir;
}

/** A redis-server of this test's own: AOF synced on every write unless `extra` says otherwise. */
async function redisServer(port: number, dir: string, extra: string[] = []): Promise<Child> {
  const proc = await startRedisServer(port, { args: ['--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--dir', dir, ...extra] });
  servers.push(proc);
  return proc;
}

/** A client as the app makes for the registry: fails fast while disconnected, reconnects by itself. */
async function client(port: number): Promise<Redis> {
  const c = createRedisClient(`redis://127.0.0.1:${port}`, { commandTimeoutMs: 5000 });
  c.on('error', () => undefined);
  clients.push(c);
  await until(() => c.status === 'ready', 5000, 'redis client');
  return c;
}

function recordingLog(): StoreLog & { lines: { level: string; obj: object; msg: string }[] } {
  const lines: { level: string; obj: object; msg: string }[] = [];
  return {
    lines,
    error: (obj, msg) => lines.push({ level: 'error', obj, msg }),
    warn: (obj, msg) => lines.push({ level: 'warn', obj, msg }),
    info: (obj, msg) => lines.push({ level: 'info', obj, msg }),
  };
}

/** Makes the client answer WAITAOF as Redis 7.2+ would, with `answer`; every other command goes to the real server. */
function withWaitAof(c: Redis, answer: () => [number, number]): string[][] {
  const calls: string[][] = [];
  const real = c.call.bind(c) as (...args: unknown[]) => Promise<unknown>;
  jest.spyOn(c, 'call').mockImplementation(((command: string, ...args: string[]) => {
    if (String(command).toUpperCase() !== 'WAITAOF') return real(command, ...args);
    calls.push(args);
    return Promise.resolve(answer());
  }) as never);
  return calls;
}

describe('what Redis promises about an acknowledged registry change', () => {
  it('appendfsync always: durable, said in /readyz, and a change acknowledged survives Redis being killed', async () => {
    const port = await freePort();
    const dir = tempDir();
    let server = await redisServer(port, dir);
    const redis = await client(port);
    const app = await build({ REDIS_URL: `redis://127.0.0.1:${port}` }, { registryRedis: redis });
    try {
      const ready = (await app.inject('/readyz')).json();
      expect(ready).toMatchObject({ status: 'ready', registry: { durability: 'appendfsync-always', durabilityWarning: null } });
      const res = await app.inject({ method: 'PUT', url: '/v1/registry/numbers/+441174960500', payload: { bankId: 'harbour', inboundOnly: true } });
      expect(res.statusCode).toBe(201);
      // The client is still 'ready' until it notices Redis gone: wait for it to be ready again.
      let readies = 0;
      redis.on('ready', () => readies++);
      await server.kill(); // SIGKILL: no shutdown, no last save
      server = await redisServer(port, dir);
      await until(() => readies > 0 && redis.status === 'ready', 5000, 'reconnection');
      expect(await redis.hget('callguard:{registry}:entries', 'number:+441174960500')).not.toBeNull();
    } finally {
      await app.close();
    }
  });

  it('appendonly no: says so in a warning at start and in /readyz, and stays ready', async () => {
    const port = await freePort();
    await redisServer(port, tempDir(), ['--appendonly', 'no']);
    const redis = await client(port);
    const log = recordingLog();
    const store = await RegistryStore.open(new RedisRegistryBackend(redis, { pollMs: 50, log }), seed, log);
    expect(store.durability()).toMatchObject({ mode: 'not-durable', warning: expect.stringMatching(/appendonly no/) });
    expect(log.lines).toContainEqual(expect.objectContaining({ level: 'warn', obj: expect.objectContaining({ registryDurability: 'not-durable' }) }));
    await store.close();

    const app = await build({ REDIS_URL: `redis://127.0.0.1:${port}` }, { registryRedis: redis });
    try {
      expect((await app.inject('/readyz')).json()).toMatchObject({
        status: 'ready',
        registry: { durability: 'not-durable', durabilityWarning: expect.stringMatching(/crash may lose acknowledged registry changes/) },
      });
    } finally {
      await app.close();
    }
  });

  it('CONFIG renamed away (as on managed Redis) and no WAITAOF: cannot tell, and says so', async () => {
    const port = await freePort();
    await redisServer(port, tempDir(), ['--rename-command', 'CONFIG', 'config-hidden-by-operator']);
    const log = recordingLog();
    const store = await RegistryStore.open(new RedisRegistryBackend(await client(port), { pollMs: 50, log }), seed, log);
    expect(store.durability()).toMatchObject({ mode: 'unknown', warning: expect.stringMatching(/cannot tell/) });
    expect(log.lines.some((l) => l.level === 'warn' && /may not survive/.test(l.msg))).toBe(true);
    await store.close();
  });

  it('looks again when Redis comes back with other settings', async () => {
    const port = await freePort();
    const dir = tempDir();
    const server = await redisServer(port, dir, ['--appendfsync', 'everysec']);
    const store = await RegistryStore.open(new RedisRegistryBackend(await client(port), { pollMs: 50 }), seed);
    expect(store.durability().mode).toBe('not-durable');
    await server.kill();
    await redisServer(port, dir);
    await until(() => store.durability().mode === 'appendfsync-always', 5000, 'durability checked again after reconnecting');
    await store.close();
  });

  describe('Redis with WAITAOF (7.2+)', () => {
    it('acknowledges a change only after WAITAOF confirmed it on disk', async () => {
      const port = await freePort();
      await redisServer(port, tempDir(), ['--appendfsync', 'everysec']);
      const redis = await client(port);
      const waits = withWaitAof(redis, () => [1, 0]);
      const store = await RegistryStore.open(new RedisRegistryBackend(redis, { pollMs: 50, confirmTimeoutMs: 1500 }), seed);
      expect(store.durability()).toEqual({ mode: 'waitaof', warning: null });
      const before = waits.length;
      await put(store, '+442079460100');
      expect(waits.slice(before)).toEqual([['1', '0', '1500']]);
      expect(store.index.lookup('+442079460100')?.bankId).toBe('b');
      await store.close();
    });

    it('a change WAITAOF does not confirm is answered 503 registry_unconfirmed; it was made, and the instance catches up with it', async () => {
      const port = await freePort();
      await redisServer(port, tempDir(), ['--appendfsync', 'everysec']);
      const redis = await client(port);
      let local = 1;
      withWaitAof(redis, () => [local, 0]);
      const app = await build({ REDIS_URL: `redis://127.0.0.1:${port}` }, { registryRedis: redis });
      try {
        expect((await app.inject('/readyz')).json()).toMatchObject({ registry: { durability: 'waitaof' } });
        local = 0; // timed out with the change on no disk
        const res = await app.inject({ method: 'PUT', url: '/v1/registry/numbers/+441174960600', payload: { bankId: 'harbour', inboundOnly: true } });
        expect(res.statusCode).toBe(503);
        expect(res.json()).toMatchObject({ error: 'registry_unconfirmed' });
        await expect(app.services.registryStore.backend.commit([], [], 'v-never', () => app.services.registryStore.index)).rejects.toBeInstanceOf(RegistryUnconfirmedError);
        local = 1;
        // Made in Redis (a crash may still lose it), so the log brings it to this instance too.
        await until(() => app.services.registryStore.index.lookup('+441174960600') !== null, 3000, 'the unconfirmed change to be followed');
      } finally {
        await app.close();
      }
    });
  });
});

describe('a master with a replica: a change is acknowledged once the replica has it (WAIT)', () => {
  it('acknowledged with the replica holding it; a replica that does not answer makes it unconfirmed, made all the same', async () => {
    const [port, replicaPort] = [await freePort(), await freePort()];
    await redisServer(port, tempDir(), ['--repl-diskless-sync-delay', '0']);
    const replica = await redisServer(replicaPort, tempDir(), ['--replicaof', '127.0.0.1', String(port)]);
    const onReplica = await client(replicaPort);
    const master = await client(port);
    await until(async () => (await master.info('replication')).includes('state=online'), 5000, 'the replica to sync');
    const log = recordingLog();
    const store = await RegistryStore.open(new RedisRegistryBackend(master, { pollMs: 50, confirmTimeoutMs: 1000, log }), seed, log);
    const onReplicaNow = (n: string) => onReplica.hget('callguard:{registry}:entries', `number:${n}`);

    await put(store, '+442079460700');
    // Read at once: acknowledged means already on the replica, not on its way there.
    expect(await onReplicaNow('+442079460700')).not.toBeNull();
    expect(log.lines).toContainEqual(expect.objectContaining({ level: 'info', msg: expect.stringMatching(/once a replica has them/) }));

    // Still connected as far as the master knows, but acknowledging nothing.
    replica.proc.kill('SIGSTOP');
    try {
      const refused = put(store, '+442079460701');
      await expect(refused).rejects.toBeInstanceOf(RegistryUnconfirmedError);
      await expect(refused).rejects.toThrow(/no replica confirmed it within 1000 ms/);
    } finally {
      replica.proc.kill('SIGCONT');
    }
    // Made on the master all the same: the instance follows it from the log, and the replica catches up.
    await until(() => store.index.lookup('+442079460701') !== null, 3000, 'the unconfirmed change to be followed');
    await until(async () => (await onReplicaNow('+442079460701')) !== null, 3000, 'the replica to catch up');

    // A master without a replica acknowledges as before, and says what it no longer promises.
    onReplica.disconnect();
    await replica.kill();
    await until(async () => (await master.info('replication')).includes('connected_slaves:0'), 5000, 'the master to lose its replica');
    await put(store, '+442079460702');
    expect(store.index.lookup('+442079460702')?.bankId).toBe('b');
    expect(log.lines).toContainEqual(expect.objectContaining({ level: 'warn', msg: expect.stringMatching(/no replica connected/) }));
    await store.close();
  }, 20_000);
});

describe('a Redis that comes back holding an older registry', () => {
  it('restarted from an older AOF: the instances write the newer registry back, and no acknowledged change is lost', async () => {
    const port = await freePort();
    const dir = tempDir();
    const server = await redisServer(port, dir);
    const log = recordingLog();
    const open = async () => RegistryStore.open(new RedisRegistryBackend(await client(port), { pollMs: 50, log }), seed, log);
    const a = await open();
    const b = await open();
    await put(a, '+442079460201');
    await until(() => b.index.lookup('+442079460201') !== null, 2000, 'b to follow');
    await sleep(100); // nothing in flight: the AOF is whole
    const older = tempDir();
    cpSync(join(dir, 'appendonlydir'), join(older, 'appendonlydir'), { recursive: true });

    await put(a, '+442079460202');
    await put(b, '+442079460203');
    await until(() => a.index.lookup('+442079460203') !== null && b.index.lookup('+442079460202') !== null, 2000, 'both to follow');

    // Redis dies and comes back from the older copy: it holds the first change only.
    const crashed = a.version;
    await server.kill();
    rmSync(join(dir, 'appendonlydir'), { recursive: true });
    cpSync(join(older, 'appendonlydir'), join(dir, 'appendonlydir'), { recursive: true });
    await redisServer(port, dir);

    const check = await client(port);
    const inRedis = (n: string) => check.hget('callguard:{registry}:entries', `number:${n}`);
    await until(async () => (await inRedis('+442079460203')) !== null, 5000, 'the newer registry to be written back');
    // Both already hold `crashed` before anything is written back: wait for the written-back one.
    const held = () => check.get('callguard:{registry}:version');
    await until(async () => { const v = await held(); return v !== crashed && a.version === v && b.version === v; }, 3000, 'both instances on the written-back version');
    for (const store of [a, b]) {
      for (const n of ['+442079460201', '+442079460202', '+442079460203', '+443450000000']) expect(store.index.lookup(n)?.bankId).toBe('b');
    }
    expect(await inRedis('+442079460202')).not.toBeNull();
    expect(a.restores.count + b.restores.count).toBeGreaterThanOrEqual(1);
    expect(log.lines).toContainEqual(expect.objectContaining({ level: 'error', msg: expect.stringMatching(/older registry/) }));

    // An instance started now loads the newer registry.
    const c = await open();
    expect(c.index.lookup('+442079460202')?.bankId).toBe('b');
    expect(c.version).toBe(a.version);
    await Promise.all([a.close(), b.close(), c.close()]);
  }, 30_000);

  it('changes made on the older registry before the instances noticed are kept too', async () => {
    const port = await freePort();
    const prefix = 'fork:';
    await redisServer(port, tempDir());
    const redis = await client(port);
    // No polling of their own: the test says when each instance reads the log.
    const open = () => RegistryStore.open(new RedisRegistryBackend(redis, { prefix, pollMs: 600_000 }), seed);
    const a = await open();
    const b = await open();
    await put(a, '+442079460301');
    await sync(b);
    const keys = ['banks', 'entries', 'version', 'seq', 'log'].map((k) => `${prefix}{registry}:${k}`);
    const dumps = await Promise.all(keys.map((k) => redis.dumpBuffer(k)));
    await put(a, '+442079460302');
    await put(b, '+442079460303');
    await sync(a);

    // A failover to a replica that had only the first change...
    await redis.del(...keys);
    await Promise.all(keys.map((k, i) => (dumps[i] ? redis.restore(k, 0, dumps[i]) : null)));
    // ...and an instance started after it, which takes a change on it.
    const c = await open();
    expect(c.index.lookup('+442079460302')).toBeNull();
    await put(c, '+442079460304');

    await sync(a); // sees Redis behind it: writes its registry back, with c's change on top
    await sync(b); // sees a's write-back, newer than anything it holds: loads it
    await sync(c);
    for (const store of [a, b, c]) {
      for (const n of ['+442079460301', '+442079460302', '+442079460303', '+442079460304']) expect({ n, bank: store.index.lookup(n)?.bankId }).toEqual({ n, bank: 'b' });
      expect(store.version).toBe(a.version);
    }
    expect(a.restores.count).toBe(1);
    expect(b.restores.count).toBe(0);
    expect(await redis.hlen(`${prefix}{registry}:entries`)).toBe(5);
    await Promise.all([a.close(), b.close(), c.close()]);
  });
});

describe('no audit record for a change that was not made', () => {
  it('Redis: a change that fails in Redis leaves no audit record, no log entry and the old version', async () => {
    const port = await freePort();
    await redisServer(port, tempDir());
    const redis = await client(port);
    const store = await RegistryStore.open(new RedisRegistryBackend(redis, { pollMs: 50 }), seed);
    await put(store, '+442079460401');
    const before = { audit: await redis.xlen('callguard:{registry}:audit'), log: await redis.xlen('callguard:{registry}:log'), version: await redis.get('callguard:{registry}:version') };
    // Injected: a key the change writes to holds another type, so writing the change fails.
    await redis.set('callguard:{registry}:banks', 'not a hash');
    await expect(store.change(() => ({
      mutations: [
        { type: 'entry', kind: 'number', key: '+442079460402', value: { kind: 'number', key: '+442079460402', bankId: 'b', inboundOnly: true } },
        { type: 'bank', id: 'c', value: { id: 'c', name: 'Bank C', callbackNumbers: [] } },
      ],
      audit: [{ at: new Date().toISOString(), actor: 'admin', action: 'bank.create', bankId: 'c', target: 'bank:c', before: null, after: { id: 'c' } }],
      result: null,
    }))).rejects.toThrow(/not stored in Redis/);
    expect({ audit: await redis.xlen('callguard:{registry}:audit'), log: await redis.xlen('callguard:{registry}:log'), version: await redis.get('callguard:{registry}:version') }).toEqual(before);
    expect(await redis.hget('callguard:{registry}:entries', 'number:+442079460402')).toBeNull();
    expect((await store.readAudit({ limit: 10 })).map((r) => r.target)).toEqual(['number:+442079460401']);
    await store.close();
  });

  describe('embedded (file journal)', () => {
    const openFile = async (dir: string) => {
      const backend = new FileRegistryBackend(dir, 'GB');
      return { backend, store: await RegistryStore.open(backend, seed) };
    };
    const handle = (backend: FileRegistryBackend, name: 'journal' | 'audit') => (backend as unknown as Record<string, FileHandle>)[name]!;

    it('a change whose journal write fails leaves no audit record', async () => {
      const dir = tempDir();
      const { backend, store } = await openFile(dir);
      await put(store, '+442079460501');
      // Injected: the disk refuses the journal line.
      jest.spyOn(handle(backend, 'journal'), 'appendFile').mockRejectedValueOnce(Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' }));
      await expect(put(store, '+442079460502')).rejects.toThrow(/ENOSPC/);
      expect((await store.readAudit({ limit: 10 })).map((r) => r.target)).toEqual(['number:+442079460501']);
      await store.close();
      const { store: again } = await openFile(dir);
      expect(again.index.lookup('+442079460502')).toBeNull();
      expect(again.index.lookup('+442079460501')?.bankId).toBe('b');
      await again.close();
    });

    it('a change whose audit record cannot be written is taken back out of the journal', async () => {
      const dir = tempDir();
      const { backend, store } = await openFile(dir);
      await put(store, '+442079460601');
      jest.spyOn(handle(backend, 'audit'), 'datasync').mockRejectedValueOnce(new Error('EIO: i/o error'));
      await expect(put(store, '+442079460602')).rejects.toThrow(/EIO/);
      expect(store.index.lookup('+442079460602')).toBeNull();
      await put(store, '+442079460603'); // the journal goes on whole after the failure
      await store.close();
      const { store: again } = await openFile(dir);
      expect(again.index.lookup('+442079460602')).toBeNull();
      expect(again.index.lookup('+442079460603')?.bankId).toBe('b');
      expect((await again.readAudit({ limit: 10 })).map((r) => r.target)).toEqual(['number:+442079460603', 'number:+442079460601']);
      await again.close();
    });
  });
});

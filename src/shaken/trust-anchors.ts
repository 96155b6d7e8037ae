import { createHash, type X509Certificate } from 'node:crypto';
import { watch, readdirSync, readFileSync, statSync, type FSWatcher } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { parsePemCertificates } from './chain';

/** Files a folder of anchors may hold, and bytes one file may have: a reload's work is bounded. */
export const MAX_ANCHOR_FILES = 1000;
export const MAX_ANCHOR_FILE_BYTES = 4 * 1024 * 1024;

const PEM_BEGIN_RE = /-----BEGIN CERTIFICATE-----/g;
const isAnchorFile = (name: string) => /\.(pem|crt)$/i.test(name);

/** One set of STI-CA roots, as loaded at one time: what every judged chain is judged against. */
export interface TrustAnchorSet {
  readonly certs: readonly X509Certificate[];
  /** SHA-256 over the certificates' sorted DER digests: the same roots give the same fingerprint whatever the files. */
  readonly fingerprint: string;
  /** The soonest notAfter among the roots (ms); null for an empty set. */
  readonly soonestExpiryMs: number | null;
}

export function trustAnchorSet(certs: readonly X509Certificate[]): TrustAnchorSet {
  const digests = certs.map((c) => createHash('sha256').update(c.raw).digest('hex')).sort();
  const fingerprint = createHash('sha256').update(digests.join('\n')).digest('base64url');
  let soonest: number | null = null;
  for (const c of certs) {
    const to = Date.parse(c.validTo);
    const at = Number.isNaN(to) ? -Infinity : to;
    if (soonest === null || at < soonest) soonest = at;
  }
  return { certs: [...certs], fingerprint, soonestExpiryMs: soonest };
}

/**
 * The certificates of one anchor file. Throws with the reason on a PEM block that does not
 * parse, a BEGIN line without its END (the regex would silently skip it), or a non-CA
 * certificate: chain building only accepts CA certificates as issuers, so a non-CA here would
 * be silently useless, most likely a leaf or a bundle put in the wrong place.
 */
function anchorsOfFile(text: string): X509Certificate[] {
  const begun = text.match(PEM_BEGIN_RE)?.length ?? 0;
  const certs = parsePemCertificates(text, Infinity);
  if (certs.length !== begun) throw new Error(`${begun - certs.length} PEM certificate block(s) without an END line`);
  const notCa = certs.find((c) => !c.ca);
  if (notCa) throw new Error(`"${notCa.subject.replace(/\n/g, ', ')}" is not a CA certificate`);
  return certs;
}

/**
 * STI-CA roots from SHAKEN_TRUST_ANCHORS: one PEM file (any number of certificates), or a
 * folder whose *.pem / *.crt files are all read. Runs at start-up, so it throws with the
 * offending path rather than starting a service that silently trusts nothing.
 */
export function loadTrustAnchors(path: string): X509Certificate[] {
  return loadCertificateFiles(path, 'SHAKEN_TRUST_ANCHORS', anchorsOfFile);
}

/**
 * Every certificate of one PEM file, or of a folder's *.pem / *.crt files, for a setting read at
 * start-up (`variable` names it in the error): throws with the offending path, and when there is
 * no certificate at all.
 */
export function loadCertificateFiles(path: string, variable: string, parse: (pem: string) => X509Certificate[]): X509Certificate[] {
  let files: string[];
  try {
    files = statSync(path).isDirectory()
      ? readdirSync(path)
          .filter(isAnchorFile)
          .sort()
          .map((name) => join(path, name))
      : [path];
  } catch (err) {
    throw new Error(`${variable}: cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
  const certs: X509Certificate[] = [];
  for (const file of files) {
    try {
      certs.push(...parse(readFileSync(file, 'utf8')));
    } catch (err) {
      throw new Error(`${variable}: ${file}: ${(err as Error).message}`, { cause: err });
    }
  }
  if (certs.length === 0) throw new Error(`${variable}: no certificate in ${path}`);
  return certs;
}

/** The files SHAKEN_TRUST_ANCHORS names, in order; a folder's must not be too many. */
async function anchorFiles(path: string): Promise<{ files: string[]; isDir: boolean }> {
  if (!(await stat(path)).isDirectory()) return { files: [path], isDir: false };
  const names = (await readdir(path)).filter(isAnchorFile).sort();
  if (names.length > MAX_ANCHOR_FILES) throw new Error(`more than ${MAX_ANCHOR_FILES} anchor files`);
  return { files: names.map((name) => join(path, name)), isDir: true };
}

/**
 * Reads and checks a whole new anchor set, for a reload: everything `loadTrustAnchors` checks,
 * and a set whose every root has expired is refused too (it could trust nothing; most likely
 * the wrong file). Files are read asynchronously and parsed one at a time with a turn of the
 * event loop between them, so a reload never holds calls for more than one file's parsing.
 */
export async function readTrustAnchorSet(path: string, nowMs: number): Promise<TrustAnchorSet> {
  let files: string[];
  try {
    ({ files } = await anchorFiles(path));
  } catch (err) {
    throw new Error(`cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
  const anchors: X509Certificate[] = [];
  for (const file of files) {
    try {
      const size = (await stat(file)).size;
      if (size > MAX_ANCHOR_FILE_BYTES) throw new Error(`larger than ${MAX_ANCHOR_FILE_BYTES} bytes`);
      const text = await readFile(file, 'utf8');
      anchors.push(...anchorsOfFile(text));
    } catch (err) {
      throw new Error(`${file}: ${(err as Error).message}`, { cause: err });
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
  if (anchors.length === 0) throw new Error(`no certificate in ${path}`);
  if (anchors.every((c) => !(Date.parse(c.validTo) > nowMs))) throw new Error(`every certificate in ${path} has expired`);
  return trustAnchorSet(anchors);
}

export type ReloadOutcome = 'ok' | 'unchanged' | 'rejected';

export interface ReloadResult {
  outcome: ReloadOutcome;
  count: number;
  fingerprint: string;
  /** Why a new set was refused. */
  reason?: string;
}

export interface TrustAnchorLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** What the rest of the service sees of the anchors: the current set, and a way to reload it. */
export interface TrustAnchorsStatus {
  current(): TrustAnchorSet;
  /** Re-reads the anchors now (SIGHUP); resolves once the new set is in force or refused. */
  reload(trigger: string): Promise<ReloadResult>;
}

export interface TrustAnchorSourceOptions {
  path: string;
  /** The set loaded at start. */
  initial: TrustAnchorSet;
  /** Puts a good new set in force; synchronous, so that no call sees a half-applied set. */
  apply: (set: TrustAnchorSet) => void;
  logger: TrustAnchorLogger;
  now?: () => number;
  /** Quiet time after a file event before the anchors are re-read (default 500 ms): an editor's save is several events. */
  debounceMs?: number;
  /** Whether fs.watch is used (default true); the periodic check runs either way. */
  watch?: boolean;
  /** How often the files' stat is compared, for filesystems where fs.watch says nothing (default 30 s; 0 turns it off). */
  pollMs?: number;
  /** Anchors expiring within this are warned about, once a day each (default 30 days). */
  expiryWarningMs?: number;
  /** Told how each reload that read files ended (metrics). */
  onReload?: (outcome: 'ok' | 'rejected') => void;
}

const DAY_MS = 86_400_000;

/**
 * SHAKEN_TRUST_ANCHORS kept current: re-read on demand (SIGHUP), when fs.watch reports a
 * change (debounced), and when the files' stat changes (a periodic look, since fs.watch is
 * silent on some filesystems). A new set is read and checked whole before anything changes; a
 * broken one is refused with an error log naming the path and the reason, and the old set stays.
 * Reloads never overlap: one asked for while another runs is run once after it.
 */
export class TrustAnchorSource implements TrustAnchorsStatus {
  private set: TrustAnchorSet;
  private readonly now: () => number;
  private watcher: FSWatcher | null = null;
  private debounce: NodeJS.Timeout | null = null;
  private poller: NodeJS.Timeout | null = null;
  private running: Promise<ReloadResult> | null = null;
  private queued: Promise<ReloadResult> | null = null;
  private signature: string | null = null;
  private closed = false;
  /** certificate fingerprint -> the day (ms / DAY_MS) it was last warned about. */
  private readonly warned = new Map<string, number>();

  constructor(private readonly o: TrustAnchorSourceOptions) {
    this.set = o.initial;
    this.now = o.now ?? Date.now;
  }

  current(): TrustAnchorSet {
    return this.set;
  }

  /** Starts watching; the initial set is taken to be what the files hold now. Resolves once their stat is noted. */
  async start(): Promise<void> {
    if (this.o.watch !== false) this.watch();
    const pollMs = this.o.pollMs ?? 30_000;
    if (pollMs > 0) {
      this.poller = setInterval(() => void this.poll(), pollMs);
      this.poller.unref();
    }
    this.warnExpiring();
    const signature = await this.statSignature();
    this.signature ??= signature;
  }

  close(): void {
    this.closed = true;
    this.watcher?.close();
    this.watcher = null;
    if (this.debounce) clearTimeout(this.debounce);
    if (this.poller) clearInterval(this.poller);
  }

  reload(trigger: string): Promise<ReloadResult> {
    if (this.queued) return this.queued;
    if (this.running) {
      // A change made while a reload reads may have been missed by it: one more read, after it.
      this.queued = this.running.then(() => {
        this.queued = null;
        return this.reload(trigger);
      });
      return this.queued;
    }
    this.running = this.reloadNow(trigger).finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async reloadNow(trigger: string): Promise<ReloadResult> {
    const { path } = this.o;
    const signature = await this.statSignature();
    let next: TrustAnchorSet;
    try {
      next = await readTrustAnchorSet(path, this.now());
    } catch (err) {
      this.signature = signature;
      const reason = (err as Error).message;
      this.o.onReload?.('rejected');
      this.o.logger.error(
        { path, trigger, reason, kept: { count: this.set.certs.length, fingerprint: this.set.fingerprint } },
        'SHAKEN_TRUST_ANCHORS reload refused: keeping the trust anchors in force',
      );
      return { outcome: 'rejected', count: this.set.certs.length, fingerprint: this.set.fingerprint, reason };
    }
    this.signature = signature;
    this.o.onReload?.('ok');
    if (next.fingerprint === this.set.fingerprint) {
      this.o.logger.info({ path, trigger, count: next.certs.length, fingerprint: next.fingerprint }, 'SHAKEN_TRUST_ANCHORS re-read: unchanged');
      return { outcome: 'unchanged', count: next.certs.length, fingerprint: next.fingerprint };
    }
    if (this.closed) return { outcome: 'unchanged', count: this.set.certs.length, fingerprint: this.set.fingerprint };
    const previous = this.set;
    this.o.apply(next);
    this.set = next;
    this.o.logger.info(
      { path, trigger, count: next.certs.length, fingerprint: next.fingerprint, previous: { count: previous.certs.length, fingerprint: previous.fingerprint } },
      'SHAKEN_TRUST_ANCHORS reloaded: chains judged under the previous anchors are judged again',
    );
    this.warnExpiring();
    return { outcome: 'ok', count: next.certs.length, fingerprint: next.fingerprint };
  }

  /** Warns about each anchor that expires within the warning window, once per anchor per day. */
  warnExpiring(): void {
    const now = this.now();
    const within = this.o.expiryWarningMs ?? 30 * DAY_MS;
    const day = Math.floor(now / DAY_MS);
    const seen = new Set<string>();
    for (const c of this.set.certs) {
      const id = c.fingerprint256;
      seen.add(id);
      const to = Date.parse(c.validTo);
      if (!(to - now <= within)) continue;
      if (this.warned.get(id) === day) continue;
      this.warned.set(id, day);
      this.o.logger.warn(
        { path: this.o.path, subject: c.subject.replace(/\n/g, ', '), notAfter: new Date(to).toISOString(), daysLeft: Math.floor((to - now) / DAY_MS) },
        to <= now ? 'trust anchor has expired' : 'trust anchor expires soon',
      );
    }
    // Only anchors in force are remembered: the map is as bounded as the set.
    for (const id of this.warned.keys()) if (!seen.has(id)) this.warned.delete(id);
  }

  private watch(): void {
    // A file is watched through its folder: replacing it (an editor's save, a rename into
    // place, a Kubernetes ConfigMap's symlink swap) gives it a new inode a watch on it would miss.
    let target = this.o.path;
    let only: string | null = null;
    try {
      if (!statSync(target).isDirectory()) {
        only = basename(target);
        target = dirname(target);
      }
      this.watcher = watch(target, { persistent: false }, (_event, filename) => {
        if (only !== null && filename !== null && filename !== only && !filename.startsWith('..')) return;
        this.schedule('watch');
      });
      this.watcher.on('error', (err) => {
        this.o.logger.warn({ path: this.o.path, err: err.message }, 'SHAKEN_TRUST_ANCHORS watch failed: relying on the periodic check');
        this.watcher?.close();
        this.watcher = null;
      });
    } catch (err) {
      this.o.logger.warn({ path: this.o.path, err: (err as Error).message }, 'SHAKEN_TRUST_ANCHORS cannot be watched: relying on the periodic check');
    }
  }

  private schedule(trigger: string): void {
    if (this.closed) return;
    if (this.debounce) clearTimeout(this.debounce);
    this.debounce = setTimeout(() => {
      this.debounce = null;
      void this.reload(trigger);
    }, this.o.debounceMs ?? 500);
    this.debounce.unref();
  }

  private async poll(): Promise<void> {
    this.warnExpiring();
    if (this.running || this.debounce) return;
    const s = await this.statSignature();
    if (this.signature !== null && s !== this.signature && !this.closed) await this.reload('poll');
  }

  /** Sizes, times and inodes of the anchor files: a cheap look for a change. */
  private async statSignature(): Promise<string> {
    try {
      const { files, isDir } = await anchorFiles(this.o.path);
      const parts: string[] = [];
      if (isDir) parts.push(`dir:${(await stat(this.o.path)).mtimeMs}`);
      for (const f of files) {
        const s = await stat(f);
        parts.push(`${f}:${s.size}:${s.mtimeMs}:${s.ino}`);
      }
      return parts.join('|');
    } catch (err) {
      return `error:${(err as Error).message}`;
    }
  }
}

/** The anchors when there is nothing to reload (none configured, or handed in): reloads change nothing. */
export function fixedTrustAnchors(set: TrustAnchorSet): TrustAnchorsStatus {
  return {
    current: () => set,
    reload: async () => ({ outcome: 'unchanged', count: set.certs.length, fingerprint: set.fingerprint }),
  };
}

import { existsSync, mkdirSync, readFileSync, truncateSync } from 'node:fs';
import { open, readdir, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { CompactRegistry } from './number-table';
import { readRegistryFile } from './read-document';
import { RegistryIndex, type RegistryContent } from './registry-index';
import { decodeSnapshot, encodeSnapshot } from './snapshot';
import { ValidationError } from '../errors';
import { jsonInSlices } from './slicer';
import type { AuditRecord } from './model';
import { applyMutations, type AuditPage, type AuditQuery, type Mutation, type RegistryBackend } from './store';

/** The audit file is rotated once it reaches this size... */
const AUDIT_ROTATE_BYTES = 64 * 1024 * 1024;
/** ...and this many rotated files are kept (with the current one, about half a gigabyte). */
const AUDIT_KEEP_FILES = 8;
/** Bytes read at a time when paging back through the audit log. */
const AUDIT_READ_CHUNK = 64 * 1024;
/** Bytes one page may scan looking for a bank's records before it answers with what it found. */
const AUDIT_SCAN_MAX = 16 * 1024 * 1024;
const ROTATED_AUDIT = /^audit-(\d{16})\.jsonl$/;

/**
 * The embedded default's durable registry: a snapshot file plus an append-only journal of
 * changes, both in one data folder. A change is acknowledged only after its journal line (and
 * its audit record) reached the disk (fdatasync), so a restart loses nothing acknowledged; the
 * journal is folded into a new snapshot (written to a temporary file, synced, renamed) once it
 * grows, so start-up stays quick. A torn last line from a crash mid-write is ignored: its
 * change was never acknowledged.
 *
 * The snapshot is the compact registry (snapshot.ts), read back without parsing a million
 * entries. A data folder from before holds a JSON snapshot (registry.json) instead: it is
 * still read, and replaced by the compact one when the journal is next folded.
 *
 * The audit log (audit.jsonl, one record a line) is rotated by size: the full file becomes
 * audit-<offset>.jsonl, named by where its first byte sits in the log as a whole, and only the
 * newest few rotated files are kept. A record's id is that offset of its line, which stays the
 * same through rotations, so a reader pages back through the log by id, reading it from the
 * end a chunk at a time, never whole.
 */
export class FileRegistryBackend implements RegistryBackend {
  readonly name = 'file';
  private journal: FileHandle | null = null;
  private audit: FileHandle | null = null;
  private journalLines = 0;

  constructor(
    private readonly dir: string,
    private readonly defaultCountry: string,
    private readonly compactEvery = 1000,
    private readonly auditFiles = { rotateBytes: AUDIT_ROTATE_BYTES, keep: AUDIT_KEEP_FILES },
  ) {
    mkdirSync(dir, { recursive: true });
  }

  private get snapshotPath() {
    return join(this.dir, 'registry.snapshot');
  }
  /** The JSON snapshot of earlier versions. */
  private get legacySnapshotPath() {
    return join(this.dir, 'registry.json');
  }
  private get journalPath() {
    return join(this.dir, 'registry.journal');
  }
  private get auditPath() {
    return join(this.dir, 'audit.jsonl');
  }

  async load(): Promise<{ data: RegistryContent; version: string } | null> {
    const base = this.readSnapshot();
    if (!base) return null;
    let version = base.version;
    if (!existsSync(this.journalPath)) return base;
    const index = new RegistryIndex(base.data, version);
    const text = readFileSync(this.journalPath, 'utf8');
    let goodBytes = 0;
    for (const line of text.split('\n')) {
      if (!line) continue;
      let record: { version: string; mutations: Mutation[] };
      try {
        record = JSON.parse(line) as typeof record;
      } catch {
        break; // a torn last line: never acknowledged
      }
      applyMutations(index, record.mutations);
      version = record.version;
      this.journalLines++;
      goodBytes += Buffer.byteLength(line) + 1;
    }
    if (goodBytes < Buffer.byteLength(text)) {
      // Cut the torn tail, or the next change would be appended behind it and lost on reload.
      truncateSync(this.journalPath, goodBytes);
    }
    return { data: index.view(), version };
  }

  private readSnapshot(): { data: RegistryContent; version: string } | null {
    if (existsSync(this.snapshotPath)) {
      try {
        return decodeSnapshot(readFileSync(this.snapshotPath), this.defaultCountry);
      } catch (err) {
        throw new Error(`registry snapshot ${this.snapshotPath} is damaged: ${(err as Error).message}`, { cause: err });
      }
    }
    if (!existsSync(this.legacySnapshotPath)) return null;
    // Our own output, validated when it was written: read without checking every number again.
    const { data, problems, rest } = readRegistryFile(this.legacySnapshotPath, this.defaultCountry, { deferPlanCheck: true });
    const problem = problems[0] ?? (typeof rest.version !== 'string' ? { at: 'version', error: 'missing' } : null);
    if (problem) throw new Error(`registry snapshot ${this.legacySnapshotPath} is damaged: ${problem.at}: ${problem.error}`);
    return { data, version: rest.version as string };
  }

  /**
   * Nothing is written until the first change: until then the seed (REGISTRY_FILE) is the
   * registry, read afresh at every start.
   */
  async seed(data: RegistryContent, version: string): Promise<{ data: RegistryContent; version: string }> {
    return { data, version };
  }

  async commit(mutations: Mutation[], audit: AuditRecord[], version: string, current: () => RegistryIndex): Promise<void> {
    // The first change pins the seed as the base the journal applies to.
    if (!existsSync(this.snapshotPath) && !existsSync(this.legacySnapshotPath)) {
      const base = current();
      await this.writeSnapshot(base.view(), base.version);
    }
    this.journal ??= await open(this.journalPath, 'a');
    this.audit ??= await open(this.auditPath, 'a');
    await this.rotateAuditIfFull();
    // An import's lines are made into text in slices, between which calls are scored.
    const journalParts = await jsonInSlices(mutations, ',');
    const auditParts = await jsonInSlices(audit, '\n');
    // The change reaches the disk before its audit records, so a failure (or a crash) leaves no
    // record of a change that was not made; a failure writing the records takes the change back
    // out of the journal, so the change is made with its records or not at all.
    const journalSize = (await this.journal.stat()).size;
    const auditSize = (await this.audit.stat()).size;
    try {
      await this.journal.appendFile(`{"version":${JSON.stringify(version)},"mutations":[`);
      for (let i = 0; i < journalParts.length; i++) await this.journal.appendFile(i === 0 ? journalParts[i]! : `,${journalParts[i]}`);
      await this.journal.appendFile(']}\n');
      await this.journal.datasync();
    } catch (err) {
      await this.journal.truncate(journalSize).catch(() => undefined);
      throw err;
    }
    try {
      for (const part of auditParts) await this.audit.appendFile(`${part}\n`);
      await this.audit.datasync();
    } catch (err) {
      await this.journal.truncate(journalSize);
      await this.journal.datasync();
      await this.audit.truncate(auditSize).catch(() => undefined);
      throw err;
    }
    this.journalLines++;
    if (this.journalLines >= this.compactEvery) {
      // The snapshot must include this change: apply it to a copy (the copy shares the current
      // table, which is never changed in place, and merges its own).
      const next = new RegistryIndex(current().view(), version);
      applyMutations(next, mutations);
      await this.writeSnapshot(next.view(), version);
      await this.journal.truncate(0);
      this.journalLines = 0;
      // Only now is the JSON snapshot of an older version no longer the journal's base.
      if (existsSync(this.legacySnapshotPath)) await unlink(this.legacySnapshotPath);
    }
  }

  /** The audit log's files, oldest first, each with where its first byte sits in the whole log. */
  private async auditLog(): Promise<{ path: string; start: number; size: number }[]> {
    const rotated: { path: string; start: number; size: number }[] = [];
    for (const name of await readdir(this.dir)) {
      const m = ROTATED_AUDIT.exec(name);
      if (m) rotated.push({ path: join(this.dir, name), start: Number(m[1]), size: 0 });
    }
    rotated.sort((a, b) => a.start - b.start);
    for (const f of rotated) f.size = (await stat(f.path)).size;
    const last = rotated[rotated.length - 1];
    const start = last ? last.start + last.size : 0;
    const size = existsSync(this.auditPath) ? (await stat(this.auditPath)).size : 0;
    return [...rotated, { path: this.auditPath, start, size }];
  }

  private async rotateAuditIfFull(): Promise<void> {
    if ((await this.audit!.stat()).size < this.auditFiles.rotateBytes) return;
    const files = await this.auditLog();
    const current = files[files.length - 1]!;
    await this.audit!.close();
    this.audit = null;
    await rename(this.auditPath, join(this.dir, `audit-${String(current.start).padStart(16, '0')}.jsonl`));
    // The rotated files, the one just made included; the oldest beyond the kept number go.
    const rotated = [...files.slice(0, -1), current];
    for (const old of rotated.slice(0, Math.max(0, rotated.length - this.auditFiles.keep))) await unlink(old.path).catch(() => undefined);
    this.audit = await open(this.auditPath, 'a');
  }

  /**
   * A page of the audit log, newest first: read backwards from the cursor a chunk at a time.
   * A bank's page that finds too few of its records within AUDIT_SCAN_MAX bytes answers with
   * those and a `next` cursor, rather than reading on through the whole log.
   */
  async readAudit(query: AuditQuery): Promise<AuditPage> {
    const files = await this.auditLog();
    const newest = files[files.length - 1]!;
    let pos = newest.start + newest.size;
    if (query.before !== undefined) {
      if (!/^\d{1,16}$/.test(query.before)) throw new ValidationError('before', 'before: not a cursor of this audit log (a record id or a page\'s next)');
      pos = Math.min(pos, Number(query.before));
    }
    const records: AuditPage['records'] = [];
    let scanned = 0;
    for (let f = files.length - 1; f >= 0; f--) {
      const file = files[f]!;
      if (file.start >= pos || file.size === 0) continue;
      let fh: FileHandle;
      try {
        fh = await open(file.path, 'r');
      } catch {
        break; // rotated away meanwhile: nothing older is left
      }
      try {
        let end = Math.min(pos, file.start + file.size) - file.start;
        let carry = Buffer.alloc(0);
        while (end > 0) {
          const from = Math.max(0, end - AUDIT_READ_CHUNK);
          const chunk = Buffer.alloc(end - from);
          await fh.read(chunk, 0, chunk.length, from);
          scanned += chunk.length;
          const buf = carry.length ? Buffer.concat([chunk, carry]) : chunk;
          // Whole lines, last first; the first (cut by the chunk's start) waits for the next chunk.
          let lineEnd = buf.length;
          for (;;) {
            const nl = lineEnd > 0 ? buf.lastIndexOf(0x0a, lineEnd - 1) : -1;
            if (nl < 0 && from > 0) break;
            const lineStart = nl + 1;
            if (lineEnd > lineStart) {
              const id = file.start + from + lineStart;
              const record = parseAuditLine(buf.toString('utf8', lineStart, lineEnd));
              if (record && (query.bankId === undefined || record.bankId === query.bankId)) {
                records.push({ ...record, id: String(id) });
                if (records.length === query.limit) return { records, next: String(id) };
              }
            }
            if (nl < 0) break;
            lineEnd = nl;
          }
          carry = from > 0 ? buf.subarray(0, lineEnd) : Buffer.alloc(0);
          end = from;
          if (scanned >= AUDIT_SCAN_MAX && end > 0) return { records, next: String(file.start + end + carry.length) };
        }
      } finally {
        await fh.close();
      }
    }
    return { records, next: null };
  }

  async close(): Promise<void> {
    await this.journal?.close();
    await this.audit?.close();
    this.journal = null;
    this.audit = null;
  }

  private async writeSnapshot(data: CompactRegistry, version: string): Promise<void> {
    const tmp = `${this.snapshotPath}.${process.pid}.tmp`;
    const fh = await open(tmp, 'w');
    try {
      await fh.writeFile(encodeSnapshot(data, version));
      await fh.datasync();
    } finally {
      await fh.close();
    }
    await rename(tmp, this.snapshotPath);
    // Make the rename itself durable.
    const dir = await open(this.dir, 'r');
    await dir.datasync().catch(() => undefined);
    await dir.close();
  }
}

function parseAuditLine(line: string): AuditRecord | null {
  try {
    return JSON.parse(line) as AuditRecord;
  } catch {
    return null; // a torn line from a crash
  }
}

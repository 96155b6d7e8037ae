import { existsSync, mkdirSync, readFileSync, truncateSync } from 'node:fs';
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { CompactRegistry } from './number-table';
import { readRegistryFile } from './read-document';
import { RegistryIndex, type RegistryContent } from './registry-index';
import { decodeSnapshot, encodeSnapshot } from './snapshot';
import { applyMutations, type AuditRecord, type Mutation, type RegistryBackend } from './store';

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
    // The change reaches the disk before its audit records, so a failure (or a crash) leaves no
    // record of a change that was not made; a failure writing the records takes the change back
    // out of the journal, so the change is made with its records or not at all.
    const journalSize = (await this.journal.stat()).size;
    const auditSize = (await this.audit.stat()).size;
    try {
      await this.journal.appendFile(JSON.stringify({ version, mutations }) + '\n');
      await this.journal.datasync();
    } catch (err) {
      await this.journal.truncate(journalSize).catch(() => undefined);
      throw err;
    }
    try {
      await this.audit.appendFile(audit.map((a) => JSON.stringify(a) + '\n').join(''));
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

  async readAudit(query: { limit: number; bankId?: string }): Promise<AuditRecord[]> {
    if (!existsSync(this.auditPath)) return [];
    const out: AuditRecord[] = [];
    const lines = readFileSync(this.auditPath, 'utf8').split('\n');
    for (let i = lines.length - 1; i >= 0 && out.length < query.limit; i--) {
      const line = lines[i];
      if (!line) continue;
      try {
        const record = JSON.parse(line) as AuditRecord;
        if (query.bankId === undefined || record.bankId === query.bankId) out.push(record);
      } catch {
        // a torn line from a crash: skip it
      }
    }
    return out;
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

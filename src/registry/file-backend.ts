import { existsSync, mkdirSync, readFileSync, truncateSync } from 'node:fs';
import { open, rename, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { parseRegistryDocument, toRegistryDocument, type RegistryData } from './format';
import { RegistryIndex } from './registry-index';
import { applyMutations, type AuditRecord, type Mutation, type RegistryBackend } from './store';

/**
 * The embedded default's durable registry: a snapshot file plus an append-only journal of
 * changes, both in one data folder. A change is acknowledged only after its journal line (and
 * its audit record) reached the disk (fdatasync), so a restart loses nothing acknowledged; the
 * journal is folded into a new snapshot (written to a temporary file, synced, renamed) once it
 * grows, so start-up stays quick. A torn last line from a crash mid-write is ignored: its
 * change was never acknowledged.
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
    return join(this.dir, 'registry.json');
  }
  private get journalPath() {
    return join(this.dir, 'registry.journal');
  }
  private get auditPath() {
    return join(this.dir, 'audit.jsonl');
  }

  async load(): Promise<{ data: RegistryData; version: string } | null> {
    if (!existsSync(this.snapshotPath)) return null;
    const snapshot = JSON.parse(readFileSync(this.snapshotPath, 'utf8')) as { version: string };
    // Our own output, validated when it was written: read without checking every number again.
    const { data, problems } = parseRegistryDocument(snapshot, this.defaultCountry, { deferPlanCheck: true });
    if (problems.length) throw new Error(`registry snapshot ${this.snapshotPath} is damaged: ${problems[0]?.at}: ${problems[0]?.error}`);
    let version = snapshot.version;
    if (!existsSync(this.journalPath)) return { data, version };
    const index = new RegistryIndex(data, version);
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
    return { data: index.data(), version };
  }

  /**
   * Nothing is written until the first change: until then the seed (REGISTRY_FILE) is the
   * registry, read afresh at every start.
   */
  async seed(data: RegistryData, version: string): Promise<{ data: RegistryData; version: string }> {
    return { data, version };
  }

  async commit(mutations: Mutation[], audit: AuditRecord[], version: string, current: () => { data: RegistryData; version: string }): Promise<void> {
    // The first change pins the seed as the base the journal applies to.
    if (!existsSync(this.snapshotPath)) {
      const base = current();
      await this.writeSnapshot(base.data, base.version);
    }
    this.journal ??= await open(this.journalPath, 'a');
    this.audit ??= await open(this.auditPath, 'a');
    await this.audit.appendFile(audit.map((a) => JSON.stringify(a) + '\n').join(''));
    await this.audit.datasync();
    await this.journal.appendFile(JSON.stringify({ version, mutations }) + '\n');
    await this.journal.datasync();
    this.journalLines++;
    if (this.journalLines >= this.compactEvery) {
      // The snapshot must include this change: apply it to a copy of the current data.
      const index = new RegistryIndex(current().data, version);
      applyMutations(index, mutations);
      await this.writeSnapshot(index.data(), version);
      await this.journal.truncate(0);
      this.journalLines = 0;
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

  private async writeSnapshot(data: RegistryData, version: string): Promise<void> {
    const tmp = `${this.snapshotPath}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify({ version, ...toRegistryDocument(data) }));
    const fh = await open(tmp, 'r+');
    await fh.datasync();
    await fh.close();
    await rename(tmp, this.snapshotPath);
    // Make the rename itself durable.
    const dir = await open(this.dir, 'r');
    await dir.datasync().catch(() => undefined);
    await dir.close();
  }
}

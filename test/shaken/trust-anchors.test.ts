import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTrustAnchors } from '../../src/shaken';
import { VECTORS_DIR } from './helpers';

const ROOT = join(VECTORS_DIR, 'certs', 'root.pem');
let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'callguard-anchors-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('loadTrustAnchors', () => {
  it('loads a PEM file', () => {
    const anchors = loadTrustAnchors(ROOT);
    expect(anchors).toHaveLength(1);
    expect(anchors[0]!.subject).toContain('Vectors STI-CA Root');
  });

  it('loads every .pem and .crt in a folder (several certificates per file allowed), and nothing else', () => {
    copyFileSync(ROOT, join(dir, 'a.pem'));
    copyFileSync(ROOT, join(dir, 'b.CRT'));
    writeFileSync(join(dir, 'bundle.pem'), readFileSync(ROOT, 'utf8') + readFileSync(ROOT, 'utf8'));
    writeFileSync(join(dir, 'README.txt'), 'not a certificate');
    expect(loadTrustAnchors(dir)).toHaveLength(4);
  });

  it('refuses a certificate that is not a CA (a leaf in the anchors folder would be silently useless)', () => {
    copyFileSync(join(VECTORS_DIR, 'certs', 'sp1234.pem'), join(dir, 'leaf.pem'));
    expect(() => loadTrustAnchors(dir)).toThrow(/leaf\.pem: "O=Vectors STI, CN=SHAKEN 1234" is not a CA certificate/);
  });

  it('fails loudly, naming the path, on a missing path, an empty folder or a bad file', () => {
    expect(() => loadTrustAnchors(join(dir, 'missing.pem'))).toThrow(/SHAKEN_TRUST_ANCHORS: cannot read .*missing\.pem/);
    expect(() => loadTrustAnchors(dir)).toThrow(/no certificate/);
    writeFileSync(join(dir, 'bad.pem'), 'junk');
    expect(() => loadTrustAnchors(dir)).toThrow(/bad\.pem/);
  });
});

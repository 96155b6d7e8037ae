/**
 * Builds the web console (console/src) into dist/console: one script, one stylesheet and the
 * page, nothing fetched at run time. `npm run build` runs it after the server's build.
 */
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { resolve } from 'node:path';

const ROOT = resolve(__dirname, '..');
const SRC = resolve(ROOT, 'console/src');

export async function buildConsole(outDir = resolve(ROOT, 'dist/console')): Promise<void> {
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  await build({
    entryPoints: [resolve(SRC, 'main.tsx')],
    outdir: outDir,
    bundle: true,
    minify: true,
    sourcemap: false,
    format: 'iife',
    target: ['es2022'],
    jsx: 'automatic',
    jsxImportSource: 'preact',
    // The page's CSP allows no inline style and no data: fonts: assets must be files, and there are none.
    loader: { '.css': 'css' },
    legalComments: 'none',
    logLevel: 'warning',
  });
  copyFileSync(resolve(SRC, 'index.html'), resolve(outDir, 'index.html'));
}

if (require.main === module) {
  buildConsole().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}

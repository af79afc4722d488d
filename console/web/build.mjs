// Builds the console's bundle into ../dist (committed, embedded in the binary by go:embed):
// app.js and app.css from src/main.js, and index.html. `node build.mjs --outdir DIR` builds
// elsewhere (TestBundleUpToDate compares such a build with the committed one).
import * as esbuild from 'esbuild';
import { copyFile, mkdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const i = process.argv.indexOf('--outdir');
const outdir = i > 0 ? process.argv[i + 1] : join(here, '..', 'dist');

await rm(outdir, { recursive: true, force: true });
await mkdir(outdir, { recursive: true });
const result = await esbuild.build({
  entryPoints: { app: join(here, 'src', 'main.js') },
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['chrome109', 'firefox115', 'safari16'],
  outdir,
  legalComments: 'none',
  metafile: true,
  logLevel: 'warning',
});
await copyFile(join(here, 'src', 'index.html'), join(outdir, 'index.html'));
for (const [name, out] of Object.entries(result.metafile.outputs)) {
  console.log(`${name.split('/').pop()}\t${out.bytes} bytes`);
}

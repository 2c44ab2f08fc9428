// Bundles the browser side (demo page + client SDK) into dist/public.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync } from 'node:fs';
const out = new URL('../dist/public/', import.meta.url).pathname;
mkdirSync(out, { recursive: true });
await build({
  entryPoints: [new URL('../src/client/web/demo.ts', import.meta.url).pathname],
  bundle: true,
  format: 'esm',
  target: 'chrome100',
  platform: 'browser',
  minify: true,
  sourcemap: true,
  outfile: `${out}demo.js`,
  logLevel: 'warning',
});
copyFileSync(new URL('../src/client/web/index.html', import.meta.url).pathname, `${out}index.html`);

// Bundles the extension (dist/extension.js) or, with --tests, each unit test (out/test/*.test.js).
import * as esbuild from 'esbuild';
import { readdirSync } from 'node:fs';

const tests = process.argv.includes('--tests');
const production = process.argv.includes('--production');

const common = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  logLevel: 'warning',
};

if (tests) {
  const entryPoints = readdirSync('test')
    .filter((f) => f.endsWith('.test.ts'))
    .map((f) => `test/${f}`);
  // Unit tests exercise the modules that do not import `vscode`: leaving it unresolvable makes
  // an accidental import fail loudly.
  await esbuild.build({ ...common, entryPoints, outdir: 'out/test', sourcemap: 'inline', external: ['vscode'] });
  console.log(`built ${entryPoints.length} test files into out/test`);
} else {
  await esbuild.build({
    ...common,
    entryPoints: ['src/extension.ts'],
    outfile: 'dist/extension.js',
    external: ['vscode'],
    sourcemap: !production,
    minify: production,
  });
  console.log(`built dist/extension.js${production ? ' (production)' : ''}`);
}

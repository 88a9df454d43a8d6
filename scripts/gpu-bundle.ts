/**
 * `npx tsx scripts/gpu-bundle.ts OUTDIR`: single-file ESM bundles for a machine without
 * `node_modules` (used by scripts/gpu-pack.sh): OUTDIR/shine.mjs, the whole `shine` CLI (cli/shine.ts
 * and everything it imports), and OUTDIR/gpu-summary.mjs (scripts/gpu-summary.ts).
 *
 * `webgpu` (Dawn's native binding) stays external: the pack puts a copy of it, with only the
 * linux-x64 `dawn.node`, in OUTDIR/node_modules/webgpu, where Node's resolution finds it.
 *
 * platform/acquire.ts imports its Node layer through a variable (so that Vite never follows it into
 * `webgpu`); a bundler cannot follow that either, so this build rewrites that one import into a
 * literal one and drops the Deno layer. Nothing in the sources is changed.
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'esbuild';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');

const acquireLiteralImports: Plugin = {
  name: 'shine-acquire-literal-imports',
  setup(b) {
    b.onLoad({ filter: /[\\/]platform[\\/]acquire\.ts$/ }, async (args) => {
      const src = await readFile(args.path, 'utf8');
      const nodeFrom = 'import(/* @vite-ignore */ NODE_LAYER)';
      const denoFrom = 'import(/* @vite-ignore */ DENO_LAYER)';
      if (!src.includes(nodeFrom) || !src.includes(denoFrom)) {
        throw new Error(`${args.path}: the Node/Deno layer imports changed; update scripts/gpu-bundle.ts`);
      }
      const contents = src
        .replace(nodeFrom, "import('./node/device.ts')")
        .replace(denoFrom, "Promise.reject(new Error('the Deno layer is not in this bundle'))");
      return { contents, loader: 'ts' };
    });
  },
};

async function main(): Promise<void> {
  const outdir = process.argv[2];
  if (!outdir) {
    console.error('usage: npx tsx scripts/gpu-bundle.ts OUTDIR');
    process.exit(2);
  }
  const result = await build({
    absWorkingDir: REPO,
    entryPoints: { shine: 'cli/shine.ts', 'gpu-summary': 'scripts/gpu-summary.ts' },
    outExtension: { '.js': '.mjs' },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outdir: resolve(outdir),
    external: ['webgpu'],
    // CommonJS dependencies bundled into ESM may call require() for Node built-ins.
    banner: { js: "import { createRequire as __shineCreateRequire } from 'node:module'; const require = __shineCreateRequire(import.meta.url);" },
    sourcemap: false,
    legalComments: 'none',
    metafile: true,
    logLevel: 'warning',
    plugins: [acquireLiteralImports],
  });
  for (const [file, o] of Object.entries(result.metafile.outputs)) console.log(`bundle ${resolve(REPO, file)} ${(o.bytes / 2 ** 20).toFixed(2)} MiB`);
}

await main();

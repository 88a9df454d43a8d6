/**
 * The summary of a scale run (scripts/scale-run.sh, docs/plan.md "Scale runs"): from a sub-tile's
 * metadata, its simulation's truth and a `/usr/bin/time -v` report, prints the wall time per stage,
 * the peak host RSS, the plan (GPU and host figures, choices) and ĝ ± σ̂ against the truth, as
 * text and as one JSON line. `--check`: exit 1 unless the run is 'ok' and each ĝ component is
 * within 3σ̂ of the truth.
 *
 *   npx tsx scripts/scale-summary.ts --metadata M --truth SIM/truth/shear.fits --row R --col C [--time TIME_V.txt] [--check]
 */
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { openFits } from '../platform/node/files.ts';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
}

const metaFile = arg('metadata');
const truthFile = arg('truth');
const row = Number(arg('row'));
const col = Number(arg('col'));
if (!metaFile || !truthFile || !Number.isInteger(row) || !Number.isInteger(col)) {
  console.error('usage: scale-summary.ts --metadata M --truth SIM/truth/shear.fits --row R --col C [--time TIME_V.txt] [--check]');
  process.exit(2);
}
const meta = parseYaml(await readFile(metaFile, 'utf8'));
const tab = await (await openFits(truthFile)).readTable(1);
const c = (n: string) => tab.column(n).data as ArrayLike<number | bigint>;
let g1 = NaN;
let g2 = NaN;
for (let i = 0; i < tab.nRows; i++) if (Number(c('SUBTILE_ROW')[i]) === row && Number(c('SUBTILE_COL')[i]) === col) [g1, g2] = [Number(c('G1')[i]), Number(c('G2')[i])];

let peakRss: number | null = null;
let wall: string | null = null;
const timeFile = arg('time');
if (timeFile) {
  const t = await readFile(timeFile, 'utf8');
  const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(t);
  if (m) peakRss = Number(m[1]) * 1024;
  const w = /Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)/.exec(t);
  if (w) wall = w[1];
}
const gib = (n: number) => `${(n / 2 ** 30).toFixed(2)} GiB`;
const s = meta.shear ?? {};
const lines = [
  `sub-tile (${meta.sub_tile_row}, ${meta.sub_tile_col}): ${meta.sources?.core} core / ${meta.sources?.extended} sources, ${meta.n_quadrants} quadrants; ${meta.method} ${meta.inference?.converged ? 'converged' : 'NOT converged'} in ${meta.inference?.iterations} iterations (${meta.inference?.evaluations} evaluations)`,
  `stages (s): ${Object.entries(meta.timings_ms ?? {})
    .map(([k, v]) => `${k} ${((v as number) / 1000).toFixed(1)}`)
    .join(', ')}${wall ? `; wall ${wall}` : ''}`,
  `peak host RSS: ${peakRss !== null ? gib(peakRss) : 'not measured'}; plan: GPU ${meta.plan ? gib(meta.plan.gpu_bytes.peak) : '?'}, host ${meta.plan ? gib(meta.plan.host_bytes.total) : '?'}; PSF spectra ${meta.plan?.psf_spectra}, ≤ ${meta.plan?.max_pairs_per_batch} pairs per batch`,
  `g1 = ${s.g1?.toFixed(5)} ± ${s.g1_err?.toFixed(5)} (truth ${g1}), g2 = ${s.g2?.toFixed(5)} ± ${s.g2_err?.toFixed(5)} (truth ${g2}); pulls ${((s.g1 - g1) / s.g1_err).toFixed(2)}, ${((s.g2 - g2) / s.g2_err).toFixed(2)}`,
];
console.log(lines.join('\n'));
console.log(JSON.stringify({ timingsMs: meta.timings_ms, peakRssBytes: peakRss, wall, plan: meta.plan, g1: s.g1, g2: s.g2, g1Err: s.g1_err, g2Err: s.g2_err, truth: { g1, g2 } }));
if (process.argv.includes('--check')) {
  const ok = meta.inference?.converged !== undefined && Number.isFinite(s.g1_err) && Math.abs(s.g1 - g1) < 3 * s.g1_err && Math.abs(s.g2 - g2) < 3 * s.g2_err;
  if (!ok) {
    console.error('scale-summary: the estimate is not within 3σ̂ of the truth (or has no error)');
    process.exit(1);
  }
}
process.exit(0);

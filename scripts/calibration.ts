/**
 * Benchmark (not CI): is σ̂ honest? Runs the whole pipeline (simulate --preset ci → prepare →
 * cli/subtile.ts) on N independent realisations (seeds 1..N: new galaxies, shapes, shear and
 * noise each time) and compares the scatter of ĝ − g_true with the mean Laplace σ̂.
 *
 *   npx tsx scripts/calibration.ts [--n 20] [--out out/calibration] [--json]
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openFits } from '../platform/node/files.ts';

const args = process.argv.slice(2);
const opt = (k: string, d: string) => {
  const i = args.indexOf(`--${k}`);
  return i >= 0 ? args[i + 1] : d;
};
const n = Number(opt('n', '20'));
const out = opt('out', 'out/calibration');
const TILE = 102018211;
mkdirSync(out, { recursive: true });
const rows: Array<{ seed: number; g: number[]; gHat: number[]; err: number[]; converged: boolean; seconds: number }> = [];
const tsx = (a: string[]) => execFileSync('npx', ['--no-install', 'tsx', ...a], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 26 });
for (let seed = 1; seed <= n; seed++) {
  const dir = join(out, `seed${seed}`);
  tsx(['cli/shine.ts', 'simulate', '--preset', 'ci', '--seed', String(seed), '--out', dir, '--quiet']);
  tsx(['cli/shine.ts', 'prepare', '--config', join(dir, 'config.yaml'), '--quiet']);
  const s = JSON.parse(tsx(['cli/subtile.ts', '--tile-id', String(TILE), '--sub-tile-row', '1', '--sub-tile-col', '1', '--config', join(dir, 'config.yaml'), '--json', '--quiet', '--force']).trim().split('\n').pop()!);
  const tf = await openFits(join(dir, 'truth', 'shear.fits'));
  const truth = await tf.readTable(1);
  await tf.close();
  const c = (k: string) => truth.column(k).data as ArrayLike<number | bigint>;
  let g = [NaN, NaN];
  for (let i = 0; i < truth.nRows; i++) if (Number(c('SUBTILE_ROW')[i]) === 1 && Number(c('SUBTILE_COL')[i]) === 1) g = [Number(c('G1')[i]), Number(c('G2')[i])];
  rows.push({ seed, g, gHat: [s.g1, s.g2], err: [s.g1Err, s.g2Err], converged: s.converged, seconds: s.seconds });
  const r = rows[rows.length - 1];
  console.log(`seed ${seed}: g1 ${r.gHat[0].toFixed(4)} ± ${r.err[0].toFixed(4)} (true ${g[0].toFixed(4)})  g2 ${r.gHat[1].toFixed(4)} ± ${r.err[1].toFixed(4)} (true ${g[1].toFixed(4)})  ${r.converged ? '' : 'NOT CONVERGED '}${r.seconds.toFixed(0)} s`);
}
const stats = [0, 1].map((k) => {
  const d = rows.map((r) => r.gHat[k] - r.g[k]);
  const mean = d.reduce((a, b) => a + b, 0) / d.length;
  const sd = Math.sqrt(d.reduce((a, b) => a + (b - mean) ** 2, 0) / (d.length - 1));
  const rms = Math.sqrt(d.reduce((a, b) => a + b * b, 0) / d.length);
  const sigma = rows.reduce((a, r) => a + r.err[k], 0) / rows.length;
  const pulls = rows.map((r) => (r.gHat[k] - r.g[k]) / r.err[k]);
  const pullRms = Math.sqrt(pulls.reduce((a, b) => a + b * b, 0) / pulls.length);
  return { component: `g${k + 1}`, meanBias: mean, scatter: sd, rms, meanSigmaHat: sigma, ratio: sd / sigma, pullRms };
});
for (const s of stats) console.log(`${s.component}: scatter of ĝ−g ${s.scatter.toFixed(4)}, mean σ̂ ${s.meanSigmaHat.toFixed(4)}, ratio ${s.ratio.toFixed(2)}, mean bias ${s.meanBias.toFixed(4)}, rms pull ${s.pullRms.toFixed(2)} (N = ${rows.length})`);
writeFileSync(join(out, 'calibration.json'), JSON.stringify({ n: rows.length, stats, rows }, null, 1));
process.exit(0);

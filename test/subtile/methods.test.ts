/**
 * `cli/subtile.ts --method nuts | vi | map` end to end on one sub-tile of the `minitile`
 * simulation (a handful of sources; sampler settings cut down so it runs in CI on a CPU — the
 * statistical agreement of VI/NUTS with MAP + Laplace is tested in test/infer/posterior-engine):
 *  - astropy reads METHOD, the SAMPLES table (CHAIN, DRAW, G1, G2 float64), and the posterior mean,
 *    sd and covariance of the draws equal G1, G2, G1_ERR, G2_ERR, G1G2_COV (float32 columns);
 *  - CONVERGENCE is the metadata's max R̂ (NUTS) or final −ELBO (VI);
 *  - outputs made with another method are re-run, outputs of the same method are skipped;
 *  - a MAP file has no SAMPLES table;
 *  - `shear_estimator: laplace_marginal`: the SHEAR row (read by astropy) is the metadata's MAP
 *    shear plus its recorded step, and the step is Σ_g ∇C with the reported covariance.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { runPython } from '../wcs/python.ts';
import { mapShearFromMetadata } from '../../engine/calibrate/stats.ts';

const TILE = 102018211;
const ROOT = new URL('../..', import.meta.url).pathname;
const SCRIPT = join(ROOT, 'test/fixtures/subtile/read_samples.py');

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('npx', ['--no-install', 'tsx', ...args], { cwd: ROOT, timeout: 600_000, maxBuffer: 1 << 24, env: { ...process.env, NO_COLOR: '1' } }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

let dir: string;
let config: string;
const subtile = (method: string) => run(['cli/subtile.ts', '--config', config, '--tile-id', String(TILE), '--sub-tile-row', '1', '--sub-tile-col', '2', '--method', method, '--out', join(dir, 'out'), '--quiet', '--json']);
const shearFile = () => join(dir, 'out', `shear_${TILE}_1_2.fits`);
const metadata = async () => parse(await readFile(join(dir, 'out', `metadata_${TILE}_1_2.yaml`), 'utf8'));

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'shine-methods-'));
  const sim = await run(['cli/shine.ts', 'simulate', '--preset', 'minitile', '--seed', '5', '--out', dir, '--quiet']);
  expect(sim.code, sim.stderr).toBe(0);
  config = join(dir, 'config.yaml');
  const text = (await readFile(config, 'utf8'))
    .replace(/^ {4}vi: \{[^}]*\}$/m, '    vi: { steps: 120, particles: 2, num_samples: 400 }')
    .replace(/^ {4}nuts: \{[^}]*\}$/m, '    nuts: { warmup: 30, samples: 40, chains: 2, max_tree_depth: 4 }');
  expect(text).toContain('num_samples: 400');
  expect(text).toContain('chains: 2');
  await writeFile(config, text);
});

describe('cli/subtile.ts --method nuts|vi|map', () => {
  it('nuts: SAMPLES table read by astropy matches the SHEAR row; CONVERGENCE = max R̂', async () => {
    const r = await subtile('nuts');
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    expect(j.method).toBe('nuts');
    const a = JSON.parse(runPython(SCRIPT, [shearFile()]));
    console.log(JSON.stringify(a));
    expect(a.method).toBe('nuts');
    expect(a.hdus).toEqual(['PRIMARY', 'SHEAR', 'SAMPLES']);
    expect(a.samples.n).toBe(80);
    expect(a.samples.chains).toEqual([0, 1]);
    expect(a.samples.nchains_card).toBe(2);
    expect(a.samples.max_draw).toBe(39);
    expect(a.samples.dtypes.slice(2)).toEqual(['>f8', '>f8']);
    const f32 = (x: number) => Math.fround(x);
    expect(a.g1).toBe(f32(a.samples.mean_g1));
    expect(a.g2).toBe(f32(a.samples.mean_g2));
    expect(Math.abs(a.g1_err / a.samples.sd_g1 - 1)).toBeLessThan(1e-6);
    expect(Math.abs(a.g2_err / a.samples.sd_g2 - 1)).toBeLessThan(1e-6);
    expect(Math.abs(a.cov - a.samples.cov)).toBeLessThan(1e-6 * Math.abs(a.samples.cov) + 1e-12);
    expect(a.iterations).toBe(70);
    const m = await metadata();
    expect(m.method).toBe('nuts');
    expect(a.convergence).toBe(f32(m.posterior.max_rhat));
    expect(m.posterior.chains).toBe(2);
    expect(m.posterior.draws).toBe(40);
    expect(m.posterior.map.g1_err).toBeGreaterThan(0);
    // shine calibrate's MAP-of-the-same-fits line reads this metadata as written
    expect(mapShearFromMetadata(m)).toEqual([m.posterior.map.g1, m.posterior.map.g2]);
    expect(Number.isFinite(m.posterior.map.g1) && Number.isFinite(m.posterior.map.g2)).toBe(true);
  });

  it('vi re-runs outputs made by nuts; CONVERGENCE = final −ELBO; same method is skipped; map has no SAMPLES', async () => {
    const r = await subtile('vi');
    expect(r.code, r.stderr).toBe(0);
    const a = JSON.parse(runPython(SCRIPT, [shearFile()]));
    expect(a.method).toBe('vi');
    expect(a.samples.n).toBe(400);
    expect(a.samples.chains).toEqual([0]);
    expect(a.g1).toBe(Math.fround(a.samples.mean_g1));
    expect(Math.abs(a.g1_err / a.samples.sd_g1 - 1)).toBeLessThan(1e-6);
    const m = await metadata();
    expect(a.convergence).toBe(Math.fround(m.inference.final_loss));
    expect(a.iterations).toBe(120);
    const before = (await stat(shearFile())).mtimeMs;
    const again = await subtile('vi');
    expect(again.code).toBe(0);
    expect(again.stdout.trim()).toBe(''); // skipped: no result line
    expect((await stat(shearFile())).mtimeMs).toBe(before);
    const map = await subtile('map');
    expect(map.code, map.stderr).toBe(0);
    const b = JSON.parse(runPython(SCRIPT, [shearFile()]));
    expect(b.method).toBe('map');
    expect(b.hdus).toEqual(['PRIMARY', 'SHEAR']);
  });

  it('map with shear_estimator laplace_marginal: G1/G2 = the MAP shear + Σ_g ∇C, recorded in the metadata', async () => {
    const text = await readFile(config, 'utf8');
    const lmConfig = join(dir, 'config.lm.yaml');
    const lmText = text.replace(/^ {4}map: \{([^}]*)\}$/m, '    map: {$1, shear_estimator: laplace_marginal }');
    expect(lmText).toContain('shear_estimator: laplace_marginal');
    await writeFile(lmConfig, lmText);
    const out = join(dir, 'out-lm');
    const r = await run(['cli/subtile.ts', '--config', lmConfig, '--tile-id', String(TILE), '--sub-tile-row', '1', '--sub-tile-col', '2', '--method', 'map', '--out', out, '--quiet', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const a = JSON.parse(runPython(SCRIPT, [join(out, `shear_${TILE}_1_2.fits`)]));
    const m = parse(await readFile(join(out, `metadata_${TILE}_1_2.yaml`), 'utf8'));
    const lm = m.shear.laplace_marginal;
    console.log(`MAP (${lm.map_g.join(', ')}) + step (${lm.step_g.join(', ')}) → G1, G2 = ${a.g1}, ${a.g2}; ${lm.message}`);
    expect(lm.applied).toBe(true);
    expect(m.shear.estimator).toBe('laplace_marginal');
    expect(lm.evaluations).toBeGreaterThan(0);
    expect(a.g1).toBe(Math.fround(lm.map_g[0] + lm.step_g[0]));
    expect(a.g2).toBe(Math.fround(lm.map_g[1] + lm.step_g[1]));
    const c = m.shear.covariance;
    expect(lm.step_g[0]).toBeCloseTo(c[0][0] * lm.grad_c[0] + c[0][1] * lm.grad_c[1], 10);
    expect(lm.step_g[1]).toBeCloseTo(c[1][0] * lm.grad_c[0] + c[1][1] * lm.grad_c[1], 10);
    expect(lm.step_g[0]).not.toBe(0);
  });
});

/**
 * `shine demo --synthetic`: the engine alone on a synthetic scene with known shear. The pixels are rendered by the
 * independent float64 CPU reference plus noise; the GPU engine then fits (g1, g2) with the source
 * parameters held at their true values, by Newton steps on the exact adjoint gradient (Hessian by
 * central differences of gradients), and prints the estimate with its (conditional) error next to
 * the truth. The sub-tile pipeline (`cli/subtile.ts`) is the real job; this is a quick check that
 * the engine works on this machine.
 */
import { UserError, type Command } from '../command.ts';
import { parseDeviceCommand } from '../args.ts';
import { acquireDevice } from '../../platform/acquire.ts';
import { ShearEngine } from '../../engine/gpu/render/engine.ts';
import { makeSyntheticScene } from '../../engine/scene/synthetic.ts';
import { cloneParams } from '../../engine/scene/types.ts';

const USAGE = 'usage: shine demo --synthetic [--sources N=60] [--quadrants M=4] [--size S=384] [--g1 0.03] [--g2 -0.02] [--seed 1] [--json]';

export const syntheticDemo: Command = {
  summary: 'fit the shear of a synthetic scene with known truth (engine smoke run)',
  async run(argv) {
    const parsed = await parseDeviceCommand(argv, { sources: 'integer', quadrants: 'integer', size: 'integer', g1: 'number', g2: 'number', seed: 'integer', json: 'boolean' }, USAGE);
    if (!parsed) return 0;
    const { opts } = parsed;
    const flags = parsed;
    const size = (opts.size as number) ?? 384;
    const nSources = (opts.sources as number) ?? 60;
    const nQuadrants = (opts.quadrants as number) ?? 4;
    const g1 = (opts.g1 as number) ?? 0.03;
    const g2 = (opts.g2 as number) ?? -0.02;
    for (const [k, v, lo] of [['size', size, 16], ['sources', nSources, 1], ['quadrants', nQuadrants, 1]] as const) {
      if (v < lo) throw new UserError(`--${k} must be an integer ≥ ${lo}, got ${v}`);
    }
    for (const [k, v] of [['g1', g1], ['g2', g2]] as const) if (!(Math.abs(v) < 1)) throw new UserError(`--${k} must be in (-1, 1), got ${v}`);
    const t0 = performance.now();
    const { set, truth } = makeSyntheticScene({ nSources, nQuadrants, width: size, height: size, tier: 64, seed: (opts.seed as number) ?? 1, g1, g2, noise: 1, data: 'model64' });
    const tData = performance.now() - t0;
    const acq = await acquireDevice({ adapter: flags.adapter, limits: flags.limits, quiet: !!opts.json });
    try {
      const eng = await ShearEngine.create(acq.device, set);
      const p = cloneParams(truth);
      p.g1 = 0;
      p.g2 = 0;
      const h = 1e-4;
      let cov = [0, 0, 0];
      let evals = 0;
      const t1 = performance.now();
      for (let it = 0; it < 4; it++) {
        const g0 = (await eng.evaluate(p)).gradient;
        const col = async (k: 'g1' | 'g2') => {
          const a = cloneParams(p);
          const b = cloneParams(p);
          a[k] += h;
          b[k] -= h;
          const ga = (await eng.evaluate(a)).gradient;
          const gb = (await eng.evaluate(b)).gradient;
          return [(ga.g1 - gb.g1) / (2 * h), (ga.g2 - gb.g2) / (2 * h)];
        };
        const [h11, h21] = await col('g1');
        const [h12, h22] = await col('g2');
        evals += 5;
        // Newton step on the log-likelihood: Δ = −H⁻¹ ∇ (H negative definite at a maximum)
        const a = h11;
        const b = (h12 + h21) / 2;
        const d = h22;
        const det = a * d - b * b;
        const i11 = d / det;
        const i12 = -b / det;
        const i22 = a / det;
        p.g1 -= i11 * g0.g1 + i12 * g0.g2;
        p.g2 -= i12 * g0.g1 + i22 * g0.g2;
        cov = [-i11, -i12, -i22];
      }
      const fitMs = performance.now() - t1;
      const out = {
        adapter: acq.label,
        sources: nSources,
        quadrants: nQuadrants,
        pairs: eng.stats.pairs,
        g1: p.g1,
        g2: p.g2,
        g1Err: Math.sqrt(cov[0]),
        g2Err: Math.sqrt(cov[2]),
        g1True: g1,
        g2True: g2,
        gradientEvaluations: evals,
        dataCpuMs: tData,
        fitMs,
      };
      eng.destroy();
      if (opts.json) console.log(JSON.stringify(out));
      else {
        console.log(`synthetic scene: ${nSources} galaxies × ${nQuadrants} quadrants (${size}×${size} px), data by the float64 CPU reference + noise`);
        console.log(`g1 = ${out.g1.toFixed(5)} ± ${out.g1Err.toFixed(5)}   (true ${g1})`);
        console.log(`g2 = ${out.g2.toFixed(5)} ± ${out.g2Err.toFixed(5)}   (true ${g2})`);
        console.log(`(sources held at truth; error conditional on them) ${evals} gradient evaluations in ${(fitMs / 1000).toFixed(1)} s on ${acq.label}`);
      }
      return 0;
    } finally {
      acq.release();
    }
  },
};

export default syntheticDemo;

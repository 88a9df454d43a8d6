/**
 * Oversampled PSF grids from `shine simulate --psf-oversampling q` (issue 12, part 2), on a small
 * custom preset (a 30″ sub-tile of a 2′ tile, as test/sim/simulate.test.ts's ±g pair), simulated
 * with q = 1 (native), 2 and 3:
 *  (a) every fine stamp's samples c + q·a (a integer) are the native stamp of the same node (the
 *      same truth ePSF at the same positions, rendered by other phases' renders: a consistency
 *      check of the interleaving), up to their normalisations; unit sum; peak at the centre; the
 *      header cards (PSFOVERS, PSFSTAMP = 21q (+1 when even), PSFPIXEL) read back; q = 1 has no
 *      PSFOVERS card and reads as oversampling 1;
 *  (b) the unweighted second moments of the fine stamps match the analytic ePSF moments
 *      (psfMoments through the local Jacobian, + 1/12 per axis for the pixel) far better than the
 *      native stamps do: against the untruncated moments and, sharper, against the moments of the
 *      continuous ePSF truncated to the stamp's own box (computed here by direct quadrature);
 *  (c) astropy reads the file and its PSFOVERS card (test/fixtures/sim/check_psf_oversampling.py);
 *  the DET/BKG/truth files do not depend on q; the CLI option is parsed and validated.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nodeSimOutput, parseSimulateArgs } from '../../cli/commands/simulate.ts';
import { bkgFileName, detFileName, psfFileName, psfGridNodes, psfStampSide, simulate, truthPsfStamp } from '../../engine/sim/simulate.ts';
import { PRESETS, type Preset } from '../../engine/sim/presets.ts';
import { psfMoments, type PsfModel } from '../../engine/sim/psf-model.ts';
import { openFits } from '../../platform/node/files.ts';
import { readPsfGrid, type PsfGrid } from '../../engine/data/psf/index.ts';
import { parseConfig } from '../../engine/config/index.ts';
import { runPython, skipOracle } from '../wcs/python.ts';

const CHECK = fileURLToPath(new URL('../fixtures/sim/check_psf_oversampling.py', import.meta.url));
// stamp tiers [64] (config only): the 6″ margin then passes the config's margin rule
const tiny: Preset = { ...PRESETS.ci, tileCore: 120, margin: 6, pad: 2, stampTiers: [64] };
const SEED = 11;
const QS = [1, 2, 3] as const;

let root = '';
const dirs: Record<number, string> = {};
/** Exposures with at least one quadrant, and their quadrant HDU names. */
let quads: Array<{ dither: number; hdus: string[] }> = [];

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'shine-psfover-'));
  for (const q of QS) {
    dirs[q] = join(root, `q${q}`);
    await simulate(nodeSimOutput(dirs[q]), { preset: tiny, seed: SEED, shear: [0.03, -0.02], psfOversampling: q });
  }
  quads = [];
  for (let d = 0; d < 4; d++) {
    const f = await openFits(join(dirs[1], 'VIS', psfFileName(tiny.obsId, d)));
    const hdus = f.hdus.slice(1).map((h) => h.name);
    await f.close();
    if (hdus.length) quads.push({ dither: d, hdus });
  }
}, 120_000);

afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

async function grids(q: number, dither: number): Promise<Map<string, PsfGrid>> {
  const f = await openFits(join(dirs[q], 'VIS', psfFileName(tiny.obsId, dither)));
  const out = new Map<string, PsfGrid>();
  for (const h of f.hdus.slice(1)) out.set(h.name, await readPsfGrid(f, h.name));
  await f.close();
  return out;
}

describe('the oversampled PSF grid files', () => {
  it('have PSFOVERS = q, PSFSTAMP = 21q (+1 when even), PSFPIXEL = T; native files have no PSFOVERS', async () => {
    expect(quads.length).toBeGreaterThan(0);
    expect([1, 2, 3, 4, 5].map(psfStampSide)).toEqual([21, 43, 63, 85, 105]);
    for (const q of QS) {
      for (const { dither, hdus } of quads) {
        const f = await openFits(join(dirs[q], 'VIS', psfFileName(tiny.obsId, dither)));
        for (const name of hdus) {
          const h = f.header(name);
          if (q === 1) expect(h.get('PSFOVERS')).toBeUndefined();
          else expect(h.getNumber('PSFOVERS')).toBe(q);
          expect(h.getNumber('PSFSTAMP')).toBe(psfStampSide(q));
          expect(h.get('PSFPIXEL')).toBe(true);
          expect(f.hdu(name).naxis).toEqual([9 * psfStampSide(q), 9 * psfStampSide(q)]);
        }
        await f.close();
        for (const g of (await grids(q, dither)).values()) {
          expect(g.oversampling).toBe(q);
          expect(g.stampSize).toBe(psfStampSide(q));
          expect([g.nx, g.ny]).toEqual([9, 9]);
        }
      }
    }
  });

  it('(a) samples c + q·a of each fine stamp are the native stamp; unit sum; peak at the centre', async () => {
    const report: string[] = [];
    for (const q of [2, 3]) {
      let maxSubErr = 0, maxSumErr = 0, maxScaleErr = 0, stamps = 0;
      const S = psfStampSide(q), c = (S - 1) / 2;
      for (const { dither } of quads) {
        const native = await grids(1, dither), fine = await grids(q, dither);
        for (const [name, gf] of fine) {
          const gn = native.get(name)!;
          for (let j = 0; j < 9; j++) {
            for (let i = 0; i < 9; i++) {
              const f = gf.stampAt(i, j), n = gn.stampAt(i, j);
              let sum = 0, peak = 0, kPeak = -1;
              f.forEach((v, k) => { sum += v; if (v > peak) { peak = v; kPeak = k; } });
              maxSumErr = Math.max(maxSumErr, Math.abs(sum - 1));
              expect(kPeak).toBe(c * S + c);
              // the native positions: fine (c + q·a, c + q·b), native (10 + a, 10 + b)
              let sf = 0, sn = 0, nPeak = 0;
              for (let b = -10; b <= 10; b++) for (let a = -10; a <= 10; a++) {
                sf += f[(c + q * b) * S + c + q * a];
                sn += n[(10 + b) * 21 + 10 + a];
                nPeak = Math.max(nPeak, n[(10 + b) * 21 + 10 + a]);
              }
              const k = sn / sf;
              maxScaleErr = Math.max(maxScaleErr, Math.abs(k / (q * q) - 1));
              for (let b = -10; b <= 10; b++) for (let a = -10; a <= 10; a++) {
                const d = Math.abs(k * f[(c + q * b) * S + c + q * a] - n[(10 + b) * 21 + 10 + a]) / nPeak;
                maxSubErr = Math.max(maxSubErr, d);
              }
              stamps++;
            }
          }
        }
      }
      report.push(`q=${q}: ${stamps} stamps, max |fine(c+q·a)·k − native|/peak = ${maxSubErr.toExponential(2)}, max |Σ − 1| = ${maxSumErr.toExponential(2)}, max |k/q² − 1| = ${maxScaleErr.toExponential(2)}`);
      expect(maxSubErr).toBeLessThan(1e-6);
      expect(maxSumErr).toBeLessThan(1e-6);
      // the fine stamp holds q² phases of the same ePSF, each summing to ~1 (Σ_n ePSF(n + δ) = 1)
      expect(maxScaleErr).toBeLessThan(2e-5);
    }
    console.log(`oversampled PSF stamps vs native (float32 files):\n  ${report.join('\n  ')}`);
  });

  it('do not change the DET, BKG and truth files', async () => {
    for (const q of [2, 3]) {
      for (let d = 0; d < 4; d++) {
        for (const name of [detFileName(tiny.obsId, d), bkgFileName(tiny.obsId, d)]) {
          expect((await readFile(join(dirs[q], 'VIS', name))).equals(await readFile(join(dirs[1], 'VIS', name)))).toBe(true);
        }
      }
      for (const rel of ['truth/sources.fits', 'truth/shear.fits', 'config.yaml']) {
        expect((await readFile(join(dirs[q], rel))).equals(await readFile(join(dirs[1], rel)))).toBe(true);
      }
      // config.yaml still validates and names the (oversampled) PSF files
      const cfg = parseConfig(await readFile(join(dirs[q], 'config.yaml'), 'utf8'), { file: join(dirs[q], 'config.yaml') });
      expect(cfg.data.psf.length).toBe(4);
    }
  });
});

// ----------------------------------------------------------------------------------------------
// (b) second moments

/** Pixel-frame covariance J⁻¹ C J⁻ᵀ of a world covariance C = [cuu, cuv, cvv]. */
function toPixel(jac: readonly number[], cuu: number, cuv: number, cvv: number): [number, number, number] {
  const det = jac[0] * jac[3] - jac[1] * jac[2];
  const ji = [jac[3] / det, -jac[1] / det, -jac[2] / det, jac[0] / det];
  const a = ji[0] * cuu + ji[1] * cuv, b = ji[0] * cuv + ji[1] * cvv;
  const c = ji[2] * cuu + ji[3] * cuv, d = ji[2] * cuv + ji[3] * cvv;
  return [a * ji[0] + b * ji[1], a * ji[2] + b * ji[3], c * ji[2] + d * ji[3]];
}

/** Analytic ePSF second moments in the pixel frame: the PSF's (psfMoments) + 1/12 per axis (pixel). */
function analyticMoments(psf: PsfModel, jac: readonly number[]): [number, number, number] {
  const [xx, xy, yy] = toPixel(jac, ...psfMoments(psf));
  return [xx + 1 / 12, xy, yy + 1 / 12];
}

/**
 * Moments of the continuous ePSF (PSF ⊗ unit box, pixel frame) restricted to the square
 * [−L, L]², normalised by the flux in it: ∫ PSF(y) ∫_{[−L,L]² ∩ (y + box)} x xᵀ dx dy, the inner
 * integral analytic, the outer a midpoint sum with step h over |y| ≤ R (the PSF is a Gaussian
 * mixture: spectrally accurate).
 */
function truncatedMoments(psf: PsfModel, jac: readonly number[], L: number, h = 0.04, R = 16): [number, number, number] {
  const comps = psf.components.map((c) => {
    const [pxx, pxy, pyy] = toPixel(jac, c.cuu, c.cuv, c.cvv);
    const dt = pxx * pyy - pxy * pxy;
    return { ixx: pyy / dt, ixy: -pxy / dt, iyy: pxx / dt, norm: c.weight / (2 * Math.PI * Math.sqrt(dt)) };
  });
  const I = (k: number, t: number) => {
    const lo = Math.max(-L, t - 0.5), hi = Math.min(L, t + 0.5);
    return hi <= lo ? 0 : (hi ** (k + 1) - lo ** (k + 1)) / (k + 1);
  };
  const N = Math.round(R / h);
  const I0 = new Float64Array(2 * N + 1), I1 = new Float64Array(2 * N + 1), I2 = new Float64Array(2 * N + 1);
  for (let k = -N; k <= N; k++) { I0[k + N] = I(0, k * h); I1[k + N] = I(1, k * h); I2[k + N] = I(2, k * h); }
  let m0 = 0, mxx = 0, mxy = 0, myy = 0;
  for (let b = -N; b <= N; b++) {
    for (let a = -N; a <= N; a++) {
      const x = a * h, y = b * h;
      let p = 0;
      for (const c of comps) p += c.norm * Math.exp(-0.5 * (c.ixx * x * x + 2 * c.ixy * x * y + c.iyy * y * y));
      m0 += p * I0[a + N] * I0[b + N];
      mxx += p * I2[a + N] * I0[b + N];
      mxy += p * I1[a + N] * I1[b + N];
      myy += p * I0[a + N] * I2[b + N];
    }
  }
  return [mxx / m0, mxy / m0, myy / m0];
}

/** Unweighted second moments about the node of a stamp sampled every 1/q pixel (pixel units). */
function stampMoments(st: ArrayLike<number>, q: number): [number, number, number] {
  const S = Math.round(Math.sqrt(st.length)), c = (S - 1) / 2;
  let s = 0, xx = 0, xy = 0, yy = 0;
  for (let b = 0; b < S; b++) {
    for (let a = 0; a < S; a++) {
      const v = st[b * S + a], dx = (a - c) / q, dy = (b - c) / q;
      s += v; xx += v * dx * dx; xy += v * dx * dy; yy += v * dy * dy;
    }
  }
  return [xx / s, xy / s, yy / s];
}

describe('(b) unweighted second moments of the stamps vs the analytic ePSF', () => {
  it('the fine stamps match the analytic moments far better than the native ones', async () => {
    // per q: max over nodes and components of |ΔM|/tr M, against the full and the truncated moments
    const worst: Record<number, { full: number; trunc: number }> = { 1: { full: 0, trunc: 0 }, 2: { full: 0, trunc: 0 }, 3: { full: 0, trunc: 0 } };
    const best: Record<number, { full: number; trunc: number }> = { 1: { full: Infinity, trunc: Infinity }, 2: { full: Infinity, trunc: Infinity }, 3: { full: Infinity, trunc: Infinity } };
    let nodesChecked = 0;
    for (const { dither, hdus } of quads) {
      const g = { 1: await grids(1, dither), 2: await grids(2, dither), 3: await grids(3, dither) } as Record<number, Map<string, PsfGrid>>;
      for (let k = 0; k < hdus.length; k++) {
        const nodes = psfGridNodes(tiny, SEED, dither, k);
        // corners and centre of the grid
        for (const [i, j] of [[0, 0], [8, 0], [4, 4], [0, 8], [8, 8]]) {
          const node = nodes[j * 9 + i];
          expect([node.i, node.j]).toEqual([i, j]);
          const A = analyticMoments(node.psf, node.jacobian);
          const tr = A[0] + A[2];
          const truncByL = new Map<number, [number, number, number]>();
          for (const q of QS) {
            const S = psfStampSide(q);
            // a sample stands for the cell of side 1/q around it: the stamp covers |x| ≤ (c + ½)/q
            const L = (S / 2) / q;
            if (!truncByL.has(L)) truncByL.set(L, truncatedMoments(node.psf, node.jacobian, L));
            const T = truncByL.get(L)!;
            const M = stampMoments(g[q].get(hdus[k])!.stampAt(i, j), q);
            const full = Math.max(...[0, 1, 2].map((t) => Math.abs(M[t] - A[t]) / tr));
            const trunc = Math.max(...[0, 1, 2].map((t) => Math.abs(M[t] - T[t]) / tr));
            worst[q] = { full: Math.max(worst[q].full, full), trunc: Math.max(worst[q].trunc, trunc) };
            best[q] = { full: Math.min(best[q].full, full), trunc: Math.min(best[q].trunc, trunc) };
          }
          nodesChecked++;
        }
      }
    }
    const f = (x: number) => x.toExponential(2);
    console.log(
      `PSF stamp second moments, |ΔM|/tr(M) over ${nodesChecked} nodes (min–max):\n` +
        QS.map((q) => `  q=${q} (${psfStampSide(q)}²): vs analytic ${f(best[q].full)}–${f(worst[q].full)}; vs analytic truncated to the stamp ${f(best[q].trunc)}–${f(worst[q].trunc)}`).join('\n'),
    );
    expect(nodesChecked).toBeGreaterThan(0);
    // native 21 × 21 at 0.1″: aliasing of the undersampled ePSF biases the moments by ~2·10⁻³
    expect(best[1].full).toBeGreaterThan(1e-3);
    expect(best[1].trunc).toBeGreaterThan(1e-3);
    // oversampled: only the stamp's truncation of the PSF halo (≤ 3·10⁻⁴) remains …
    for (const q of [2, 3]) {
      expect(worst[q].full).toBeLessThan(4e-4);
      expect(worst[q].full * 5).toBeLessThan(best[1].full);
      // … and with the truncation accounted for, the moments are exact to the sampling (midpoint) error
      expect(worst[q].trunc).toBeLessThan(1e-5);
      expect(worst[q].trunc * 100).toBeLessThan(best[1].trunc);
    }
  });

  it('truthPsfStamp at q = 4 (not written here) keeps converging: |ΔM| vs the truncated moments ~1/q²', () => {
    const node = psfGridNodes(tiny, SEED, quads[0].dither, 0)[40];
    const err = (q: number) => {
      const S = psfStampSide(q);
      const T = truncatedMoments(node.psf, node.jacobian, S / 2 / q);
      const M = stampMoments(truthPsfStamp(node.psf, node.jacobian, q), q);
      const A = analyticMoments(node.psf, node.jacobian);
      return Math.abs(M[0] - T[0]) / (A[0] + A[2]);
    };
    const e2 = err(2), e4 = err(4);
    console.log(`float64 stamps, node (4, 4): |ΔMxx|/tr vs truncated: q=2 ${e2.toExponential(2)}, q=4 ${e4.toExponential(2)}`);
    expect(e4).toBeLessThan(e2 / 2.5);
    expect(e4).toBeLessThan(3e-6);
  });
});

describe('(c) astropy reads the oversampled files', () => {
  it.skipIf(skipOracle())('verify, PSFOVERS an integer card, unit-sum centred stamps, sub-samples = native', () => {
    for (const q of [2, 3]) {
      for (const { dither } of quads) {
        const r = JSON.parse(runPython(CHECK, [String(q), join(dirs[q], 'VIS', psfFileName(tiny.obsId, dither)), join(dirs[1], 'VIS', psfFileName(tiny.obsId, dither))]));
        expect(r.errors).toEqual([]);
        expect(r.hdus).toBeGreaterThan(0);
        expect(r.stamps).toBe(81 * r.hdus);
        expect(r.psfovers).toEqual(Array(r.hdus).fill(q));
        expect(r.psfovers_comment).toBe('PSF pixels per detector pixel');
        expect(r.psfstamp).toEqual(Array(r.hdus).fill(psfStampSide(q)));
        expect(r.max_sum_err).toBeLessThan(1e-6);
        expect(r.max_sub_err).toBeLessThan(1e-6);
      }
    }
  });
});

describe('--psf-oversampling', () => {
  it('is parsed and validated by the CLI and the engine API', async () => {
    expect(parseSimulateArgs(['--preset', 'ci', '--seed', '1', '--out', 'x']).psfOversampling).toBe(1);
    expect(parseSimulateArgs(['--preset', 'ci', '--seed', '1', '--out', 'x', '--psf-oversampling', '3']).psfOversampling).toBe(3);
    expect(parseSimulateArgs(['--preset', 'ci', '--seed', '1', '--out', 'x', '--psf-oversampling=2']).psfOversampling).toBe(2);
    for (const bad of ['0', '1.5', '-2', 'two', '17']) {
      expect(() => parseSimulateArgs(['--preset', 'ci', '--seed', '1', '--out', 'x', '--psf-oversampling', bad])).toThrow(/--psf-oversampling must be an integer from 1 to 16/);
    }
    const sink = { open: async () => ({ append: async () => {}, close: async () => {} }) };
    await expect(simulate(sink, { preset: tiny, seed: 1, psfOversampling: 2.5 })).rejects.toThrow(/psf-oversampling must be an integer/);
    await expect(simulate(sink, { preset: tiny, seed: 1, psfOversampling: 0 })).rejects.toThrow(/psf-oversampling must be an integer/);
  });
});

/**
 * Synthetic sub-tile-like scenes for `shine bench` and `shine demo`: Q dithered quadrants of the
 * same patch of sky (different orientations, one rotated 180°), N exponential galaxies spread
 * over the patch, Gaussian-ish PSF stamps. The pixel data is either pure noise (benchmarks:
 * the cost does not depend on the values) or the float64 reference model plus noise (demo:
 * rendered by the independent CPU path, not by the engine under test).
 */
import { chooseTier } from '../model/geometry.ts';
import { matInv2 } from '../model/galsim.ts';
import { makeGaussianPsf, makeJacobian, makeRng } from '../reference/scene-builder.ts';
import { renderModel64 } from '../gpu/render/model64.ts';
import { allocParams, type ExposureSet, type PairGeometry, type QuadrantData, type SceneParams, type SourceInfo } from './types.ts';

export interface SyntheticOptions {
  nSources: number;
  nQuadrants: number;
  /** Quadrant size (default: Euclid VIS 2048 × 2066). */
  width?: number;
  height?: number;
  /** Force every source into one stamp tier (64, 128, 256), or 'mixed' (hlr-driven). */
  tier?: number | 'mixed';
  seed?: number;
  g1?: number;
  g2?: number;
  /** Pixel noise rms (ADU). */
  noise?: number;
  data?: 'noise' | 'model64';
  /** PSF stamps sampled every 1/q pixel (default 1): 21·q (+1 if even) samples a side. */
  psfOversampling?: number;
}

export interface SyntheticScene {
  set: ExposureSet;
  truth: SceneParams;
}

const PIXEL_SCALE = 0.1;

export function makeSyntheticScene(o: SyntheticOptions): SyntheticScene {
  const rng = makeRng(o.seed ?? 1);
  const width = o.width ?? 2048;
  const height = o.height ?? 2066;
  const n = o.nSources;
  const truth = allocParams(n);
  truth.g1 = o.g1 ?? 0.02;
  truth.g2 = o.g2 ?? -0.01;
  const sources: SourceInfo[] = [];
  // sky patch (arcsec) that every quadrant sees, leaving room for the dithers and stamps
  const halfU = Math.max(1, (Math.min(width, height) * PIXEL_SCALE) / 2 * 0.75 - 3.2);
  const world: Array<[number, number]> = [];
  for (let i = 0; i < n; i++) {
    const hlrPix = o.tier === undefined || o.tier === 'mixed' ? Math.exp(rng.normal() * 0.4) * 2.5 : tierHlr(o.tier, rng.uniform());
    truth.hlr[i] = hlrPix * PIXEL_SCALE;
    truth.flux[i] = 300 * Math.exp(rng.normal() * 0.6);
    const em = Math.min(0.7, Math.abs(rng.normal() * 0.25));
    const ea = rng.range(0, Math.PI);
    truth.e1[i] = em * Math.cos(2 * ea);
    truth.e2[i] = em * Math.sin(2 * ea);
    sources.push({ id: i + 1, stampSize: typeof o.tier === 'number' ? o.tier : chooseTier(hlrPix) });
    world.push([rng.range(-halfU, halfU), rng.range(-halfU, halfU)]);
  }
  const rotations = [0, 180, 90, 270, 45, 135, 225, 315];
  const ovs = o.psfOversampling ?? 1;
  const psfSize = 21 * ovs + (ovs % 2 === 0 ? 1 : 0);
  const quadrants: QuadrantData[] = [];
  const pairs: PairGeometry[] = [];
  for (let j = 0; j < o.nQuadrants; j++) {
    const J = makeJacobian(PIXEL_SCALE, rotations[j % rotations.length] + 0.3 * j, false, 0.002 * j, 0.001 * j);
    const Ji = matInv2(J);
    // dither: a few arcsec per exposure
    const ox = (width - 1) / 2 + 30 * Math.sin(j * 1.7);
    const oy = (height - 1) / 2 + 30 * Math.cos(j * 2.3);
    const np = width * height;
    quadrants.push({ name: `synthetic-${j}`, width, height, sci: new Float32Array(np), rms: new Float32Array(np).fill(o.noise ?? 1), flags: new Uint32Array(np) });
    for (let i = 0; i < n; i++) {
      const [u, v] = world[i];
      const x = ox + Ji[0] * u + Ji[1] * v;
      const y = oy + Ji[2] * u + Ji[3] * v;
      const psf = makeGaussianPsf({ size: psfSize, sigma: 0.68 * ovs * (1 + 0.05 * Math.sin(x / 500)), axisRatio: 0.92, angleDeg: (x + y) / 40, lobeOffset: [0.8 * ovs, 0.3 * ovs] });
      pairs.push({ source: i, quadrant: j, x, y, jacobian: [J[0], J[1], J[2], J[3]], psf, visible: true });
    }
  }
  const set: ExposureSet = { quadrants, sources, pairs, psfSize, ...(ovs > 1 ? { psfOversampling: ovs } : {}) };
  const noise = o.noise ?? 1;
  const models = o.data === 'model64' ? renderModel64(set, truth) : null;
  quadrants.forEach((q, j) => {
    for (let i = 0; i < q.sci.length; i++) q.sci[i] = (models ? models[j][i] : 0) + noise * rng.normal();
  });
  return { set, truth };
}

/** A half-light radius (pixels) that puts a source in the given tier. */
function tierHlr(tier: number, u: number): number {
  const max = (t: number) => (t / 2 - 10.5) / 3;
  const lo = tier === 64 ? 1.2 : max(tier / 2) + 0.5;
  return lo + u * (max(tier) - 0.5 - lo);
}

/**
 * What a synthetic scene will need before it is built (issue 17 item 10: `shine bench` refuses a
 * scene that cannot fit instead of growing until the machine runs out): host bytes of the scene
 * and its layout, and a lower bound of the engine's GPU bytes — the PSF spectra and FFT work of
 * every pair (all pairs of a synthetic scene are visible), at the smallest FFT size for 'mixed'
 * tiers and without alias orders when they are 'auto'.
 */
export function syntheticSceneNeeds(o: SyntheticOptions & { fftFactor?: number; aliasOrders?: number | 'auto'; replicas?: number }): { pairs: number; hostBytes: number; gpuAtLeast: { psfSpectra: number; fftWork: number; total: number } } {
  const width = o.width ?? 2048;
  const height = o.height ?? 2066;
  const ovs = o.psfOversampling ?? 1;
  const P = 21 * ovs + (ovs % 2 === 0 ? 1 : 0);
  const k = o.replicas ?? 1;
  const pairs = o.nSources * o.nQuadrants;
  const m = (o.fftFactor ?? 2) * (typeof o.tier === 'number' ? o.tier : 64);
  const N = o.aliasOrders === undefined || o.aliasOrders === 'auto' ? 0 : Math.min(o.aliasOrders, Math.ceil((ovs - 1) / 2));
  const slots = (2 * N + 1) ** 2;
  const psfSpectra = pairs * slots * m * m * 8;
  // one work buffer per FFT size holding the largest batch; a batch holds at most one quadrant's pairs
  const perBatch = Math.min(o.nSources, 65535);
  const fftWork = Math.ceil(perBatch / 2) * m * m * 8;
  // sci, rms, flags (4 B each) per pixel; float64 PSF stamps; per replicated quadrant the layout's
  // coverage mask (1 B) and at most every pixel's observed value and weight (8 B)
  const px = width * height;
  const hostBytes = o.nQuadrants * px * 12 + pairs * P * P * 8 + k * o.nQuadrants * px * 9;
  return { pairs, hostBytes, gpuAtLeast: { psfSpectra, fftWork, total: psfSpectra + fftWork } };
}

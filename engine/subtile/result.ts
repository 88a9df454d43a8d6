/**
 * What Stage 2 returns for a sub-tile (`runSubtile`, engine/subtile/run.ts): the shear and its
 * errors, the core sources, the diagnostics images, timings and the run's record (plan, masks,
 * χ² per quadrant). engine/subtile/products.ts turns it into the four products.
 */
import type { Manifest } from '../tiling/manifest.ts';
import type { QuadrantInfo } from '../exposures/exposure-set.ts';
import type { ProfileParamName, QuadrantData } from '../scene/types.ts';
import { expandPixels, pixelIndex, usablePixel } from '../scene/pixels.ts';
import type { ShearSamples } from '../outputs/shear.ts';
import type { FitOutcome, PosteriorDiagnostics } from './posterior-run.ts';
import type { UnmodelledMaskSummary } from '../exposures/masking.ts';
import type { QuadrantChi2 } from './quadrant-chi2.ts';
import type { StagePerformance } from '../bench/probe.ts';
import type { StartReport } from './start.ts';

export interface QuadrantImages {
  name: string;
  width: number;
  height: number;
  /** sci − background. */
  observed: Float32Array;
  model: Float32Array;
  rms: Float32Array;
  /** 1 where the pixel enters the likelihood (unmasked — flags and the unmodelled-object mask —, finite, rms > 0). */
  mask: Uint8Array;
  /** 1 under at least one visible modelled stamp: the modelled area, where χ²/N is summed (quadrant-chi2.ts). */
  modelled: Uint8Array;
}

/**
 * The diagnostics images of one quadrant. From a quadrant that keeps only its active blocks
 * (engine/scene/pixels.ts), `observed`, `rms` and `mask` — and `model` when given on the kept
 * blocks (`blockModel`), `modelled` when given as a function — are full-size arrays made on each
 * read (NaN, NaN, 0, 0 where no pixel is kept), so that the diagnostics PNG holds one quadrant's
 * at a time.
 */
export function quadrantImages(q: QuadrantData, model: Float32Array, modelled: Uint8Array | (() => Uint8Array), pixelMask: number, blockModel = false): QuadrantImages {
  const modelledMask = () => (typeof modelled === 'function' ? modelled() : modelled);
  const observedAndMask = () => {
    const n = q.width * q.height;
    const observed = new Float32Array(n);
    const mask = new Uint8Array(n);
    const bk = q.background;
    for (let d = 0; d < n; d++) {
      const i = q.blocks ? pixelIndex(q, d % q.width, Math.floor(d / q.width)) : d;
      if (i < 0) {
        observed[d] = NaN;
        continue;
      }
      const b = bk === undefined ? 0 : typeof bk === 'number' ? bk : bk[i];
      observed[d] = q.sci[i] - b;
      mask[d] = usablePixel(observed[d], q.rms[i], q.flags[i], pixelMask) ? 1 : 0;
    }
    return { observed, mask };
  };
  const base = { name: q.name, width: q.width, height: q.height };
  if (!q.blocks) return { ...base, modelled: modelledMask(), model, ...observedAndMask(), rms: q.rms };
  return {
    ...base,
    get modelled() {
      return modelledMask();
    },
    get model() {
      return blockModel ? expandPixels(q, model, 0) : model;
    },
    get observed() {
      return observedAndMask().observed;
    },
    get mask() {
      return observedAndMask().mask;
    },
    get rms() {
      return expandPixels(q, q.rms as Float32Array, NaN);
    },
  };
}

export interface CoreSourceResult {
  objectId: string;
  ra: number;
  dec: number;
  flux: number;
  hlr: number;
  e1: number;
  e2: number;
  dx: number;
  dy: number;
  initFlux: number;
  initHlr: number;
  /** Marginal standard deviations: the posterior's (VI / NUTS) or the Laplace ones (MAP). */
  err?: { flux: number; hlr: number; e1: number; e2: number; dx: number; dy: number };
  /** Quadrants whose image the source's stamp reaches (pairs of the engine layout). */
  nQuadrants?: number;
  /** The profile's own parameters (free ν; bulge + disk): fitted value, start, posterior std (VI / NUTS). */
  profile?: Partial<Record<ProfileParamName, { value: number; init: number; err?: number }>>;
}

export interface SubtileResult extends FitOutcome {
  status: 'ok' | 'empty';
  /** Why the sub-tile is empty, when it is. */
  emptyReason?: string;
  tileId: number;
  row: number;
  col: number;
  center: [number, number];
  method: 'map' | 'vi' | 'nuts';
  g1: number;
  g2: number;
  g1Err: number;
  g2Err: number;
  g1g2Cov: number;
  g1ErrConditional: number;
  g2ErrConditional: number;
  laplaceOk: boolean;
  laplaceMessage: string;
  /** OBJECT_IDs of the sources left out of the Laplace error propagation (block not PD at the MAP). */
  laplaceDropped: string[];
  /** Shear part of the Newton step at the MAP (LaplaceResult.newtonStepG), when computed. */
  laplaceNewtonStepG?: [number, number] | null;
  /** The MAP's step along the exact shear–shape degeneracy (engine/infer/shear-polish.ts), when tried. */
  shearAlongShapes?: { applied: boolean; stepG: [number, number]; gainLogPrior: number; message: string } | null;
  /** Times the MAP rebuilt its preconditioner after a precision-floor stop (inference.map.floor_restarts); absent without a MAP. */
  mapFloorRestarts?: number;
  /** What a warm start used (engine/subtile/start.ts); null or absent for the catalog start. */
  start?: StartReport | null;
  /** The Newton polish after the Laplace Hessian (inference.map.newton_polish), when tried. */
  newtonPolish?: { applied: boolean; stepG: [number, number]; nextStepG: [number, number] | null; message: string } | null;
  /** What G1/G2 are: the Laplace-marginal mode, the MAP, or the VI / NUTS posterior mean. */
  estimator?: 'laplace_marginal' | 'map' | 'posterior_mean';
  /** The Laplace-marginal shear (inference.map.shear_estimator: laplace_marginal): g1/g2 above are its `g` when applied; `mapG` is the MAP's. */
  laplaceMarginal?: { applied: boolean; mapG: [number, number]; stepG: [number, number]; gradC: [number, number]; delta: [number, number]; evaluations: number; message: string; largest: Array<{ objectIds: string[]; gradC: [number, number] }> } | null;
  /** The inferred ellipticity dispersion (ba14 with infer_sigma): final σ_e, the EM history, settled. */
  population?: { sigmaE: number; history: number[]; settled: boolean; range: [number, number] } | null;
  nSourcesCore: number;
  nSourcesExtended: number;
  nSourcesModelled: number;
  nQuadrants: number;
  pairs: number;
  core: CoreSourceResult[];
  /** The other modelled sources (margin sources owned by a neighbouring sub-tile, nuisance objects), as `core`. */
  margin: CoreSourceResult[];
  quadrants: QuadrantInfo[];
  images: QuadrantImages[];
  timings: Record<string, number>;
  warnings: string[];
  /**
   * Sources rendered in the largest tier although their catalog size needs more (their light
   * beyond the stamp is not modelled; ExposureSet `oversize`): OBJECT_ID and the side they need.
   */
  oversizeStamps?: Array<{ objectId: string; needPixels: number; stampSize: number }>;
  /** VI / NUTS: posterior draws of (g1, g2) and sampler diagnostics. */
  samples?: ShearSamples;
  posterior?: PosteriorDiagnostics;
  /** VI / NUTS: the MAP + Laplace estimate when it was computed (initialisation), for comparison. */
  mapEstimate?: { g1: number; g2: number; g1Err: number; g2Err: number };
  /** χ² per quadrant over the modelled, unmasked pixels at the estimate (float64). */
  quadrantChi2?: QuadrantChi2[];
  /** Masking of the manifest's unmodelled objects (config `masking`). */
  unmodelled?: UnmodelledMaskSummary;
  /** The PSF model and aliasing the stamps were rendered with (docs/forward-model.md "Aliasing"). */
  render?: { psfOversampling: number; aliasOrders: number };
  /** The memory plan the run followed (docs/plan.md), as recorded in the metadata. */
  plan?: Record<string, unknown>;
  /** The stage timings (docs/bench.md), memory and pipeline counts of this run. */
  performance?: StagePerformance;
}

export function emptyResult(m: Manifest, method: SubtileResult['method'], reason: string): SubtileResult {
  return {
    status: 'empty',
    emptyReason: reason,
    tileId: m.tile_id,
    row: m.sub_tile_row,
    col: m.sub_tile_col,
    center: [m.sub_tile.center[0], m.sub_tile.center[1]],
    method,
    g1: NaN,
    g2: NaN,
    g1Err: NaN,
    g2Err: NaN,
    g1g2Cov: NaN,
    g1ErrConditional: NaN,
    g2ErrConditional: NaN,
    convergence: NaN,
    converged: false,
    reason: 'empty',
    iterations: 0,
    evaluations: 0,
    lossHistory: [],
    laplaceOk: false,
    laplaceMessage: reason,
    laplaceDropped: [],
    nSourcesCore: m.n_sources_core,
    nSourcesExtended: m.n_sources_extended,
    nSourcesModelled: 0,
    nQuadrants: m.n_quadrants,
    pairs: 0,
    core: [],
    margin: [],
    quadrants: [],
    images: [],
    timings: {},
    warnings: [reason],
  };
}

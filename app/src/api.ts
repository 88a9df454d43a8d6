/** Types shared by the page (main.ts) and the engine worker (worker.ts). Plain, structured-cloneable data. */
import type { SubtileResult } from '../../engine/subtile/result.ts';
import type { QuadrantChi2 } from '../../engine/subtile/quadrant-chi2.ts';
import type { WcsParams } from '../../engine/data/wcs/index.ts';
import type { Manifest } from '../../engine/tiling/manifest.ts';

export type Method = 'map' | 'vi' | 'nuts';
export type Optimizer = 'lbfgs' | 'adam';
/** The config priors the app can fix or free (gal.priors.<name>). */
export const PRIOR_NAMES = ['shear', 'flux', 'hlr', 'ellipticity', 'offset'] as const;
export type PriorName = (typeof PRIOR_NAMES)[number];

export type ProgressFn = (stage: string, done: number, total: number, loss?: number) => void;

/** One quadrant as read from the files (app/src/worker.ts readQuadrants). */
export interface QuadrantData {
  name: string;
  width: number;
  height: number;
  /** SCI as stored. */
  sci: Float32Array;
  /** SCI − background, as the likelihood sees it. */
  observed: Float32Array;
  rms: Float32Array;
  flags: Int32Array;
  /** 1 where the pixel enters the likelihood (before the unmodelled-object mask of a fit). */
  mask: Uint8Array;
  /** The background subtracted: the BKG map, or the clipped median of SCI. */
  background: Float32Array | number;
  wcs: WcsParams;
  /** Where it came from (for the readout and the tests). */
  file: string;
  sciHdu: string | number;
  flgHdu: string | number;
  bkgFile: string | null;
  bkgHdu: string | number | null;
}

export interface LoadInfo {
  /** Where the sub-tile came from, for the page title. */
  label: string;
  tileId: number;
  row: number;
  col: number;
  nSourcesCore: number;
  nSourcesExtended: number;
  nQuadrants: number;
  /** Truth shear of this sub-tile (config `truth.shear`), when known. */
  truth: { g1: number; g2: number } | null;
  /** Which priors the config fixes. */
  fixed: Record<PriorName, boolean>;
  defaults: { method: Method; optimizer: Optimizer; mapIterations: number; lr: number; viSteps: number; viLr: number; viGuide: ViGuide; nutsWarmup: number; nutsSamples: number; nutsChains: number };
  warnings: string[];
  /** Milliseconds spent loading (simulation, prepare, reading the manifest and the images). */
  loadMs: number;
  /** Of which reading the quadrant images. */
  readMs: number;
  manifest: Manifest;
  configFile: string;
  /** hash64 of the config text (CFGHASH of the products, as the CLI writes it). */
  configHash: string;
  manifestName: string;
  /** data.pixel_scale (arcsec / pixel). */
  pixelScale: number;
  quadrants: QuadrantData[];
}

export type ViGuide = 'mean_field' | 'low_rank';

export interface RunSettings {
  method: Method;
  optimizer: Optimizer;
  /** inference.map.max_iterations: the MAP, and the warm start of VI / NUTS (init: map). */
  mapIterations: number;
  /** inference.map.lr (Adam). */
  lr: number;
  viSteps: number;
  viLr: number;
  viGuide: ViGuide;
  nutsWarmup: number;
  nutsSamples: number;
  nutsChains: number;
  /** true: the prior is used as configured (free parameter); false: the parameter is fixed at its start value. */
  free: Record<PriorName, boolean>;
  /** Compute χ² at the starting parameters too (an extra model render; default true). */
  initialChi2?: boolean;
  /** Only the model at the starting parameters (no fit). */
  startOnly?: boolean;
}

/**
 * ModelImage.mask outside the pixels the fit holds: Stage 2 keeps only the crop's active blocks
 * (the 16×8 blocks some visible stamp touches; docs/plan.md "Host memory"), so there the page
 * shows the data's own mask (QuadrantData.mask) and the model is 0.
 */
export const MASK_NOT_HELD = 255;

/** A model image of one quadrant (and the likelihood mask it was fitted with). */
export interface ModelImage {
  name: string;
  model: Float32Array;
  /** 1 in the likelihood, 0 masked (data or unmodelled object), MASK_NOT_HELD outside the fit's active blocks. */
  mask: Uint8Array;
  /** The modelled area (under a visible modelled stamp), outlined in the views. */
  modelled: Uint8Array;
}

export interface RunOutput {
  /** The fit (its images emptied: see fitImages); null for a start-only run. */
  result: SubtileResult | null;
  fitImages?: ModelImage[];
  /** The model at the starting parameters. */
  start: { chi2: number; ms: number; images: ModelImage[]; quadrantChi2: QuadrantChi2[] } | null;
  /** Σ mask·((obs − model)/rms)² at the fit over the pixels the fit holds (every quadrant's active blocks). */
  chi2Final: number;
  /** Pixels entering χ² (unmasked pixels of the active blocks). */
  nPixels: number;
  adapter: { label: string; backend: string; featureLevel: string; software: boolean };
  totalMs: number;
}

export interface EngineApi {
  loadSimulated(opts: { seed: number; small: boolean }, progress: ProgressFn): Promise<LoadInfo>;
  loadUrls(configUrl: string, manifestUrl: string | null, subTile: [number, number] | null, progress: ProgressFn): Promise<LoadInfo>;
  loadFiles(files: File[], subTile: [number, number] | null, progress: ProgressFn): Promise<LoadInfo>;
  run(settings: RunSettings, progress: ProgressFn): Promise<RunOutput>;
  adapter(): Promise<RunOutput['adapter']>;
}

/** Types shared by the page (main.ts) and the engine worker (worker.ts). Plain, structured-cloneable data. */
import type { SubtileResult } from '../../engine/subtile/run.ts';

export type Method = 'map' | 'vi' | 'nuts';
export type Optimizer = 'lbfgs' | 'adam';
/** The config priors the app can fix or free (gal.priors.<name>). */
export const PRIOR_NAMES = ['shear', 'flux', 'hlr', 'ellipticity', 'offset'] as const;
export type PriorName = (typeof PRIOR_NAMES)[number];

export type ProgressFn = (stage: string, done: number, total: number, loss?: number) => void;

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
  defaults: { method: Method; optimizer: Optimizer; steps: number; lr: number };
  warnings: string[];
  /** Milliseconds spent loading (simulation, prepare, reading the manifest). */
  loadMs: number;
}

export interface RunSettings {
  method: Method;
  optimizer: Optimizer;
  steps: number;
  lr: number;
  /** true: the prior is used as configured (free parameter); false: the parameter is fixed at its start value. */
  free: Record<PriorName, boolean>;
  /** Compute χ² at the starting parameters too (an extra model render; default true). */
  initialChi2?: boolean;
}

/** A source as drawn on one quadrant (0-based pixel centre). */
export interface SourceMark {
  index: number;
  x: number;
  y: number;
  /** The centre falls on the quadrant's pixels. */
  inside: boolean;
  /** Inside and the centre pixel enters the likelihood (not masked). */
  visible: boolean;
}

export interface SourceInfo {
  index: number;
  objectId: string;
  ra: number;
  dec: number;
  core: boolean;
  /** Fitted values (core sources; margin sources are modelled but not reported). */
  fit: { flux: number; hlr: number; e1: number; e2: number; dx: number; dy: number; initFlux: number; initHlr: number } | null;
}

export interface RunOutput {
  result: SubtileResult;
  /** Σ mask·((obs − model)/rms)² over every quadrant, at the start and at the fit. */
  chi2Init: number | null;
  chi2Final: number;
  /** Pixels entering χ². */
  nPixels: number;
  /** Per quadrant (same order as result.images): source marks. */
  marks: SourceMark[][];
  sources: SourceInfo[];
  adapter: { label: string; backend: string; featureLevel: string; software: boolean };
  /** ms spent on the χ² at the start (a separate render at the initial parameters). */
  initMs: number;
  totalMs: number;
}

export interface EngineApi {
  loadSimulated(opts: { seed: number; small: boolean }, progress: ProgressFn): Promise<LoadInfo>;
  loadUrls(configUrl: string, manifestUrl: string | null, subTile: [number, number] | null, progress: ProgressFn): Promise<LoadInfo>;
  loadFiles(files: File[], subTile: [number, number] | null, progress: ProgressFn): Promise<LoadInfo>;
  run(settings: RunSettings, progress: ProgressFn): Promise<RunOutput>;
  /** The fitted parameters as the pipeline's params FITS table (engine/outputs/params.ts). */
  paramsFits(): Promise<Uint8Array>;
  adapter(): Promise<RunOutput['adapter']>;
}

/**
 * `metadata_{tile}_{row}_{col}.yaml` (docs/outputs.md): provenance, runtime, timings and
 * convergence of one sub-tile run. Written LAST: its presence (valid, naming the same sub-tile)
 * marks the sub-tile's outputs as complete. Field names are snake_case, as in the YAML.
 * See docs/outputs.md.
 */
import { parseDocument, stringify } from 'yaml';
import { z } from 'zod';
import { ShineError } from '../errors.ts';
import { checkSubtileId, type SubtileId } from './names.ts';

export const METADATA_FORMAT = 'shine-subtile-metadata';
export const METADATA_VERSION = 1;

export interface MetadataQuadrant {
  id: string;
  file: string;
  sci_hdu: string;
  rms_hdu: string;
  flg_hdu: string;
  psf_file?: string | null;
  psf_hdu?: string | null;
  bkg_file?: string | null;
  bkg_hdu?: string | null;
}

export interface SubtileMetadata {
  format: typeof METADATA_FORMAT;
  version: typeof METADATA_VERSION;
  tile_id: number;
  sub_tile_row: number;
  sub_tile_col: number;
  /** Creation time (ISO 8601 UTC), given by the caller. */
  created: string;
  software: { name: string; version: string };
  inputs: {
    manifest: string;
    config: string;
    config_hash?: string;
    /** Hash of the resolved settings that shape the fit, defaults filled (engine/config/fit-settings.ts); a re-run redoes products whose hash differs. */
    fit_settings_hash?: string;
    quadrants: MetadataQuadrant[];
    catalogs: Array<{ file: string; hdu: string | number }>;
  };
  /** GPU adapter as reported by the runtime. */
  adapter: { label: string; backend: string; feature_level: string; vendor?: string; architecture?: string };
  runtime: { name: 'node' | 'deno' | 'browser' | string; version: string; platform?: string };
  method: 'map' | 'vi' | 'nuts';
  /** Optimiser or sampler (e.g. 'lbfgs', 'adam'). */
  optimizer?: string;
  /** Wall-clock times in milliseconds. */
  timings_ms: { load: number; build: number; inference: number; laplace: number; write: number; total: number; map?: number; posterior?: number };
  /** The stage figures of this run (docs/bench.md): stages, gradient step, memory, pipelines after warm-up. */
  performance?: Record<string, unknown>;
  inference: {
    iterations: number;
    evaluations?: number;
    final_loss: number;
    converged: boolean;
    /** Stop reason code (e.g. 'gtol', 'ftol', 'stall', 'maxIterations'). */
    reason: string;
    /**
     * A warm start (`shine subtile --start-from`, docs/subtile.md): the PARAMS tables and SHEAR
     * table it read, the sources started from a row (of all modelled), rows unused because the
     * catalog position moved or a value lies outside this run's priors, where the shear started.
     * Absent for the catalog start.
     */
    /** Times the MAP rebuilt its preconditioner after a precision-floor stop and went on (docs/inference.md "When MAP stops at the precision floor"). */
    floor_restarts?: number;
    start?: { files: string[]; shear_file: string | null; sources: number; of: number; moved: number; outside_support: number; shear: 'table' | 'catalog' };
    message?: string;
    grad_norm?: number;
    /** NUTS: max R-hat; VI: final ELBO loss. */
    convergence: number;
  };
  shear: {
    ra: number;
    dec: number;
    g1: number;
    g2: number;
    g1_err: number;
    g2_err: number;
    g1_err_conditional?: number;
    g2_err_conditional?: number;
    /** Marginal covariance of (g1, g2), 2×2. */
    covariance?: [[number, number], [number, number]];
    laplace_ok?: boolean;
    laplace_message?: string;
    /** OBJECT_IDs left out of the Laplace error propagation (their block not PD at the MAP). */
    laplace_dropped_sources?: string[];
    /**
     * Shear part of the Newton step −H⁻¹∇(−log p) at the MAP (docs/inference.md "How converged is
     * the MAP"): how far the quadratic model puts the mode from the reported shear.
     */
    laplace_newton_step_g?: [number, number];
    /** The inferred ellipticity dispersion (gal.priors.ellipticity.infer_sigma): σ_e, its EM history. */
    population?: { sigma_e: number; sigma_e_history: number[]; settled: boolean; sigma_range: [number, number] };
    /** The MAP's step along the exact shear–shape degeneracy (docs/inference.md): taken or not, the shear step, the log-prior gain. */
    shear_along_shapes?: { applied: boolean; step_g: [number, number]; gain_log_prior: number; message: string };
    /** What g1/g2 are: the Laplace-marginal mode (inference.map.shear_estimator, the default), the MAP, or the VI / NUTS posterior mean. */
    estimator?: 'laplace_marginal' | 'map' | 'posterior_mean';
    /** The Laplace-marginal shear step from the MAP (inference.map.shear_estimator: laplace_marginal); map_g is the MAP's shear, g1/g2 the reported one. */
    laplace_marginal?: {
      applied: boolean; map_g: [number, number]; step_g: [number, number]; grad_c: [number, number]; delta: [number, number]; evaluations: number; message: string;
      /** The overlap components (OBJECT_IDs) with the largest |∇C| and their ∇C: which galaxies move the shear. */
      largest?: Array<{ object_ids: string[]; grad_c: [number, number] }>;
    };
    /** The Newton polish from the MAP (inference.map.newton_polish): taken or not, and why. */
    newton_polish?: { applied: boolean; step_g: [number, number]; next_step_g: [number, number] | null; message: string };
  };
  /** VI / NUTS: sampler diagnostics and the MAP + Laplace estimate they started from. */
  posterior?: {
    chains: number;
    draws: number;
    rhat_g1: number;
    rhat_g2: number;
    max_rhat: number;
    max_rhat_param: string;
    ess_bulk_g1: number;
    ess_bulk_g2: number;
    ess_tail_g1: number;
    ess_tail_g2: number;
    divergences: number;
    step_sizes: number[];
    mean_tree_depth: number;
    max_depth_hits: number;
    sampler_ms: number;
    ms_per_ess_g1: number;
    init_scale_fallbacks: number;
    map?: { g1: number; g2: number; g1_err: number; g2_err: number };
  };
  sources: { core: number; extended: number; dropped: number; dropped_reasons?: Record<string, number> };
  /**
   * Goodness of fit per quadrant at the estimate: χ² = Σ ((obs − model)/rms)² over the modelled area
   * (pixels under at least one modelled stamp) that enters the likelihood, in float64.
   */
  quadrant_chi2?: Array<{
    name: string;
    n_pixels: number;
    chi2: number;
    chi2_per_pixel: number;
    /** Modelled-area pixels removed from the likelihood only by the unmodelled-object mask. */
    masked_unmodelled: number;
    /** Pixels of the whole quadrant carrying the unmodelled-object bit. */
    masked_unmodelled_all?: number;
  }>;
  /** PSF samples per detector pixel and alias orders folded into the stamps (docs/forward-model.md "Aliasing"). */
  render?: { psf_oversampling: number; alias_orders: number };
  /** The memory plan the run followed (engine/plan, docs/plan.md): choices, bytes by kind, budgets, re-plans. */
  plan?: Record<string, unknown>;
  /** Masking of unmodelled catalog objects (config `masking`; docs/config.md). */
  unmodelled?: {
    mode: 'mask' | 'model' | 'none';
    /** The in-memory FLG bit of the mask (0x40000000). */
    flag_bit: number;
    /** Objects listed in the manifest; null: the manifest has no list (older prepare). */
    listed: number | null;
    /** Listed objects whose disc holds at least one quadrant pixel. */
    masked: number;
    masked_by_cut: Record<string, number>;
    /** Listed objects modelled as shear-blind nuisance sources (masking.unmodelled: model), and per reason. */
    modelled?: number;
    modelled_by_cut?: Record<string, number>;
    /** Of those, the point-like ones modelled as point sources (masking.point_like: model). */
    modelled_point_like?: number;
    /** Modelled sources whose centre pixel is inside an unmodelled object's disc. */
    covered_source_centres: number;
    /** Their OBJECT_IDs when fitted shear-blind (masking.covered_centres: shear_blind). */
    shear_blind?: string[];
  };
  n_quadrants: number;
  warnings: string[];
  /** File names of the four products. */
  products: { shear: string; params: string; diagnostics: string; metadata: string };
}

const num = () => z.custom<number>((v) => typeof v === 'number', { message: 'expected a number' });
const int = () => z.number().int();

/** Schema used when reading metadata back (extra fields are allowed, for newer writers). */
export const SubtileMetadataSchema = z.looseObject({
  format: z.literal(METADATA_FORMAT),
  version: z.literal(METADATA_VERSION),
  tile_id: int().min(0),
  sub_tile_row: int().min(0),
  sub_tile_col: int().min(0),
  created: z.string(),
  software: z.looseObject({ name: z.string(), version: z.string() }),
  inputs: z.looseObject({
    manifest: z.string(),
    config: z.string(),
    config_hash: z.string().optional(),
    fit_settings_hash: z.string().optional(),
    quadrants: z.array(
      z.looseObject({
        id: z.string(),
        file: z.string(),
        sci_hdu: z.string(),
        rms_hdu: z.string(),
        flg_hdu: z.string(),
        psf_file: z.string().nullable().optional(),
        psf_hdu: z.string().nullable().optional(),
        bkg_file: z.string().nullable().optional(),
        bkg_hdu: z.string().nullable().optional(),
      }),
    ),
    catalogs: z.array(z.looseObject({ file: z.string(), hdu: z.union([z.string(), int()]) })),
  }),
  adapter: z.looseObject({ label: z.string(), backend: z.string(), feature_level: z.string() }),
  runtime: z.looseObject({ name: z.string(), version: z.string() }),
  method: z.enum(['map', 'vi', 'nuts']),
  timings_ms: z.looseObject({ load: num(), build: num(), inference: num(), laplace: num(), write: num(), total: num() }),
  inference: z.looseObject({ iterations: int(), final_loss: num(), converged: z.boolean(), reason: z.string(), convergence: num() }),
  shear: z.looseObject({ ra: num(), dec: num(), g1: num(), g2: num(), g1_err: num(), g2_err: num() }),
  sources: z.looseObject({ core: int().min(0), extended: int().min(0), dropped: int().min(0) }),
  quadrant_chi2: z
    .array(z.looseObject({ name: z.string(), n_pixels: int().min(0), chi2: num(), chi2_per_pixel: num(), masked_unmodelled: int().min(0) }))
    .optional(),
  render: z.looseObject({ psf_oversampling: int().min(1), alias_orders: int().min(0) }).optional(),
  unmodelled: z
    .looseObject({ mode: z.enum(['mask', 'model', 'none']), flag_bit: int(), listed: int().min(0).nullable(), masked: int().min(0), covered_source_centres: int().min(0) })
    .optional(),
  n_quadrants: int().min(0),
  warnings: z.array(z.string()),
  products: z.looseObject({ shear: z.string(), params: z.string(), diagnostics: z.string(), metadata: z.string() }),
});

/** Drops undefined values (YAML cannot hold them) recursively. */
function clean(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(clean);
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = clean(x);
    return out;
  }
  return v;
}

/** YAML text of the metadata (NaN written as .nan, ±Infinity as ±.inf). */
export function metadataYaml(meta: SubtileMetadata): string {
  checkSubtileId(meta.tile_id, meta.sub_tile_row, meta.sub_tile_col);
  const head = '# SHINE sub-tile metadata (docs/outputs.md). Written last: marks the sub-tile outputs complete.\n';
  return head + stringify(clean(meta), { lineWidth: 0 });
}

/** Parses and validates metadata YAML; throws ShineError naming the field (and `file`, if given). */
export function parseMetadataYaml(text: string, file?: string): SubtileMetadata {
  const doc = parseDocument(text);
  if (doc.errors.length) throw new ShineError(`invalid YAML: ${doc.errors[0].message}`, { file });
  const r = SubtileMetadataSchema.safeParse(doc.toJS());
  if (!r.success) {
    const first = r.error.issues[0];
    throw new ShineError(`invalid sub-tile metadata: ${first.message}`, { file, field: first.path.join('.') || undefined });
  }
  return r.data as unknown as SubtileMetadata;
}

/** Problems with metadata text (empty: valid and naming `expected`). */
export function checkMetadataText(text: string, expected?: SubtileId): string[] {
  let m: SubtileMetadata;
  try {
    m = parseMetadataYaml(text);
  } catch (e) {
    return [(e as Error).message];
  }
  if (expected && (String(m.tile_id) !== String(expected.tileId) || m.sub_tile_row !== expected.row || m.sub_tile_col !== expected.col)) {
    return [`names tile ${m.tile_id} sub-tile (${m.sub_tile_row}, ${m.sub_tile_col}), expected tile ${expected.tileId} sub-tile (${expected.row}, ${expected.col})`];
  }
  return [];
}

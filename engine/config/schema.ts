/**
 * The SHINE configuration file (one YAML document), as a zod schema: the sections of SHINE's
 * EuclidInferenceConfig (data, sources, gal, inference, stamps, background, output), the MER tile
 * geometry (tile), the `distributed` section of SHINE's distributed design (docs/architecture.md), the `device` section and the
 * optional `truth` section written by `shine simulate`.
 *
 * Every object is strict (unknown fields are errors) and every field has SHINE's default, so an
 * empty file is a valid configuration; the inputs a command needs are checked when it runs.
 * docs/config.md documents every field. Runtime-agnostic (no file access here).
 */
import { z } from 'zod';

// ---------------------------------------------------------------------------------------------
// building blocks

const finite = () => z.number().refine(Number.isFinite, { message: 'expected a finite number' });
const positive = () => z.number().positive();

/** A bit mask: a non-negative integer, or a string '0x…' / decimal. */
const bitMask = () =>
  z.preprocess(
    (v) => {
      if (typeof v === 'string') {
        const s = v.trim();
        if (/^0x[0-9a-f]+$/i.test(s)) return Number.parseInt(s.slice(2), 16);
        if (/^\d+$/.test(s)) return Number(s);
      }
      return v;
    },
    z.number().int().min(0).max(2 ** 53 - 1),
  );

/** One path or a list of paths (or glob patterns) → a list. */
const pathList = () => z.preprocess((v) => (typeof v === 'string' ? [v] : v === null ? [] : v), z.array(z.string().min(1)));

const optionalPath = () => z.string().min(1).nullable();

// ---------------------------------------------------------------------------------------------
// priors (docs/config.md `gal.priors`; SHINE's in docs/architecture.md "The forward model")

const normalPrior = z.strictObject({ type: z.literal('normal'), mean: finite().default(0), sigma: positive() });
const uniformPrior = z
  .strictObject({ type: z.literal('uniform'), low: finite(), high: finite() })
  .refine((p) => p.low < p.high, { message: 'expected low < high', path: ['high'] });
const fixedPrior = z.strictObject({ type: z.literal('fixed'), value: finite() });
const lognormalPrior = z.strictObject({
  type: z.literal('lognormal'),
  /** Median of the distribution: 'catalog' (the source's catalog value) or a positive number. */
  center: z.union([z.literal('catalog'), positive()]).default('catalog'),
  /** Standard deviation of the natural log. */
  sigma: positive(),
});
/**
 * Ellipticity only: p(e) ∝ (1 − |e|²)² exp(−|e|²/2σ²) on the unit disc (Bernstein & Armstrong
 * 2014); it vanishes at |e| = 1, where the distortion → shear map is singular (docs/inference.md).
 */
const ba14Prior = z
  .strictObject({
    type: z.literal('ba14'),
    sigma: positive(),
    /**
     * Infer σ from the sub-tile's own sources (empirical Bayes; engine/infer/population.ts,
     * docs/inference.md "An inferred ellipticity dispersion"): `sigma` is then the starting value.
     */
    infer_sigma: z.boolean().optional(),
    /** Range of the inferred σ (default [0.05, 0.6]). */
    sigma_range: z.tuple([positive(), positive()]).optional(),
  })
  .refine((p) => !p.sigma_range || p.sigma_range[0] < p.sigma_range[1], { message: 'sigma_range: expected [low, high] with low < high', path: ['sigma_range'] });
const fixedCatalogPrior = z.strictObject({ type: z.literal('fixed'), value: z.union([z.literal('catalog'), positive()]).default('catalog') });

const PRIOR_TYPES = ['normal', 'lognormal', 'uniform', 'fixed'] as const;
const SIGNED_TYPES = ['normal', 'uniform', 'fixed'] as const;
const ELLIPTICITY_TYPES = ['ba14', 'normal', 'uniform', 'fixed'] as const;

/** A prior on a positive catalog-centred quantity (flux, hlr). */
function positivePrior() {
  return z.discriminatedUnion(
    'type',
    [normalPrior, lognormalPrior, uniformPrior, fixedCatalogPrior],
    { error: (iss) => priorTypeError(iss.input, PRIOR_TYPES) },
  );
}

/** A prior on a signed quantity (shear, ellipticity, offset). */
function signedPrior() {
  return z.discriminatedUnion('type', [normalPrior, uniformPrior, fixedPrior], {
    error: (iss) => priorTypeError(iss.input, SIGNED_TYPES),
  });
}

/** A prior on the intrinsic ellipticity components. */
function ellipticityPrior() {
  return z.discriminatedUnion('type', [ba14Prior, normalPrior, uniformPrior, fixedPrior], {
    error: (iss) => priorTypeError(iss.input, ELLIPTICITY_TYPES),
  });
}

function priorTypeError(input: unknown, allowed: readonly string[]): string {
  if (!input || typeof input !== 'object' || Array.isArray(input)) return 'expected a prior: { type: …, … }';
  const t = (input as { type?: unknown }).type;
  if (t === undefined) return `missing prior type (one of ${allowed.join(', ')})`;
  return `expected prior type one of ${allowed.join(', ')}, got ${JSON.stringify(t)}`;
}

/** Offsets are in arcsec; keys may carry an `_arcsec` suffix (mean_arcsec, sigma_arcsec, …). */
function offsetPrior() {
  return z.preprocess((v) => {
    if (!v || typeof v !== 'object' || Array.isArray(v)) return v;
    const out: Record<string, unknown> = {};
    for (const [k, val] of Object.entries(v as Record<string, unknown>)) {
      const m = /^(mean|sigma|low|high|value)_arcsec$/.exec(k);
      const key = m ? m[1] : k;
      if (key in out) {
        // both 'sigma' and 'sigma_arcsec': keep the suffixed name so the strict check reports it
        out[k] = val;
        continue;
      }
      out[key] = val;
    }
    return out;
  }, signedPrior());
}

/**
 * The default priors are the project's shear estimator (docs/inference.md, "The shear
 * estimator"): a flat shear prior, so that G1/G2 are not shrunk towards 0, and the ba14
 * ellipticity prior. SHINE's priors (shear normal(0, 0.05), ellipticity normal(0, 0.3)) stay
 * available by configuration (docs/config.md).
 */
export const PriorsSchema = z.strictObject({
  /** Each reduced-shear component g1, g2 (per sub-tile). */
  shear: signedPrior().default({ type: 'uniform', low: -0.5, high: 0.5 }),
  /** Flux F (ADU); lognormal centred on the catalog flux converted to ADU. */
  flux: positivePrior().default({ type: 'lognormal', center: 'catalog', sigma: 0.5 }),
  /** Half-light radius h (arcsec); lognormal centred on the catalog hlr. */
  hlr: positivePrior().default({ type: 'lognormal', center: 'catalog', sigma: 0.3 }),
  /** Each intrinsic distortion component e1, e2. */
  ellipticity: ellipticityPrior().default({ type: 'ba14', sigma: 0.3 }),
  /**
   * Largest |e| of a source's (and a bulge's) intrinsic distortion: the ellipticities live in the
   * disc |e| < ellipticity_max (axis ratio ≥ 0.071 at 0.99). 1 allows the whole unit disc, where a
   * source pulled towards a line reaches the float32 renderer's singularity (docs/inference.md).
   */
  ellipticity_max: z.number().gt(0).lte(1).default(0.99),
  /** Each position offset dx, dy on the sky (arcsec). */
  offset: offsetPrior().default({ type: 'normal', mean: 0, sigma: 0.05 }),
  /** Spergel index of a free-ν profile (default uniform −0.6 … 4; engine/infer/priors.ts PROFILE_DEFAULT_PRIORS). */
  nu: signedPrior().optional(),
  /** Bulge + disk: bulge-to-total flux ratio (default uniform 0 … 1). */
  bulge_fraction: signedPrior().optional(),
  /** Bulge + disk: bulge half-light radius (arcsec; default lognormal σ 0.5 centred on the start, ½ the catalog hlr). */
  bulge_hlr: positivePrior().optional(),
  /** Bulge + disk: each bulge distortion component (default normal 0, 0.3). */
  bulge_ellipticity: ellipticityPrior().optional(),
});

// ---------------------------------------------------------------------------------------------
// sections

export const DataSchema = z.strictObject({
  /** VIS calibrated frames (DET files, all quadrants of one exposure each): paths or globs. */
  exposures: pathList().default([]),
  /** VIS background maps (BKG files), matched to the exposures by observation/dither id. */
  backgrounds: pathList().default([]),
  /** PSF grid products, one per exposure (HDU per quadrant), matched like the BKG files. */
  psf: pathList().default([]),
  /** MER final catalog(s): the tile's, plus neighbours' for sub-tiles at the tile edge. */
  mer_catalog: pathList().default([]),
  /** HDU of the catalog table (name or index); null: the first binary table. */
  mer_catalog_hdu: z.union([z.string().min(1), z.number().int().min(0)]).nullable().default(null),
  /** Tile index FITS table with columns TILE_ID, RA, DEC (degrees). */
  tile_index: optionalPath().default(null),
  /** Native pixel scale (arcsec/pixel), used to size stamps. */
  pixel_scale: positive().default(0.1),
  /** FLG bits whose pixels are masked (default 0x1, the INVALID bit, as SHINE). */
  bad_pixel_mask: bitMask().default(0x1),
  /**
   * PSF samples per detector pixel of the PSF stamps; null (default): each PSF HDU's `PSFOVERS`
   * header key, 1 when absent. Set it for products that do not carry the key.
   */
  psf_oversampling: z.number().int().min(1).nullable().default(null),
});

export const TileSchema = z.strictObject({
  /** Side of the MER tile core (arcmin), a square on the tangent plane at the tile centre. */
  core_arcmin: positive().default(30),
  /** Side of the MER tile extended area (arcmin); null: core_arcmin + 2 (MER's 1′ border). */
  extended_arcmin: positive().nullable().default(null),
  /** Tile centre [ra, dec] (deg) when distributed.tile_source is 'custom'. */
  center: z.tuple([finite(), z.number().min(-90).max(90)]).nullable().default(null),
  /** Written by `shine simulate`: the [row, col] sub-tile it imaged (null: all). Informational. */
  simulated_sub_tile: z.tuple([z.number().int().min(0), z.number().int().min(0)]).nullable().default(null),
});

export const SourcesSchema = z.strictObject({
  /** Keep FLUX_DETECTION_TOTAL / FLUXERR_DETECTION_TOTAL ≥ snr_min (null: no cut). */
  snr_min: positive().nullable().default(10),
  /** Keep SNR < snr_max (null: no upper bound). */
  snr_max: positive().nullable().default(null),
  /** Keep VIS_DET = 1 (1/0 accepted for true/false). */
  vis_det: z.preprocess((v) => (v === 1 ? true : v === 0 ? false : v), z.boolean()).default(true),
  exclude_spurious: z.boolean().default(true),
  exclude_point_like: z.boolean().default(true),
  exclude_deblended: z.boolean().default(false),
  /** Drop sources with DET_QUALITY_FLAG & mask ≠ 0 (0: no cut). */
  det_quality_mask: bitMask().default(0x78c),
  /** hlr (arcsec) = 0.1 × SEMIMAJOR_AXIS clipped to this range. */
  hlr_clip_arcsec: z
    .tuple([positive(), positive()])
    .refine((r) => r[0] < r[1], { message: 'expected [min, max] with min < max' })
    .default([0.05, 5]),
  /** Largest number of sources per sub-tile (null: no cap, the default). */
  max_per_sub_tile: z.number().int().positive().nullable().default(null),
});

/**
 * Galaxy light profile: `{type: exponential}` (also the bare string `exponential`),
 * `{type: spergel, nu: ν}` with GalSim's −0.85 ≤ ν ≤ 4 (engine/model/spergel.ts; 0.5 = exponential),
 * with `free: true` ν fitted per source from `nu` (prior gal.priors.nu), or `{type: bulge_disk,
 * bulge_nu: ν_b}` (engine/model/bulge-disk.ts: exponential disk + Spergel bulge, default ν_b = −0.6).
 */
const GalProfileSchema = z.preprocess(
  (v) => (v === 'exponential' || v === 'spergel' || v === 'bulge_disk' ? { type: v } : v),
  z.discriminatedUnion(
    'type',
    [
      z.strictObject({ type: z.literal('exponential') }),
      z.strictObject({ type: z.literal('spergel'), nu: z.number().min(-0.85).max(4), free: z.boolean().optional() }),
      z.strictObject({ type: z.literal('bulge_disk'), bulge_nu: z.number().min(-0.85).max(4).default(-0.6) }),
    ],
    {
      error: (iss) => {
        const t = iss.input && typeof iss.input === 'object' ? (iss.input as { type?: unknown }).type : iss.input;
        return `expected profile type exponential, spergel or bulge_disk, got ${JSON.stringify(t)}`;
      },
    },
  ),
);

export const GalSchema = z.strictObject({
  /** Galaxy light profile (every source of a run). */
  profile: GalProfileSchema.default({ type: 'exponential' }),
  priors: PriorsSchema.prefault({}),
});

export const MapSchema = z.strictObject({
  optimizer: z.enum(['lbfgs', 'adam']).default('lbfgs'),
  /** Iteration cap (an L-BFGS iteration or an Adam step). */
  max_iterations: z.number().int().positive().default(1000),
  /** Adam learning rate (SHINE: 0.01). */
  lr: positive().default(0.01),
  /** Converged when the relative change of −log posterior over an iteration is below this. */
  tolerance: positive().default(1e-11),
  /** Converged when the largest |gradient| component (in the optimiser's unconstrained parameters) is below this. */
  grad_tolerance: positive().default(1e-2),
  /** L-BFGS memory (pairs kept). */
  lbfgs_history: z.number().int().positive().default(10),
  /**
   * Times a 'precision-floor' stop of L-BFGS is tested by rebuilding its preconditioner where it
   * stopped and going on (engine/infer/map.ts MapPreconditionOptions.floorRestarts); 0 is the
   * behaviour before 2026-12-07 (the stop stands).
   */
  floor_restarts: z.number().int().min(0).max(10).default(3),
  /**
   * …each only after a stretch of at least this many L-BFGS iterations on one preconditioner
   * (MapPreconditionOptions.floorRestartAfter); 0 is the first restart rule (any length).
   */
  floor_restart_after: z.number().int().min(0).default(100),
  /** Shear errors from the Laplace approximation marginalised over all source parameters. */
  laplace: z.boolean().default(true),
  /**
   * After the Laplace Hessian: one Newton step from the MAP, kept when it converges (the L-BFGS
   * stop at the loss's float32 floor can leave the shear off the mode along the soft shear–shape
   * direction; docs/inference.md "How converged is the MAP").
   */
  newton_polish: z.boolean().default(true),
  /**
   * Most Newton steps of the polish (engine/infer/laplace.ts newtonPolish): 1 is the rule before
   * 2026-12-07 (one step, kept when the next is below a quarter of it); more iterate with the same
   * Hessian while each step is at most 0.9 of the previous one (a chord iteration), until the next
   * is below 0.1 % of the smaller shear error.
   */
  newton_polish_steps: z.number().int().min(1).max(50).default(10),
  /**
   * The reported shear: `map`, the MAP's (the profile posterior's mode), or `laplace_marginal`,
   * the mode of the Laplace approximation of the shear's marginal posterior, one Newton step from
   * the MAP (engine/infer/laplace-marginal.ts: removes the profile estimate's O(1/S/N²) bias at
   * about four times the Laplace errors' cost; docs/inference.md "The Laplace-marginal shear").
   * Needs `laplace: true`.
   */
  shear_estimator: z.enum(['map', 'laplace_marginal']).default('laplace_marginal'),
  /** laplace_marginal's central-difference shear step; default (absent): each component's Laplace error σ_g, clamped to [0.002, 0.05]. */
  laplace_marginal_delta: positive().optional(),
  /**
   * A uniform shear prior enters the Laplace shear precision as 12/(high − low)², its variance's
   * inverse (engine/infer/laplace.ts `boxShearPrior`): the errors of a sub-tile the data barely
   * constrain are the prior box's width instead of missing. `false`: the bare Laplace precision.
   */
  laplace_box_prior: z.boolean().default(true),
});

export const ViSchema = z.strictObject({
  steps: z.number().int().positive().default(2000),
  /** Adam step size, in units of each parameter's initial guide width (docs/inference.md). */
  lr: positive().default(0.01),
  /** Posterior draws kept after fitting the guide. */
  num_samples: z.number().int().positive().default(1000),
  guide: z.enum(['mean_field', 'low_rank']).default('mean_field'),
  /** Rank of the low-rank guide's covariance factor (null: round(√d), NumPyro's default). */
  rank: z.number().int().positive().nullable().default(null),
  /** ELBO draws per step, evaluated together on the GPU (NumPyro's Trace_ELBO: 1). */
  particles: z.number().int().positive().default(1),
  /** 'map': start from the MAP and the Laplace widths; 'catalog': from the catalog values (SHINE's start), width 0.1 (NumPyro's init scale). */
  init: z.enum(['map', 'catalog']).default('map'),
});

export const NutsSchema = z.strictObject({
  warmup: z.number().int().min(0).default(500),
  samples: z.number().int().positive().default(1000),
  chains: z.number().int().positive().default(1),
  max_tree_depth: z.number().int().positive().default(10),
  target_accept: z.number().gt(0).lt(1).default(0.8),
  dense_mass: z.boolean().default(false),
  /** 'map': chains start at the MAP jittered by the Laplace widths, mass matrix from them; 'catalog': at the catalog values jittered by 0.1 in z, unit mass matrix. */
  init: z.enum(['map', 'catalog']).default('map'),
});

export const InferenceSchema = z.strictObject({
  method: z.enum(['map', 'vi', 'nuts']).default('map'),
  /** Seed of every random draw (initialisation jitter, VI, NUTS). */
  seed: z.number().int().min(0).default(0),
  map: MapSchema.prefault({}),
  vi: ViSchema.prefault({}),
  nuts: NutsSchema.prefault({}),
});

/** The pipeline's FFT grid factor (`stamps.fft_factor`): see StampsSchema. */
export const DEFAULT_FFT_FACTOR = 1.5;

export const StampsSchema = z.strictObject({
  /** Stamp sizes (pixels), ascending: each source gets the smallest with 2(3 h_pix + 10.5) ≤ size. */
  tiers: z
    .array(z.number().int().positive())
    .min(1)
    .refine((t) => t.every((v, i) => i === 0 || v > t[i - 1]), { message: 'expected strictly ascending stamp sizes' })
    .refine((t) => t.every((v) => v % 2 === 0), { message: 'expected even stamp sizes' })
    .default([64, 128, 256]),
  /**
   * FFT size = fft_factor × stamp size: 2^k or 1.5·2^k (1, 1.5, 2, 3, 4, …; docs/bench.md "FFT size").
   * Default 1.5 since 2026-12-07 (was 2): the same shear to 10⁻⁵ per fit on alias-complete and
   * native-PSF calibration rings, at ~0.56 of the grid's area (docs/bench.md "FFT size").
   */
  fft_factor: z
    .number()
    .refine((v) => v >= 1 && [1, 1.5].some((b) => Number.isInteger(Math.log2(v / b))), { message: 'expected a power of two or 1.5 × one (1, 1.5, 2, 3, 4, …)' })
    .default(DEFAULT_FFT_FACTOR),
  /** The PSF stamps already include the pixel response (no extra pixel convolution). */
  psf_includes_pixel: z.boolean().default(true),
  /**
   * Alias orders N folded into every stamp spectrum (docs/forward-model.md "Aliasing"): 'auto' =
   * every order the PSF model's band reaches, ceil((q − 1)/2) for PSF stamps oversampled q times
   * (0 for native stamps); an integer caps it (0 = band-limited at the detector's Nyquist frequency).
   */
  alias_orders: z.union([z.literal('auto'), z.number().int().min(0)]).default('auto'),
  /** With alias_orders auto: orders whose cells hold less than this fraction of the PSF's P̂(0) are left out. */
  alias_tolerance: z.number().gt(0).lt(1).default(1e-7),
});

export const BackgroundSchema = z.strictObject({
  /** 'median': sigma-clipped median of the quadrant's SCI pixels; 'bkg_file': the BKG map. */
  method: z.enum(['median', 'bkg_file']).default('median'),
  /** Clip at median ± sigma · std. */
  sigma: positive().default(3),
  max_iters: z.number().int().positive().default(10),
});

export const OutputSchema = z.strictObject({
  dir: z.string().min(1).default('results/euclid'),
  save_diagnostics: z.boolean().default(true),
  save_model_images: z.boolean().default(false),
  /** Re-run sub-tiles whose outputs already exist. */
  overwrite: z.boolean().default(false),
});

/** Sub-tile rows and columns are stored as int8 in the products (0..127): at most 128 per side. */
export const MAX_SUB_TILE_GRID = 128;
const gridSide = () =>
  z.number().int().positive().max(MAX_SUB_TILE_GRID, { error: `expected at most ${MAX_SUB_TILE_GRID} (sub-tile rows and columns are stored as int8, 0..127)` });

export const DistributedSchema = z.strictObject({
  /** 'mer_catalog': tile centres from data.tile_index; 'custom': tile.center. */
  tile_source: z.enum(['mer_catalog', 'custom']).default('mer_catalog'),
  /** The tile to prepare: a MER tile id, 'all' (every tile of the index) or null (give --tile-id). */
  tile_id: z.union([z.number().int().min(0), z.literal('all')]).nullable().default(null),
  /** [rows, cols] of the sub-tile grid; rows along Dec (North), columns along RA (East). */
  sub_tile_grid: z.tuple([gridSide(), gridSide()]).default([4, 4]),
  /** Margin around each sub-tile core (arcmin). */
  sub_tile_margin: z.number().nonnegative().default(1.0),
  /** Root folder searched (recursively) for DET/BKG/PSF files when data.* lists are empty. */
  exposure_archive: optionalPath().default(null),
  /** Root folder searched for the tile's MER catalog when data.mer_catalog is empty. */
  catalog_archive: optionalPath().default(null),
  /** Folder for the manifests (scratch_dir/tile_<id>/). */
  scratch_dir: z.string().min(1).default('scratch'),
  /** Same as output.dir (null: take output.dir). */
  output_dir: optionalPath().default(null),
  output_format: z.literal('fits', { error: 'expected "fits" (hdf5 output is not supported)' }).default('fits'),
  /** Same as output.save_diagnostics (null: take it). */
  save_diagnostics: z.boolean().nullable().default(null),
  /** Same as output.save_model_images (null: take it). */
  save_model_images: z.boolean().nullable().default(null),
});

/**
 * Masking of catalog objects that are in the pixels but not modelled (docs/config.md, "masking"):
 * objects the selection removed (stars, low S/N, spurious, flagged), selected objects beyond the
 * extended area whose light reaches the modelled stamps, and sources over sources.max_per_sub_tile.
 * Their footprint (a disc) is OR-ed into the quadrant's in-memory flags as UNMODELLED_FLAG_BIT and
 * left out of the likelihood like a flagged pixel.
 */
/** The selection cuts whose removed objects `masking.unmodelled: model` may model as nuisance galaxies. */
export const MODELLABLE_CUTS = ['snr', 'vis_det', 'spurious', 'det_quality', 'snr_max', 'deblended', 'max_per_sub_tile', 'outside_extended_area'] as const;

export const MaskingSchema = z.strictObject({
  /**
   * 'mask': mask every unmodelled object's footprint; 'model': model the extended ones (cut in
   * `model_cuts`, not point-like, catalog flux and size known, centre under a modelled stamp) as
   * shear-blind nuisance galaxies and mask the rest (stars, flagged objects); 'none': leave their
   * pixels in the likelihood.
   */
  unmodelled: z.enum(['mask', 'model', 'none']).default('mask'),
  /**
   * With unmodelled: model, point-like objects (stars): 'mask' (default) keeps masking them;
   * 'model' models those fainter than halo_mag_max (every one when it is null) as point sources —
   * the PSF with free flux and position (docs/inference.md "Point sources") —, whether the
   * selection removed them as point-like or by a cut in `model_cuts`; brighter ones stay masked
   * with their halo.
   */
  point_like: z.enum(['mask', 'model']).default('mask'),
  /** With unmodelled: model, the cuts (manifest `unmodelled.cut`) whose objects are modelled rather than masked. */
  model_cuts: z.array(z.enum(MODELLABLE_CUTS)).default(['snr', 'snr_max', 'deblended', 'max_per_sub_tile', 'outside_extended_area']),
  /** Footprint radius = footprint_scale × SEMIMAJOR_AXIS (× data.pixel_scale: arcsec). */
  footprint_scale: positive().default(3),
  /** Smallest footprint radius (arcsec). */
  footprint_min_arcsec: z.number().nonnegative().default(0.7),
  /** Point-like objects brighter than this AB magnitude also get a halo (null: no halo). */
  halo_mag_max: finite().nullable().default(22),
  /** Halo radius (arcsec) of a point-like object of magnitude halo_mag_ref; it grows as 10^(−0.2 (mag − halo_mag_ref)). */
  halo_radius_arcsec: positive().default(1.5),
  halo_mag_ref: finite().default(20),
  /** Largest halo radius (arcsec). */
  halo_max_arcsec: positive().default(6),
  /**
   * A galaxy's disc (not a point-like object's) is widened until the flux its exponential profile
   * leaves outside it is fainter than this AB magnitude: the faint wings of bright unmodelled
   * galaxies are sheared with the scene and bias the neighbours' shear (docs/config.md "masking").
   * null: the footprint_scale rule alone.
   */
  wing_flux_mag: finite().nullable().default(null),
  /**
   * A modelled source whose centre lies inside an unmodelled object's mask keeps its light in the
   * model, but its core pixels are out of the likelihood, so its shape is hardly measured:
   * 'shear_blind' (default) renders it unsheared, as a nuisance that informs the shear not at all;
   * 'fit' treats it like any other source (docs/inference.md "Shear-blind sources").
   */
  covered_centres: z.enum(['shear_blind', 'fit']).default('shear_blind'),
});

export const DeviceSchema = z.strictObject({
  /** 'auto', a candidate name (vulkan, opengl, swiftshader, …) or an adapter description substring. */
  adapter: z.string().min(1).default('auto'),
  /**
   * GPU memory the engine may use (GiB); a scene needing more is refused before allocating. null:
   * half the host memory on a software adapter, else 8 × the device's maxBufferSize (at least 4 GiB).
   */
  memory_budget_gb: z.number().positive().nullable().default(null),
  /**
   * Parameter sets per engine call for a MAP run's finite-difference columns, its preconditioner's
   * and its Laplace Hessian's (a replicated engine;
   * every result bit-identical to evaluating it alone, so the products do not change). 'auto': 8
   * on a hardware adapter, 1 on a software one (there batching measured slower). The plan halves
   * it until the scene fits the GPU budget.
   */
  laplace_replicas: z.union([z.literal('auto'), z.number().int().min(1).max(64)]).default('auto'),
});

/** Remote data (http/https URLs in data.*): the block cache and the request policy (docs/remote-data.md). */
export const RemoteSchema = z.strictObject({
  /** Keep fetched byte ranges in a local block cache (resumable); false: read straight from the server. */
  cache: z.boolean().default(true),
  /** Cache folder (null: $SHINE_CACHE_DIR, else ~/.cache/shine/remote); SHINE_CACHE_DIR overrides it. */
  cache_dir: optionalPath().default(null),
  /** Most HTTP requests in flight at once, across all remote files of a process. */
  concurrency: z.number().int().positive().default(8),
  /** Retries of a failed request (network error, timeout, 5xx, 429, cut body) after the first attempt. */
  retries: z.number().int().min(0).default(5),
  /** First retry delay (ms), doubled at each retry. */
  backoff_ms: z.number().nonnegative().default(500),
  /** A request is aborted (and retried) when the server sends nothing for this long (s; 0: never). */
  timeout_s: z.number().nonnegative().default(60),
  /** Cache block size (KiB). */
  block_kib: z.number().int().positive().default(64),
  /** Largest single ranged request (MiB); longer reads are split. */
  max_request_mib: z.number().positive().default(16),
  /** HTTP redirects followed: same_host (never https → http), any_host (never https → http), any. */
  redirects: z.enum(['same_host', 'any_host', 'any']).default('same_host'),
});

export const TruthSchema = z.strictObject({
  sources: optionalPath().default(null),
  shear: optionalPath().default(null),
});

export const ConfigSchema = z.strictObject({
  data: DataSchema.prefault({}),
  tile: TileSchema.prefault({}),
  sources: SourcesSchema.prefault({}),
  gal: GalSchema.prefault({}),
  inference: InferenceSchema.prefault({}),
  stamps: StampsSchema.prefault({}),
  background: BackgroundSchema.prefault({}),
  output: OutputSchema.prefault({}),
  distributed: DistributedSchema.prefault({}),
  device: DeviceSchema.prefault({}),
  truth: TruthSchema.prefault({}),
  remote: RemoteSchema.prefault({}),
  masking: MaskingSchema.prefault({}),
});

type Raw = z.output<typeof ConfigSchema>;

/** A validated configuration with every default filled and every path resolved. */
export type ShineConfig = Omit<Raw, 'distributed' | 'tile'> & {
  tile: Omit<Raw['tile'], 'extended_arcmin'> & { extended_arcmin: number };
  distributed: Omit<Raw['distributed'], 'output_dir' | 'save_diagnostics' | 'save_model_images'> & {
    output_dir: string;
    save_diagnostics: boolean;
    save_model_images: boolean;
  };
  /** The file the configuration came from ('' when parsed from text), and its folder. */
  source: { file: string; dir: string };
};

export type Prior = Raw['gal']['priors']['flux'] | Raw['gal']['priors']['shear'];
export type PriorName = keyof Raw['gal']['priors'];
export type MaskingConfig = Raw['masking'];

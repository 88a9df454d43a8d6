/**
 * Priors of the sub-tile model (SHINE defaults: docs/architecture.md "The forward model"; the config's: docs/config.md), in the constrained (physical) space.
 *
 *   g1, g2 ~ Normal(0, 0.05)           (|g| < 1)
 *   flux   ~ LogNormal(log F_cat, 0.5) (ADU, > 0)
 *   hlr    ~ LogNormal(log h_cat, 0.3) (arcsec, > 0)
 *   e1, e2 ~ Normal(0, 0.3)            (|e| < 1)
 *   dx, dy ~ Normal(0, 0.05″)
 *
 * The pipeline's default configuration (engine/config/schema.ts, docs/inference.md) differs: a
 * flat shear prior (uniform, so the reported shear is not shrunk towards 0) and the ellipticity
 * prior `ba14`, p(e) ∝ (1 − |e|²)² exp(−|e|²/2σ²) (Bernstein & Armstrong 2014), which vanishes
 * at |e| = 1 where the distortion → shear map is singular.
 *
 * Every parameter kind takes any PriorSpec; per-source centres come from the catalog
 * (F_cat, h_cat) when a lognormal's `mu` (or a normal's `mean` for flux/hlr) is left out.
 * Densities are normalised (the constants matter only for reporting).
 */
import { ShineError } from '../errors.ts';

export type PriorSpec =
  | { type: 'normal'; mean?: number; sigma: number }
  | { type: 'lognormal'; mu?: number; sigma: number }
  | { type: 'uniform'; low: number; high: number }
  | { type: 'ba14'; sigma: number }
  | { type: 'fixed'; value?: number };

export const PARAM_KINDS = ['g1', 'g2', 'flux', 'hlr', 'e1', 'e2', 'dx', 'dy'] as const;
export type ParamKind = (typeof PARAM_KINDS)[number];

export type PriorConfig = Record<ParamKind, PriorSpec>;

/** SHINE's defaults (docs/architecture.md "The forward model"). */
export const SHINE_DEFAULT_PRIORS: PriorConfig = {
  g1: { type: 'normal', mean: 0, sigma: 0.05 },
  g2: { type: 'normal', mean: 0, sigma: 0.05 },
  flux: { type: 'lognormal', sigma: 0.5 },
  hlr: { type: 'lognormal', sigma: 0.3 },
  e1: { type: 'normal', mean: 0, sigma: 0.3 },
  e2: { type: 'normal', mean: 0, sigma: 0.3 },
  dx: { type: 'normal', mean: 0, sigma: 0.05 },
  dy: { type: 'normal', mean: 0, sigma: 0.05 },
};

/** Merges a partial configuration over SHINE's defaults and validates every spec. */
export function resolvePriors(partial: Partial<PriorConfig> = {}): PriorConfig {
  const out = { ...SHINE_DEFAULT_PRIORS, ...partial } as PriorConfig;
  for (const k of PARAM_KINDS) validatePrior(k, out[k]);
  return out;
}

const LOG_SQRT_2PI = 0.5 * Math.log(2 * Math.PI);

function bad(kind: string, msg: string): never {
  throw new ShineError(`prior for ${kind}: ${msg}`, { field: `priors.${kind}` });
}

export function validatePrior(kind: ParamKind, p: PriorSpec): void {
  if (!p || typeof p !== 'object') bad(kind, 'missing prior specification');
  const positive = kind === 'flux' || kind === 'hlr';
  const disc = kind === 'g1' || kind === 'g2' || kind === 'e1' || kind === 'e2';
  switch (p.type) {
    case 'normal':
      if (!(p.sigma > 0) || !Number.isFinite(p.sigma)) bad(kind, `normal sigma = ${p.sigma} must be a positive finite number`);
      if (p.mean !== undefined && !Number.isFinite(p.mean)) bad(kind, `normal mean = ${p.mean} must be finite`);
      break;
    case 'lognormal':
      if (!positive) bad(kind, `a lognormal prior needs a positive parameter (flux or hlr), not ${kind}`);
      if (!(p.sigma > 0) || !Number.isFinite(p.sigma)) bad(kind, `lognormal sigma = ${p.sigma} must be a positive finite number`);
      if (p.mu !== undefined && !Number.isFinite(p.mu)) bad(kind, `lognormal mu = ${p.mu} must be finite`);
      break;
    case 'uniform':
      if (!Number.isFinite(p.low) || !Number.isFinite(p.high) || !(p.low < p.high)) bad(kind, `uniform needs finite low < high, got [${p.low}, ${p.high}]`);
      if (positive && p.low < 0) bad(kind, `uniform low = ${p.low} must be ≥ 0 (${kind} > 0)`);
      if (disc && (p.low <= -1 || p.high >= 1)) bad(kind, `uniform bounds [${p.low}, ${p.high}] must lie inside (−1, 1) (|${kind[0]}| < 1)`);
      break;
    case 'ba14':
      if (kind !== 'e1' && kind !== 'e2') bad(kind, `the ba14 prior is a prior on the ellipticity (e1, e2), not on ${kind}`);
      if (!(p.sigma > 0) || !Number.isFinite(p.sigma)) bad(kind, `ba14 sigma = ${p.sigma} must be a positive finite number`);
      break;
    case 'fixed':
      if (p.value !== undefined && !Number.isFinite(p.value)) bad(kind, `fixed value = ${p.value} must be finite`);
      break;
    default:
      bad(kind, `unknown prior type ${(p as { type: string }).type} (normal, lognormal, uniform, ba14, fixed)`);
  }
}

/** A prior for one scalar parameter, with its catalog-dependent centre resolved. */
export type ScalarPrior =
  | { type: 'normal'; mean: number; sigma: number }
  | { type: 'lognormal'; mu: number; sigma: number }
  | { type: 'uniform'; low: number; high: number }
  /** One component of a ba14 pair: carries exp(−x²/2σ²); the pair term is ba14Pair's. */
  | { type: 'ba14'; sigma: number };

/** Resolves a spec for one parameter instance; `catalogValue` is F_cat or h_cat (flux/hlr only). */
export function scalarPrior(kind: ParamKind, p: PriorSpec, catalogValue?: number): ScalarPrior | null {
  switch (p.type) {
    case 'fixed':
      return null;
    case 'uniform':
      return { type: 'uniform', low: p.low, high: p.high };
    case 'ba14':
      return { type: 'ba14', sigma: p.sigma };
    case 'normal': {
      let mean = p.mean;
      if (mean === undefined) mean = kind === 'flux' || kind === 'hlr' ? catalogValue : 0;
      if (mean === undefined || !Number.isFinite(mean)) bad(kind, 'normal mean not given and no catalog value to centre on');
      return { type: 'normal', mean, sigma: p.sigma };
    }
    case 'lognormal': {
      let mu = p.mu;
      if (mu === undefined) {
        if (!(catalogValue !== undefined && catalogValue > 0 && Number.isFinite(catalogValue))) {
          bad(kind, `lognormal mu not given and the catalog value ${catalogValue} is not a positive number`);
        }
        mu = Math.log(catalogValue);
      }
      return { type: 'lognormal', mu, sigma: p.sigma };
    }
  }
}

/** log p(x), d/dx, d²/dx² in the constrained space. −∞ outside the support. */
export function priorLogDensity(p: ScalarPrior, x: number): { value: number; d1: number; d2: number } {
  switch (p.type) {
    case 'normal': {
      const u = (x - p.mean) / p.sigma;
      return { value: -0.5 * u * u - Math.log(p.sigma) - LOG_SQRT_2PI, d1: -u / p.sigma, d2: -1 / (p.sigma * p.sigma) };
    }
    case 'lognormal': {
      if (!(x > 0)) return { value: -Infinity, d1: NaN, d2: NaN };
      const l = Math.log(x);
      const s2 = p.sigma * p.sigma;
      const u = (l - p.mu) / p.sigma;
      // log p = −u²/2 − log x − log σ − ½ log 2π;  f(l) with l = log x:
      // d/dx = (−(l − μ)/σ² − 1)/x;  d²/dx² = (−1/σ² + (l − μ)/σ² + 1)/x²
      return {
        value: -0.5 * u * u - l - Math.log(p.sigma) - LOG_SQRT_2PI,
        d1: (-(l - p.mu) / s2 - 1) / x,
        d2: (-1 / s2 + (l - p.mu) / s2 + 1) / (x * x),
      };
    }
    case 'uniform':
      if (!(x >= p.low && x <= p.high)) return { value: -Infinity, d1: NaN, d2: NaN };
      return { value: -Math.log(p.high - p.low), d1: 0, d2: 0 };
    case 'ba14': {
      // the Gaussian factor of one component; the (1 − |e|²)² factor and the normalisation are
      // the pair's (ba14Pair)
      const s2 = p.sigma * p.sigma;
      return { value: (-0.5 * x * x) / s2, d1: -x / s2, d2: -1 / s2 };
    }
  }
}

/**
 * log of the normalisation of p(e) ∝ (1 − |e|²)² exp(−|e|²/2σ²) over the unit disc:
 * Z = π ∫₀¹ (1 − u)² e^(−au) du = π (1/a − 2/a² + 2(1 − e^(−a))/a³), a = 1/(2σ²)
 * (u = |e|²). For large σ (small a) the series π (1/3 − a/12 + a²/60) avoids the cancellation.
 */
export function ba14LogNorm(sigma: number): number {
  const a = 1 / (2 * sigma * sigma);
  if (a < 1e-2) return Math.log(Math.PI * (1 / 3 - a / 12 + (a * a) / 60));
  return Math.log(Math.PI * (1 / a - 2 / (a * a) + (2 * -Math.expm1(-a)) / (a * a * a)));
}

/**
 * The pair part of the ba14 prior at (e1, e2): 2·log(1 − |e|²) − log Z, its gradient and its
 * Hessian [h11, h12, h22]. With the components' Gaussian factors (priorLogDensity) this is the
 * normalised log p(e1, e2). −∞ outside the unit disc.
 *   ∂/∂e_k = −4 e_k/(1 − q),  ∂²/∂e_k∂e_l = −4 δ_kl/(1 − q) − 8 e_k e_l/(1 − q)²,  q = |e|².
 */
export function ba14Pair(e1: number, e2: number, sigma: number): { value: number; grad: [number, number]; hess: [number, number, number] } {
  const w = 1 - e1 * e1 - e2 * e2;
  if (!(w > 0)) return { value: -Infinity, grad: [NaN, NaN], hess: [NaN, NaN, NaN] };
  const w2 = w * w;
  return {
    value: 2 * Math.log(w) - ba14LogNorm(sigma),
    grad: [(-4 * e1) / w, (-4 * e2) / w],
    hess: [-4 / w - (8 * e1 * e1) / w2, (-8 * e1 * e2) / w2, -4 / w - (8 * e2 * e2) / w2],
  };
}

// ---------------------------------------------------------------------------------------------
// Priors of the per-source parameters some galaxy profiles add (engine/model/profile-params.ts)

/** The profile parameters' priors (SceneParams.nu; bulge + disk: bulgeFrac, bulgeHlr, bulgeE1, bulgeE2). */
export type ProfilePriorConfig = Record<'nu' | 'bulgeFrac' | 'bulgeHlr' | 'bulgeE1' | 'bulgeE2', PriorSpec>;

/**
 * Defaults (docs/forward-model.md "Priors of the profile parameters"):
 *   ν       ~ Uniform(−0.6, 4): −0.6 the de Vaucouleurs-like end (cuspier profiles' transforms
 *             fall off too slowly for the stamp tiers), 4 GalSim's upper limit
 *   B/T     ~ Uniform(0, 1)
 *   h_bulge ~ LogNormal(log h_b,start, 0.5), centred on the starting value (½ the catalog hlr)
 *   bulge e ~ Normal(0, 0.3) per component
 */
export const PROFILE_DEFAULT_PRIORS: ProfilePriorConfig = {
  nu: { type: 'uniform', low: -0.6, high: 4 },
  bulgeFrac: { type: 'uniform', low: 0, high: 1 },
  bulgeHlr: { type: 'lognormal', sigma: 0.5 },
  bulgeE1: { type: 'normal', mean: 0, sigma: 0.3 },
  bulgeE2: { type: 'normal', mean: 0, sigma: 0.3 },
};

/** Merges over PROFILE_DEFAULT_PRIORS and validates (each kind's support: ν ∈ [−0.85, 4], B/T ∈ [0, 1], h_b > 0, |e_b| < 1). */
export function resolveProfilePriors(partial: Partial<ProfilePriorConfig> = {}): ProfilePriorConfig {
  const out = { ...PROFILE_DEFAULT_PRIORS, ...partial };
  for (const [kind, p] of Object.entries(out) as Array<[keyof ProfilePriorConfig, PriorSpec]>) {
    if (!p || typeof p !== 'object') bad(kind, 'missing prior specification');
    if (p.type === 'ba14' && kind !== 'bulgeE1' && kind !== 'bulgeE2') bad(kind, `the ba14 prior is a prior on an ellipticity, not on ${kind}`);
    if (p.type === 'lognormal' && kind !== 'bulgeHlr') bad(kind, `a lognormal prior needs a positive parameter (bulgeHlr), not ${kind}`);
    if ((p.type === 'normal' || p.type === 'lognormal' || p.type === 'ba14') && !(p.sigma > 0 && Number.isFinite(p.sigma))) bad(kind, `${p.type} sigma = ${p.sigma} must be a positive finite number`);
    if (p.type === 'uniform') {
      if (!(Number.isFinite(p.low) && Number.isFinite(p.high) && p.low < p.high)) bad(kind, `uniform needs finite low < high, got [${p.low}, ${p.high}]`);
      const [lo, hi] = kind === 'nu' ? [-0.85, 4] : kind === 'bulgeFrac' ? [0, 1] : kind === 'bulgeHlr' ? [0, Infinity] : [-1, 1];
      if (p.low < lo || p.high > hi) bad(kind, `uniform bounds [${p.low}, ${p.high}] must lie inside [${lo}, ${hi}]`);
    }
    if ((kind === 'nu' || kind === 'bulgeFrac') && p.type !== 'uniform' && p.type !== 'fixed') bad(kind, `${kind} needs a bounded prior: uniform (or fixed), got ${p.type}`);
  }
  return out;
}

/**
 * The posterior of a sub-tile: the GPU engine's Gaussian log-likelihood plus the priors, as a
 * function of
 *   - θ, the vector of free parameters in physical (constrained) units, or
 *   - z, the same parameters mapped to R^d by the bijections of transforms.ts (NumPyro style),
 *     with the log-Jacobian of the map added when `jacobian` is true (the density of z).
 *
 * Free-vector layout: the free ones of (g1, g2) first, then for each source in order the free
 * ones of (flux, hlr, e1, e2, dx, dy). Parameters whose prior is `fixed` are held at the prior's
 * `value` (when given) or at their initial value and are not in the vector; so are a point
 * source's hlr, (e1, e2) and profile parameters (SourceInfo.pointSource), at their initial values.
 */
import { SceneError, ShineError } from '../errors.ts';
import type { ShearEngine } from '../gpu/render/engine.ts';
import { cloneParams, PROFILE_PARAM_NAMES, SOURCE_PARAM_NAMES, type ProfileParamName, type SceneGradient, type SceneParams, type SourceParamName } from '../scene/types.ts';
import { ba14Pair, priorLogDensity, resolvePriors, resolveProfilePriors, scalarPrior, type ParamKind, type PriorConfig, type ProfilePriorConfig, type ScalarPrior } from './priors.ts';
import {
  discForward,
  discInverse,
  discLogJac,
  discPullback,
  scalarDerivative,
  scalarForward,
  scalarInSupport,
  scalarInverse,
  scalarLogJac,
  type ScalarTransform,
} from './transforms.ts';

/** One free parameter. */
export interface FreeEntry {
  kind: ParamKind | ProfileParamName;
  /** Source index, −1 for g1/g2. */
  source: number;
  prior: ScalarPrior;
}

/**
 * A prior term on an (e1, e2) pair that does not factor into its components (ba14): free indices
 * (−1 for a fixed component, whose value is `fixed`).
 */
export interface PairPrior {
  i1: number;
  i2: number;
  fixed: [number, number];
  sigma: number;
}

export type TransformBlock =
  | { kind: 'scalar'; index: number; t: ScalarTransform }
  | { kind: 'disc'; i1: number; i2: number; radius: number };

/** Catalog centres of the lognormal priors (F_cat in ADU, h_cat in arcsec), one per source. */
export interface CatalogCentres {
  flux: ArrayLike<number>;
  hlr: ArrayLike<number>;
}

/**
 * Priors with those of the profile parameters (PROFILE_DEFAULT_PRIORS where not given): used for
 * the sources' SceneParams.nu / bulge arrays when the initial parameters carry them.
 */
/**
 * Largest intrinsic distortion |e| of a source (and of a bulge) by default: axis ratio
 * q = √((1 − e)/(1 + e)) ≥ 0.071. No galaxy is thinner, and the float32 renderer's shear matrix
 * 1/√(1 − |g|²) is singular once |e| rounds to 1 (docs/inference.md "When MAP stalls").
 */
export const DEFAULT_ELLIPTICITY_MAX = 0.99;

/** The source parameters a point source (SourceInfo.pointSource) holds fixed. */
const POINT_FIXED = new Set<SourceParamName>(['hlr', 'e1', 'e2']);

export type PosteriorPriors = Partial<PriorConfig> & {
  profile?: Partial<ProfilePriorConfig>;
  /** Ellipticities live in the disc |e| < ellipticityMax (default DEFAULT_ELLIPTICITY_MAX; 1: the unit disc). */
  ellipticityMax?: number;
};

/**
 * Mapping between SceneParams, the constrained free vector θ and the unconstrained vector z.
 * Pure CPU code (no GPU).
 */
export class ParamSpace {
  readonly nSources: number;
  readonly entries: FreeEntry[] = [];
  readonly blocks: TransformBlock[] = [];
  /** Non-separable ellipticity prior terms (ba14), one per source with a free component. */
  readonly pairPriors: PairPrior[] = [];
  /** Values of every parameter; the fixed ones stay at these values. */
  readonly base: SceneParams;
  /** Free index of (g1, g2), −1 when fixed. */
  readonly gIndex: [number, number] = [-1, -1];
  /** Per source, per SOURCE_PARAM_NAMES entry: free index or −1. */
  readonly sourceIndex: Int32Array;
  /** Number of free source parameters of an ordinary source (a point source has flux, dx, dy only). */
  readonly perSource: number;
  readonly priors: PriorConfig;
  /**
   * The profile parameters of the sources (those of PROFILE_PARAM_NAMES present in the initial
   * parameters: ['nu'] for a free-ν Spergel, the 4 bulge ones for bulge + disk), after the six
   * standard ones of each source in the free vector; their free indices per source in
   * `extraIndex[s · profileNames.length + j]` (−1 when fixed).
   */
  readonly profileNames: ProfileParamName[];
  readonly extraIndex: Int32Array;
  readonly profilePriors: ProfilePriorConfig;
  /** Radius of the source (and bulge) ellipticity discs. */
  readonly ellipticityMax: number;
  /** Per source, 1 when it is shear-blind (SourceInfo.shearBlind: rendered unsheared). */
  readonly shearBlind: Uint8Array;
  /**
   * Per source, 1 when it is a point source (SourceInfo.pointSource): only its flux and offsets
   * are free; its hlr, (e1, e2) and profile parameters stay at their values in `init`.
   */
  readonly pointSource: Uint8Array;

  constructor(priorsIn: PosteriorPriors, init: SceneParams, catalog?: CatalogCentres, shearBlind?: ArrayLike<boolean>, pointSource?: ArrayLike<boolean>) {
    const { profile: profilePriorsIn, ellipticityMax, ...standardPriors } = priorsIn;
    const priors = resolvePriors(standardPriors);
    const eMax = ellipticityMax ?? DEFAULT_ELLIPTICITY_MAX;
    if (!(eMax > 0 && eMax <= 1)) throw new ShineError(`ellipticity_max = ${ellipticityMax} must be in (0, 1]`, { field: 'priors.ellipticity_max' });
    this.ellipticityMax = eMax;
    this.profilePriors = resolveProfilePriors(profilePriorsIn);
    this.profileNames = PROFILE_PARAM_NAMES.filter((k) => init[k] !== undefined);
    this.priors = priors;
    const n = init.flux.length;
    this.nSources = n;
    if (shearBlind && shearBlind.length !== n) throw new ShineError(`shear-blind flags for ${shearBlind.length} sources, expected ${n}`, { field: 'shearBlind' });
    this.shearBlind = Uint8Array.from({ length: n }, (_, s) => (shearBlind?.[s] ? 1 : 0));
    if (pointSource && pointSource.length !== n) throw new ShineError(`point-source flags for ${pointSource.length} sources, expected ${n}`, { field: 'pointSource' });
    this.pointSource = Uint8Array.from({ length: n }, (_, s) => (pointSource?.[s] ? 1 : 0));
    const cat = catalog ?? { flux: init.flux, hlr: init.hlr };
    if (cat.flux.length !== n || cat.hlr.length !== n) {
      throw new ShineError(`catalog centres have ${cat.flux.length}/${cat.hlr.length} values, expected one per source (${n})`, { field: 'catalog' });
    }
    const base = cloneParams(init);
    for (const k of ['g1', 'g2'] as const) {
      const p = priors[k];
      if (p.type === 'fixed' && p.value !== undefined) base[k] = p.value;
    }
    for (const k of SOURCE_PARAM_NAMES) {
      const p = priors[k];
      if (p.type === 'fixed' && p.value !== undefined) base[k].fill(p.value);
    }
    for (const k of this.profileNames) {
      const p = this.profilePriors[k];
      if (p.type === 'fixed' && p.value !== undefined) base[k]!.fill(p.value);
    }
    // a point source keeps its size and shape (the PSF alone) whatever the priors fix the others at
    for (let s = 0; s < n; s++) if (this.pointSource[s]) for (const k of POINT_FIXED) base[k][s] = init[k][s];
    this.base = base;
    this.sourceIndex = new Int32Array(n * 6).fill(-1);
    this.extraIndex = new Int32Array(n * this.profileNames.length).fill(-1);
    this.perSource = SOURCE_PARAM_NAMES.filter((k) => priors[k].type !== 'fixed').length;

    const add = (kind: ParamKind, source: number, catalogValue?: number): number => {
      const pr = scalarPrior(kind, priors[kind], catalogValue);
      if (!pr) return -1;
      this.entries.push({ kind, source, prior: pr });
      return this.entries.length - 1;
    };
    this.gIndex[0] = add('g1', -1);
    this.gIndex[1] = add('g2', -1);
    this.discBlocks('g1', 'g2', this.gIndex[0], this.gIndex[1], base.g1, base.g2, 1);
    for (let s = 0; s < n; s++) {
      // a point source is the PSF alone: its size and shape are not parameters
      const idx = SOURCE_PARAM_NAMES.map((k) => (this.pointSource[s] && POINT_FIXED.has(k) ? -1 : add(k, s, k === 'flux' ? cat.flux[s] : k === 'hlr' ? cat.hlr[s] : undefined)));
      idx.forEach((v, j) => (this.sourceIndex[6 * s + j] = v));
      for (const j of [0, 1]) {
        const i = idx[j];
        if (i < 0) continue;
        const pr = this.entries[i].prior;
        this.blocks.push({ kind: 'scalar', index: i, t: pr.type === 'uniform' ? { kind: 'affineSigmoid', low: pr.low, high: pr.high } : { kind: 'exp' } });
      }
      this.discBlocks(`e1[${s}]`, `e2[${s}]`, idx[2], idx[3], base.e1[s], base.e2[s], eMax);
      for (const j of [4, 5]) {
        const i = idx[j];
        if (i < 0) continue;
        const pr = this.entries[i].prior;
        this.blocks.push({ kind: 'scalar', index: i, t: pr.type === 'uniform' ? { kind: 'affineSigmoid', low: pr.low, high: pr.high } : { kind: 'identity' } });
      }
      this.addProfileParams(s, base);
    }
  }

  /**
   * Source s's profile parameters: ν and B/T (bounded: affine sigmoid), the bulge hlr (lognormal:
   * exp; centred on its starting value when `mu` is not given), the bulge (e1, e2) (a disc block,
   * as the disk's).
   */
  private addProfileParams(s: number, base: SceneParams): void {
    const names = this.profileNames;
    const idx = names.map((k) => {
      const spec = this.profilePriors[k];
      if (spec.type === 'fixed' || this.pointSource[s]) return -1;
      const pr = scalarPrior(k as unknown as ParamKind, spec, base[k]![s]);
      if (!pr) return -1;
      this.entries.push({ kind: k, source: s, prior: pr });
      return this.entries.length - 1;
    });
    idx.forEach((v, j) => (this.extraIndex[names.length * s + j] = v));
    names.forEach((k, j) => {
      const i = idx[j];
      if (i < 0 || k === 'bulgeE1' || k === 'bulgeE2') return;
      const pr = this.entries[i].prior;
      this.blocks.push({ kind: 'scalar', index: i, t: pr.type === 'uniform' ? { kind: 'affineSigmoid', low: pr.low, high: pr.high } : pr.type === 'lognormal' ? { kind: 'exp' } : { kind: 'identity' } });
    });
    const j1 = names.indexOf('bulgeE1');
    if (j1 >= 0) this.discBlocks(`bulgeE1[${s}]`, `bulgeE2[${s}]`, idx[j1], idx[names.indexOf('bulgeE2')], base.bulgeE1![s], base.bulgeE2![s], this.ellipticityMax);
  }

  /** A pair (g1, g2) or (e1, e2) in the disc of radius `radius`. */
  private discBlocks(n1: string, n2: string, i1: number, i2: number, v1: number, v2: number, radius: number): void {
    if (i1 < 0 && i2 < 0) return;
    const err = (msg: string) => {
      throw new ShineError(`priors of (${n1}, ${n2}): ${msg}`, { field: `priors.${n1.replace(/\[.*$/, '')}` });
    };
    if (i1 >= 0 && i2 >= 0) {
      const p1 = this.entries[i1].prior;
      const p2 = this.entries[i2].prior;
      if ((p1.type === 'normal' && p2.type === 'normal') || (p1.type === 'ba14' && p2.type === 'ba14')) {
        this.blocks.push({ kind: 'disc', i1, i2, radius });
        if (p1.type === 'ba14') this.pairPriors.push({ i1, i2, fixed: [v1, v2], sigma: p1.sigma });
      } else if (p1.type === 'uniform' && p2.type === 'uniform') {
        const m = Math.max(p1.low ** 2, p1.high ** 2) + Math.max(p2.low ** 2, p2.high ** 2);
        if (!(m < radius * radius)) err(`the uniform box [${p1.low}, ${p1.high}] × [${p2.low}, ${p2.high}] must lie inside the disc |·| < ${radius} (its corners reach |·| = ${Math.sqrt(m).toFixed(4)})`);
        this.blocks.push({ kind: 'scalar', index: i1, t: { kind: 'affineSigmoid', low: p1.low, high: p1.high } });
        this.blocks.push({ kind: 'scalar', index: i2, t: { kind: 'affineSigmoid', low: p2.low, high: p2.high } });
      } else {
        err(`both components need the same prior type (normal, ba14 or uniform), got ${p1.type} and ${p2.type}`);
      }
      return;
    }
    // one component free, the other fixed at c: the free one lives in (−R, R), R = √(radius² − c²)
    const i = i1 >= 0 ? i1 : i2;
    const c = i1 >= 0 ? v2 : v1;
    if (!(Math.abs(c) < radius)) err(`the fixed component is ${c}; it must satisfy |c| < ${radius}`);
    const R = Math.sqrt(radius * radius - c * c);
    const p = this.entries[i].prior;
    if (p.type === 'uniform') {
      const lo = Math.max(p.low, -R);
      const hi = Math.min(p.high, R);
      if (!(lo < hi)) err(`the uniform range [${p.low}, ${p.high}] does not meet (−${R}, ${R}) allowed by the fixed component ${c}`);
      this.blocks.push({ kind: 'scalar', index: i, t: { kind: 'affineSigmoid', low: lo, high: hi } });
    } else {
      this.blocks.push({ kind: 'scalar', index: i, t: { kind: 'scaledTanh', radius: R } });
      if (p.type === 'ba14') this.pairPriors.push({ i1, i2, fixed: [v1, v2], sigma: p.sigma });
    }
  }

  get dim(): number {
    return this.entries.length;
  }

  /** Constrained free vector θ from SceneParams. */
  pack(p: SceneParams): Float64Array {
    const th = new Float64Array(this.dim);
    this.entries.forEach((e, i) => {
      th[i] = e.source < 0 ? p[e.kind as 'g1' | 'g2'] : p[e.kind as SourceParamName | ProfileParamName]![e.source];
    });
    return th;
  }

  /** A gradient in SceneParams layout packed into the free order. */
  packGradient(g: SceneGradient): Float64Array {
    return this.pack(g);
  }

  /** SceneParams from the constrained free vector (fixed parameters from `base`). */
  unpack(theta: ArrayLike<number>): SceneParams {
    const p = cloneParams(this.base);
    this.entries.forEach((e, i) => {
      if (e.source < 0) p[e.kind as 'g1' | 'g2'] = theta[i];
      else p[e.kind as SourceParamName | ProfileParamName]![e.source] = theta[i];
    });
    return p;
  }

  /** θ(z). */
  forward(z: ArrayLike<number>): Float64Array {
    const th = new Float64Array(this.dim);
    for (const b of this.blocks) {
      if (b.kind === 'scalar') th[b.index] = scalarForward(b.t, z[b.index]);
      else {
        const [a, c] = discForward(z[b.i1], z[b.i2]);
        th[b.i1] = b.radius * a;
        th[b.i2] = b.radius * c;
      }
    }
    return th;
  }

  /**
   * Which values of `p` lie outside the support of their transforms — a start `inverse` would
   * refuse (a warm start from an earlier fit under other priors: engine/subtile/start.ts): the
   * sources they belong to, and whether the shear is among them.
   */
  outsideSupport(p: SceneParams): { sources: Set<number>; shear: boolean } {
    const theta = this.pack(p);
    const out = { sources: new Set<number>(), shear: false };
    const mark = (i: number) => {
      const s = this.entries[i].source;
      if (s < 0) out.shear = true;
      else out.sources.add(s);
    };
    for (const b of this.blocks) {
      if (b.kind === 'scalar') {
        if (!scalarInSupport(b.t, theta[b.index])) mark(b.index);
      } else if (!(Math.hypot(theta[b.i1], theta[b.i2]) < b.radius)) mark(b.i1);
    }
    return out;
  }

  /** z(θ); throws a ShineError naming the parameter when θ is outside the support. */
  inverse(theta: ArrayLike<number>): Float64Array {
    const z = new Float64Array(this.dim);
    for (const b of this.blocks) {
      if (b.kind === 'scalar') {
        if (!scalarInSupport(b.t, theta[b.index])) this.outside(b.index, theta[b.index], b.t);
        z[b.index] = scalarInverse(b.t, theta[b.index]);
      } else {
        const r = Math.hypot(theta[b.i1], theta[b.i2]);
        if (!(r < b.radius)) this.outside(b.i1, r, null, b.radius);
        [z[b.i1], z[b.i2]] = discInverse(theta[b.i1] / b.radius, theta[b.i2] / b.radius);
      }
    }
    return z;
  }

  private outside(i: number, v: number, t: ScalarTransform | null, radius = 1): never {
    const e = this.entries[i];
    const name = e.source < 0 ? e.kind : `${e.kind}[${e.source}]`;
    const what = t === null ? `the modulus must be < ${radius}` : t.kind === 'exp' ? 'it must be > 0' : t.kind === 'affineSigmoid' ? `it must lie in (${t.low}, ${t.high})` : t.kind === 'scaledTanh' ? `it must lie in (−${t.radius}, ${t.radius})` : '';
    throw new ShineError(`initial value of ${name} = ${v} is outside the prior's support: ${what}`, { field: name });
  }

  /** log|dθ/dz| and its gradient with respect to z. */
  logJacobian(z: ArrayLike<number>): { value: number; grad: Float64Array } {
    const grad = new Float64Array(this.dim);
    let value = 0;
    for (const b of this.blocks) {
      if (b.kind === 'scalar') {
        const r = scalarLogJac(b.t, z[b.index]);
        value += r.value;
        grad[b.index] = r.grad;
      } else {
        const r = discLogJac(z[b.i1], z[b.i2]);
        value += r.value + 2 * Math.log(b.radius);
        grad[b.i1] = r.grad[0];
        grad[b.i2] = r.grad[1];
      }
    }
    return { value, grad };
  }

  /** dL/dz from dL/dθ (chain rule through the bijections). */
  pullback(z: ArrayLike<number>, gTheta: ArrayLike<number>): Float64Array {
    const g = new Float64Array(this.dim);
    for (const b of this.blocks) {
      if (b.kind === 'scalar') g[b.index] = gTheta[b.index] * scalarDerivative(b.t, z[b.index]);
      else [g[b.i1], g[b.i2]] = discPullback(z[b.i1], z[b.i2], b.radius * gTheta[b.i1], b.radius * gTheta[b.i2]);
    }
    return g;
  }

  /**
   * log prior at θ with its gradient and Hessian: the diagonal, plus the off-diagonal terms of
   * the non-separable (e1, e2) pair priors (`hessPairs`: free indices i < j and ∂²/∂θi∂θj).
   */
  logPrior(theta: ArrayLike<number>): { value: number; grad: Float64Array; hessDiag: Float64Array; hessPairs: Array<[number, number, number]> } {
    const grad = new Float64Array(this.dim);
    const hessDiag = new Float64Array(this.dim);
    const hessPairs: Array<[number, number, number]> = [];
    let value = 0;
    this.entries.forEach((e, i) => {
      const r = priorLogDensity(e.prior, theta[i]);
      value += r.value;
      grad[i] = r.d1;
      hessDiag[i] = r.d2;
    });
    for (const pp of this.pairPriors) {
      const e1 = pp.i1 >= 0 ? theta[pp.i1] : pp.fixed[0];
      const e2 = pp.i2 >= 0 ? theta[pp.i2] : pp.fixed[1];
      const r = ba14Pair(e1, e2, pp.sigma);
      value += r.value;
      if (pp.i1 >= 0) {
        grad[pp.i1] += r.grad[0];
        hessDiag[pp.i1] += r.hess[0];
      }
      if (pp.i2 >= 0) {
        grad[pp.i2] += r.grad[1];
        hessDiag[pp.i2] += r.hess[2];
      }
      if (pp.i1 >= 0 && pp.i2 >= 0) hessPairs.push([Math.min(pp.i1, pp.i2), Math.max(pp.i1, pp.i2), r.hess[1]]);
    }
    return { value, grad, hessDiag, hessPairs };
  }

  /** Name of free parameter i, e.g. "g1", "flux[3]". */
  name(i: number): string {
    const e = this.entries[i];
    return e.source < 0 ? e.kind : `${e.kind}[${e.source}]`;
  }
}

export interface DensityValue {
  value: number;
  grad: Float64Array;
  /** Why the density is −∞ there (outside a prior's support, a rejected scene, a non-finite sum). */
  rejected?: string;
}

export interface PosteriorOptions {
  catalog?: CatalogCentres;
  /** Shear-blind sources (default: the engine's ExposureSet flags, SourceInfo.shearBlind). */
  shearBlind?: ArrayLike<boolean>;
  /** Add log|dθ/dz| in `logDensity(z)` (the density of z; default true). */
  jacobian?: boolean;
}

/** Anything with the engine's evaluate(): a ShearEngine, or a stand-in in tests. */
export interface LikelihoodEvaluator {
  evaluate(params: SceneParams): Promise<{ logL: number; gradient: SceneGradient }>;
  /** Optional: up to `replicas` parameter sets in one call (ShearEngine with replicas > 1). */
  evaluateMany?(list: readonly SceneParams[]): Promise<Array<{ logL: number; gradient: SceneGradient }>>;
  readonly replicas?: number;
}

export class Posterior {
  readonly space: ParamSpace;
  readonly jacobian: boolean;
  /** Number of likelihood (engine) evaluations so far. */
  evaluations = 0;
  private readonly engine: LikelihoodEvaluator;

  constructor(engine: LikelihoodEvaluator | ShearEngine, priors: Partial<PriorConfig>, init: SceneParams, opts: PosteriorOptions = {}) {
    this.engine = engine;
    const set = (engine as { set?: { sources: ReadonlyArray<{ shearBlind?: boolean; pointSource?: boolean }> } }).set;
    this.space = new ParamSpace(priors, init, opts.catalog, opts.shearBlind ?? set?.sources.map((s) => !!s.shearBlind), set?.sources.map((s) => !!s.pointSource));
    this.jacobian = opts.jacobian ?? true;
  }

  get dim(): number {
    return this.space.dim;
  }

  /**
   * log p(θ | data) up to a constant (log-likelihood + log prior) and its gradient with respect
   * to the constrained free vector θ. Outside the support (or for parameters the engine
   * rejects) the value is −∞ and the gradient NaN.
   */
  async logDensityConstrained(theta: ArrayLike<number>): Promise<DensityValue & { logL: number; logPrior: number }> {
    const pr = this.space.logPrior(theta);
    if (!Number.isFinite(pr.value)) return { value: -Infinity, grad: new Float64Array(this.dim).fill(NaN), logL: NaN, logPrior: pr.value, rejected: `log prior ${pr.value}` };
    let ev;
    try {
      this.evaluations++;
      ev = await this.engine.evaluate(this.space.unpack(theta));
    } catch (e) {
      if (e instanceof SceneError) return { value: -Infinity, grad: new Float64Array(this.dim).fill(NaN), logL: NaN, logPrior: pr.value, rejected: e.message };
      throw e;
    }
    return this.combine(ev, pr, theta);
  }

  /** log density of z (with log|J| when `jacobian`), and its gradient with respect to z. */
  async logDensity(z: ArrayLike<number>): Promise<DensityValue & { logL: number; logPrior: number }> {
    const theta = this.space.forward(z);
    return this.toZ(z, await this.logDensityConstrained(theta));
  }

  /**
   * `logDensity` of several points, evaluated `replicas` at a time in one engine call when the
   * engine offers `evaluateMany` (chains / particles as a GPU batch dimension), else one by one.
   * Each value equals `logDensity` of that point.
   */
  async logDensityBatch(zs: readonly ArrayLike<number>[]): Promise<Array<DensityValue & { logL: number; logPrior: number }>> {
    const k = this.engine.evaluateMany && (this.engine.replicas ?? 1) > 1 ? this.engine.replicas! : 1;
    if (k === 1) {
      const out = [];
      for (const z of zs) out.push(await this.logDensity(z));
      return out;
    }
    const out: Array<DensityValue & { logL: number; logPrior: number }> = new Array(zs.length);
    const thetas = zs.map((z) => this.space.forward(z));
    const priors = thetas.map((t) => this.space.logPrior(t));
    // points inside the prior's support go to the engine, k at a time
    const todo = zs.map((_, i) => i).filter((i) => Number.isFinite(priors[i].value));
    for (const i of zs.keys()) if (!Number.isFinite(priors[i].value)) out[i] = { value: -Infinity, grad: new Float64Array(this.dim).fill(NaN), logL: NaN, logPrior: priors[i].value };
    for (let a = 0; a < todo.length; a += k) {
      const idx = todo.slice(a, a + k);
      let evs: Array<{ logL: number; gradient: SceneGradient }> | null = null;
      try {
        this.evaluations += idx.length;
        evs = await this.engine.evaluateMany!(idx.map((i) => this.space.unpack(thetas[i])));
      } catch (e) {
        if (!(e instanceof SceneError)) throw e;
        this.evaluations -= idx.length; // one of them is invalid: evaluate one by one
      }
      for (let j = 0; j < idx.length; j++) {
        const i = idx[j];
        out[i] = evs ? this.toZ(zs[i], this.combine(evs[j], priors[i], thetas[i])) : await this.logDensity(zs[i]);
      }
    }
    return out;
  }

  /** Likelihood + prior in θ (−∞ and NaN gradient when anything is not finite). */
  private combine(ev: { logL: number; gradient: SceneGradient }, pr: { value: number; grad: Float64Array }, theta?: ArrayLike<number>): DensityValue & { logL: number; logPrior: number } {
    const gl = this.space.packGradient(ev.gradient);
    const grad = new Float64Array(this.dim);
    const bad: number[] = [];
    for (let i = 0; i < grad.length; i++) {
      grad[i] = gl[i] + pr.grad[i];
      if (!Number.isFinite(grad[i])) bad.push(i);
    }
    if (!Number.isFinite(ev.logL) || bad.length) {
      // say where: the parameters whose gradient is not finite, with their values
      const at = bad.slice(0, 4).map((i) => `${this.space.name(i)} = ${theta ? theta[i].toPrecision(6) : '?'}`);
      const rejected = `log-likelihood ${ev.logL}; ${bad.length} non-finite gradient component(s)${at.length ? `: ${at.join(', ')}${bad.length > 4 ? ', …' : ''}` : ''}`;
      return { value: -Infinity, grad: grad.fill(NaN), logL: ev.logL, logPrior: pr.value, rejected };
    }
    return { value: ev.logL + pr.value, grad, logL: ev.logL, logPrior: pr.value };
  }

  /** θ-space density → z-space density (chain rule, plus log|J| when `jacobian`). */
  private toZ(z: ArrayLike<number>, c: DensityValue & { logL: number; logPrior: number }): DensityValue & { logL: number; logPrior: number } {
    if (!Number.isFinite(c.value)) return c;
    const grad = this.space.pullback(z, c.grad);
    let value = c.value;
    if (this.jacobian) {
      const lj = this.space.logJacobian(z);
      value += lj.value;
      for (let i = 0; i < grad.length; i++) grad[i] += lj.grad[i];
    }
    return { value, grad, logL: c.logL, logPrior: c.logPrior };
  }
}

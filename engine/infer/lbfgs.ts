/**
 * Minimisers in float64 on the CPU for objectives whose gradient comes from the GPU:
 * L-BFGS with a safeguarded line search (strong Wolfe, plus Hager–Zhang's approximate-Wolfe
 * acceptance for when the loss itself is only known to float32 accuracy near the optimum).
 */

export interface ObjectiveValue {
  value: number;
  grad: Float64Array;
  /** Why the value is not finite there (for messages). */
  rejected?: string;
}

/** f(x) and ∇f(x); a non-finite value means "x is not allowed" (the line search shrinks). */
export type Objective = (x: Float64Array) => Promise<ObjectiveValue> | ObjectiveValue;

export type StopReason =
  | 'gradient-tolerance'
  | 'loss-tolerance'
  | 'max-iterations'
  | 'max-evaluations'
  | 'line-search-failed'
  | 'stalled'
  | 'precision-floor'
  | 'non-finite-start'
  | 'aborted';

export interface OptimizeResult {
  x: Float64Array;
  value: number;
  grad: Float64Array;
  iterations: number;
  evaluations: number;
  converged: boolean;
  reason: StopReason;
  /** Human-readable explanation of the stop. */
  message: string;
  /** Loss after each iteration (index 0: the starting point). */
  history: number[];
}

export interface IterationInfo {
  iteration: number;
  value: number;
  gradNorm: number;
  step: number;
  evaluations: number;
}

export interface LineSearchTrial {
  iteration: number;
  /** Step length along p, and f, the directional derivative gᵀp at it; f0, d0 at α = 0. */
  alpha: number;
  f: number;
  d: number;
  f0: number;
  d0: number;
  /** max |p| (the largest parameter change per unit α). */
  pMax: number;
  accepted: boolean;
  /** Why f is not finite at this trial (the objective's reason). */
  rejected?: string;
}

export interface LbfgsOptions {
  /** Number of (s, y) pairs kept (default 10). */
  history: number;
  /** Stop when max |∇f| ≤ gtol (default 1e-5). */
  gtol: number;
  /** Stop when |Δf| ≤ ftol · max(|f|, 1) over `ftolWindow` consecutive iterations (default 1e-10). */
  ftol: number;
  ftolWindow: number;
  /**
   * Stall criterion: stop when the best loss has improved by less than tol = max(stallAbs,
   * stallRel·|f|) over `stallWindow` iterations. The loss from the GPU carries float32 rounding,
   * and near the optimum that noise exceeds the remaining decrease — but a stall is called
   * converged ('precision-floor') only when the quasi-Newton model agrees: the predicted decrease
   * of a full step, ½·gᵀHg (half the Newton decrement), is itself below tol. Otherwise the stop is
   * 'stalled', not converged: the loss is not decreasing although the gradient and curvature say
   * it should (an ill-conditioned or non-smooth point). 0 disables.
   */
  stallWindow: number;
  stallAbs: number;
  stallRel: number;
  maxIterations: number;
  /** Cap on objective evaluations (default 20 × maxIterations). */
  maxEvaluations: number;
  /** Armijo constant c1 (default 1e-4) and curvature constant c2 (default 0.9). */
  c1: number;
  c2: number;
  /** Trials per line search before giving up (default 30). */
  maxLineSearch: number;
  /** Largest step length on the first iteration, in units of x (default 1: ‖αp‖ ≤ firstStep). */
  firstStep: number;
  /**
   * Relative accuracy of f: a trial is also accepted when f rose by at most fNoise·|f| and the
   * approximate Wolfe conditions hold on the directional derivative (default 1e-7).
   */
  fNoise: number;
  /**
   * Initial inverse Hessian H₀ (an SPD linear map v ↦ M⁻¹v, e.g. a block-curvature
   * preconditioner). Without it H₀ = γI. With it H₀ = γM⁻¹, γ = sᵀy / yᵀM⁻¹y from the newest
   * pair, and the first direction is −M⁻¹g (a quasi-Newton step).
   */
  precondition?: (v: Float64Array) => Float64Array;
  /**
   * Limits the search direction in place before each line search (e.g. each source's block to a
   * trust radius: a few parameters with a badly estimated curvature otherwise make the whole step
   * tiny, or absurd). Kept only while the limited direction still descends.
   */
  limitDirection?: (p: Float64Array) => void;
  onIteration?: (info: IterationInfo) => void | boolean;
  /** Every line-search trial (for diagnosing a stall: is the loss consistent with its gradient?). */
  onTrial?: (t: LineSearchTrial) => void;
  /** Names of the parameters (for messages: which one carries the largest gradient). */
  names?: (i: number) => string;
}

export const DEFAULT_LBFGS: LbfgsOptions = {
  history: 10,
  gtol: 1e-5,
  ftol: 1e-10,
  ftolWindow: 3,
  stallWindow: 0,
  stallAbs: 1e-3,
  stallRel: 1e-8,
  maxIterations: 1000,
  maxEvaluations: 20000,
  c1: 1e-4,
  c2: 0.9,
  maxLineSearch: 30,
  firstStep: 1,
  fNoise: 1e-7,
};

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

function infNorm(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

/** Minimiser of the cubic through (a, fa, da), (b, fb, db), safeguarded into the interval. */
function cubicMin(a: number, fa: number, da: number, b: number, fb: number, db: number): number {
  const d1 = da + db - 3 * ((fa - fb) / (a - b));
  const disc = d1 * d1 - da * db;
  if (disc >= 0 && Number.isFinite(disc)) {
    const d2 = Math.sign(b - a) * Math.sqrt(disc);
    const t = b - (b - a) * ((db + d2 - d1) / (db - da + 2 * d2));
    const lo = Math.min(a, b);
    const hi = Math.max(a, b);
    const w = hi - lo;
    if (Number.isFinite(t) && t > lo + 0.1 * w && t < hi - 0.1 * w) return t;
  }
  return (a + b) / 2;
}

interface Trial {
  alpha: number;
  f: number;
  d: number;
  x: Float64Array;
  g: Float64Array;
  rejected?: string;
}

/**
 * Line search along p from (x0, f0, g0): returns an accepted trial or null.
 * Non-finite f (an invalid step) counts as "too far": the bracket shrinks.
 */
async function lineSearch(
  fn: Objective,
  x0: Float64Array,
  f0: number,
  g0: Float64Array,
  p: Float64Array,
  alpha0: number,
  o: LbfgsOptions,
  count: () => void,
  iteration = 0,
): Promise<Trial | null> {
  const d0 = dot(g0, p);
  const pMax = infNorm(p);
  const n = x0.length;
  const tol = o.fNoise * Math.abs(f0);
  const evalAt = async (alpha: number): Promise<Trial> => {
    const x = new Float64Array(n);
    for (let i = 0; i < n; i++) x[i] = x0[i] + alpha * p[i];
    count();
    const r = await fn(x);
    const ok = Number.isFinite(r.value) && r.grad.every(Number.isFinite);
    return { alpha, f: ok ? r.value : Infinity, d: ok ? dot(r.grad, p) : NaN, x, g: r.grad, ...(ok ? {} : { rejected: r.rejected ?? `f = ${r.value}` }) };
  };
  const armijo = (t: Trial) => t.f <= f0 + o.c1 * t.alpha * d0;
  const strongWolfe = (t: Trial) => armijo(t) && Math.abs(t.d) <= o.c2 * Math.abs(d0);
  // approximate Wolfe (Hager & Zhang 2005): f within its noise level, derivative conditions
  const approxWolfe = (t: Trial) => Number.isFinite(t.f) && t.f <= f0 + tol && (2 * o.c1 - 1) * d0 >= t.d && t.d >= o.c2 * d0;
  const accept = (t: Trial) => Number.isFinite(t.f) && (strongWolfe(t) || approxWolfe(t));

  let lo: Trial = { alpha: 0, f: f0, d: d0, x: x0, g: g0 };
  let hi: Trial | null = null;
  let alpha = alpha0;
  let best: Trial | null = null;
  for (let k = 0; k < o.maxLineSearch; k++) {
    const t = await evalAt(alpha);
    if (Number.isFinite(t.f) && armijo(t) && (!best || t.f < best.f)) best = t;
    o.onTrial?.({ iteration, alpha, f: t.f, d: t.d, f0, d0, pMax, accepted: accept(t), ...(t.rejected ? { rejected: t.rejected } : {}) });
    if (accept(t)) return t;
    if (hi === null) {
      // bracketing phase
      if (!Number.isFinite(t.f) || !armijo(t) || t.f >= lo.f) {
        hi = t;
      } else if (t.d >= 0) {
        hi = lo;
        lo = t;
      } else {
        lo = t;
        alpha = Math.min(alpha * 4, 1e10);
        continue;
      }
    } else {
      // zoom phase: keep lo with the lowest f satisfying Armijo, hi on the other side
      if (!Number.isFinite(t.f) || !armijo(t) || t.f >= lo.f) {
        hi = t;
      } else {
        if (t.d * (hi.alpha - lo.alpha) >= 0) hi = lo;
        lo = t;
      }
    }
    if (Math.abs(hi.alpha - lo.alpha) <= 1e-14 * Math.max(1, Math.abs(lo.alpha))) break;
    // at the edge of where the objective is defined (hi not finite), with a sufficient decrease in
    // hand close to it: take it. The curvature condition cannot hold before such an edge, and
    // zooming onto it spends the remaining trials for nothing.
    if (!Number.isFinite(hi.f) && lo.alpha > 0 && hi.alpha - lo.alpha <= 0.1 * lo.alpha) return lo;
    alpha = Number.isFinite(hi.f) && Number.isFinite(hi.d) ? cubicMin(lo.alpha, lo.f, lo.d, hi.alpha, hi.f, hi.d) : lo.alpha + 0.25 * (hi.alpha - lo.alpha);
    if (!Number.isFinite(hi.f) && lo.alpha === 0) alpha = 0.25 * hi.alpha; // invalid step: shrink hard
  }
  // no Wolfe point: accept the best Armijo point (sufficient decrease) if any
  return best;
}

/** Minimises fn from x0 with L-BFGS. */
export async function lbfgs(fn: Objective, x0: ArrayLike<number>, opts: Partial<LbfgsOptions> = {}): Promise<OptimizeResult> {
  const o: LbfgsOptions = { ...DEFAULT_LBFGS, ...opts };
  if (opts.maxEvaluations === undefined) o.maxEvaluations = 20 * o.maxIterations;
  const n = x0.length;
  let evaluations = 0;
  const count = () => evaluations++;
  const where = (v: ArrayLike<number>): string => {
    if (!o.names || v.length === 0) return '';
    let k = 0;
    for (let i = 1; i < v.length; i++) if (Math.abs(v[i]) > Math.abs(v[k])) k = i;
    return `, at ${o.names(k)}`;
  };
  let x: Float64Array = Float64Array.from(x0);
  count();
  let r = await fn(x);
  let f = r.value;
  let g: Float64Array = r.grad;
  const history = [f];
  const done = (reason: StopReason, converged: boolean, message: string, iterations: number): OptimizeResult => ({
    x,
    value: f,
    grad: g,
    iterations,
    evaluations,
    converged,
    reason,
    message,
    history,
  });
  if (!Number.isFinite(f) || !g.every(Number.isFinite)) return done('non-finite-start', false, `the objective is not finite at the starting point (f = ${f})`, 0);
  if (n === 0) return done('gradient-tolerance', true, 'no free parameters', 0);
  const S: Float64Array[] = [];
  const Y: Float64Array[] = [];
  const RHO: number[] = [];
  let smallChanges = 0;
  /** −gᵀp of the latest quasi-Newton direction: twice the decrease a full step predicts. */
  let lastDecrement = Infinity;
  const bestAt: number[] = [f];
  const p = new Float64Array(n);
  const alphaBuf = new Float64Array(o.history);
  for (let it = 1; it <= o.maxIterations; it++) {
    const gn = infNorm(g);
    if (gn <= o.gtol) return done('gradient-tolerance', true, `max |gradient| = ${gn.toExponential(3)} ≤ gtol = ${o.gtol}`, it - 1);
    // two-loop recursion: p = −H g
    for (let i = 0; i < n; i++) p[i] = -g[i];
    const m = S.length;
    for (let k = m - 1; k >= 0; k--) {
      const a = RHO[k] * dot(S[k], p);
      alphaBuf[k] = a;
      const y = Y[k];
      for (let i = 0; i < n; i++) p[i] -= a * y[i];
    }
    if (o.precondition) {
      const gamma = m > 0 ? dot(S[m - 1], Y[m - 1]) / dot(Y[m - 1], o.precondition(Y[m - 1])) : 1;
      const q = o.precondition(p);
      for (let i = 0; i < n; i++) p[i] = gamma * q[i];
    } else if (m > 0) {
      const gamma = dot(S[m - 1], Y[m - 1]) / dot(Y[m - 1], Y[m - 1]);
      for (let i = 0; i < n; i++) p[i] *= gamma;
    }
    for (let k = 0; k < m; k++) {
      const b = RHO[k] * dot(Y[k], p);
      const s = S[k];
      const c = alphaBuf[k] - b;
      for (let i = 0; i < n; i++) p[i] += c * s[i];
    }
    let d = dot(g, p);
    if (!(d < 0)) {
      // not a descent direction (bad curvature pairs): restart with steepest descent
      S.length = 0;
      Y.length = 0;
      RHO.length = 0;
      const q = o.precondition ? o.precondition(g) : g;
      for (let i = 0; i < n; i++) p[i] = -q[i];
      d = dot(g, p);
      if (!(d < 0)) for (let i = 0; i < n; i++) p[i] = -g[i];
      d = dot(g, p);
    }
    if (o.limitDirection) {
      const q = p.slice();
      o.limitDirection(q);
      const dq = dot(g, q);
      if (dq < 0) {
        p.set(q);
        d = dq;
      }
    }
    lastDecrement = -d;
    const alpha0 = m === 0 ? Math.min(1, o.firstStep / Math.max(infNorm(p), 1e-300)) : 1;
    const t = await lineSearch(fn, x, f, g, p, alpha0, o, count, it);
    if (!t) {
      // No decrease along p. At the loss's precision floor the predicted decrease −½·gᵀp is below
      // the loss's own noise; otherwise the model (gradient, curvature) and the loss disagree.
      const predicted = -0.5 * d;
      const noise = Math.max(o.stallAbs, o.stallRel * Math.abs(f), o.fNoise * Math.abs(f));
      if (predicted <= noise) {
        return done('precision-floor', true, `no decrease left above the loss's rounding: predicted decrease ${predicted.toExponential(2)} ≤ ${noise.toExponential(2)} (max |gradient| = ${gn.toExponential(3)}${where(g)})`, it - 1);
      }
      return done('line-search-failed', false, `the line search found no decrease although the quasi-Newton model predicts ${predicted.toExponential(2)} (max |gradient| = ${gn.toExponential(3)}${where(g)}): the loss is ill-conditioned or not smooth there`, it - 1);
    }
    const s = new Float64Array(n);
    const y = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      s[i] = t.x[i] - x[i];
      y[i] = t.g[i] - g[i];
    }
    const sy = dot(s, y);
    if (sy > 1e-12 * Math.sqrt(dot(s, s) * dot(y, y))) {
      S.push(s);
      Y.push(y);
      RHO.push(1 / sy);
      if (S.length > o.history) {
        S.shift();
        Y.shift();
        RHO.shift();
      }
    }
    const fPrev = f;
    x = t.x;
    f = t.f;
    g = t.g;
    history.push(f);
    const stop = o.onIteration?.({ iteration: it, value: f, gradNorm: infNorm(g), step: t.alpha, evaluations });
    if (stop === false) return done('aborted', false, 'stopped by the caller', it);
    if (Math.abs(fPrev - f) <= o.ftol * Math.max(Math.abs(f), Math.abs(fPrev), 1)) smallChanges++;
    else smallChanges = 0;
    if (smallChanges >= o.ftolWindow) {
      return done('loss-tolerance', true, `relative loss change ≤ ftol = ${o.ftol} over ${o.ftolWindow} iterations`, it);
    }
    bestAt.push(Math.min(bestAt[bestAt.length - 1], f));
    if (o.stallWindow > 0 && bestAt.length > o.stallWindow) {
      const gain = bestAt[bestAt.length - 1 - o.stallWindow] - bestAt[bestAt.length - 1];
      const tol = Math.max(o.stallAbs, o.stallRel * Math.abs(f));
      if (gain < tol) {
        const predicted = 0.5 * lastDecrement;
        const msg = `the best loss improved by ${gain.toExponential(2)} < ${tol.toExponential(2)} over ${o.stallWindow} iterations; predicted decrease of a full step ${predicted.toExponential(2)} (max |gradient| = ${infNorm(g).toExponential(3)}${where(g)})`;
        if (predicted <= tol) return done('precision-floor', true, msg, it);
        return done('stalled', false, `${msg}: the loss stopped decreasing although the quasi-Newton model predicts more`, it);
      }
    }
    if (evaluations >= o.maxEvaluations) return done('max-evaluations', false, `reached ${evaluations} objective evaluations`, it);
  }
  const gn = infNorm(g);
  if (gn <= o.gtol) return done('gradient-tolerance', true, `max |gradient| = ${gn.toExponential(3)} ≤ gtol = ${o.gtol}`, o.maxIterations);
  return done('max-iterations', false, `reached ${o.maxIterations} iterations (max |gradient| = ${gn.toExponential(3)})`, o.maxIterations);
}

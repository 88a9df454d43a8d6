/**
 * Adam (Kingma & Ba 2015) in float64, with SHINE's MAP defaults: SHINE's `run_map` is NumPyro
 * SVI with an AutoDelta guide and `numpyro.optim.Adam(step_size=learning_rate)`, learning rate
 * 1e-2, 1000 steps, constant rate (no schedule), NumPyro's b1 = 0.9, b2 = 0.999, eps = 1e-8.
 * A schedule is available here (`schedule`), off by default to match SHINE.
 */
import type { Objective, OptimizeResult, StopReason, IterationInfo } from './lbfgs.ts';

export interface AdamOptions {
  /** Step size (SHINE: 1e-2). */
  learningRate: number;
  b1: number;
  b2: number;
  eps: number;
  /** Number of steps (SHINE: 1000). */
  maxIterations: number;
  /** Optional early stop: max |∇f| ≤ gtol (default 0: off, as SHINE). */
  gtol: number;
  /**
   * Optional early stop: relative change of the mean loss of two consecutive windows of
   * `ftolWindow` steps ≤ ftol (default 0: off, as SHINE).
   */
  ftol: number;
  ftolWindow: number;
  /** Learning-rate schedule: constant (SHINE), exponential decay, or cosine to `finalFraction`. */
  schedule: { type: 'constant' } | { type: 'exponential'; decayRate: number; decaySteps: number } | { type: 'cosine'; finalFraction: number };
  /** On a non-finite loss: step back and scale the rate by this factor (default 0.5). */
  backoff: number;
  onIteration?: (info: IterationInfo) => void | boolean;
}

export const SHINE_ADAM: AdamOptions = {
  learningRate: 1e-2,
  b1: 0.9,
  b2: 0.999,
  eps: 1e-8,
  maxIterations: 1000,
  gtol: 0,
  ftol: 0,
  ftolWindow: 50,
  schedule: { type: 'constant' },
  backoff: 0.5,
};

function rateAt(o: AdamOptions, t: number): number {
  const s = o.schedule;
  if (s.type === 'exponential') return o.learningRate * Math.pow(s.decayRate, t / s.decaySteps);
  if (s.type === 'cosine') {
    const c = 0.5 * (1 + Math.cos((Math.PI * Math.min(t, o.maxIterations)) / o.maxIterations));
    return o.learningRate * (s.finalFraction + (1 - s.finalFraction) * c);
  }
  return o.learningRate;
}

/**
 * Adam's moments and its bias-corrected step, the one implementation used by `adam` (MAP) and
 * by VI (vi.ts): m ← b1 m + (1 − b1) g, v ← b2 v + (1 − b2) g², x ← x − lr m̂ / (√v̂ + ε) with
 * m̂ = m / (1 − b1ᵗ), v̂ = v / (1 − b2ᵗ).
 */
export class AdamMoments {
  readonly m: Float64Array;
  readonly v: Float64Array;
  t = 0;
  constructor(
    n: number,
    readonly b1: number,
    readonly b2: number,
    readonly eps: number,
  ) {
    this.m = new Float64Array(n);
    this.v = new Float64Array(n);
  }
  /** Advances the moments with the gradient g and writes the stepped x into `out` (may be x itself). */
  step(x: ArrayLike<number>, g: ArrayLike<number>, lr: number, out: Float64Array): Float64Array {
    this.t++;
    const c1 = 1 - Math.pow(this.b1, this.t);
    const c2 = 1 - Math.pow(this.b2, this.t);
    const { m, v, b1, b2, eps } = this;
    for (let i = 0; i < m.length; i++) {
      m[i] = b1 * m[i] + (1 - b1) * g[i];
      v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
      out[i] = x[i] - (lr * (m[i] / c1)) / (Math.sqrt(v[i] / c2) + eps);
    }
    return out;
  }
  /** The state before a step, to undo it (`restore`). */
  save(): { m: Float64Array; v: Float64Array; t: number } {
    return { m: this.m.slice(), v: this.v.slice(), t: this.t };
  }
  restore(s: { m: Float64Array; v: Float64Array; t: number }): void {
    this.m.set(s.m);
    this.v.set(s.v);
    this.t = s.t;
  }
}

/** Minimises fn with Adam. The returned x is the best iterate seen (lowest loss). */
export async function adam(fn: Objective, x0: ArrayLike<number>, opts: Partial<AdamOptions> = {}): Promise<OptimizeResult> {
  const o: AdamOptions = { ...SHINE_ADAM, ...opts };
  const n = x0.length;
  let x: Float64Array = Float64Array.from(x0);
  const moments = new AdamMoments(n, o.b1, o.b2, o.eps);
  let evaluations = 1;
  let r = await fn(x);
  const history = [r.value];
  let best = { x: x.slice(), value: r.value, grad: r.grad };
  const result = (reason: StopReason, converged: boolean, message: string, iterations: number): OptimizeResult => ({
    x: best.x,
    value: best.value,
    grad: best.grad,
    iterations,
    evaluations,
    converged,
    reason,
    message,
    history,
  });
  if (!Number.isFinite(r.value) || !r.grad.every(Number.isFinite)) return result('non-finite-start', false, `the objective is not finite at the starting point (f = ${r.value})`, 0);
  let scale = 1;
  for (let it = 1; it <= o.maxIterations; it++) {
    let gn = 0;
    for (let i = 0; i < n; i++) gn = Math.max(gn, Math.abs(r.grad[i]));
    if (o.gtol > 0 && gn <= o.gtol) return result('gradient-tolerance', true, `max |gradient| = ${gn.toExponential(3)} ≤ gtol = ${o.gtol}`, it - 1);
    const lr = rateAt(o, it - 1) * scale;
    const before = moments.save();
    const xn = moments.step(x, r.grad, lr, new Float64Array(n));
    evaluations++;
    const rn = await fn(xn);
    if (!Number.isFinite(rn.value) || !rn.grad.every(Number.isFinite)) {
      // invalid step: undo the moment update and retry with a smaller rate
      moments.restore(before);
      scale *= o.backoff;
      history.push(history[history.length - 1]);
      if (scale < 1e-12) return result('line-search-failed', false, 'Adam: every step leads to a non-finite loss', it);
      continue;
    }
    x = xn;
    r = rn;
    history.push(r.value);
    if (r.value < best.value) best = { x: x.slice(), value: r.value, grad: r.grad };
    if (o.onIteration?.({ iteration: it, value: r.value, gradNorm: gn, step: lr, evaluations }) === false) return result('aborted', false, 'stopped by the caller', it);
    const w = o.ftolWindow;
    if (o.ftol > 0 && history.length > 2 * w) {
      const h = history.length;
      let a = 0;
      let b = 0;
      for (let k = 0; k < w; k++) {
        a += history[h - 1 - k];
        b += history[h - 1 - w - k];
      }
      if (Math.abs(a - b) / w <= o.ftol * Math.max(Math.abs(a / w), 1)) return result('loss-tolerance', true, `mean loss changed by ≤ ftol = ${o.ftol} between the last two windows of ${w} steps`, it);
    }
  }
  return result('max-iterations', false, `ran the ${o.maxIterations} steps (no convergence criterion met${o.gtol === 0 && o.ftol === 0 ? '; none is set, as in SHINE' : ''})`, o.maxIterations);
}

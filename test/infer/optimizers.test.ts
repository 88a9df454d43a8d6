/**
 * L-BFGS and Adam on analytic functions with known minima: Rosenbrock (2-D and extended 10-D,
 * minimum at (1, …, 1)), an ill-conditioned quadratic (condition number 1e6, minimum at a known
 * point), and a function that is undefined (NaN) on part of the space.
 */
import { describe, it, expect } from 'vitest';
import { lbfgs, type LineSearchTrial } from '../../engine/infer/lbfgs.ts';
import { limitBlocks } from '../../engine/infer/map.ts';
import { adam, AdamMoments } from '../../engine/infer/adam.ts';

function rosenbrock(x: Float64Array) {
  let value = 0;
  const grad = new Float64Array(x.length);
  for (let i = 0; i < x.length - 1; i++) {
    const a = x[i + 1] - x[i] * x[i];
    const b = 1 - x[i];
    value += 100 * a * a + b * b;
    grad[i] += -400 * x[i] * a - 2 * b;
    grad[i + 1] += 200 * a;
  }
  return { value, grad };
}

/** ½ Σ λ_i (R(x − c))_i² with a rotation R mixing coordinates, λ from 1 to 1e6. */
function quadratic(n: number) {
  const lam = Array.from({ length: n }, (_, i) => Math.pow(1e6, i / (n - 1)));
  const c = Array.from({ length: n }, (_, i) => Math.cos(i) * 3);
  // Householder reflection R = I − 2vvᵀ/|v|²
  const v = Array.from({ length: n }, (_, i) => 1 + 0.3 * i);
  const vv = v.reduce((s, t) => s + t * t, 0);
  const R = (y: ArrayLike<number>) => {
    const d = v.reduce((s, t, i) => s + t * y[i], 0);
    return Array.from({ length: n }, (_, i) => y[i] - (2 * d * v[i]) / vv);
  };
  const fn = (x: Float64Array) => {
    const u = R(Array.from(x, (t, i) => t - c[i]));
    const value = 0.5 * u.reduce((s, t, i) => s + lam[i] * t * t, 0);
    const grad = Float64Array.from(R(u.map((t, i) => lam[i] * t))); // Rᵀ = R
    return { value, grad };
  };
  return { fn, c };
}

describe('L-BFGS', () => {
  it('Rosenbrock 2-D from (−1.2, 1) reaches (1, 1)', async () => {
    const r = await lbfgs(rosenbrock, [-1.2, 1], { gtol: 1e-9, ftol: 0 });
    console.log('rosenbrock 2-D', r.reason, r.iterations, r.evaluations, Array.from(r.x));
    expect(r.converged).toBe(true);
    expect(Math.abs(r.x[0] - 1)).toBeLessThan(1e-7);
    expect(Math.abs(r.x[1] - 1)).toBeLessThan(1e-7);
    expect(r.history.length).toBe(r.iterations + 1);
    for (let i = 1; i < r.history.length; i++) expect(r.history[i]).toBeLessThanOrEqual(r.history[i - 1]);
  });
  it('extended Rosenbrock 10-D reaches (1, …, 1)', async () => {
    const x0 = Array.from({ length: 10 }, (_, i) => (i % 2 ? 1 : -1.2));
    const r = await lbfgs(rosenbrock, x0, { gtol: 1e-8, ftol: 0 });
    console.log('rosenbrock 10-D', r.reason, r.iterations, r.evaluations);
    expect(r.converged).toBe(true);
    for (const v of r.x) expect(Math.abs(v - 1)).toBeLessThan(1e-6);
  });
  it('ill-conditioned quadratic (κ = 1e6, 10-D, rotated) reaches its centre', async () => {
    const { fn, c } = quadratic(10);
    const r = await lbfgs(fn, new Float64Array(10), { gtol: 1e-8, ftol: 0, maxIterations: 3000 });
    console.log('quadratic', r.reason, r.iterations, r.evaluations);
    expect(r.converged).toBe(true);
    r.x.forEach((v, i) => expect(Math.abs(v - c[i])).toBeLessThan(1e-6));
  });
  it('shrinks steps that land where the objective is NaN (f = x − log x, defined for x > 0)', async () => {
    const f = (x: Float64Array) => ({ value: x[0] - Math.log(x[0]) + 0.5 * (x[1] - 2) ** 2, grad: Float64Array.from([1 - 1 / x[0], x[1] - 2]) });
    // from x = 0.01 the first step (gradient ≈ −99) overshoots far past 1; from 20 it goes negative
    for (const start of [0.01, 20]) {
      const r = await lbfgs(f, [start, 0], { gtol: 1e-10, ftol: 0, firstStep: 50 });
      expect(r.converged, `start ${start}`).toBe(true);
      expect(Math.abs(r.x[0] - 1)).toBeLessThan(1e-8);
      expect(Math.abs(r.x[1] - 2)).toBeLessThan(1e-8);
    }
  });
  it('a wall where the objective ends (a float32 singularity): the line search takes the best point near it instead of spending its trials zooming onto it, and says why each trial there was rejected', async () => {
    // f falls steeply towards x0 = 1 and is undefined beyond (as the renderer at |e| → 1); x1 a quadratic
    const WALL = 1;
    const f = (x: Float64Array) =>
      x[0] >= WALL ? { value: NaN, grad: Float64Array.from([NaN, NaN]), rejected: 'log-likelihood NaN (beyond the wall)' } : { value: -100 * x[0] + 0.5 * (x[1] - 2) ** 2, grad: Float64Array.from([-100, x[1] - 2]) };
    const trials: LineSearchTrial[] = [];
    const r = await lbfgs(f, [0, 0], { gtol: 1e-9, ftol: 0, maxIterations: 8, firstStep: 10, onTrial: (t) => trials.push(t) });
    const first = trials.filter((t) => t.iteration === 1);
    // the bracket shrinks ×¼ from the first NaN trial, then towards the wall until within 10 % of the best Armijo point (30 trials without that rule)
    expect(first.length).toBeLessThanOrEqual(12);
    expect(first.at(-1)!.accepted || first.some((t) => Number.isFinite(t.f))).toBe(true);
    expect(trials.filter((t) => !Number.isFinite(t.f)).every((t) => t.rejected === 'log-likelihood NaN (beyond the wall)')).toBe(true);
    // no line search spent all its trials, and the run ends near the wall
    const per = new Map<number, number>();
    for (const t of trials) per.set(t.iteration, (per.get(t.iteration) ?? 0) + 1);
    console.log(`wall: trials per iteration ${[...per.values()].join(", ")}; x0 = ${r.x[0]}`);
    expect(Math.max(...per.values())).toBeLessThan(30); // none exhausted (o.maxLineSearch)
    expect(r.x[0]).toBeGreaterThan(0.95);
    expect(r.x[0]).toBeLessThan(WALL);
  });
  it('limitDirection: one block with a 10⁴× wrong preconditioner no longer shrinks every other block\'s first step (limitBlocks caps each block); both converge', async () => {
    const nb = 20;
    const c = Float64Array.from({ length: 2 * nb }, (_, i) => 3 + 0.1 * i);
    const f = (x: Float64Array) => {
      let v = 0;
      const g = new Float64Array(x.length);
      for (let i = 0; i < x.length; i++) {
        v += 0.5 * (x[i] - c[i]) ** 2;
        g[i] = x[i] - c[i];
      }
      return { value: v, grad: g };
    };
    // the curvature of coordinate 0 estimated 10⁴ too small (as a floored block at scale)
    const precondition = (v: Float64Array) => Float64Array.from(v, (a, i) => (i === 0 ? 1e4 * a : a));
    const blocks = Array.from({ length: nb }, (_, b) => [2 * b, 2 * b + 1]);
    const p = Float64Array.from([30, 4, 0.5, -2]);
    limitBlocks(p, [[0, 1], [2, 3]], 1);
    expect(Array.from(p)).toEqual([1, 4 / 30, 0.25, -1]);
    const run = (limit: boolean, maxIterations: number) =>
      lbfgs(f, new Float64Array(2 * nb), { gtol: 1e-8, ftol: 0, maxIterations, precondition, ...(limit ? { limitDirection: (q: Float64Array) => limitBlocks(q, blocks, 1) } : {}) });
    // the first step: scaled as a whole to ‖αp‖∞ ≤ 1 the other 39 coordinates move by 10⁻⁴ of their
    // distance; each block limited on its own, they move by 1
    const [p1, l1] = [await run(false, 1), await run(true, 1)];
    const f0 = f(new Float64Array(2 * nb)).value;
    console.log(`limitDirection: loss ${f0.toFixed(1)} → ${p1.value.toFixed(1)} without, → ${l1.value.toFixed(1)} with, after one iteration`);
    expect(f0 - p1.value).toBeLessThan(0.05 * (f0 - l1.value));
    const [plain, limited] = [await run(false, 1000), await run(true, 1000)];
    for (const r of [plain, limited]) {
      expect(r.converged).toBe(true);
      r.x.forEach((v, i) => expect(Math.abs(v - c[i])).toBeLessThan(1e-6));
    }
  });
  it('stops with the loss criterion and reports max-iterations honestly', async () => {
    const { fn } = quadratic(10);
    const r1 = await lbfgs(fn, new Float64Array(10), { gtol: 0, ftol: 1e-6, ftolWindow: 2 });
    expect(r1.reason).toBe('loss-tolerance');
    expect(r1.converged).toBe(true);
    const r2 = await lbfgs(rosenbrock, [-1.2, 1], { maxIterations: 3, gtol: 0, ftol: 0 });
    expect(r2.reason).toBe('max-iterations');
    expect(r2.converged).toBe(false);
    expect(r2.iterations).toBe(3);
    const r3 = await lbfgs(() => ({ value: NaN, grad: new Float64Array(1) }), [0]);
    expect(r3.reason).toBe('non-finite-start');
  });
});

describe('Adam', () => {
  it('the shared step (MAP and VI): first step lr·g/(|g| + ε) per coordinate; a constant gradient keeps m̂ = g, v̂ = g²; restore undoes a step', () => {
    const a = new AdamMoments(3, 0.9, 0.999, 1e-8);
    const g = [2, -0.5, 1e-3];
    const x1 = a.step([1, 1, 1], g, 0.01, new Float64Array(3));
    g.forEach((gi, i) => expect(x1[i]).toBeCloseTo(1 - (0.01 * gi) / (Math.abs(gi) + 1e-8), 14));
    const saved = a.save();
    // with the same gradient again the bias-corrected moments are still g and g²: the same step
    const x2 = a.step(x1, g, 0.01, new Float64Array(3));
    g.forEach((gi, i) => expect(x2[i] - x1[i]).toBeCloseTo(x1[i] - 1, 12));
    a.restore(saved);
    const x2b = a.step(x1, g, 0.01, new Float64Array(3));
    expect(Array.from(x2b)).toEqual(Array.from(x2));
    // in place (VI's use)
    const y = Float64Array.from([1, 1, 1]);
    new AdamMoments(3, 0.9, 0.999, 1e-8).step(y, g, 0.01, y);
    expect(Array.from(y)).toEqual(Array.from(x1));
  });
  it('SHINE settings (lr 1e-2, 1000 steps) on a diagonal ill-conditioned quadratic reach the minimum', async () => {
    // Adam's per-coordinate scaling makes diagonal conditioning harmless
    const lam = [1, 1e2, 1e4, 1e6];
    const c = [0.5, -0.3, 0.2, 0.1];
    const fn = (x: Float64Array) => ({
      value: 0.5 * lam.reduce((s, l, i) => s + l * (x[i] - c[i]) ** 2, 0),
      grad: Float64Array.from(lam.map((l, i) => l * (x[i] - c[i]))),
    });
    const r = await adam(fn, new Float64Array(4), { schedule: { type: 'cosine', finalFraction: 1e-3 } });
    console.log('adam quadratic', r.reason, r.iterations, Array.from(r.x));
    r.x.forEach((v, i) => expect(Math.abs(v - c[i])).toBeLessThan(1e-3));
    expect(r.iterations).toBe(1000);
    expect(r.converged).toBe(false); // no criterion set, as SHINE
  });
  it('Rosenbrock 2-D reaches (1, 1) with a decaying rate', async () => {
    const r = await adam(rosenbrock, [-1.2, 1], { learningRate: 2e-2, maxIterations: 8000, schedule: { type: 'exponential', decayRate: 0.1, decaySteps: 4000 } });
    console.log('adam rosenbrock', r.value, Array.from(r.x));
    expect(Math.abs(r.x[0] - 1)).toBeLessThan(1e-2);
    expect(Math.abs(r.x[1] - 1)).toBeLessThan(2e-2);
  });
  it('gradient criterion stops early; non-finite steps back off', async () => {
    const f = (x: Float64Array) => ({ value: x[0] - Math.log(x[0]), grad: Float64Array.from([1 - 1 / x[0]]) });
    const r = await adam(f, [0.02], { learningRate: 0.5, gtol: 1e-6, maxIterations: 20000 });
    expect(r.reason).toBe('gradient-tolerance');
    expect(r.converged).toBe(true);
    expect(Math.abs(r.x[0] - 1)).toBeLessThan(1e-5);
  });
});

describe('L-BFGS stopping: a precision floor is converged, a loss that disagrees with its gradient is not', () => {
  /** ½ Σ λᵢ(xᵢ − cᵢ)² plus deterministic "rounding noise" of amplitude `noise` in value and gradient. */
  const noisy = (noise: number) => (x: Float64Array) => {
    let v = 0;
    const grad = new Float64Array(x.length);
    for (let i = 0; i < x.length; i++) {
      const d = x[i] - (i + 1);
      v += 0.5 * (i + 1) * d * d;
      grad[i] = (i + 1) * d;
    }
    // a hash of x in [−1, 1): changes with every bit of x, like float32 sums of a GPU loss
    let h = 0;
    for (let i = 0; i < x.length; i++) h = Math.sin(h * 12.9898 + x[i] * 78.233 * 1e6) * 43758.5453;
    const u = 2 * (h - Math.floor(h)) - 1;
    // the gradient carries rounding too (float32 sums): gtol below it is unreachable
    for (let i = 0; i < x.length; i++) grad[i] += noise * Math.sin(1e3 * u + i);
    return { value: 1e5 + v + noise * u, grad };
  };
  it('loss noise above the remaining decrease: stops as precision-floor, converged, at the minimum', async () => {
    // gtol unreachable; the loss noise (1e-3 on a loss of 1e5) hides the last decrease
    const r = await lbfgs(noisy(1e-3), [5, -3, 0, 8], { gtol: 1e-12, ftol: 0, stallWindow: 10, stallAbs: 1e-3, stallRel: 1e-8 });
    console.log('noisy quadratic:', r.reason, r.iterations, r.message);
    expect(r.reason).toBe('precision-floor');
    expect(r.converged).toBe(true);
    // at the minimum to the accuracy the noise allows: ½ λ δ² ≲ 1e-3
    r.x.forEach((v, i) => expect(Math.abs(v - (i + 1))).toBeLessThan(0.1));
  });
  it('a gradient inconsistent with the loss (a wrong derivative of 10⁴): not converged, and the message says the model predicts a decrease', async () => {
    const fn = (x: Float64Array) => {
      const r = noisy(0)(x);
      r.grad[1] += 1e4; // the loss does not contain this term
      return r;
    };
    const r = await lbfgs(fn, [1, 2, 3, 4], { gtol: 1e-6, ftol: 0, stallWindow: 10, names: (i) => `x${i}` });
    console.log('inconsistent gradient:', r.reason, r.iterations, r.message);
    expect(r.converged).toBe(false);
    expect(['line-search-failed', 'stalled']).toContain(r.reason);
    expect(r.message).toMatch(/predict/);
    expect(r.message).toMatch(/at x1/);
    expect(r.message).not.toMatch(/float32/);
  });
});

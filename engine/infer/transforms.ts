/**
 * Bijections from unconstrained real vectors z to the constrained parameters θ (NumPyro style),
 * with their log-Jacobian determinants and the chain rule for gradients. Float64, CPU only.
 *
 *  - `exp`      : θ = exp(z), θ > 0 (flux, hlr).                     log|J| = z.
 *  - `affineSigmoid(lo, hi)`: θ = lo + (hi − lo)·σ(z), θ ∈ (lo, hi) (Uniform priors).
 *                  log|J| = log(hi − lo) + log σ(z) + log σ(−z).
 *  - `scaledTanh(R)`: θ = R·tanh(z), θ ∈ (−R, R) (one component of a unit-disc pair whose other
 *                  component is fixed at c: R = √(1 − c²)).     log|J| = log R + log sech² z.
 *  - `disc`     : (θ1, θ2) = tanh(r)·z/r with r = |z| (the open unit disc, for (e1, e2) and (g1, g2)).
 *                  A radial map ρ = f(r) in 2-D has |J| = f'(r)·f(r)/r; with f = tanh:
 *                  log|J| = log sech² r + log(tanh(r)/r). At z = 0 the map is the identity to
 *                  first order (J = I); series are used for small r.
 */

/** log(1 + e^x) without overflow. */
export function softplus(x: number): number {
  return x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
}

export function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

/** log(sech² r) = −2 log cosh r, stable for large |r|. */
export function logSech2(r: number): number {
  const a = Math.abs(r);
  return -2 * (a + Math.log1p(Math.exp(-2 * a)) - Math.LN2);
}

/** tanh(r)/r, with its series near 0. */
function tanhOverR(r: number): number {
  if (r < 1e-4) return 1 - (r * r) / 3;
  return Math.tanh(r) / r;
}

// ---------------------------------------------------------------------------------------------
// Scalar transforms

export type ScalarTransform =
  | { kind: 'identity' }
  | { kind: 'exp' }
  | { kind: 'affineSigmoid'; low: number; high: number }
  | { kind: 'scaledTanh'; radius: number };

/** θ(z). */
export function scalarForward(t: ScalarTransform, z: number): number {
  switch (t.kind) {
    case 'identity':
      return z;
    case 'exp':
      return Math.exp(z);
    case 'affineSigmoid': {
      const v = t.low + (t.high - t.low) * sigmoid(z);
      // keep strictly inside (low, high) even when σ(z) rounds to 0 or 1
      return v;
    }
    case 'scaledTanh':
      return t.radius * Math.tanh(z);
  }
}

/** z(θ); θ must lie strictly inside the support. */
export function scalarInverse(t: ScalarTransform, x: number): number {
  switch (t.kind) {
    case 'identity':
      return x;
    case 'exp':
      return Math.log(x);
    case 'affineSigmoid': {
      const u = (x - t.low) / (t.high - t.low);
      return Math.log(u) - Math.log1p(-u);
    }
    case 'scaledTanh':
      return Math.atanh(x / t.radius);
  }
}

/** True when θ lies strictly inside the support of the transform. */
export function scalarInSupport(t: ScalarTransform, x: number): boolean {
  switch (t.kind) {
    case 'identity':
      return Number.isFinite(x);
    case 'exp':
      return x > 0 && Number.isFinite(x);
    case 'affineSigmoid':
      return x > t.low && x < t.high;
    case 'scaledTanh':
      return Math.abs(x) < t.radius;
  }
}

/** dθ/dz. */
export function scalarDerivative(t: ScalarTransform, z: number): number {
  switch (t.kind) {
    case 'identity':
      return 1;
    case 'exp':
      return Math.exp(z);
    case 'affineSigmoid': {
      const s = sigmoid(z);
      return (t.high - t.low) * s * (1 - s);
    }
    case 'scaledTanh':
      return t.radius * Math.exp(logSech2(z));
  }
}

/** log|dθ/dz| and its derivative with respect to z. */
export function scalarLogJac(t: ScalarTransform, z: number): { value: number; grad: number } {
  switch (t.kind) {
    case 'identity':
      return { value: 0, grad: 0 };
    case 'exp':
      return { value: z, grad: 1 };
    case 'affineSigmoid':
      // log σ(z) + log σ(−z) = −softplus(−z) − softplus(z); derivative 1 − 2σ(z)
      return { value: Math.log(t.high - t.low) - softplus(-z) - softplus(z), grad: 1 - 2 * sigmoid(z) };
    case 'scaledTanh':
      return { value: Math.log(t.radius) + logSech2(z), grad: -2 * Math.tanh(z) };
  }
}

// ---------------------------------------------------------------------------------------------
// The unit-disc bijection

/** (θ1, θ2) = tanh(|z|)·z/|z|. */
export function discForward(z1: number, z2: number): [number, number] {
  const r = Math.hypot(z1, z2);
  const s = tanhOverR(r);
  return [s * z1, s * z2];
}

/** Inverse of discForward; requires |θ| < 1. */
export function discInverse(t1: number, t2: number): [number, number] {
  const rho = Math.hypot(t1, t2);
  if (rho === 0) return [0, 0];
  // atanh(ρ)/ρ, series near 0
  const s = rho < 1e-4 ? 1 + (rho * rho) / 3 : Math.atanh(rho) / rho;
  return [s * t1, s * t2];
}

/**
 * log|J| of the disc map and its gradient with respect to (z1, z2):
 *   log|J| = log sech² r + log(tanh r / r),
 *   d/dr   = −2 tanh r + 2/sinh(2r) − 1/r   (→ −8r/3 as r → 0), gradient = (d/dr)·z/r.
 */
export function discLogJac(z1: number, z2: number): { value: number; grad: [number, number] } {
  const r = Math.hypot(z1, z2);
  let value: number;
  let dOverR: number; // (d log|J| / dr) / r
  if (r < 1e-3) {
    const r2 = r * r;
    // log sech² r = −r² + r⁴/6 − …; log(tanh r/r) = −r²/3 + 7r⁴/90 − …
    value = -r2 + r2 * r2 / 6 - r2 / 3 + (7 * r2 * r2) / 90;
    // d/dr = −8r/3 + (2/3 + 14/45)·r³·… : (d/dr)/r = −8/3 + (2/3 + 28/90)·r²
    dOverR = -8 / 3 + (2 / 3 + 28 / 90) * r2;
  } else {
    value = logSech2(r) + Math.log(Math.tanh(r) / r);
    const dr = -2 * Math.tanh(r) + (r > 300 ? 0 : 2 / Math.sinh(2 * r)) - 1 / r;
    dOverR = dr / r;
  }
  return { value, grad: [dOverR * z1, dOverR * z2] };
}

/**
 * Chain rule through the disc map: given (G1, G2) = dL/dθ, returns dL/dz = Jᵀ G, where
 * J = f'(r) ẑẑᵀ + (f(r)/r)(I − ẑẑᵀ) is symmetric (f = tanh).
 */
export function discPullback(z1: number, z2: number, G1: number, G2: number): [number, number] {
  const r = Math.hypot(z1, z2);
  const fr = tanhOverR(r);
  if (r === 0) return [G1, G2];
  const fp = Math.exp(logSech2(r));
  const u1 = z1 / r;
  const u2 = z2 / r;
  const proj = u1 * G1 + u2 * G2;
  return [fp * proj * u1 + fr * (G1 - proj * u1), fp * proj * u2 + fr * (G2 - proj * u2)];
}

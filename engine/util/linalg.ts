/**
 * Dense linear algebra on small row-major Float64Array matrices, float64: Cholesky, SPD solves,
 * inverse and inverse diagonal (the Laplace approximation's components, VI's guide), and the
 * symmetric eigen-decomposition of the MAP preconditioner's blocks.
 */

/** In-place Cholesky; −1 when PD, else the column whose pivot is not positive. */
export function choleskyPivot(a: Float64Array, n: number): number {
  for (let j = 0; j < n; j++) {
    let d = a[j * n + j];
    for (let k = 0; k < j; k++) d -= a[j * n + k] * a[j * n + k];
    if (!(d > 0) || !Number.isFinite(d)) return j;
    const l = Math.sqrt(d);
    a[j * n + j] = l;
    for (let i = j + 1; i < n; i++) {
      let v = a[i * n + j];
      for (let k = 0; k < j; k++) v -= a[i * n + k] * a[j * n + k];
      a[i * n + j] = v / l;
    }
  }
  return -1;
}

/** In-place Cholesky of an n×n SPD matrix (lower triangle). Returns false if not PD. */
export function cholesky(a: Float64Array, n: number): boolean {
  return choleskyPivot(a, n) < 0;
}

/** Solves L Lᵀ x = b in place (L from cholesky). */
export function choleskySolve(l: Float64Array, n: number, b: Float64Array): void {
  for (let i = 0; i < n; i++) {
    let v = b[i];
    for (let k = 0; k < i; k++) v -= l[i * n + k] * b[k];
    b[i] = v / l[i * n + i];
  }
  for (let i = n - 1; i >= 0; i--) {
    let v = b[i];
    for (let k = i + 1; k < n; k++) v -= l[k * n + i] * b[k];
    b[i] = v / l[i * n + i];
  }
}

/** Inverse of a small SPD matrix via Cholesky; null if not PD. */
export function spdInverse(a: Float64Array, n: number): Float64Array | null {
  const l = a.slice();
  if (!cholesky(l, n)) return null;
  const inv = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    const e = new Float64Array(n);
    e[j] = 1;
    choleskySolve(l, n, e);
    for (let i = 0; i < n; i++) inv[i * n + j] = e[i];
  }
  return inv;
}

/** diag(A⁻¹) from the Cholesky factor L (lower, in place in `l`): (A⁻¹)ᵢᵢ = ‖L⁻¹eᵢ‖². */
export function inverseDiagonal(l: Float64Array, n: number): Float64Array {
  const d = new Float64Array(n);
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    // forward substitution of L y = e_i: y_k = 0 for k < i
    let acc = 0;
    for (let k = i; k < n; k++) {
      let v = k === i ? 1 : 0;
      for (let m = i; m < k; m++) v -= l[k * n + m] * y[m];
      y[k] = v / l[k * n + k];
      acc += y[k] * y[k];
    }
    d[i] = acc;
  }
  return d;
}

/** Symmetric eigen-decomposition of a small n×n matrix by cyclic Jacobi rotations. */
export function symEigen(a: Float64Array, n: number): { values: Float64Array; vectors: Float64Array } {
  const A = a.slice();
  const V = new Float64Array(n * n);
  for (let i = 0; i < n; i++) V[i * n + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    let diag = 0;
    for (let i = 0; i < n; i++) {
      diag += A[i * n + i] ** 2;
      for (let j = i + 1; j < n; j++) off += A[i * n + j] ** 2;
    }
    if (off <= 1e-30 * diag || off === 0) break;
    for (let p = 0; p < n; p++)
      for (let q = p + 1; q < n; q++) {
        const apq = A[p * n + q];
        if (apq === 0) continue;
        const theta = (A[q * n + q] - A[p * n + p]) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = A[k * n + p];
          const akq = A[k * n + q];
          A[k * n + p] = c * akp - s * akq;
          A[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = A[p * n + k];
          const aqk = A[q * n + k];
          A[p * n + k] = c * apk - s * aqk;
          A[q * n + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = V[k * n + p];
          const vkq = V[k * n + q];
          V[k * n + p] = c * vkp - s * vkq;
          V[k * n + q] = s * vkp + c * vkq;
        }
      }
  }
  const values = new Float64Array(n);
  for (let i = 0; i < n; i++) values[i] = A[i * n + i];
  return { values, vectors: V };
}

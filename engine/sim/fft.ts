/**
 * The simulator's own float64 radix-2 complex FFT (kept separate from the engine's reference
 * FFT on purpose: the truth images must not share code with what they test).
 * Convention: forward X[k] = Σ x[n] e^{−2πi kn/N}; the inverse includes 1/N.
 */

interface Plan {
  n: number;
  rev: Uint32Array;
  cos: Float64Array;
  sin: Float64Array;
}

const plans = new Map<number, Plan>();

function plan(n: number): Plan {
  let p = plans.get(n);
  if (p) return p;
  if (n < 1 || (n & (n - 1)) !== 0) throw new RangeError(`FFT size ${n} is not a power of two`);
  const bits = Math.round(Math.log2(n));
  const rev = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    let r = 0;
    for (let b = 0; b < bits; b++) if (i & (1 << b)) r |= 1 << (bits - 1 - b);
    rev[i] = r;
  }
  const cos = new Float64Array(n / 2);
  const sin = new Float64Array(n / 2);
  for (let k = 0; k < n / 2; k++) {
    cos[k] = Math.cos((2 * Math.PI * k) / n);
    sin[k] = Math.sin((2 * Math.PI * k) / n);
  }
  p = { n, rev, cos, sin };
  plans.set(n, p);
  return p;
}

/** In-place 1-D transform of contiguous arrays re/im of length n. */
export function fft1(re: Float64Array, im: Float64Array, inverse: boolean): void {
  const n = re.length;
  const { rev, cos, sin } = plan(n);
  for (let i = 0; i < n; i++) {
    const j = rev[i];
    if (i < j) {
      let t = re[i]; re[i] = re[j]; re[j] = t;
      t = im[i]; im[i] = im[j]; im[j] = t;
    }
  }
  const sgn = inverse ? 1 : -1;
  for (let len = 2; len <= n; len <<= 1) {
    const half = len >> 1;
    const step = n / len;
    for (let s = 0; s < n; s += len) {
      for (let k = 0; k < half; k++) {
        const wr = cos[k * step];
        const wi = sgn * sin[k * step];
        const a = s + k;
        const b = a + half;
        const xr = re[b] * wr - im[b] * wi;
        const xi = re[b] * wi + im[b] * wr;
        re[b] = re[a] - xr; im[b] = im[a] - xi;
        re[a] += xr; im[a] += xi;
      }
    }
  }
  if (inverse) {
    const inv = 1 / n;
    for (let i = 0; i < n; i++) { re[i] *= inv; im[i] *= inv; }
  }
}

/** In-place 2-D transform of an m×m row-major complex image. */
export function fft2(re: Float64Array, im: Float64Array, m: number, inverse: boolean): void {
  for (let y = 0; y < m; y++) fft1(re.subarray(y * m, (y + 1) * m), im.subarray(y * m, (y + 1) * m), inverse);
  const cr = new Float64Array(m);
  const ci = new Float64Array(m);
  for (let x = 0; x < m; x++) {
    for (let y = 0; y < m; y++) { cr[y] = re[y * m + x]; ci[y] = im[y * m + x]; }
    fft1(cr, ci, inverse);
    for (let y = 0; y < m; y++) { re[y * m + x] = cr[y]; im[y * m + x] = ci[y]; }
  }
}

export function nextPow2(n: number): number {
  let p = 1;
  while (p < n) p <<= 1;
  return p;
}

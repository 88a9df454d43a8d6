/**
 * The simulator's own float64 mixed-radix (2, 3, 5) complex FFT, kept separate from the
 * engine's reference FFT on purpose: the truth images must not share code with what they test.
 * Convention: forward X[k] = Σ x[n] e^{−2πi kn/N}; the inverse includes 1/N.
 * Recursive decimation in time (out of place), twiddles from one table per size.
 */

interface Plan {
  n: number;
  factors: number[];
  cos: Float64Array;
  sin: Float64Array;
  tr: Float64Array;
  ti: Float64Array;
}

const plans = new Map<number, Plan>();

function factorize(n: number): number[] | null {
  const f: number[] = [];
  let m = n;
  for (const p of [4, 2, 3, 5]) {
    while (m % p === 0 && (p !== 4 || m > 4 || m === 4)) {
      f.push(p);
      m /= p;
    }
  }
  return m === 1 ? f : null;
}

function plan(n: number): Plan {
  let p = plans.get(n);
  if (p) return p;
  const factors = n === 1 ? [] : factorize(n);
  if (!factors) throw new RangeError(`FFT size ${n} is not of the form 2^a 3^b 5^c`);
  const cos = new Float64Array(n);
  const sin = new Float64Array(n);
  for (let k = 0; k < n; k++) {
    cos[k] = Math.cos((2 * Math.PI * k) / n);
    sin[k] = Math.sin((2 * Math.PI * k) / n);
  }
  p = { n, factors, cos, sin, tr: new Float64Array(n), ti: new Float64Array(n) };
  plans.set(n, p);
  return p;
}

function rec(
  p: Plan, sign: number, inRe: Float64Array, inIm: Float64Array, inOff: number, stride: number, n: number,
  outRe: Float64Array, outIm: Float64Array, outOff: number, fi: number,
): void {
  if (n === 1) {
    outRe[outOff] = inRe[inOff];
    outIm[outOff] = inIm[inOff];
    return;
  }
  const r = p.factors[fi];
  const m = n / r;
  for (let q = 0; q < r; q++) rec(p, sign, inRe, inIm, inOff + q * stride, stride * r, m, outRe, outIm, outOff + q * m, fi + 1);
  const N = p.n;
  const tw = N / n; // twiddle W_n^j = W_N^{j·tw}
  const { cos, sin } = p;
  if (r === 2) {
    for (let k = 0; k < m; k++) {
      const j = (k * tw) % N;
      const wr = cos[j], wi = sign * sin[j];
      const a = outOff + k, b = a + m;
      const xr = outRe[b] * wr - outIm[b] * wi, xi = outRe[b] * wi + outIm[b] * wr;
      outRe[b] = outRe[a] - xr; outIm[b] = outIm[a] - xi;
      outRe[a] += xr; outIm[a] += xi;
    }
    return;
  }
  // generic radix r (3, 4, 5): X[k + s m] = Σ_q W_n^{q(k + s m)} Y_q[k]
  const yr = new Float64Array(r), yi = new Float64Array(r);
  for (let k = 0; k < m; k++) {
    for (let q = 0; q < r; q++) {
      const j = (q * k * tw) % N;
      const wr = cos[j], wi = sign * sin[j];
      const a = outOff + q * m + k;
      yr[q] = outRe[a] * wr - outIm[a] * wi;
      yi[q] = outRe[a] * wi + outIm[a] * wr;
    }
    for (let s = 0; s < r; s++) {
      let sr = 0, si = 0;
      for (let q = 0; q < r; q++) {
        const j = (((q * s) % r) * (N / r)) % N;
        const wr = cos[j], wi = sign * sin[j];
        sr += yr[q] * wr - yi[q] * wi;
        si += yr[q] * wi + yi[q] * wr;
      }
      outRe[outOff + s * m + k] = sr;
      outIm[outOff + s * m + k] = si;
    }
  }
}

/** In-place 1-D transform of contiguous arrays re/im of length n (n = 2^a 3^b 5^c). */
export function fft1(re: Float64Array, im: Float64Array, inverse: boolean): void {
  const n = re.length;
  if (n <= 1) return;
  const p = plan(n);
  const inR = p.tr, inI = p.ti;
  inR.set(re);
  inI.set(im);
  rec(p, inverse ? 1 : -1, inR, inI, 0, 1, n, re, im, 0, 0);
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

/** Smallest even 2^a 3^b 5^c ≥ n. */
export function nextFftSize(n: number): number {
  for (let m = Math.max(2, Math.ceil(n)); ; m++) {
    if (m % 2 === 0 && factorize(m)) return m;
  }
}

export function nextPow2(n: number): number {
  let p = 1;
  while (p < n) p <<= 1;
  return p;
}

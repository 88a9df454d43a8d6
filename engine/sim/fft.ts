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
  /** Work arrays (Stockham ping-pong). */
  wr: Float64Array;
  wi: Float64Array;
}

const plans = new Map<number, Plan>();

function factorize(n: number): number[] | null {
  const f: number[] = [];
  let m = n;
  while (m % 4 === 0) { f.push(4); m /= 4; }
  for (const p of [2, 3, 5]) {
    while (m % p === 0) { f.push(p); m /= p; }
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
  p = { n, factors, cos, sin, wr: new Float64Array(n), wi: new Float64Array(n) };
  plans.set(n, p);
  return p;
}

const C5_1 = Math.cos((2 * Math.PI) / 5), C5_2 = Math.cos((4 * Math.PI) / 5);
const S5_1 = Math.sin((2 * Math.PI) / 5), S5_2 = Math.sin((4 * Math.PI) / 5);
const S3 = Math.sqrt(3) / 2;

/**
 * One Stockham radix-p pass (Govindaraju et al. 2008 formulation): for j < n/p, k = j mod Ns,
 * load in[j + r·n/p] (r < p), twiddle by e^{±2πi r k/(Ns p)}, p-point DFT, store to
 * out[(j div Ns)·Ns·p + k + r·Ns].
 */
function pass(p: number, ns: number, n: number, sign: number, cos: Float64Array, sin: Float64Array,
  ir: Float64Array, ii: Float64Array, or: Float64Array, oi: Float64Array): void {
  const stride = n / p;
  const tw = n / (ns * p); // twiddle index step: r·k·tw < n
  for (let j = 0; j < stride; j++) {
    const k = j % ns;
    const base = (j - k) * p + k;
    if (p === 2) {
      const t = k * tw;
      const wr = cos[t], wi = sign * sin[t];
      const ar = ir[j], ai = ii[j];
      const br0 = ir[j + stride], bi0 = ii[j + stride];
      const br = br0 * wr - bi0 * wi, bi = br0 * wi + bi0 * wr;
      or[base] = ar + br; oi[base] = ai + bi;
      or[base + ns] = ar - br; oi[base + ns] = ai - bi;
    } else if (p === 4) {
      const t1 = k * tw, t2 = 2 * t1, t3 = 3 * t1;
      const v0r = ir[j], v0i = ii[j];
      let xr = ir[j + stride], xi = ii[j + stride];
      const v1r = xr * cos[t1] - xi * sign * sin[t1], v1i = xr * sign * sin[t1] + xi * cos[t1];
      xr = ir[j + 2 * stride]; xi = ii[j + 2 * stride];
      const v2r = xr * cos[t2] - xi * sign * sin[t2], v2i = xr * sign * sin[t2] + xi * cos[t2];
      xr = ir[j + 3 * stride]; xi = ii[j + 3 * stride];
      const v3r = xr * cos[t3] - xi * sign * sin[t3], v3i = xr * sign * sin[t3] + xi * cos[t3];
      const a0r = v0r + v2r, a0i = v0i + v2i, a1r = v0r - v2r, a1i = v0i - v2i;
      const a2r = v1r + v3r, a2i = v1i + v3i;
      // (v1 − v3)·(sign·i)
      const a3r = -sign * (v1i - v3i), a3i = sign * (v1r - v3r);
      or[base] = a0r + a2r; oi[base] = a0i + a2i;
      or[base + ns] = a1r + a3r; oi[base + ns] = a1i + a3i;
      or[base + 2 * ns] = a0r - a2r; oi[base + 2 * ns] = a0i - a2i;
      or[base + 3 * ns] = a1r - a3r; oi[base + 3 * ns] = a1i - a3i;
    } else if (p === 3) {
      const t1 = k * tw, t2 = 2 * t1;
      const v0r = ir[j], v0i = ii[j];
      let xr = ir[j + stride], xi = ii[j + stride];
      const v1r = xr * cos[t1] - xi * sign * sin[t1], v1i = xr * sign * sin[t1] + xi * cos[t1];
      xr = ir[j + 2 * stride]; xi = ii[j + 2 * stride];
      const v2r = xr * cos[t2] - xi * sign * sin[t2], v2i = xr * sign * sin[t2] + xi * cos[t2];
      const sr = v1r + v2r, si = v1i + v2i;
      const tr = v0r - 0.5 * sr, ti = v0i - 0.5 * si;
      const ur = sign * S3 * (v1r - v2r), ui = sign * S3 * (v1i - v2i);
      or[base] = v0r + sr; oi[base] = v0i + si;
      or[base + ns] = tr - ui; oi[base + ns] = ti + ur;
      or[base + 2 * ns] = tr + ui; oi[base + 2 * ns] = ti - ur;
    } else {
      // radix 5, direct
      const vr = [0, 0, 0, 0, 0], vi = [0, 0, 0, 0, 0];
      for (let r = 0; r < 5; r++) {
        const t = r * k * tw;
        const xr = ir[j + r * stride], xi = ii[j + r * stride];
        vr[r] = xr * cos[t] - xi * sign * sin[t];
        vi[r] = xr * sign * sin[t] + xi * cos[t];
      }
      const c = [1, C5_1, C5_2, C5_2, C5_1], sn = [0, S5_1, S5_2, -S5_2, -S5_1];
      for (let q = 0; q < 5; q++) {
        let accr = 0, acci = 0;
        for (let r = 0; r < 5; r++) {
          const e = (q * r) % 5;
          const wr = c[e], wi = sign * sn[e];
          accr += vr[r] * wr - vi[r] * wi;
          acci += vr[r] * wi + vi[r] * wr;
        }
        or[base + q * ns] = accr; oi[base + q * ns] = acci;
      }
    }
  }
}

/** In-place 1-D transform of contiguous arrays re/im of length n (n = 2^a 3^b 5^c). */
export function fft1(re: Float64Array, im: Float64Array, inverse: boolean): void {
  const n = re.length;
  if (n <= 1) return;
  const p = plan(n);
  const sign = inverse ? 1 : -1;
  let ar = re, ai = im, br = p.wr, bi = p.wi;
  let ns = 1;
  for (const f of p.factors) {
    pass(f, ns, n, sign, p.cos, p.sin, ar, ai, br, bi);
    ns *= f;
    const tr = ar, ti = ai;
    ar = br; ai = bi; br = tr; bi = ti;
  }
  if (ar !== re) { re.set(ar); im.set(ai); }
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

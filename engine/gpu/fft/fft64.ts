/**
 * Float64 complex FFT on the CPU: the reference the GPU FFT is checked against, and the
 * transform used by the float64 forward-model reference. Iterative radix-2 for power-of-two sizes;
 * 3·2^k sizes split into three interleaved 2^k transforms combined with exact-angle twiddles.
 * Convention (numpy): forward X[k] = Σ x[n] e^{−2πi kn/N}; inverse includes 1/N.
 */

/** In-place 1-D FFT of `n` complex values at re/im[offset + stride·j]. */
export function fft1d(re: Float64Array, im: Float64Array, n: number, inverse: boolean, offset = 0, stride = 1): void {
  if (n % 3 === 0 && ((n / 3) & (n / 3 - 1)) === 0) return fft1dTimes3(re, im, n, inverse, offset, stride);
  if (n & (n - 1)) throw new Error(`fft1d: size ${n} is not 2^k or 3·2^k`);
  // bit-reversal permutation
  for (let i = 1, j = 0; i < n; i++) {
    let bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) {
      const a = offset + i * stride;
      const b = offset + j * stride;
      let t = re[a]; re[a] = re[b]; re[b] = t;
      t = im[a]; im[a] = im[b]; im[b] = t;
    }
  }
  const sign = inverse ? 1 : -1;
  for (let len = 2; len <= n; len <<= 1) {
    const half = len >> 1;
    for (let k = 0; k < half; k++) {
      const ang = (sign * 2 * Math.PI * k) / len;
      const wr = Math.cos(ang);
      const wi = Math.sin(ang);
      for (let s = 0; s < n; s += len) {
        const a = offset + (s + k) * stride;
        const b = a + half * stride;
        const xr = re[b] * wr - im[b] * wi;
        const xi = re[b] * wi + im[b] * wr;
        re[b] = re[a] - xr; im[b] = im[a] - xi;
        re[a] += xr; im[a] += xi;
      }
    }
  }
  if (inverse) {
    for (let j = 0; j < n; j++) {
      re[offset + j * stride] /= n;
      im[offset + j * stride] /= n;
    }
  }
}

/**
 * n = 3m (m a power of two), decimation in time by 3: F_r = FFT_m of x[3j + r], r < 3, then
 * X[k] = Σ_r e^{∓2πi rk/n} F_r[k mod m] (angles reduced mod n before the cos/sin: exact quarter turns).
 */
function fft1dTimes3(re: Float64Array, im: Float64Array, n: number, inverse: boolean, offset: number, stride: number): void {
  const m = n / 3;
  const fr = [0, 1, 2].map(() => new Float64Array(m));
  const fi = [0, 1, 2].map(() => new Float64Array(m));
  for (let r = 0; r < 3; r++) {
    for (let j = 0; j < m; j++) {
      fr[r][j] = re[offset + (3 * j + r) * stride];
      fi[r][j] = im[offset + (3 * j + r) * stride];
    }
    // same direction; an inverse sub-transform already divides by m, the 1/3 comes below
    if (m > 1) fft1d(fr[r], fi[r], m, inverse);
  }
  const sign = inverse ? 1 : -1;
  for (let k = 0; k < n; k++) {
    let xr = 0;
    let xi = 0;
    for (let r = 0; r < 3; r++) {
      const ang = (sign * 2 * Math.PI * ((r * k) % n)) / n;
      const wr = Math.cos(ang);
      const wi = Math.sin(ang);
      const a = fr[r][k % m];
      const b = fi[r][k % m];
      xr += a * wr - b * wi;
      xi += a * wi + b * wr;
    }
    re[offset + k * stride] = inverse ? xr / 3 : xr;
    im[offset + k * stride] = inverse ? xi / 3 : xi;
  }
}

/** In-place 2-D FFT of an M×M row-major complex image ([y][x]), numpy conventions. */
export function fft2d(re: Float64Array, im: Float64Array, m: number, inverse: boolean, offset = 0): void {
  for (let y = 0; y < m; y++) fft1d(re, im, m, inverse, offset + y * m, 1);
  for (let x = 0; x < m; x++) fft1d(re, im, m, inverse, offset + x, m);
}

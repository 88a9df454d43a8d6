/**
 * The float64 forward-model reference against an independent implementation of the same spec
 * written here from the GalSim functions and engine/gpu/fft/fft64.ts (PSF transform by FFT of the
 * zero-padded stamp instead of a direct DTFT, full 2-D inverse FFT instead of the cropped,
 * two-pairs-per-transform path), the likelihood against a direct sum, and input validation.
 */
import { describe, expect, it } from 'vitest';
import { fft2d } from '../../engine/gpu/fft/fft64.ts';
import { exponentialKValue, galaxyMatrix, quinticUval, sinc } from '../../engine/model/galsim.ts';
import {
  clearModel64Cache,
  coverageMasks,
  logLikelihood64,
  renderModel64,
  renderPairStamp64,
  residualImages64,
} from '../../engine/gpu/render/model64.ts';
import { makeTestScene } from '../../engine/reference/scene-builder.ts';
import { SceneError } from '../../engine/errors.ts';
import { DEFAULT_RENDER_OPTIONS, cloneParams, type ExposureSet, type RenderOptions, type SceneParams } from '../../engine/scene/types.ts';

/** The spec of docs/forward-model.md, written independently. */
function independentStamp(set: ExposureSet, p: number, params: SceneParams, opts: RenderOptions) {
  const pr = set.pairs[p];
  const s = pr.source;
  const N = set.sources[s].stampSize;
  const M = opts.fftFactor * N;
  const pad = (M - N) / 2;
  const cx = Math.round(pr.x) - N / 2;
  const cy = Math.round(pr.y) - N / 2;
  const [a, b, c, d] = pr.jacobian;
  const det = a * d - b * c;
  const Ji = [d / det, -b / det, -c / det, a / det];
  const px = pr.x - cx + pad + Ji[0] * params.dx[s] + Ji[1] * params.dy[s];
  const py = pr.y - cy + pad + Ji[2] * params.dx[s] + Ji[3] * params.dy[s];
  // PSF: the stamp placed with its centre pixel at index 0 (wrapped), FFT'd
  const P = set.psfSize;
  const cP = (P - 1) / 2;
  const pre = new Float64Array(M * M);
  const pim = new Float64Array(M * M);
  for (let j = 0; j < P; j++) {
    for (let i = 0; i < P; i++) {
      const ix = (i - cP + M) % M;
      const iy = (j - cP + M) % M;
      pre[iy * M + ix] += pr.psf![j * P + i];
    }
  }
  fft2d(pre, pim, M, false);
  const A = galaxyMatrix(params.e1[s], params.e2[s], params.g1, params.g2);
  const r0 = params.hlr[s] / 1.6783469900166605;
  const re = new Float64Array(M * M);
  const im = new Float64Array(M * M);
  for (let iy = 0; iy < M; iy++) {
    const my = iy < M / 2 ? iy : iy - M;
    for (let ix = 0; ix < M; ix++) {
      const mx = ix < M / 2 ? ix : ix - M;
      const kx = (2 * Math.PI * mx) / M;
      const ky = (2 * Math.PI * my) / M;
      const qu = Ji[0] * kx + Ji[2] * ky;
      const qv = Ji[1] * kx + Ji[3] * ky;
      const wu = A[0] * qu + A[2] * qv;
      const wv = A[1] * qu + A[3] * qv;
      let amp = exponentialKValue(params.flux[s], r0, wu * wu + wv * wv) * quinticUval(mx / M) * quinticUval(my / M);
      if (opts.pixelResponse) amp *= sinc(mx / M) * sinc(my / M);
      const ph = -(kx * px + ky * py);
      const o = iy * M + ix;
      const cr = Math.cos(ph);
      const ci = Math.sin(ph);
      re[o] = amp * (pre[o] * cr - pim[o] * ci);
      im[o] = amp * (pre[o] * ci + pim[o] * cr);
    }
  }
  fft2d(re, im, M, true);
  const stamp = new Float64Array(N * N);
  for (let j = 0; j < N; j++) for (let i = 0; i < N; i++) stamp[j * N + i] = re[(pad + j) * M + pad + i];
  return { cx, cy, N, stamp };
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

const scene = makeTestScene({ seed: 11 });

describe('renderPairStamp64 vs an independent implementation of the spec', () => {
  for (const pixelResponse of [false, true]) {
    it(`every tier and quadrant orientation (pixelResponse ${pixelResponse})`, () => {
      const opts = { ...DEFAULT_RENDER_OPTIONS, pixelResponse };
      const { set, params } = scene;
      const seen = new Set<string>();
      let worst = 0;
      set.pairs.forEach((pr, p) => {
        if (!pr.visible) return;
        const key = `${set.sources[pr.source].stampSize}:${pr.quadrant}`;
        if (seen.has(key)) return; // one pair per (tier, quadrant)
        seen.add(key);
        const got = renderPairStamp64(set, p, params, opts);
        const want = independentStamp(set, p, params, opts);
        expect([got.cx, got.cy, got.N]).toEqual([want.cx, want.cy, want.N]);
        let err = 0;
        for (let i = 0; i < got.stamp.length; i++) err = Math.max(err, Math.abs(got.stamp[i] - want.stamp[i]));
        worst = Math.max(worst, err / maxAbs(want.stamp));
      });
      expect(seen.size).toBe(9); // 3 tiers × 3 quadrants
      console.log(`stamp vs independent spec (pixelResponse ${pixelResponse}): max |Δ| / peak = ${worst.toExponential(2)}`);
      expect(worst).toBeLessThan(1e-11);
    });
  }

  it('fftFactor 4 works the same way', () => {
    const opts = { ...DEFAULT_RENDER_OPTIONS, fftFactor: 4 };
    const { set, params } = makeTestScene({ seed: 5, nSources: 2, sourceTiers: [64], quadrants: [{ width: 120, height: 100, rotationDeg: 70 }] });
    const got = renderPairStamp64(set, 1, params, opts);
    const want = independentStamp(set, 1, params, opts);
    let err = 0;
    for (let i = 0; i < got.stamp.length; i++) err = Math.max(err, Math.abs(got.stamp[i] - want.stamp[i]));
    expect(err / maxAbs(want.stamp)).toBeLessThan(1e-11);
  });
});

describe('renderModel64', () => {
  it('is the sum of the visible stamps clipped to each quadrant (two-pairs-per-FFT path and cache)', () => {
    const { set, params } = scene;
    clearModel64Cache(set);
    const models = renderModel64(set, params);
    const want = set.quadrants.map((q) => new Float64Array(q.width * q.height));
    let nVisible = 0;
    set.pairs.forEach((pr, p) => {
      if (!pr.visible) return;
      nVisible++;
      const st = independentStamp(set, p, params, DEFAULT_RENDER_OPTIONS);
      const q = set.quadrants[pr.quadrant];
      for (let j = 0; j < st.N; j++) {
        for (let i = 0; i < st.N; i++) {
          const x = st.cx + i;
          const y = st.cy + j;
          if (x >= 0 && x < q.width && y >= 0 && y < q.height) want[pr.quadrant][y * q.width + x] += st.stamp[j * st.N + i];
        }
      }
    });
    expect(nVisible).toBeGreaterThan(12);
    models.forEach((m, j) => {
      const peak = maxAbs(want[j]);
      let err = 0;
      for (let i = 0; i < m.length; i++) err = Math.max(err, Math.abs(m[i] - want[j][i]));
      expect(err / peak).toBeLessThan(1e-11);
    });
    // a second call served partly from the cache (other FFT partners) agrees to rounding
    const p2 = cloneParams(params);
    p2.flux[0] *= 1.1;
    renderModel64(set, p2);
    const again = renderModel64(set, params);
    again.forEach((m, j) => {
      let err = 0;
      for (let i = 0; i < m.length; i++) err = Math.max(err, Math.abs(m[i] - models[j][i]));
      expect(err / maxAbs(models[j])).toBeLessThan(1e-13);
    });
  });

  it('invisible pairs of the test scene really miss their quadrant', () => {
    const { set, params } = scene;
    const inv = set.pairs.map((pr, p) => [pr, p] as const).filter(([pr]) => !pr.visible);
    expect(inv.length).toBeGreaterThan(0);
    const psf = set.pairs.find((pr) => pr.psf)!.psf;
    const forced: ExposureSet = { ...set, pairs: set.pairs.map((pr) => (pr.visible ? pr : { ...pr, psf, visible: true })) };
    const a = renderModel64(set, params);
    const b = renderModel64(forced, params);
    a.forEach((m, j) => {
      let err = 0;
      for (let i = 0; i < m.length; i++) err = Math.max(err, Math.abs(m[i] - b[j][i]));
      expect(err / maxAbs(m)).toBeLessThan(1e-13); // rounding only: FFT partners differ
    });
    for (const [pr, p] of inv) {
      const st = renderPairStamp64(forced, p, params);
      const q = set.quadrants[pr.quadrant];
      const inside = st.cx < q.width && st.cx + st.N > 0 && st.cy < q.height && st.cy + st.N > 0;
      expect(inside).toBe(false);
    }
  });
});

describe('logLikelihood64', () => {
  it('equals −½ Σ w (model − obs)² over covered, unmasked pixels (direct sum)', () => {
    const { set, params } = scene;
    const opts = DEFAULT_RENDER_OPTIONS;
    const models = renderModel64(set, params, opts);
    const cov = set.quadrants.map((q) => new Uint8Array(q.width * q.height));
    for (const pr of set.pairs) {
      if (!pr.visible) continue;
      const N = set.sources[pr.source].stampSize;
      const q = set.quadrants[pr.quadrant];
      const cx = Math.round(pr.x) - N / 2;
      const cy = Math.round(pr.y) - N / 2;
      for (let y = Math.max(0, cy); y < Math.min(q.height, cy + N); y++)
        for (let x = Math.max(0, cx); x < Math.min(q.width, cx + N); x++) cov[pr.quadrant][y * q.width + x] = 1;
    }
    let want = 0;
    let n = 0;
    let nNan = 0;
    let nOther = 0;
    set.quadrants.forEach((q, j) => {
      expect(coverageMasks(set)[j]).toEqual(cov[j]);
      const bg = q.background as number;
      for (let i = 0; i < q.width * q.height; i++) {
        if (!cov[j][i]) continue;
        if (Number.isNaN(q.sci[i])) {
          nNan++;
          continue;
        }
        if (q.flags[i] & 1) continue;
        if (q.flags[i] & 4) nOther++; // not in the default mask: used
        const r = models[j][i] - (q.sci[i] - bg);
        want += -0.5 * (r * r) / (q.rms[i] * q.rms[i]);
        n++;
      }
    });
    expect(nNan).toBeGreaterThan(10);
    expect(nOther).toBeGreaterThan(10);
    const got = logLikelihood64(set, params, opts);
    expect(got.nPixels).toBe(n);
    expect(Math.abs(got.logL - want)).toBeLessThan(1e-9 * Math.abs(want));
    // noise-only data at the truth: −½ χ² with χ² ≈ n
    expect(-2 * got.logL / n).toBeGreaterThan(0.95);
    expect(-2 * got.logL / n).toBeLessThan(1.05);
    // a wider mask drops the 0x4 pixels
    const got5 = logLikelihood64(set, params, { ...opts, badPixelMask: 0x5 });
    expect(got5.nPixels).toBe(n - nOther);
  });

  it('ignores data outside the stamps; residual images are w·(model − obs) there', () => {
    const { set, params } = scene;
    const base = logLikelihood64(set, params).logL;
    const cov = coverageMasks(set);
    const q0 = set.quadrants[0];
    const sci = q0.sci.slice();
    let changed = 0;
    for (let i = 0; i < sci.length; i++) if (!cov[0][i]) (sci[i] = 1e6, changed++);
    expect(changed).toBeGreaterThan(0);
    const other: ExposureSet = { ...set, quadrants: [{ ...q0, sci }, ...set.quadrants.slice(1)] };
    expect(logLikelihood64(other, params).logL).toBe(base);
    const R = residualImages64(set, params);
    const models = renderModel64(set, params);
    const i = cov[0].indexOf(1) + 5 * q0.width;
    const want = (models[0][i] - (q0.sci[i] - 10)) / (q0.rms[i] * q0.rms[i]);
    if (!(q0.flags[i] & 1) && Number.isFinite(q0.sci[i])) expect(R[0][i]).toBeCloseTo(want, 10);
  });

  it('finite differences of logL recover the flux derivative exactly (logL is quadratic in flux)', () => {
    // d logL / d F_s = −Σ w (model − obs) · stamp_s / F_s, an independent closed form
    const { set, params } = scene;
    const s = 1;
    const models = renderModel64(set, params);
    let want = 0;
    set.pairs.forEach((pr, p) => {
      if (pr.source !== s || !pr.visible) return;
      const st = renderPairStamp64(set, p, params);
      const q = set.quadrants[pr.quadrant];
      for (let j = 0; j < st.N; j++)
        for (let i = 0; i < st.N; i++) {
          const x = st.cx + i;
          const y = st.cy + j;
          if (x < 0 || y < 0 || x >= q.width || y >= q.height) continue;
          const k = y * q.width + x;
          if (q.flags[k] & 1 || !Number.isFinite(q.sci[k])) continue;
          want -= ((models[pr.quadrant][k] - (q.sci[k] - 10)) / (q.rms[k] * q.rms[k])) * (st.stamp[j * st.N + i] / params.flux[s]);
        }
    });
    const h = 5;
    const pp = cloneParams(params);
    const pm = cloneParams(params);
    pp.flux[s] += h;
    pm.flux[s] -= h;
    const fd = (logLikelihood64(set, pp).logL - logLikelihood64(set, pm).logL) / (2 * h);
    expect(Math.abs(fd - want)).toBeLessThan(1e-6 * Math.max(1, Math.abs(want)));
  });

  it('~100 evaluations moving one parameter at a time take a few seconds', () => {
    const { set, params } = scene;
    const t0 = performance.now();
    let n = 0;
    for (let s = 0; s < 6; s++)
      for (const name of ['flux', 'hlr', 'e1', 'e2', 'dx', 'dy'] as const)
        for (const sign of [1, -1]) {
          const p = cloneParams(params);
          p[name][s] += sign * 1e-4;
          expect(Number.isFinite(logLikelihood64(set, p).logL)).toBe(true);
          n++;
        }
    console.log(`${n} logLikelihood64 evaluations (6 sources × 3 quadrants, tiers 64/128/256): ${(performance.now() - t0).toFixed(0)} ms`);
  });
});

describe('validation', () => {
  const { set, params } = makeTestScene({ seed: 2, nSources: 3, sourceTiers: [64], quadrants: [{ width: 100, height: 90 }] });
  const bad = (mut: (p: SceneParams) => void) => {
    const p = cloneParams(params);
    mut(p);
    return () => logLikelihood64(set, p);
  };
  it('rejects bad parameters with a message naming the source', () => {
    expect(bad((p) => (p.flux[1] = NaN))).toThrow(SceneError);
    expect(bad((p) => (p.flux[1] = NaN))).toThrow(/source 1 \(id \d+\): flux = NaN/);
    expect(bad((p) => (p.hlr[2] = 0))).toThrow(/source 2 .*hlr = 0 must be > 0/);
    expect(bad((p) => (p.hlr[0] = -0.1))).toThrow(/hlr/);
    expect(bad((p) => ((p.e1[0] = 0.8), (p.e2[0] = 0.6)))).toThrow(/\|e\| = 1 must be < 1/);
    expect(bad((p) => (p.g1 = 1.2))).toThrow(/shear \|g\|/);
    expect(bad((p) => (p.g2 = NaN))).toThrow(/g2 = NaN/);
    expect(bad((p) => (p.dx = new Float64Array(2)))).toThrow(/params.dx has 2 values, expected one per source \(3\)/);
  });

  it('rejects inconsistent scenes: sizes, a visible pair without PSF, bad stamp sizes, singular Jacobians', () => {
    const q = set.quadrants[0];
    const withQ = (patch: object): ExposureSet => ({ ...set, quadrants: [{ ...q, ...patch }] });
    expect(() => logLikelihood64(withQ({ rms: new Float32Array(10) }), params)).toThrow(/rms has 10 pixels, expected width·height = 100·90 = 9000/);
    expect(() => logLikelihood64(withQ({ flags: new Uint32Array(9001) }), params)).toThrow(/flags/);
    expect(() => logLikelihood64(withQ({ background: new Float32Array(3) }), params)).toThrow(/background map/);
    const withPair = (patch: object): ExposureSet => ({ ...set, pairs: set.pairs.map((pr, i) => (i === 1 ? { ...pr, ...patch } : pr)) });
    expect(() => logLikelihood64(withPair({ psf: null }), params)).toThrow(/pair 1 \(source 1 \(id \d+\) in quadrant 0 ".*"\): the pair is visible but has no PSF stamp/);
    expect(() => logLikelihood64(withPair({ psf: new Float64Array(20) }), params)).toThrow(/PSF stamp has 20 values/);
    expect(() => logLikelihood64(withPair({ jacobian: [0.1, 0.2, 0.05, 0.1] }), params)).toThrow(/singular/);
    expect(() => logLikelihood64(withPair({ x: NaN }), params)).toThrow(/not finite/);
    expect(() => logLikelihood64(withPair({ quadrant: 4 }), params)).toThrow(/quadrant index 4 out of range/);
    // an invisible pair may lack a PSF
    expect(() => logLikelihood64(withPair({ psf: null, visible: false }), params)).not.toThrow();
    const withSrc = (stampSize: number): ExposureSet => ({ ...set, sources: set.sources.map((s, i) => (i === 0 ? { ...s, stampSize } : s)) });
    expect(() => logLikelihood64(withSrc(80), params)).toThrow(/FFT size fftFactor·stampSize = 2·80 = 160 is not a power of two or 3 × one/);
    expect(() => logLikelihood64(withSrc(63), params)).toThrow(/stampSize = 63/);
    expect(() => logLikelihood64(set, params, { fftFactor: 1.25 })).toThrow(/fftFactor = 1.25 must be a power of two or 1.5 × one/);
    expect(() => logLikelihood64({ ...set, psfSize: 20 }, params)).toThrow(/psfSize = 20/);
  });
});

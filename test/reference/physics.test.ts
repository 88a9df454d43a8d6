/**
 * Physics oracles for the float64 forward model (docs/testing.md): flux conservation, centroid and
 * unweighted second moments against the analytic prediction
 *   Q_pix = J⁻¹ (A · 3 r0² I · Aᵀ) J⁻ᵀ + C_psf (+ I/12 with the pixel response),
 * and the behaviour of rotated / flipped CCDs. The PSF is asymmetric (offset lobe) so that its own
 * centroid and orientation matter.
 */
import { describe, expect, it } from 'vitest';
import { galaxyMatrix, hlrToR0, matInv2, type Mat2 } from '../../engine/model/galsim.ts';
import { renderPairStamp64 } from '../../engine/gpu/render/model64.ts';
import { makeGaussianPsf, makeJacobian } from '../../engine/reference/scene-builder.ts';
import { allocParams, type ExposureSet, type SceneParams } from '../../engine/scene/types.ts';

const PSF_SIZE = 21;

interface Case {
  J: Mat2;
  psf: Float64Array;
  x: number;
  y: number;
  N: number;
  flux: number;
  hlr: number;
  e: [number, number];
  g: [number, number];
  d: [number, number];
}

function sceneOf(c: Case): { set: ExposureSet; params: SceneParams } {
  const W = 4 * c.N;
  const set: ExposureSet = {
    quadrants: [{ name: 'q', width: W, height: W, sci: new Float32Array(W * W), rms: new Float32Array(W * W).fill(1), flags: new Uint32Array(W * W) }],
    sources: [{ id: 7, stampSize: c.N }],
    pairs: [{ source: 0, quadrant: 0, x: c.x, y: c.y, jacobian: [...c.J] as Mat2, psf: c.psf, visible: true }],
    psfSize: PSF_SIZE,
  };
  const params = allocParams(1);
  params.flux[0] = c.flux;
  params.hlr[0] = c.hlr;
  [params.e1[0], params.e2[0]] = c.e;
  [params.g1, params.g2] = c.g;
  [params.dx[0], params.dy[0]] = c.d;
  return { set, params };
}

/** Flux, centroid and central second moments [xx, xy, yy] of an image (pixel (x0 + i, y0 + j)). */
function moments(img: ArrayLike<number>, n: number, x0: number, y0: number) {
  let s = 0;
  let sx = 0;
  let sy = 0;
  for (let j = 0; j < n; j++)
    for (let i = 0; i < n; i++) {
      const v = img[j * n + i];
      s += v;
      sx += v * (x0 + i);
      sy += v * (y0 + j);
    }
  const mx = sx / s;
  const my = sy / s;
  let xx = 0;
  let xy = 0;
  let yy = 0;
  for (let j = 0; j < n; j++)
    for (let i = 0; i < n; i++) {
      const v = img[j * n + i];
      const dx = x0 + i - mx;
      const dy = y0 + j - my;
      xx += v * dx * dx;
      xy += v * dx * dy;
      yy += v * dy * dy;
    }
  return { flux: s, mx, my, q: [xx / s, xy / s, yy / s] as [number, number, number] };
}

/** Prediction for the stamp's centroid and covariance (pixel frame). */
function predict(c: Case, pixelResponse: boolean) {
  const psf = moments(c.psf, PSF_SIZE, -(PSF_SIZE - 1) / 2, -(PSF_SIZE - 1) / 2);
  const Ji = matInv2(c.J);
  const A = galaxyMatrix(c.e[0], c.e[1], c.g[0], c.g[1]);
  const r0 = hlrToR0(c.hlr);
  // world covariance 3 r0² A Aᵀ, then pixel covariance J⁻¹ C J⁻ᵀ
  const W: Mat2 = [
    3 * r0 * r0 * (A[0] * A[0] + A[1] * A[1]),
    3 * r0 * r0 * (A[0] * A[2] + A[1] * A[3]),
    0,
    3 * r0 * r0 * (A[2] * A[2] + A[3] * A[3]),
  ];
  W[2] = W[1];
  const T: Mat2 = [Ji[0] * W[0] + Ji[1] * W[2], Ji[0] * W[1] + Ji[1] * W[3], Ji[2] * W[0] + Ji[3] * W[2], Ji[2] * W[1] + Ji[3] * W[3]];
  const gxx = T[0] * Ji[0] + T[1] * Ji[1];
  const gxy = T[0] * Ji[2] + T[1] * Ji[3];
  const gyy = T[2] * Ji[2] + T[3] * Ji[3];
  const pix = pixelResponse ? 1 / 12 : 0;
  return {
    flux: c.flux * psf.flux,
    mx: c.x + Ji[0] * c.d[0] + Ji[1] * c.d[1] + psf.mx,
    my: c.y + Ji[2] * c.d[0] + Ji[3] * c.d[1] + psf.my,
    q: [gxx + psf.q[0] + pix, gxy + psf.q[1], gyy + psf.q[2] + pix] as [number, number, number],
    psf,
  };
}

const base: Omit<Case, 'J'> = {
  psf: makeGaussianPsf({ size: PSF_SIZE, sigma: 1.3, axisRatio: 0.85, angleDeg: 25, lobeWeight: 0.06, lobeOffset: [1.1, -0.4] }),
  x: 255.37,
  y: 248.81,
  N: 128,
  flux: 1234.5,
  hlr: 0.3,
  e: [0.3, -0.2],
  g: [0.05, 0.03],
  d: [0.04, -0.07],
};

const orientations: Array<[string, Mat2]> = [
  ['0°', makeJacobian(0.1, 0)],
  ['90°', makeJacobian(0.1, 90)],
  ['180°', makeJacobian(0.1, 180)],
  ['37°', makeJacobian(0.1, 37)],
  ['33° flipped, anisotropic', makeJacobian(0.1, 33, true, 0.02, 0.01)],
];

describe('flux, centroid and second moments vs the analytic prediction', () => {
  for (const pixelResponse of [false, true]) {
    for (const [label, J] of orientations) {
      it(`${label}, pixelResponse ${pixelResponse}`, () => {
        const c: Case = { ...base, J };
        const { set, params } = sceneOf(c);
        const st = renderPairStamp64(set, 0, params, { pixelResponse });
        const m = moments(st.stamp, st.N, st.cx, st.cy);
        const p = predict(c, pixelResponse);
        const fluxErr = Math.abs(m.flux / p.flux - 1);
        const cenErr = Math.hypot(m.mx - p.mx, m.my - p.my);
        const size = p.q[0] + p.q[2];
        const momErr = Math.max(...[0, 1, 2].map((k) => Math.abs(m.q[k] - p.q[k]))) / size;
        console.log(
          `[${label}, pixel ${pixelResponse}] flux rel ${fluxErr.toExponential(2)}; centroid ${cenErr.toExponential(2)} px; ` +
            `moments rel ${momErr.toExponential(2)} (Qxx ${m.q[0].toFixed(5)} vs ${p.q[0].toFixed(5)}, Qxy ${m.q[1].toFixed(5)} vs ${p.q[1].toFixed(5)}, Qyy ${m.q[2].toFixed(5)} vs ${p.q[2].toFixed(5)})`,
        );
        expect(fluxErr).toBeLessThan(1e-3);
        expect(cenErr).toBeLessThan(1e-3);
        expect(momErr).toBeLessThan(1e-3);
        // the prediction is not trivially satisfied: the galaxy term dominates and the PSF term is not negligible
        expect(p.psf.q[0] + p.psf.q[2]).toBeGreaterThan(0.1 * size);
      });
    }
  }
});

describe('CCD orientation', () => {
  it('world moments and world centroid offsets are the same whatever the Jacobian (0°, 90°, 180°, 37°, flipped)', () => {
    const world: number[][] = [];
    for (const [, J] of orientations) {
      const c: Case = { ...base, J };
      const { set, params } = sceneOf(c);
      const st = renderPairStamp64(set, 0, params);
      const m = moments(st.stamp, st.N, st.cx, st.cy);
      const psf = moments(c.psf, PSF_SIZE, -(PSF_SIZE - 1) / 2, -(PSF_SIZE - 1) / 2);
      // deconvolve the PSF moments and map back to the sky: Q_world = J (Q_pix − C_psf) Jᵀ
      const a = m.q[0] - psf.q[0];
      const b = m.q[1] - psf.q[1];
      const d = m.q[2] - psf.q[2];
      const T = [J[0] * a + J[1] * b, J[0] * b + J[1] * d, J[2] * a + J[3] * b, J[2] * b + J[3] * d];
      const uu = T[0] * J[0] + T[1] * J[1];
      const uv = T[0] * J[2] + T[1] * J[3];
      const vv = T[2] * J[2] + T[3] * J[3];
      // world offset of the centroid: J (centroid − x − μ_psf) = (dx, dy)
      const ox = m.mx - c.x - psf.mx;
      const oy = m.my - c.y - psf.my;
      world.push([uu, uv, vv, J[0] * ox + J[1] * oy, J[2] * ox + J[3] * oy]);
    }
    const r0 = hlrToR0(base.hlr);
    const A = galaxyMatrix(base.e[0], base.e[1], base.g[0], base.g[1]);
    const want = [
      3 * r0 * r0 * (A[0] * A[0] + A[1] * A[1]),
      3 * r0 * r0 * (A[0] * A[2] + A[1] * A[3]),
      3 * r0 * r0 * (A[2] * A[2] + A[3] * A[3]),
      base.d[0],
      base.d[1],
    ];
    for (const w of world) {
      for (let k = 0; k < 3; k++) expect(Math.abs(w[k] - want[k]) / (want[0] + want[2])).toBeLessThan(1e-3);
      for (let k = 3; k < 5; k++) expect(Math.abs(w[k] - want[k])).toBeLessThan(1e-4); // arcsec
    }
  });

  it('a CCD rotated by 180° (J → −J, PSF stamp rotated with it) sees the 180°-rotated image', () => {
    const P = PSF_SIZE;
    const rot = new Float64Array(P * P);
    for (let b = 0; b < P; b++) for (let a = 0; a < P; a++) rot[(P - 1 - b) * P + (P - 1 - a)] = base.psf[b * P + a];
    const J = makeJacobian(0.1, 21);
    const c1: Case = { ...base, N: 64, x: 80.5, y: 90, J };
    const c2: Case = { ...c1, psf: rot, J: [-J[0], -J[1], -J[2], -J[3]] };
    const s1 = renderPairStamp64(sceneOf(c1).set, 0, sceneOf(c1).params);
    const s2 = renderPairStamp64(sceneOf(c2).set, 0, sceneOf(c2).params);
    // pixel n in image 1 ↔ pixel 2·(x, y) − n in image 2
    let err = 0;
    let peak = 0;
    let compared = 0;
    for (let j = 0; j < s1.N; j++)
      for (let i = 0; i < s1.N; i++) {
        const X = 2 * c1.x - (s1.cx + i) - s2.cx;
        const Y = 2 * c1.y - (s1.cy + j) - s2.cy;
        if (X < 0 || Y < 0 || X >= s2.N || Y >= s2.N) continue;
        const v1 = s1.stamp[j * s1.N + i];
        err = Math.max(err, Math.abs(v1 - s2.stamp[Y * s2.N + X]));
        peak = Math.max(peak, Math.abs(v1));
        compared++;
      }
    expect(compared).toBeGreaterThan(60 * 60);
    console.log(`180° rotation: max |Δ| / peak = ${(err / peak).toExponential(2)} over ${compared} pixels`);
    expect(err / peak).toBeLessThan(1e-6);
  });
});

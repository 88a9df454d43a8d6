/**
 * Single-galaxy scenes for the alias tests: the simulator's truth renderer (engine/sim/
 * truth-render.ts: analytic PSF ⊗ pixel, every alias order, exact sampling) gives the "data"
 * stamp and the PSF stamps (native or oversampled); the engine's model renders the same galaxy.
 */
import { renderTruth, type Jacobian } from '../../engine/sim/truth-render.ts';
import { psfAt, shearMatrix, distortionToShear, matMul } from '../../engine/sim/psf-model.ts';
import { HLR_TO_R0 } from '../../engine/model/galsim.ts';
import type { ExposureSet, SceneParams } from '../../engine/scene/types.ts';
import { allocParams } from '../../engine/scene/types.ts';

export const PSF_NATIVE = 21;

/**
 * Unit-sum PSF stamp sampled every 1/q pixel (side 21·q, +1 if even), centre at the origin: the
 * ePSF (PSF ⊗ pixel) by default, the optical PSF alone with `pixel: false`.
 */
export function truthPsfStamp(jac: Jacobian, q: number, fpU = 300, fpV = -200, pixel = true): { data: Float64Array; size: number } {
  const psf = psfAt(fpU, fpV);
  const size = PSF_NATIVE * q + (q % 2 === 0 ? 1 : 0);
  const c = (size - 1) / 2;
  const out = new Float64Array(size * size);
  const half = Math.ceil(c / q) + 1;
  for (let ry = 0; ry < q; ry++) {
    for (let rx = 0; rx < q; rx++) {
      // a point at −(rx, ry)/q: pixel n samples the ePSF at n + r/q
      const st = renderTruth({ flux: 1, kind: 'point' }, psf, -rx / q, -ry / q, jac, { fluxTol: 1e-9, outHalf: half, oversample: 1, pixel });
      for (let b = 0; b < st.n; b++) {
        for (let a = 0; a < st.n; a++) {
          const jx = c + q * (st.x0 + a) + rx;
          const jy = c + q * (st.y0 + b) + ry;
          if (jx < 0 || jy < 0 || jx >= size || jy >= size) continue;
          out[jy * size + jx] = st.data[b * st.n + a];
        }
      }
    }
  }
  let s = 0;
  for (const v of out) s += v;
  for (let i = 0; i < out.length; i++) out[i] /= s;
  return { data: out, size };
}

export interface Galaxy {
  flux: number;
  hlr: number;
  e1: number;
  e2: number;
  g1: number;
  g2: number;
  /** Sub-pixel position of the centre. */
  x: number;
  y: number;
}

/** Exact-sampling stamp (N×N at corner (cx, cy)) of a galaxy, from the simulator's truth renderer. */
export function truthGalaxyStamp(gal: Galaxy, jac: Jacobian, cx: number, cy: number, N: number, fpU = 300, fpV = -200): Float64Array {
  const [ge1, ge2] = distortionToShear(gal.e1, gal.e2);
  const A = matMul(shearMatrix(gal.g1, gal.g2), shearMatrix(ge1, ge2));
  return window(renderTruth({ flux: gal.flux, kind: 'exp', r0: gal.hlr * HLR_TO_R0, A }, psfAt(fpU, fpV), gal.x, gal.y, jac, { fluxTol: 1e-9 }), cx, cy, N);
}

/** Exact-sampling stamp (N×N at corner (cx, cy)) of a point source (the ePSF alone) of flux `flux` at (x, y). */
export function truthPointStamp(flux: number, x: number, y: number, jac: Jacobian, cx: number, cy: number, N: number, fpU = 300, fpV = -200): Float64Array {
  return window(renderTruth({ flux, kind: 'point' }, psfAt(fpU, fpV), x, y, jac, { fluxTol: 1e-9 }), cx, cy, N);
}

/** The N×N window at corner (cx, cy) of a truth render (zero where it does not reach). */
function window(st: ReturnType<typeof renderTruth>, cx: number, cy: number, N: number): Float64Array {
  const out = new Float64Array(N * N);
  for (let b = 0; b < st.n; b++) {
    for (let a = 0; a < st.n; a++) {
      const i = st.x0 + a - cx;
      const j = st.y0 + b - cy;
      if (i >= 0 && j >= 0 && i < N && j < N) out[j * N + i] = st.data[b * st.n + a];
    }
  }
  return out;
}

/** One quadrant, one source, one pair: a scene for model64 / the engine. */
export function singleGalaxyScene(gal: Galaxy, jac: Jacobian, q: number, stampSize = 64, width = 200, height = 200, psfPixel = true): { set: ExposureSet; params: SceneParams } {
  const psf = truthPsfStamp(jac, q, 300, -200, psfPixel);
  const n = width * height;
  const set: ExposureSet = {
    quadrants: [{ name: 'q0', width, height, sci: new Float32Array(n), rms: new Float32Array(n).fill(1), flags: new Uint32Array(n) }],
    sources: [{ id: 1, stampSize }],
    pairs: [{ source: 0, quadrant: 0, x: gal.x, y: gal.y, jacobian: [...jac] as [number, number, number, number], psf: psf.data, visible: true }],
    psfSize: psf.size,
    psfOversampling: q,
  };
  const params = allocParams(1);
  params.flux[0] = gal.flux;
  params.hlr[0] = gal.hlr;
  params.e1[0] = gal.e1;
  params.e2[0] = gal.e2;
  params.g1 = gal.g1;
  params.g2 = gal.g2;
  return { set, params };
}

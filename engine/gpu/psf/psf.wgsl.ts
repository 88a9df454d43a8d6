/**
 * WGSL of the PSF-model spectra (docs/forward-model.md "Aliasing"; float64 twin:
 * engine/model/psf-spectrum.ts `psfSpectra64`), computed once per visible pair when the engine is
 * built. A stamp sampled every 1/q pixel (centre cP = (P−1)/2) is split into q² polyphase
 * components on the detector grid, d_r[t] = psf[cP + q·t + r] (t a pixel offset, r ∈ [0, q)²),
 * whose M-point FFTs D_r(k) are 2π-periodic; then, for every alias order n and base frequency k,
 *
 *   P̂(k + 2πn) = Σ_r T_x[n_x][r_x](k_x) · T_y[n_y][r_y](k_y) · D_r(k),
 *   T[n][r](k) = w_n(k) · e^{−2πi (m + nM) r / (qM)},   k = 2πm/M,
 *
 * where w_n is the Quintic window at the stamp's scale (× the pixel sinc when asked), zero outside
 * the PSF model's band [−qπ, qπ) (tabulated in float64 by `psfOrderTable`). With q = 1 and N = 0
 * this is the stamp's FFT times the window, the engine's historical PSF spectrum.
 *
 *   psfPolyPlace   q² components per pair of a chunk → M×M grids wrapped around index 0 (then FFT)
 *   psfCombine     (2N+1)² order spectra per pair from the q² component spectra
 */
import { defineKernel, read, readWrite, u32, uniform } from '../kernel.ts';
import { defineStruct } from '../struct.ts';
import { WGSL_CMUL, WGSL_SIGNED_FREQ } from '../common.wgsl.ts';

export interface PsfShaderOptions {
  /** FFT grid size. */
  m: number;
  workgroupSize: number;
  /** PSF stamp side (PSF-model pixels, odd). */
  psfSize: number;
  /** PSF samples per detector pixel. */
  q: number;
  /** Alias orders N. */
  orders: number;
}

/** The per-chunk uniform: pairs in the chunk, first output pair (within the batch). */
export const PSF_CHUNK = defineStruct('Chunk', { count: 'u32', outBase: 'u32' });

function constants(o: PsfShaderOptions) {
  return { M: u32(o.m), P: u32(o.psfSize), Q: u32(o.q), O: u32(2 * o.orders + 1) };
}

/** Image l·q² + ry·q + rx of the chunk: component (rx, ry) of pair l, at grid offset signedFreq(idx). */
export function psfPolyPlaceKernel(o: PsfShaderOptions) {
  return defineKernel({
    name: `psf-place-${o.m}`,
    bindings: {
      stamps: read('array<f32>'),
      spec: readWrite('array<vec2f>'),
      chunk: uniform(PSF_CHUNK),
    },
    workgroupSize: o.workgroupSize,
    constants: constants(o),
    shared: [WGSL_SIGNED_FREQ],
    body: /* wgsl */ `
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) li: u32) {
  let idx = wid.x * WG + li;
  let img = wid.y;
  if (idx >= M * M || img >= chunk.count * Q * Q) { return; }
  let l = img / (Q * Q);
  let r = img % (Q * Q);
  let c = i32((P - 1u) / 2u);
  let jx = c + i32(Q) * signedFreq(idx % M) + i32(r % Q);
  let jy = c + i32(Q) * signedFreq(idx / M) + i32(r / Q);
  var v = 0.0;
  if (jx >= 0 && jy >= 0 && jx < i32(P) && jy < i32(P)) {
    v = stamps[l * P * P + u32(jy) * P + u32(jx)];
  }
  spec[img * M * M + idx] = vec2f(v, 0.0);
}
`,
  });
}

/** Image l·O² + oy·O + ox: P̂(k + 2π(ox − N, oy − N)) of pair l, written at pair outBase + l of the batch. */
export function psfCombineKernel(o: PsfShaderOptions) {
  return defineKernel({
    name: `psf-combine-${o.m}`,
    bindings: {
      spec: read('array<vec2f>'),
      table: read('array<vec2f>'),
      out: readWrite('array<vec2f>'),
      chunk: uniform(PSF_CHUNK),
    },
    workgroupSize: o.workgroupSize,
    constants: constants(o),
    shared: [WGSL_CMUL],
    body: /* wgsl */ `
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) li: u32) {
  let idx = wid.x * WG + li;
  let img = wid.y;
  if (idx >= M * M || img >= chunk.count * O * O) { return; }
  let l = img / (O * O);
  let ord = img % (O * O);
  let ox = ord % O;
  let oy = ord / O;
  let ix = idx % M;
  let iy = idx / M;
  var acc = vec2f(0.0);
  for (var ry = 0u; ry < Q; ry = ry + 1u) {
    let ty = table[(oy * Q + ry) * M + iy];
    if (ty.x == 0.0 && ty.y == 0.0) { continue; }
    for (var rx = 0u; rx < Q; rx = rx + 1u) {
      let tx = table[(ox * Q + rx) * M + ix];
      acc = acc + cmul(cmul(tx, ty), spec[(l * Q * Q + ry * Q + rx) * M * M + idx]);
    }
  }
  out[((chunk.outBase + l) * O * O + ord) * M * M + idx] = acc;
}
`,
  });
}

export type PsfPlaceKernel = ReturnType<typeof psfPolyPlaceKernel>;
export type PsfCombineKernel = ReturnType<typeof psfCombineKernel>;

/**
 * `shine simulate`: a simulated Euclid VIS observation of one MER tile (or part of it) with a
 * known shear, written in the Euclid formats (docs/architecture.md "Euclid file facts"). Runtime-agnostic: files go through a
 * `SimOutput` sink (the CLI gives a Node one), one HDU at a time, so memory stays bounded by one
 * quadrant whatever the preset.
 *
 * Independence: every pixel comes from ./truth-render.ts (float64, analytic PSF, explicit alias
 * sums) — never from the engine's kernels or engine/reference/. Only the file formats (FITS
 * writer) and the WCS (TPV evaluation, validated against astropy) are shared with the engine.
 */
import { writeFitsChunks, type CardInput, type HduSpec } from '../data/fits/index.ts';
import { tangentPlane, wcsHeaderCards, type Wcs } from '../data/wcs/index.ts';
import { psfGridHeaderCards } from '../data/psf/index.ts';
import { ShineError } from '../errors.ts';
import { Rng } from './rng.ts';
import type { GalaxyProfile } from '../model/profile.ts';
import { checkGalaxyProfile, componentSecondMoment, profileCards as galaxyProfileCards, simComponents, simProfileParams, type SimComponent } from './galaxy-profile.ts';
import { psfAt, type PsfModel } from './psf-model.ts';
import { addStamp, renderTruth, type Jacobian } from './truth-render.ts';
import {
  focalPlane, fpToUV, quadrantFpBox, quadrantWcs, ditherPointing, uvToFp, DITHERS, QUAD_W, QUAD_H, PV1, PV2,
  type Pointing, type QuadrantGeom,
} from './focal-plane.ts';
import { drawScene, normalizeRotationDeg, shearField, skyAduPerPixel, aduPerMicroJy, VIS, type SkyObject, type ShearCell } from './scene.ts';
import { PRESETS, imagedRegion, presetRevision, type Preset, type PresetName } from './presets.ts';
import { DEFAULT_FFT_FACTOR } from '../config/schema.ts';

export interface SimFile {
  append(chunks: readonly Uint8Array[]): Promise<void>;
  close(): Promise<void>;
}
export interface SimOutput {
  /** Create a file at a '/'-separated path relative to the output directory. */
  open(rel: string): Promise<SimFile>;
}

export interface SimulateOptions {
  preset: PresetName | Preset;
  seed: number;
  /** Constant shear everywhere instead of the seeded per-sub-tile field. */
  shear?: [number, number] | null;
  /** Opposite shear, identical scene and noise. */
  flipShear?: boolean;
  /**
   * Rotate every galaxy's intrinsic shape by 90° ((e1, e2) → (−e1, −e2)); everything else —
   * objects, positions, sizes, fluxes, stars, shear, noise deviates, defects, catalog
   * measurement deviates — is identical. With `shear`/`flipShear`: shape-noise-cancelling sets.
   * The same as `ellipticityRotationDeg: 90`.
   */
  rotateEllipticities?: boolean;
  /**
   * Rotate every galaxy's intrinsic shape by θ degrees in position angle: (e1 + i·e2) →
   * (e1 + i·e2)·exp(2iθ), with everything else identical as for `rotateEllipticities` (which is
   * θ = 90). Reduced mod 180 (spin-2); 0, 45, 90 and 135 are exact (no-op, (−e2, e1), negation,
   * (e2, −e1)). Together with `rotateEllipticities: true` it must be ≡ 90.
   */
  ellipticityRotationDeg?: number;
  /** Pixel noise (default true). Off: SCI = background + objects (+ defects). */
  noise?: boolean;
  /** Cosmic rays, hot pixels, bad columns (default true). Saturation is always applied. */
  defects?: boolean;
  /**
   * PSF-model pixels per detector pixel in the PSF grid files (integer ≥ 1, default 1 = native
   * 21 × 21 stamps). With q > 1 each stamp is `psfStampSide(q)` = 21·q (+1 when even) samples of
   * the same truth ePSF taken every 1/q pixel, centred on the node, unit sum; header PSFOVERS = q.
   * The DET/BKG files, the truth and the catalog do not depend on it.
   */
  psfOversampling?: number;
  /**
   * Light profile of every galaxy (default exponential; output byte-identical to before then).
   * `{ type: 'spergel', nu }`: FT F (1 + r0²k²)^(−(1+ν)), r0 = hlr / c_ν, −0.85 ≤ ν ≤ 4, the truth
   * HLR column still the half-light radius; headers GALPROF = 'SPERGEL', SPERGNU = ν.
   */
  profile?: GalaxyProfile;
  /**
   * Leave out of the pixels every object that the MER catalog does not list (undetected: catalog
   * S/N < 3). Default false: the sky holds them, as a real one does, and their light is in no
   * model — a source of shear bias of its own (docs/calibrate.md "Galaxies the catalog never
   * detected"). True isolates the estimator's and the renderer's bias in a noise-free calibration.
   * The catalog, the truth table (undetected rows keep OBJECT_ID −1) and the noise are unchanged;
   * headers OMITUND = T.
   */
  omitUndetected?: boolean;
  /** Progress: called after each quadrant. */
  onProgress?: (done: number, total: number, label: string) => void;
  /**
   * Render quadrants elsewhere (e.g. worker threads): given a job, return what renderJob(job)
   * returns. Up to `concurrency` jobs are in flight; results are written in order, so the files
   * do not depend on it.
   */
  render?: (job: QuadrantJob) => Promise<QuadrantResult>;
  concurrency?: number;
}

/** Everything a worker needs to render one quadrant (plain data, structured-cloneable). */
export interface QuadrantJob {
  preset: Preset;
  seed: number;
  shear: [number, number] | null;
  flipShear: boolean;
  rotateEllipticities: boolean;
  /** Rotation of the intrinsic shapes (degrees); overrides `rotateEllipticities` when given. */
  ellipticityRotationDeg?: number;
  noise: boolean;
  defects: boolean;
  dither: number;
  crop: number;
  /** PSF-model pixels per detector pixel of the PSF grid (default 1). */
  psfOversampling?: number;
  /** Galaxy light profile (default exponential). */
  profile?: GalaxyProfile;
  /**
   * Diagnostics: render only the objects with these truth IDs (the `ID` column of truth/sources.fits);
   * noise, background and defects as without it. Absent: every object.
   */
  renderOnly?: readonly number[];
}

export interface QuadrantResult {
  sci: Float32Array;
  rms: Float32Array;
  flg: Int32Array;
  bkg: Float32Array;
  psf: Float32Array;
}

export interface SimulateSummary {
  preset: PresetName;
  objects: number;
  galaxies: number;
  stars: number;
  catalogRows: number;
  exposures: number;
  quadrants: number;
  files: string[];
  shear: ShearCell[];
  /** Rotation of the galaxies' intrinsic shapes, degrees in [0, 180) (EROTDEG). */
  ellipticityRotationDeg: number;
}

/** FLG bits (docs/architecture.md "Euclid file facts"). */
export const FLAG = { HOT: 1 << 1, SAT: 1 << 3, COSMIC: 1 << 4, BAD_COLUMN: 1 << 7 } as const;
/** The bits whose pixels the pipeline config masks (INVALID | HOT | SAT | COSMIC | BAD_COLUMN). */
export const SIM_BAD_PIXEL_MASK = 0x1 | FLAG.HOT | FLAG.SAT | FLAG.COSMIC | FLAG.BAD_COLUMN;

const TIMESTAMP = '20250101T000000.000000Z';
const PSF_STAMP = 21;
const PSF_GRID = 9;

/** Side of the simulator's PSF stamps at oversampling q: 21·q, +1 when even (odd, centred). */
export function psfStampSide(q: number): number {
  const s = PSF_STAMP * q;
  return s % 2 === 0 ? s + 1 : s;
}

export { checkGalaxyProfile } from './galaxy-profile.ts';

/**
 * Truth columns of the per-galaxy profile parameters (0 for stars): NU (Spergel, ν per galaxy);
 * BT, HLR_B, E1_B, E2_B (bulge + disk; HLR, E1, E2 are then the disk's). None otherwise, so that
 * the default output stays byte-identical.
 */
function profileTruthColumns(o: SkyObject[], profile: GalaxyProfile | undefined, seed: number): Array<{ name: string; data: Float64Array; unit?: string }> {
  const sp = checkGalaxyProfile(profile);
  if (!sp || (sp.type === 'spergel' && !sp.free)) return [];
  const pp = o.map((x) => simProfileParams(x, sp, seed));
  if (sp.type === 'spergel') return [{ name: 'NU', data: Float64Array.from(pp.map((p) => p.nu ?? 0)) }];
  return [
    { name: 'BT', data: Float64Array.from(pp.map((p) => p.bulgeFrac ?? 0)) },
    { name: 'HLR_B', data: Float64Array.from(pp.map((p) => p.bulgeHlr ?? 0)), unit: 'arcsec' },
    { name: 'E1_B', data: Float64Array.from(pp.map((p) => p.bulgeE1 ?? 0)) },
    { name: 'E2_B', data: Float64Array.from(pp.map((p) => p.bulgeE2 ?? 0)) },
  ];
}

/** Validated PSF oversampling (positive integer; undefined → 1). */
export function checkPsfOversampling(q: number | undefined): number {
  if (q === undefined) return 1;
  if (!Number.isInteger(q) || q < 1 || q > 16) {
    throw new ShineError(`--psf-oversampling must be an integer from 1 to 16 (PSF pixels per detector pixel), got ${String(q)}`, { field: 'psfOversampling' });
  }
  return q;
}

export function detFileName(obsId: number, dither: number): string {
  return `EUC_VIS_SWL-DET-${String(obsId).padStart(6, '0')}-${String(dither).padStart(2, '0')}-1-0000000__${TIMESTAMP}.fits`;
}
export function bkgFileName(obsId: number, dither: number): string {
  return `EUC_VIS_SWL-BKG-${String(obsId).padStart(6, '0')}-${String(dither).padStart(2, '0')}-1-0000000__${TIMESTAMP}.fits`;
}
export function psfFileName(obsId: number, dither: number): string {
  return `EUC_VIS_SWL-PSF-${String(obsId).padStart(6, '0')}-${String(dither).padStart(2, '0')}-1-0000000__${TIMESTAMP}.fits`;
}
export function merFileName(tileId: number): string {
  return `EUC_MER_FINAL-CAT_TILE${tileId}-SIM_${TIMESTAMP}_00.00.fits`;
}

// ----------------------------------------------------------------------------------------------
// streaming FITS

let primaryBytes = -1;
function primaryLength(): number {
  if (primaryBytes < 0) primaryBytes = writeFitsChunks([{ kind: 'empty' }]).reduce((a, c) => a + c.length, 0);
  return primaryBytes;
}

/** Chunks of one extension HDU (the writer's primary HDU stripped). */
function extensionChunks(spec: HduSpec): Uint8Array[] {
  const chunks = writeFitsChunks([{ kind: 'empty' }, spec]);
  let skip = primaryLength();
  const out: Uint8Array[] = [];
  for (const c of chunks) {
    if (skip >= c.length) { skip -= c.length; continue; }
    out.push(skip > 0 ? c.subarray(skip) : c);
    skip = 0;
  }
  return out;
}

async function writeWhole(out: SimOutput, rel: string, hdus: HduSpec[], files: string[]): Promise<void> {
  const f = await out.open(rel);
  await f.append(writeFitsChunks(hdus));
  await f.close();
  files.push(rel);
}

// ----------------------------------------------------------------------------------------------
// geometry helpers

interface Crop {
  q: QuadrantGeom;
  name: string;
  x0: number;
  y0: number;
  w: number;
  h: number;
  wcs: Wcs;
}

/** Pixel radius (conservative) of an object's stamp, for candidate selection. */
function roughRadiusPx(o: SkyObject, comps: SimComponent[]): number {
  const psfR = 5 * 0.26 * 1.1 + 0.2; // widest PSF component, arcsec
  if (o.isStar) return (psfR + 1) / 0.1 + 4;
  const gmax = Math.hypot(o.g1, o.g2);
  let r = 0;
  for (const c of comps) {
    const ge = c.e / (1 + Math.sqrt(1 - c.e * c.e));
    const stretch = Math.sqrt((1 + ge) / (1 - ge)) * Math.sqrt((1 + gmax) / (1 - gmax));
    r = Math.max(r, c.r5 * c.r0 * stretch);
  }
  return (r + psfR) / 0.1 + 4;
}

function cropsFor(preset: Preset, pointing: Pointing, region: [number, number, number, number], toSky: (u: number, v: number) => [number, number]): Crop[] {
  const fp = focalPlane();
  const pt = tangentPlane(pointing.ra, pointing.dec);
  // region outline in focal-plane pixels
  const pts: Array<[number, number]> = [];
  const [u0, u1, v0, v1] = region;
  const n = 16;
  for (let i = 0; i <= n; i++) {
    for (const [u, v] of [[u0 + ((u1 - u0) * i) / n, v0], [u0 + ((u1 - u0) * i) / n, v1], [u0, v0 + ((v1 - v0) * i) / n], [u1, v0 + ((v1 - v0) * i) / n]]) {
      const [ra, dec] = toSky(u, v);
      const [pu, pv] = pt.toUV(ra, dec);
      pts.push(uvToFp(pointing, pu, pv));
    }
  }
  let X0 = Infinity, X1 = -Infinity, Y0 = Infinity, Y1 = -Infinity;
  for (const [X, Y] of pts) { X0 = Math.min(X0, X); X1 = Math.max(X1, X); Y0 = Math.min(Y0, Y); Y1 = Math.max(Y1, Y); }
  const slack = 12; // distortion (≤ 5 px) + rounding
  X0 -= slack; X1 += slack; Y0 -= slack; Y1 += slack;
  const crops: Crop[] = [];
  for (const q of fp) {
    const [bx0, bx1, by0, by1] = quadrantFpBox(q);
    if (bx1 < X0 || bx0 > X1 || by1 < Y0 || by0 > Y1) continue;
    let x0 = 0, y0 = 0, w = QUAD_W, h = QUAD_H;
    if (preset.crop) {
      // pixel range of the FP box [X0, X1] × [Y0, Y1]: x = (X − ax)/sx
      const xa = (X0 - q.ax) / q.sx, xb = (X1 - q.ax) / q.sx;
      const ya = (Y0 - q.ay) / q.sy, yb = (Y1 - q.ay) / q.sy;
      x0 = Math.max(0, Math.floor(Math.min(xa, xb)));
      y0 = Math.max(0, Math.floor(Math.min(ya, yb)));
      const x1 = Math.min(QUAD_W - 1, Math.ceil(Math.max(xa, xb)));
      const y1 = Math.min(QUAD_H - 1, Math.ceil(Math.max(ya, yb)));
      if (x1 < x0 || y1 < y0) continue;
      w = x1 - x0 + 1;
      h = y1 - y0 + 1;
    }
    crops.push({ q, name: `${q.ccd}.${q.quad}`, x0, y0, w, h, wcs: quadrantWcs(q, pointing, x0, y0, w, h) });
  }
  return crops;
}

// ----------------------------------------------------------------------------------------------
// one quadrant

interface QuadrantImages {
  sci: Float32Array;
  rms: Float32Array;
  flg: Int32Array;
  bkg: Float32Array;
}

function renderQuadrant(
  crop: Crop, pointing: Pointing, dither: number, objects: SkyObject[], seed: number, opts: { noise: boolean; defects: boolean; profile?: GalaxyProfile },
): QuadrantImages {
  const { w, h, wcs, q } = crop;
  const signal = new Float64Array(w * h);
  const [bx0, bx1, by0, by1] = quadrantFpBox(q);
  const pt = tangentPlane(pointing.ra, pointing.dec);
  for (const o of objects) {
    const [pu, pv] = pt.toUV(o.ra, o.dec);
    const [X, Y] = uvToFp(pointing, pu, pv);
    const comps = simComponents(o, opts.profile, seed);
    const r = roughRadiusPx(o, comps);
    if (X + r < bx0 || X - r > bx1 || Y + r < by0 || Y - r > by1) continue;
    const [x, y] = wcs.skyToPixel(o.ra, o.dec);
    if (x + r < -0.5 || x - r > w - 0.5 || y + r < -0.5 || y - r > h - 0.5) continue;
    const jac = wcs.localJacobian(x, y);
    // PSF at the focal-plane position of the object (undistorted focal-plane coordinates)
    const [fu, fv] = fpToUV(pointing, q.ax + q.sx * (x + crop.x0), q.ay + q.sy * (y + crop.y0));
    const psf = psfAt(fu, fv);
    if (o.isStar) addStamp(signal, w, h, renderTruth({ flux: o.fluxAdu, kind: 'point' }, psf, x, y, jac));
    // one stamp per component (bulge + disk: two), each rendered exactly
    for (const c of comps) {
      const obj = c.kind === 'exp' ? { flux: c.flux, kind: 'exp' as const, r0: c.r0, A: c.A } : { flux: c.flux, kind: 'spergel' as const, nu: c.nu, r0: c.r0, A: c.A };
      addStamp(signal, w, h, renderTruth(obj, psf, x, y, jac));
    }
  }

  // background: the zodiacal sky with a gentle gradient across the focal plane
  const sky0 = skyAduPerPixel();
  const bkg = new Float32Array(w * h);
  for (let j = 0; j < h; j++) {
    for (let i = 0; i < w; i++) {
      const X = q.ax + q.sx * (i + crop.x0), Y = q.ay + q.sy * (j + crop.y0);
      bkg[j * w + i] = sky0 * (1 + 0.02 * (X / 12600) - 0.015 * (Y / 13500) + 0.01 * dither / 4);
    }
  }

  const { gain, rdnoise, saturate } = VIS;
  const sci = new Float32Array(w * h);
  const rms = new Float32Array(w * h);
  const flg = new Int32Array(w * h);
  const noiseRng = new Rng(seed, `noise/${dither}/${crop.name}`);
  for (let k = 0; k < w * h; k++) {
    const mean = bkg[k] + signal[k];
    const varE = Math.max(mean, 0) * gain + rdnoise * rdnoise;
    const sigma = Math.sqrt(varE) / gain;
    const z = noiseRng.normal(); // always drawn: the same stream whether or not noise is on
    sci[k] = opts.noise ? mean + sigma * z : mean;
    rms[k] = sigma;
  }

  if (opts.defects) {
    // hot pixels and bad columns belong to the detector: same in every exposure
    const hot = new Rng(seed, `hot/${crop.name}`);
    const nHot = hot.poisson(QUAD_W * QUAD_H * 2e-4);
    for (let t = 0; t < nHot; t++) {
      const xi = hot.int(QUAD_W) - crop.x0, yi = hot.int(QUAD_H) - crop.y0;
      const amp = hot.range(200, 5000);
      if (xi < 0 || xi >= w || yi < 0 || yi >= h) continue;
      sci[yi * w + xi] += amp;
      flg[yi * w + xi] |= FLAG.HOT;
    }
    const bad = new Rng(seed, `badcol/${crop.name}`);
    const nBad = bad.poisson(0.8);
    for (let t = 0; t < nBad; t++) {
      const xc = bad.int(QUAD_W) - crop.x0;
      const level = bad.range(-100, 800);
      const yStart = bad.int(QUAD_H);
      if (xc < 0 || xc >= w) continue;
      for (let j = Math.max(0, yStart - crop.y0); j < h; j++) {
        sci[j * w + xc] = bkg[j * w + xc] + level;
        flg[j * w + xc] |= FLAG.BAD_COLUMN;
      }
    }
    // cosmic rays: short straight tracks, ~0.1% of pixels hit per 560 s exposure
    const cr = new Rng(seed, `cosmic/${dither}/${crop.name}`);
    const nCr = cr.poisson(w * h * 2e-4);
    for (let t = 0; t < nCr; t++) {
      let x = cr.range(-0.5, w - 0.5), y = cr.range(-0.5, h - 0.5);
      const len = cr.range(1, 12);
      const ang = cr.range(0, Math.PI);
      const dx = Math.cos(ang), dy = Math.sin(ang);
      const steps = Math.ceil(len * 2);
      const eDep = cr.range(300, 4000); // e- per pixel
      let last = -1;
      for (let s = 0; s <= steps; s++) {
        const xi = Math.round(x + (dx * len * s) / steps), yi = Math.round(y + (dy * len * s) / steps);
        if (xi < 0 || xi >= w || yi < 0 || yi >= h) continue;
        const k = yi * w + xi;
        if (k === last) continue;
        last = k;
        sci[k] += eDep / gain;
        flg[k] |= FLAG.COSMIC;
      }
      x += 0; y += 0;
    }
  }
  for (let k = 0; k < w * h; k++) {
    if (sci[k] >= saturate) {
      sci[k] = saturate;
      flg[k] |= FLAG.SAT;
    }
  }
  return { sci, rms, flg, bkg };
}

/**
 * One PSF stamp of the PSF product: the truth ePSF (the analytic PSF ⊗ the pixel, through the
 * local Jacobian `jac`) sampled every 1/q detector pixel in the pixel frame, `psfStampSide(q)`
 * samples a side, sample (a, b) at offset ((a − c)/q, (b − c)/q) pixels from the node,
 * c = (side − 1)/2; float64, normalised to unit sum (the sum of the samples).
 *
 * renderTruth samples at integer pixel centres relative to a sub-pixel object position, so the
 * q² phases come from q² renders with the object at (−rx/q, −ry/q): fine offset t = q·n + r
 * (r = t mod q) is pixel n of the render of phase r. They are interleaved. q = 1 is exactly the
 * native stamp (one render at (0, 0), half-side 10).
 */
export function truthPsfStamp(psf: PsfModel, jac: Jacobian, q = 1): Float64Array {
  const S = psfStampSide(q);
  const c = (S - 1) / 2;
  // pixel offsets n = floor(t/q), |t| ≤ c: within ±ceil(c/q) of the node; a render of a
  // phase > ½ is centred on pixel −1, hence the extra pixel
  const outHalf = q === 1 ? c : Math.ceil(c / q) + 1;
  const out = new Float64Array(S * S);
  const phase = (t: number) => ((t % q) + q) % q;
  for (let ry = 0; ry < q; ry++) {
    for (let rx = 0; rx < q; rx++) {
      const st = renderTruth({ flux: 1, kind: 'point' }, psf, rx === 0 ? 0 : -rx / q, ry === 0 ? 0 : -ry / q, jac, { fluxTol: 1e-7, outHalf, oversample: 1 });
      for (let b = 0; b < S; b++) {
        const tb = b - c;
        if (phase(tb) !== ry) continue;
        const row = (tb - ry) / q - st.y0;
        if (row < 0 || row >= st.n) throw new Error(`internal: PSF phase row ${row} outside the render`);
        for (let a = 0; a < S; a++) {
          const ta = a - c;
          if (phase(ta) !== rx) continue;
          const col = (ta - rx) / q - st.x0;
          if (col < 0 || col >= st.n) throw new Error(`internal: PSF phase column ${col} outside the render`);
          out[b * S + a] = st.data[row * st.n + col];
        }
      }
    }
  }
  let sum = 0;
  for (let t = 0; t < S * S; t++) sum += out[t];
  for (let t = 0; t < S * S; t++) out[t] /= sum;
  return out;
}

/** 0-based pixel position of PSF grid node (i, j) in a crop (engine/data/psf/grid.ts). */
function psfNode(crop: Crop, i: number, j: number): [number, number] {
  return [((i + 0.5) * crop.w) / PSF_GRID - 0.5, ((j + 0.5) * crop.h) / PSF_GRID - 0.5];
}

/**
 * 9 × 9 grid of unit-sum PSF stamps (pixel response included) in the crop's pixel frame:
 * 21 × 21 native pixels, or psfStampSide(q)² samples every 1/q pixel (truthPsfStamp).
 */
function psfGridImage(crop: Crop, pointing: Pointing, q = 1): Float32Array {
  const S = psfStampSide(q), G = PSF_GRID;
  const side = S * G;
  const img = new Float32Array(side * side);
  for (let j = 0; j < G; j++) {
    for (let i = 0; i < G; i++) {
      const [x, y] = psfNode(crop, i, j);
      const jac = crop.wcs.localJacobian(x, y);
      const [fu, fv] = fpToUV(pointing, crop.q.ax + crop.q.sx * (x + crop.x0), crop.q.ay + crop.q.sy * (y + crop.y0));
      const st = truthPsfStamp(psfAt(fu, fv), jac, q);
      for (let b = 0; b < S; b++) {
        for (let a = 0; a < S; a++) img[(j * S + b) * side + i * S + a] = st[b * S + a];
      }
    }
  }
  return img;
}

/**
 * The analytic PSF model and local Jacobian at every PSF grid node of one quadrant (node order
 * j·9 + i), as the simulator uses them for the PSF product: for tests comparing the stamps with
 * the analytic model.
 */
export function psfGridNodes(preset: PresetName | Preset, seed: number, dither: number, crop: number): Array<{ i: number; j: number; x: number; y: number; psf: PsfModel; jacobian: Jacobian }> {
  const p = typeof preset === 'string' ? PRESETS[preset] : preset;
  const ctx = buildContext(p, seed, null, false, 0);
  const c = ctx.cropsPerExp[dither][crop];
  const pointing = ctx.pointings[dither];
  const out: Array<{ i: number; j: number; x: number; y: number; psf: PsfModel; jacobian: Jacobian }> = [];
  for (let j = 0; j < PSF_GRID; j++) {
    for (let i = 0; i < PSF_GRID; i++) {
      const [x, y] = psfNode(c, i, j);
      const jacobian = c.wcs.localJacobian(x, y);
      const [fu, fv] = fpToUV(pointing, c.q.ax + c.q.sx * (x + c.x0), c.q.ay + c.q.sy * (y + c.y0));
      out.push({ i, j, x, y, psf: psfAt(fu, fv), jacobian });
    }
  }
  return out;
}

// ----------------------------------------------------------------------------------------------
// catalog

interface CatalogRow {
  objectId: bigint;
  ra: number;
  dec: number;
  flux: number;
  fluxErr: number;
  fluxPsf: number;
  semiMajor: number;
  ellipticity: number;
  pa: number;
  visDet: number;
  spurious: number;
  pointLike: number;
  detQuality: number;
  deblended: number;
  truthIndex: number;
}

const KRON_FACTOR = 2.7;
/** Galaxy counts: N(< m) = N24 · 10^(0.3 (m − 24)) per arcmin². */
export const N24 = 22;

function measureCatalog(
  seed: number, preset: Preset, objects: SkyObject[], region: [number, number, number, number], toSky: (u: number, v: number) => [number, number], profile?: GalaxyProfile,
): CatalogRow[] {
  const rng = new Rng(seed, 'catalog');
  const conv = aduPerMicroJy();
  const sky = skyAduPerPixel();
  const sigPix = Math.sqrt(sky * VIS.gain + VIS.rdnoise ** 2) / VIS.gain; // ADU, one exposure
  const nExp = DITHERS.length;
  const rows: CatalogRow[] = [];
  const sigPsf = 0.75; // px, Gaussian-equivalent PSF width
  // neighbours for DEBLENDED_FLAG (grid hash, 2″ cells)
  const cells = new Map<string, number[]>();
  objects.forEach((o, i) => {
    const key = `${Math.floor(o.u / 2)},${Math.floor(o.v / 2)}`;
    (cells.get(key) ?? cells.set(key, []).get(key)!).push(i);
  });
  const hasNeighbour = (o: SkyObject, i: number): boolean => {
    const cu = Math.floor(o.u / 2), cv = Math.floor(o.v / 2);
    for (let a = -1; a <= 1; a++) for (let b = -1; b <= 1; b++) {
      for (const k of cells.get(`${cu + a},${cv + b}`) ?? []) {
        if (k !== i && Math.hypot(objects[k].u - o.u, objects[k].v - o.v) < 1.0) return true;
      }
    }
    return false;
  };
  objects.forEach((o, i) => {
    const hlrPx = o.hlr / 0.1;
    // optimal-weight error of a Gaussian-like profile (σ ≈ hlr, PSF σ ≈ 0.75 px), times KRON_FACTOR for
    // the Kron-like aperture of a MER total flux; 4 exposures stacked
    const sg = hlrPx;
    const nEff = 4 * Math.PI * (sg * sg + sigPsf * sigPsf);
    const errAdu = (KRON_FACTOR * Math.sqrt(sigPix * sigPix * nEff + o.fluxAdu / VIS.gain)) / Math.sqrt(nExp);
    const fluxMeasAdu = o.fluxAdu + errAdu * rng.normal();
    const snr = fluxMeasAdu / errAdu;
    const posErr = Math.min(0.2, (0.5 * Math.hypot(0.16, 2 * o.hlr)) / Math.max(snr, 1)); // arcsec
    const du = posErr * rng.normal(), dv = posErr * rng.normal();
    // observed shape: second moments of the sheared galaxy plus PSF (world, arcsec²)
    let qa = 0.005, qb = 0, qc = 0.005;
    // per-axis second moment of each component: 3 r0² (exponential), 2(1 + ν) r0² (Spergel), flux-weighted
    for (const c of simComponents(o, profile, seed)) {
      const A = c.A;
      const s = (componentSecondMoment(c) * c.flux) / o.fluxAdu;
      qa += s * (A[0] * A[0] + A[1] * A[1]);
      qb += s * (A[0] * A[2] + A[1] * A[3]);
      qc += s * (A[2] * A[2] + A[3] * A[3]);
    }
    const tr = (qa + qc) / 2, dd = Math.sqrt(((qa - qc) / 2) ** 2 + qb * qb);
    const l1 = tr + dd, l2 = Math.max(tr - dd, 1e-12);
    const ba = Math.sqrt(l2 / l1);
    const phi = 0.5 * Math.atan2(2 * qb, qa - qc); // major-axis angle from +u
    let pa = (Math.atan2(-Math.cos(phi), Math.sin(phi)) * 180) / Math.PI; // East of North
    pa = ((((pa + 90) % 180) + 180) % 180) - 90;
    const hlrObs = Math.hypot(o.hlr, 0.08);
    const semiMajor = (hlrObs / 0.1) * Math.exp(rng.normal() * (0.1 + 1 / Math.max(snr, 3)));
    const ellipticity = Math.min(0.99, Math.max(0, 1 - ba + rng.normal() * Math.min(0.2, 1 / Math.max(snr, 3))));
    const fluxPsf = o.isStar ? fluxMeasAdu : fluxMeasAdu * (0.16 * 0.16) / (0.16 * 0.16 + (2 * o.hlr) ** 2);
    const detected = snr >= 3;
    if (!detected) return;
    const pointLike = o.isStar ? (snr >= 10 || rng.uniform() < 0.5 ? 1 : 0) : o.hlr < 0.07 && rng.uniform() < 0.3 ? 1 : 0;
    let detQuality = 0;
    if (rng.uniform() < 0.03) detQuality |= 0x1; // not in SHINE's 0x78C mask
    if (rng.uniform() < 0.02) detQuality |= 0x4; // masked by 0x78C
    const [ra, dec] = toSky(o.u + du, o.v + dv);
    rows.push({
      objectId: BigInt(preset.tileId) * 1000000n + BigInt(o.id), ra, dec,
      flux: fluxMeasAdu / conv, fluxErr: errAdu / conv, fluxPsf: fluxPsf / conv,
      semiMajor, ellipticity, pa, visDet: snr >= 5 ? 1 : 0, spurious: 0, pointLike, detQuality,
      deblended: hasNeighbour(o, i) ? 1 : 0, truthIndex: i,
    });
  });
  // spurious detections (≈ 1 % of the catalog): noise peaks with no object behind them
  const [u0, u1, v0, v1] = region;
  const nSp = rng.poisson(rows.length * 0.01);
  for (let t = 0; t < nSp; t++) {
    const [ra, dec] = toSky(rng.range(u0, u1), rng.range(v0, v1));
    const f = rng.range(3, 8) * sigPix * 3 / conv;
    rows.push({
      objectId: BigInt(preset.tileId) * 1000000n + 900000n + BigInt(t), ra, dec, flux: f, fluxErr: f / rng.range(3, 12),
      fluxPsf: f, semiMajor: rng.range(0.8, 2), ellipticity: rng.range(0, 0.5), pa: rng.range(-90, 90),
      visDet: 1, spurious: 1, pointLike: 0, detQuality: 0, deblended: 0, truthIndex: -1,
    });
  }
  return rows;
}

// ----------------------------------------------------------------------------------------------
// config

function configYaml(preset: Preset, files: { det: string[]; bkg: string[]; psf: string[]; mer: string }): string {
  const list = (xs: string[]) => xs.map((x) => `    - ${x}`).join('\n');
  const sub = preset.subTile ? `[${preset.subTile[0]}, ${preset.subTile[1]}]` : 'null';
  return `# Written by \`shine simulate --preset ${preset.name}\`. Paths are relative to this file's directory.
data:
  tile_index: tiles.fits
  mer_catalog: MER/${files.mer}
  exposures:
${list(files.det.map((d) => `VIS/${d}`))}
  backgrounds:
${list(files.bkg.map((d) => `VIS/${d}`))}
  psf:
${list(files.psf.map((d) => `VIS/${d}`))}
  bad_pixel_mask: ${SIM_BAD_PIXEL_MASK}   # INVALID|HOT|SAT|COSMIC|BAD_COLUMN = 0x${SIM_BAD_PIXEL_MASK.toString(16)}
  psf_includes_pixel: true
tile:
  tile_id: ${preset.tileId}
  core_arcmin: ${preset.tileCore / 60}
  sub_tile_grid: [${preset.grid}, ${preset.grid}]
  margin_arcmin: ${preset.margin / 60}
  simulated_sub_tile: ${sub}   # [row, col] imaged by the simulation (null: the whole tile)
sources:
  snr_min: 10
  vis_det: 1
  exclude_spurious: true
  exclude_point_like: true
  det_quality_mask: 0x78C
  hlr_clip_arcsec: [0.05, 5.0]
stamps:
  tiers: [${preset.stampTiers.join(', ')}]
  fft_factor: ${DEFAULT_FFT_FACTOR}   # FFT grid = 1.5 × stamp (docs/bench.md "FFT size")
background:
  method: bkg_file   # per-quadrant maps from the BKG files
gal:
  priors:
    # the project's shear estimator (docs/inference.md); SHINE's priors are
    # shear { type: normal, mean: 0.0, sigma: 0.05 } and ellipticity { type: normal, mean: 0.0, sigma: 0.3 }
    shear: { type: uniform, low: -0.5, high: 0.5 }
    flux: { type: lognormal, center: catalog, sigma: 0.5 }
    hlr: { type: lognormal, center: catalog, sigma: 0.3 }
    ellipticity: { type: ba14, sigma: 0.3 }
    offset: { type: normal, mean: 0.0, sigma_arcsec: 0.05 }
inference:
  method: map
  methods:
    map: { optimizer: lbfgs, max_iterations: 500 }
    vi: { steps: 2000 }
    nuts: { warmup: 500, samples: 500 }
output:
  dir: results
truth:
  sources: truth/sources.fits
  shear: truth/shear.fits
`;
}

// ----------------------------------------------------------------------------------------------

interface SimContext {
  preset: Preset;
  toSky: (u: number, v: number) => [number, number];
  region: [number, number, number, number];
  popRegion: [number, number, number, number];
  shear: ShearCell[];
  objects: SkyObject[];
  pointings: Pointing[];
  cropsPerExp: Crop[][];
}

/**
 * The rotation of the galaxies' intrinsic shapes, in [0, 180) degrees, from the two options:
 * `ellipticityRotationDeg` when given, else 90 for `rotateEllipticities`, else 0.
 */
export function ellipticityRotation(rotateEllipticities?: boolean, ellipticityRotationDeg?: number): number {
  if (ellipticityRotationDeg === undefined || ellipticityRotationDeg === null) return rotateEllipticities ? 90 : 0;
  if (typeof ellipticityRotationDeg !== 'number' || !Number.isFinite(ellipticityRotationDeg)) {
    throw new ShineError(`the ellipticity rotation must be a finite number of degrees, got ${String(ellipticityRotationDeg)}`, { field: 'ellipticityRotationDeg' });
  }
  const t = normalizeRotationDeg(ellipticityRotationDeg);
  if (rotateEllipticities && t !== 90) {
    throw new ShineError(`rotateEllipticities (90°) contradicts ellipticityRotationDeg ${ellipticityRotationDeg}°`, { field: 'ellipticityRotationDeg' });
  }
  return t;
}

function buildContext(preset: Preset, seed: number, fixedShear: [number, number] | null, flip: boolean, rotDeg: number): SimContext {
  const tilePlane = tangentPlane(preset.tileRa, preset.tileDec);
  const toSky = (u: number, v: number) => tilePlane.toSky(u, v);
  const region = imagedRegion(preset);
  const popRegion: [number, number, number, number] = [region[0] - preset.pad, region[1] + preset.pad, region[2] - preset.pad, region[3] + preset.pad];
  const shear = shearField(seed, preset.grid, fixedShear, flip);
  const objects = drawScene(seed, { region: popRegion, magMax: preset.magMax, n24: N24, starDensity: 4, tileCore: preset.tileCore, grid: preset.grid, ellipticityRotationDeg: rotDeg, ...(preset.hlrMax !== undefined ? { hlrMax: preset.hlrMax } : {}) }, shear, toSky);
  // nominal pointing: the imaged area's centre
  const [cu, cv] = [(region[0] + region[1]) / 2, (region[2] + region[3]) / 2];
  const [pra, pdec] = toSky(cu, cv);
  const pointings = DITHERS.map((_, d) => ditherPointing(pra, pdec, preset.pa, d));
  const cropsPerExp = pointings.map((p) => cropsFor(preset, p, region, toSky));
  return { preset, toSky, region, popRegion, shear, objects, pointings, cropsPerExp };
}

/** What a simulation will contain, without rendering anything (sizes, counts). */
export function planSimulation(preset: PresetName | Preset, seed: number): {
  objects: number;
  exposures: Array<Array<{ name: string; x0: number; y0: number; width: number; height: number }>>;
} {
  const p = typeof preset === 'string' ? PRESETS[preset] : preset;
  const ctx = buildContext(p, seed, null, false, 0);
  return {
    objects: ctx.objects.length,
    exposures: ctx.cropsPerExp.map((cs) => cs.map((c) => ({ name: c.name, x0: c.x0, y0: c.y0, width: c.w, height: c.h }))),
  };
}

let cachedKey = '';
let cachedContext: SimContext | null = null;

/** Render one quadrant of a simulation (what `simulate` does for each; usable in a worker). */
export function renderJob(job: QuadrantJob): QuadrantResult {
  const rotDeg = ellipticityRotation(job.rotateEllipticities === true, job.ellipticityRotationDeg);
  const key = JSON.stringify([job.preset, job.seed, job.shear, job.flipShear, rotDeg]);
  if (key !== cachedKey || !cachedContext) {
    cachedContext = buildContext(job.preset, job.seed, job.shear, job.flipShear, rotDeg);
    cachedKey = key;
  }
  const ctx = cachedContext;
  const crop = ctx.cropsPerExp[job.dither][job.crop];
  const p = ctx.pointings[job.dither];
  const only = job.renderOnly ? new Set(job.renderOnly) : null;
  const objects = only ? ctx.objects.filter((o) => only.has(o.id)) : ctx.objects;
  const imgs = renderQuadrant(crop, p, job.dither, objects, job.seed, { noise: job.noise, defects: job.defects, profile: job.profile });
  return { ...imgs, psf: psfGridImage(crop, p, checkPsfOversampling(job.psfOversampling)) };
}

export async function simulate(out: SimOutput, options: SimulateOptions): Promise<SimulateSummary> {
  const preset = typeof options.preset === 'string' ? PRESETS[options.preset] : options.preset;
  if (!preset) throw new ShineError(`unknown preset '${String(options.preset)}' (${Object.keys(PRESETS).join(', ')})`, { field: 'preset' });
  const seed = options.seed;
  if (!Number.isSafeInteger(seed) || seed < 0) throw new ShineError(`--seed must be a non-negative integer, got ${seed}`, { field: 'seed' });
  if (options.shear && !(Math.hypot(options.shear[0], options.shear[1]) < 1)) {
    throw new ShineError(`--shear must have |g| < 1, got ${options.shear.join(',')}`, { field: 'shear' });
  }
  const noise = options.noise ?? true;
  const defects = options.defects ?? true;
  const psfQ = checkPsfOversampling(options.psfOversampling);
  const psfSide = psfStampSide(psfQ);
  const profile = checkGalaxyProfile(options.profile);
  // recorded only for a Spergel profile: the default output stays byte-identical
  const profileCards: CardInput[] = [
    ...galaxyProfileCards(profile),
    // recorded only when set: the default output stays byte-identical
    ...(options.omitUndetected === true ? [['OMITUND', true, 'objects the catalog does not list left out'] as CardInput] : []),
  ];
  const files: string[] = [];

  const fixedShear = options.shear ?? null;
  const flip = options.flipShear ?? false;
  const rotDeg = ellipticityRotation(options.rotateEllipticities ?? false, options.ellipticityRotationDeg);
  // ROT90 keeps its meaning: the shapes are turned by 90° (negated)
  const rotate = rotDeg === 90;
  const ctx = buildContext(preset, seed, fixedShear, flip, rotDeg);
  const { toSky, popRegion, shear, objects, pointings, cropsPerExp } = ctx;
  const total = cropsPerExp.reduce((a, c) => a + c.length, 0);
  // the MER catalog (measured from the objects alone, before any pixel)
  const rows = measureCatalog(seed, preset, objects, popRegion, toSky, profile);
  const omit = options.omitUndetected === true;
  const listed = omit ? rows.filter((r) => r.truthIndex >= 0).map((r) => objects[r.truthIndex].id) : null;
  const listedSet = listed ? new Set(listed) : null;
  const rendered = listedSet ? objects.filter((o) => listedSet.has(o.id)) : objects;
  // jobs in file order; up to `concurrency` rendered ahead of the writer
  const jobs: QuadrantJob[] = [];
  cropsPerExp.forEach((crops, d) => crops.forEach((_, c) => jobs.push({ preset, seed, shear: fixedShear, flipShear: flip, rotateEllipticities: rotate, ellipticityRotationDeg: rotDeg, noise, defects, dither: d, crop: c, ...(psfQ !== 1 ? { psfOversampling: psfQ } : {}), ...(profile ? { profile } : {}), ...(listed ? { renderOnly: listed } : {}) })));
  const render = options.render ?? (async (job: QuadrantJob) => {
    const crop = cropsPerExp[job.dither][job.crop];
    const p = pointings[job.dither];
    const imgs = renderQuadrant(crop, p, job.dither, rendered, seed, { noise, defects, profile });
    return { ...imgs, psf: psfGridImage(crop, p, psfQ) };
  });
  const ahead = Math.max(1, Math.floor(options.concurrency ?? 1));
  const pending: Array<Promise<QuadrantResult>> = [];
  let nextJob = 0;
  const launch = () => {
    const pr = render(jobs[nextJob++]);
    pr.catch(() => undefined); // a failure is reported when its turn comes, never as unhandled
    pending.push(pr);
  };
  const take = async (): Promise<QuadrantResult> => {
    while (pending.length < ahead && nextJob < jobs.length) launch();
    const r = await pending.shift()!;
    while (pending.length < ahead && nextJob < jobs.length) launch();
    return r;
  };
  let done = 0;

  const det: string[] = [], bkgs: string[] = [], psfs: string[] = [];
  const photCards = (): CardInput[] => [
    ['GAIN', VIS.gain, '[e-/ADU] conversion gain'],
    ['RDNOISE', VIS.rdnoise, '[e-] read-out noise'],
    ['EXPTIME', VIS.exptime, '[s] exposure time'],
    ['MAGZEROP', VIS.magzerop.toFixed(2), 'AB zero point for 1 ADU/s (string, as in Euclid)'],
    ['SATURATE', VIS.saturate, '[ADU] saturation level'],
  ];
  for (let d = 0; d < pointings.length; d++) {
    const p = pointings[d];
    const primary = (kind: string): HduSpec => ({
      kind: 'empty',
      cards: [
        ['TELESCOP', 'EUCLID', ''], ['INSTRUME', 'VIS', ''], ['FILTER', 'VIS', ''],
        ['OBS_ID', preset.obsId, 'observation id'], ['DITHOBS', d, 'dither index'], ['PRODTYPE', kind, ''],
        ['RA', p.ra, '[deg] pointing centre'], ['DEC', p.dec, '[deg] pointing centre'], ['PA', p.pa, '[deg] instrument position angle'],
        ...photCards(),
        ['SIMULATD', true, 'shine simulate output'], ['SIMSEED', seed, 'simulation seed'], ['SIMPRSET', preset.name, 'simulation preset'], ['SIMMAGMX', preset.magMax, 'faintest simulated galaxy magnitude'], ['SIMPRREV', presetRevision(preset), 'simulation preset revision'],
        ['FLIPSHR', flip, 'shear flipped'], ['ROT90', rotate, 'galaxy intrinsic shapes rotated by 90 deg'],
        ['EROTDEG', rotDeg, '[deg] galaxy intrinsic shapes rotated (PA, mod 180)'],
        ...profileCards,
      ],
    });
    const detRel = `VIS/${detFileName(preset.obsId, d)}`;
    const bkgRel = `VIS/${bkgFileName(preset.obsId, d)}`;
    const psfRel = `VIS/${psfFileName(preset.obsId, d)}`;
    const fDet = await out.open(detRel), fBkg = await out.open(bkgRel), fPsf = await out.open(psfRel);
    await fDet.append(writeFitsChunks([primary('DET')]));
    await fBkg.append(writeFitsChunks([primary('BKG')]));
    await fPsf.append(writeFitsChunks([primary('PSF')]));
    for (const crop of cropsPerExp[d]) {
      const imgs = await take();
      const common: CardInput[] = [
        ['CCDID', crop.q.ccd, 'CCD row-column'], ['QUADID', crop.q.quad, 'quadrant'],
        ...photCards(),
        ...wcsHeaderCards(crop.wcs),
        ['CROPX0', crop.x0, 'crop origin in the full quadrant (0-based x)'], ['CROPY0', crop.y0, 'crop origin in the full quadrant (0-based y)'],
      ];
      const shape = [crop.w, crop.h];
      await fDet.append(extensionChunks({ name: `${crop.name}.SCI`, shape, data: imgs.sci, cards: [...common, ['BUNIT', 'ADU', '']] }));
      await fDet.append(extensionChunks({ name: `${crop.name}.RMS`, shape, data: imgs.rms, cards: [...common, ['BUNIT', 'ADU', '']] }));
      await fDet.append(extensionChunks({ name: `${crop.name}.FLG`, shape, data: imgs.flg, cards: common }));
      await fBkg.append(extensionChunks({ name: crop.name, shape, data: imgs.bkg, cards: [...common, ['BUNIT', 'ADU', '']] }));
      const grid = imgs.psf;
      await fPsf.append(extensionChunks({
        name: crop.name, shape: [psfSide * PSF_GRID, psfSide * PSF_GRID], data: grid,
        cards: [
          ['CCDID', crop.q.ccd, ''], ['QUADID', crop.q.quad, ''],
          ...psfGridHeaderCards({ nx: PSF_GRID, ny: PSF_GRID, stampSize: psfSide, quadrantWidth: crop.w, quadrantHeight: crop.h, ...(psfQ !== 1 ? { oversampling: psfQ } : {}) }),
          ['PSFPIXEL', true, 'stamps include the pixel response'],
        ],
      }));
      done++;
      options.onProgress?.(done, total, `exposure ${d} ${crop.name}`);
    }
    await fDet.close(); await fBkg.close(); await fPsf.close();
    files.push(detRel, bkgRel, psfRel);
    det.push(detFileName(preset.obsId, d)); bkgs.push(bkgFileName(preset.obsId, d)); psfs.push(psfFileName(preset.obsId, d));
  }

  // MER catalog (its rows measured above, before the pixels)
  const col = <T>(f: (r: CatalogRow) => T) => rows.map(f);
  const merRel = `MER/${merFileName(preset.tileId)}`;
  await writeWhole(out, merRel, [{
    kind: 'bintable', name: 'CATALOG', nRows: rows.length,
    cards: [['TILEID', preset.tileId, 'MER tile id'], ['SIMULATD', true, '']],
    columns: [
      { name: 'OBJECT_ID', data: BigInt64Array.from(col((r) => r.objectId)) },
      { name: 'RIGHT_ASCENSION', data: Float64Array.from(col((r) => r.ra)), unit: 'deg' },
      { name: 'DECLINATION', data: Float64Array.from(col((r) => r.dec)), unit: 'deg' },
      { name: 'FLUX_DETECTION_TOTAL', data: Float32Array.from(col((r) => r.flux)), unit: 'uJy' },
      { name: 'FLUXERR_DETECTION_TOTAL', data: Float32Array.from(col((r) => r.fluxErr)), unit: 'uJy' },
      { name: 'FLUX_VIS_PSF', data: Float32Array.from(col((r) => r.fluxPsf)), unit: 'uJy' },
      { name: 'SEMIMAJOR_AXIS', data: Float32Array.from(col((r) => r.semiMajor)), unit: 'pixel' },
      { name: 'ELLIPTICITY', data: Float32Array.from(col((r) => r.ellipticity)) },
      { name: 'POSITION_ANGLE', data: Float32Array.from(col((r) => r.pa)), unit: 'deg' },
      { name: 'VIS_DET', data: Int16Array.from(col((r) => r.visDet)) },
      { name: 'SPURIOUS_FLAG', data: Int16Array.from(col((r) => r.spurious)) },
      { name: 'POINT_LIKE_FLAG', data: Int16Array.from(col((r) => r.pointLike)) },
      { name: 'DET_QUALITY_FLAG', data: Int32Array.from(col((r) => r.detQuality)) },
      { name: 'DEBLENDED_FLAG', data: Int16Array.from(col((r) => r.deblended)) },
    ],
  }], files);

  await writeWhole(out, 'tiles.fits', [{
    kind: 'bintable', name: 'TILES', nRows: 1,
    columns: [
      { name: 'TILE_ID', data: BigInt64Array.from([BigInt(preset.tileId)]) },
      { name: 'RA', data: Float64Array.from([preset.tileRa]), unit: 'deg' },
      { name: 'DEC', data: Float64Array.from([preset.tileDec]), unit: 'deg' },
    ],
  }], files);

  // truth
  const catIdx = new Int32Array(objects.length).fill(-1);
  rows.forEach((r, k) => { if (r.truthIndex >= 0) catIdx[r.truthIndex] = k; });
  const o = objects;
  await writeWhole(out, 'truth/sources.fits', [{
    kind: 'bintable', name: 'SOURCES', nRows: o.length,
    cards: [['TILEID', preset.tileId, ''], ['SIMSEED', seed, ''], ['FLIPSHR', flip, 'shear flipped'], ['ROT90', rotate, 'E1, E2 rotated by 90 deg (negated)'],
      ['EROTDEG', rotDeg, '[deg] E1, E2 rotated by this PA: e*exp(2i*EROTDEG)'], ...profileCards],
    columns: [
      { name: 'ID', data: BigInt64Array.from(o.map((x) => BigInt(x.id))) },
      { name: 'OBJECT_ID', data: BigInt64Array.from(o.map((x, i) => (catIdx[i] >= 0 ? rows[catIdx[i]].objectId : -1n))) },
      { name: 'RA', data: Float64Array.from(o.map((x) => x.ra)), unit: 'deg' },
      { name: 'DEC', data: Float64Array.from(o.map((x) => x.dec)), unit: 'deg' },
      { name: 'MAG', data: Float64Array.from(o.map((x) => x.mag)) },
      { name: 'FLUX_UJY', data: Float64Array.from(o.map((x) => x.fluxUJy)), unit: 'uJy' },
      { name: 'FLUX_ADU', data: Float64Array.from(o.map((x) => x.fluxAdu)), unit: 'ADU' },
      { name: 'HLR', data: Float64Array.from(o.map((x) => x.hlr)), unit: 'arcsec' },
      { name: 'E1', data: Float64Array.from(o.map((x) => x.e1)) },
      { name: 'E2', data: Float64Array.from(o.map((x) => x.e2)) },
      ...profileTruthColumns(o, profile, seed),
      { name: 'G1', data: Float64Array.from(o.map((x) => x.g1)) },
      { name: 'G2', data: Float64Array.from(o.map((x) => x.g2)) },
      { name: 'IS_STAR', data: o.map((x) => x.isStar) },
      { name: 'SUBTILE_ROW', data: Int32Array.from(o.map((x) => x.subRow)) },
      { name: 'SUBTILE_COL', data: Int32Array.from(o.map((x) => x.subCol)) },
    ],
  }], files);
  await writeWhole(out, 'truth/shear.fits', [{
    kind: 'bintable', name: 'SHEAR', nRows: shear.length,
    cards: [['TILEID', preset.tileId, ''], ['SUBGRID', preset.grid, 'sub-tile grid n x n'], ['CORESIZE', preset.tileCore, '[arcsec] tile core side'],
      ['COMMENT', 'SUBTILE_COL counts along East (increasing RA), SUBTILE_ROW along North, from 0']],
    columns: [
      { name: 'TILE_ID', data: BigInt64Array.from(shear.map(() => BigInt(preset.tileId))) },
      { name: 'SUBTILE_ROW', data: Int32Array.from(shear.map((s) => s.row)) },
      { name: 'SUBTILE_COL', data: Int32Array.from(shear.map((s) => s.col)) },
      { name: 'G1', data: Float64Array.from(shear.map((s) => s.g1)) },
      { name: 'G2', data: Float64Array.from(shear.map((s) => s.g2)) },
    ],
  }], files);

  const cfg = await out.open('config.yaml');
  await cfg.append([new TextEncoder().encode(configYaml(preset, { det, bkg: bkgs, psf: psfs, mer: merFileName(preset.tileId) }))]);
  await cfg.close();
  files.push('config.yaml');

  return {
    preset: preset.name, objects: objects.length, galaxies: objects.filter((x) => !x.isStar).length, stars: objects.filter((x) => x.isStar).length,
    catalogRows: rows.length, exposures: pointings.length, quadrants: total, files, shear,
    ellipticityRotationDeg: rotDeg,
  };
}

export { PRESETS, PV1, PV2 };

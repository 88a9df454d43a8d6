/**
 * Seeded synthetic test scenes for the float64 reference tests and the GPU engine tests.
 *
 * `makeTestScene()` builds a small ExposureSet (default: 6 blended sources seen in 3 quadrants of
 * ~300×300 pixels, one rotated by 180°, one with flipped parity and a slightly anisotropic
 * Jacobian, partly off its edge so some pairs are invisible), the true SceneParams, and noisy
 * science images rendered by the float64 reference with those parameters. Everything is a
 * deterministic function of the options (seeded RNG).
 */
import { chooseTier, stampCorner } from '../model/geometry.ts';
import { matInv2, type Mat2 } from '../model/galsim.ts';
import type { ExposureSet, PairGeometry, QuadrantData, RenderOptions, SceneParams, SourceInfo } from '../scene/types.ts';
import { allocParams, cloneParams } from '../scene/types.ts';
import { renderModel64 } from '../gpu/render/model64.ts';
import { resolveRenderOptions } from '../model/validate.ts';
import { mulberry32, Random } from '../util/rng.ts';
import { ensureProfileParams, profileParamNames } from '../model/profile-params.ts';

// ---------------------------------------------------------------------------------------------
// RNG

export { mulberry32 };


export interface Rng {
  /** Uniform in [0, 1). */
  uniform(): number;
  /** Uniform in [lo, hi). */
  range(lo: number, hi: number): number;
  /** Standard normal (Box–Muller). */
  normal(): number;
  /** Integer in [0, n). */
  int(n: number): number;
}

export function makeRng(seed: number): Rng {
  const r = new Random(seed);
  return {
    uniform: () => r.uniform(),
    range: (lo, hi) => lo + (hi - lo) * r.uniform(),
    int: (n) => Math.floor(r.uniform() * n),
    normal: () => r.normal(),
  };
}

// ---------------------------------------------------------------------------------------------
// Geometry helpers

/** J = scale · R(θ) · diag(1, ±1) · [[1+a, b], [b, 1−a]]: arcsec per pixel. */
export function makeJacobian(pixelScale: number, rotationDeg: number, flip = false, aniso = 0, skew = 0): Mat2 {
  const t = (rotationDeg * Math.PI) / 180;
  const c = Math.cos(t);
  const s = Math.sin(t);
  const f = flip ? -1 : 1;
  // R · diag(1, f)
  const R: Mat2 = [c, -s * f, s, c * f];
  const D: Mat2 = [1 + aniso, skew, skew, 1 - aniso];
  return [
    pixelScale * (R[0] * D[0] + R[1] * D[2]),
    pixelScale * (R[0] * D[1] + R[1] * D[3]),
    pixelScale * (R[2] * D[0] + R[3] * D[2]),
    pixelScale * (R[2] * D[1] + R[3] * D[3]),
  ];
}

export interface GaussianPsfOptions {
  size?: number;
  /** Pixel sigma along the major axis (default 1.3). */
  sigma?: number;
  /** Axis ratio minor/major (default 0.9). */
  axisRatio?: number;
  /** Position angle of the major axis, degrees (default 20). */
  angleDeg?: number;
  /** Weight of a second, offset Gaussian that makes the PSF asymmetric (default 0.04). */
  lobeWeight?: number;
  /** Offset of that lobe in pixels (default [0.8, 0.3]). */
  lobeOffset?: [number, number];
}

/** An anisotropic, slightly asymmetric Gaussian PSF stamp, row-major, unit sum. */
export function makeGaussianPsf(o: GaussianPsfOptions = {}): Float64Array {
  const P = o.size ?? 21;
  const sig = o.sigma ?? 1.3;
  const q = o.axisRatio ?? 0.9;
  const th = ((o.angleDeg ?? 20) * Math.PI) / 180;
  const lw = o.lobeWeight ?? 0.04;
  const [lx, ly] = o.lobeOffset ?? [0.8, 0.3];
  const c = (P - 1) / 2;
  const ct = Math.cos(th);
  const st = Math.sin(th);
  const out = new Float64Array(P * P);
  let sum = 0;
  for (let b = 0; b < P; b++) {
    for (let a = 0; a < P; a++) {
      const x = a - c;
      const y = b - c;
      const xr = ct * x + st * y;
      const yr = -st * x + ct * y;
      const main = Math.exp(-0.5 * ((xr / sig) ** 2 + (yr / (sig * q)) ** 2));
      const lobe = Math.exp(-0.5 * (((x - lx) / sig) ** 2 + ((y - ly) / sig) ** 2));
      const v = (1 - lw) * main + lw * lobe;
      out[b * P + a] = v;
      sum += v;
    }
  }
  for (let i = 0; i < out.length; i++) out[i] /= sum;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Scene factory

export interface TestQuadrantSpec {
  width: number;
  height: number;
  /** Explicit Jacobian [dudx, dudy, dvdx, dvdy] (arcsec/px); otherwise built from the fields below. */
  jacobian?: Mat2;
  /** Rotation of the pixel axes on the sky, degrees (default 0). */
  rotationDeg?: number;
  /** Parity flip (det J < 0). */
  flip?: boolean;
  /** Pixel scale, arcsec (default: the scene's pixelScale). */
  pixelScale?: number;
  /** Small anisotropy / skew of the Jacobian (default 0). */
  aniso?: number;
  skew?: number;
  /**
   * Pixel position of the scene's world origin (u, v) = (0, 0); default: image centre.
   * An x of 'edge' puts the quadrant's left edge between the two leftmost sources of the
   * smallest tier, so one of them is invisible and the other just visible.
   */
  origin?: [number | 'edge', number];
  name?: string;
}

export interface TestSceneOptions {
  seed?: number;
  /** Default 6. */
  nSources?: number;
  /** Default: three quadrants (0°; 180°; 33° flipped, anisotropic, origin near the left edge). */
  quadrants?: TestQuadrantSpec[];
  /** Default [64, 128, 256]. Sources cycle through the tiers; hlr is drawn so chooseTier picks it. */
  tiers?: number[];
  /** Force every source's tier (e.g. all in 64): overrides the cycling. */
  sourceTiers?: number[];
  /** Sources packed within a few arcsec so their stamps overlap (default true). */
  blended?: boolean;
  /** Without `blended`: the sources lie 2″ to this many arcsec from the origin (default 9). */
  spreadArcsec?: number;
  /** Nominal pixel scale (arcsec), used for tiers and default Jacobians (default 0.1). */
  pixelScale?: number;
  /** Native PSF stamp side (default 21); with psfOversampling q the stamps have 21·q (+1 if even) samples. */
  psfSize?: number;
  /** PSF samples per detector pixel (default 1): Gaussian PSF stamps sampled every 1/q pixel. */
  psfOversampling?: number;
  psf?: GaussianPsfOptions;
  /** Reduced shear of the scene (default g = (0.03, −0.02)). */
  g1?: number;
  g2?: number;
  /** Flux range, ADU (default [800, 4000]). */
  fluxRange?: [number, number];
  /** Typical rms noise in ADU (default 1); the map varies ±20 % around it. */
  noise?: number;
  /** No noise added (default false). */
  noiseFree?: boolean;
  /** Constant background added to sci and recorded in the quadrant (default 10). */
  background?: number;
  /** Fractions of pixels flagged with bit 0x1 (masked), with bit 0x4 (not masked by default), NaN. */
  flagFraction?: number;
  otherFlagFraction?: number;
  nanFraction?: number;
  /** Keep pairs whose stamp misses the quadrant, marked invisible with psf null (default true). */
  includeInvisiblePairs?: boolean;
  /** Render options used for the simulated data (default DEFAULT_RENDER_OPTIONS). */
  render?: Partial<RenderOptions>;
}

export interface TestScene {
  set: ExposureSet;
  params: SceneParams;
  /** World positions (u, v) of the sources' catalog positions, arcsec. */
  world: Array<[number, number]>;
  /** Per quadrant Jacobian. */
  jacobians: Mat2[];
}

export const DEFAULT_TEST_QUADRANTS: TestQuadrantSpec[] = [
  { width: 300, height: 300, rotationDeg: 0, origin: [150.3, 140.7], name: 'q0-rot0' },
  { width: 300, height: 300, rotationDeg: 180, origin: [160.2, 150.6], name: 'q1-rot180' },
  { width: 280, height: 320, rotationDeg: 33, flip: true, aniso: 0.01, skew: 0.005, origin: ['edge', 170.1], name: 'q2-rot33-flip' },
];

/** hlr (in pixels) range for which chooseTier(·, tiers) returns tiers[t]. */
function hlrPixelRange(tiers: number[], t: number): [number, number] {
  const maxFor = (size: number) => (size / 2 - 10.5) / 3;
  const lo = t === 0 ? 1.2 : maxFor(tiers[t - 1]) + 0.6;
  const hi = t === tiers.length - 1 ? maxFor(tiers[t]) - 0.3 : maxFor(tiers[t]) - 0.3;
  return [lo, Math.max(lo + 0.1, Math.min(hi, lo + 6))];
}

export function makeTestScene(options: TestSceneOptions = {}): TestScene {
  const seed = options.seed ?? 1;
  const rng = makeRng(seed);
  const n = options.nSources ?? 6;
  const tiers = options.tiers ?? [64, 128, 256];
  const scale = options.pixelScale ?? 0.1;
  const P = options.psfSize ?? 21;
  const ovs = options.psfOversampling ?? 1;
  const Pq = P * ovs + (ovs % 2 === 0 ? 1 : 0);
  const qspecs = options.quadrants ?? DEFAULT_TEST_QUADRANTS;
  const blended = options.blended ?? true;
  const [f0, f1] = options.fluxRange ?? [800, 4000];
  const includeInvisible = options.includeInvisiblePairs ?? true;
  const render = resolveRenderOptions(options.render);

  // sources: tier, hlr, flux, shape
  const params = allocParams(n);
  params.g1 = options.g1 ?? 0.03;
  params.g2 = options.g2 ?? -0.02;
  const sources: SourceInfo[] = [];
  for (let i = 0; i < n; i++) {
    const tier = options.sourceTiers ? options.sourceTiers[i % options.sourceTiers.length] : tiers[i % tiers.length];
    const ti = Math.max(0, tiers.indexOf(tier));
    const [lo, hi] = hlrPixelRange(tiers, ti);
    const hpix = rng.range(lo, hi);
    const stamp = options.sourceTiers ? tier : chooseTier(hpix, tiers);
    sources.push({ id: 1000 + 17 * i + (seed % 1000), stampSize: stamp });
    params.hlr[i] = hpix * scale;
    params.flux[i] = rng.range(f0, f1) * (1 + ti); // bigger galaxies brighter
    const emag = rng.range(0.05, 0.45);
    const eang = rng.range(0, Math.PI);
    params.e1[i] = emag * Math.cos(2 * eang);
    params.e2[i] = emag * Math.sin(2 * eang);
    params.dx[i] = rng.range(-0.03, 0.03);
    params.dy[i] = rng.range(-0.03, 0.03);
  }
  addProfileParams(params, render.profile, seed);

  // world positions (arcsec): blended → within ~2.5″, else spread over ±spreadArcsec (9″)
  const world: Array<[number, number]> = [];
  for (let i = 0; i < n; i++) {
    const rad = blended ? rng.range(0, 2.5) : rng.range(2, options.spreadArcsec ?? 9);
    const ang = rng.range(0, 2 * Math.PI);
    world.push([rad * Math.cos(ang), rad * Math.sin(ang)]);
  }

  const jacobians: Mat2[] = [];
  const quadrants: QuadrantData[] = qspecs.map((qs, j) => {
    const J = qs.jacobian ?? makeJacobian(qs.pixelScale ?? scale, qs.rotationDeg ?? 0, qs.flip ?? false, qs.aniso ?? 0, qs.skew ?? 0);
    jacobians.push(J);
    const npx = qs.width * qs.height;
    return {
      name: qs.name ?? `q${j}`,
      width: qs.width,
      height: qs.height,
      sci: new Float32Array(npx),
      rms: new Float32Array(npx),
      flags: new Uint32Array(npx),
      background: options.background ?? 10,
    };
  });

  const pairs: PairGeometry[] = [];
  qspecs.forEach((qs, j) => {
    const J = jacobians[j];
    const Ji = matInv2(J);
    const [oxSpec, oy] = qs.origin ?? [(qs.width - 1) / 2, (qs.height - 1) / 2];
    let ox: number;
    if (oxSpec === 'edge') {
      const minN = Math.min(...sources.map((s) => s.stampSize));
      const xs = world
        .map(([u, v], i) => ({ x: Ji[0] * u + Ji[1] * v, N: sources[i].stampSize }))
        .filter((e) => e.N === minN)
        .map((e) => e.x)
        .sort((a, b) => a - b);
      // visible iff round(x) + N/2 > 0: put the edge between the two leftmost
      ox = xs.length >= 2 ? -minN / 2 + 0.5 - (xs[0] + xs[1]) / 2 : -12.4;
    } else ox = oxSpec;
    for (let i = 0; i < n; i++) {
      const [u, v] = world[i];
      const x = ox + Ji[0] * u + Ji[1] * v;
      const y = oy + Ji[2] * u + Ji[3] * v;
      const N = sources[i].stampSize;
      const cx = stampCorner(x, N);
      const cy = stampCorner(y, N);
      const visible = cx < qs.width && cx + N > 0 && cy < qs.height && cy + N > 0;
      if (!visible && !includeInvisible) continue;
      const lobe = options.psf?.lobeOffset ?? [0.8, 0.3];
      const psf = visible
        ? makeGaussianPsf({
            size: Pq,
            sigma: (options.psf?.sigma ?? 1.3) * (1 + 0.05 * rng.normal()) * ovs,
            axisRatio: options.psf?.axisRatio ?? rng.range(0.85, 0.95),
            angleDeg: options.psf?.angleDeg ?? rng.range(0, 180),
            lobeWeight: options.psf?.lobeWeight,
            lobeOffset: [lobe[0] * ovs, lobe[1] * ovs],
          })
        : null;
      pairs.push({ source: i, quadrant: j, x, y, jacobian: [J[0], J[1], J[2], J[3]], psf, visible });
    }
  });

  const set: ExposureSet = { quadrants, sources, pairs, psfSize: Pq, ...(ovs > 1 ? { psfOversampling: ovs } : {}) };

  // data: sci = model + background + noise; rms varies smoothly; flags and NaNs sprinkled
  const models = renderModel64(set, params, render);
  const noise = options.noise ?? 1;
  const flagF = options.flagFraction ?? 0.003;
  const otherF = options.otherFlagFraction ?? 0.003;
  const nanF = options.nanFraction ?? 0.001;
  quadrants.forEach((q, j) => {
    const bg = typeof q.background === 'number' ? q.background : 0;
    const phx = rng.range(0, 6.28);
    const phy = rng.range(0, 6.28);
    for (let y = 0; y < q.height; y++) {
      for (let x = 0; x < q.width; x++) {
        const i = y * q.width + x;
        const r = noise * (1 + 0.2 * Math.sin(x / 37 + phx) * Math.cos(y / 23 + phy));
        q.rms[i] = r;
        q.sci[i] = models[j][i] + bg + (options.noiseFree ? 0 : r * rng.normal());
        const t = rng.uniform();
        if (t < flagF) q.flags[i] |= 0x1;
        else if (t < flagF + otherF) q.flags[i] |= 0x4;
        else if (t < flagF + otherF + nanF) q.sci[i] = NaN;
      }
    }
  });

  return { set, params, world, jacobians };
}

/**
 * The per-source parameters of a free-ν Spergel (ν ∈ [−0.5, 2]) or bulge + disk profile (B/T ∈
 * [0.1, 0.6], bulge hlr 0.3–0.8 of the disk's, bulge |e| ≤ 0.3), drawn from a stream of their own:
 * scenes of the other profiles are unchanged.
 */
function addProfileParams(params: SceneParams, profile: RenderOptions['profile'], seed: number): void {
  const names = profileParamNames(profile);
  if (!names.length) return;
  ensureProfileParams(params, profile);
  const rng = makeRng(seed + 7919);
  for (let i = 0; i < params.flux.length; i++) {
    if (params.nu) params.nu[i] = rng.range(-0.5, 2);
    if (params.bulgeFrac) {
      params.bulgeFrac[i] = rng.range(0.1, 0.6);
      params.bulgeHlr![i] = params.hlr[i] * rng.range(0.3, 0.8);
      const em = rng.range(0, 0.3);
      const ea = rng.range(0, Math.PI);
      params.bulgeE1![i] = em * Math.cos(2 * ea);
      params.bulgeE2![i] = em * Math.sin(2 * ea);
    }
  }
}

/**
 * A seeded perturbation of every parameter (flux, hlr ±10 %, e ±0.05, offsets ±0.02″, shear
 * ±gAmp/2): test points away from the truth for gradient and replica tests.
 */
export function perturbParams(p: SceneParams, seed: number, gAmp = 0.04): SceneParams {
  const rng = makeRng(seed);
  const r = () => rng.uniform() - 0.5;
  const q = cloneParams(p);
  for (let i = 0; i < q.flux.length; i++) {
    q.flux[i] *= 1 + 0.2 * r();
    q.hlr[i] *= 1 + 0.2 * r();
    q.e1[i] += 0.1 * r();
    q.e2[i] += 0.1 * r();
    q.dx[i] += 0.04 * r();
    q.dy[i] += 0.04 * r();
  }
  q.g1 += gAmp * r();
  q.g2 += gAmp * r();
  // profile parameters, from a stream of their own (the others stay as before)
  const r2 = makeRng(seed + 7919);
  const u = () => r2.uniform() - 0.5;
  for (let i = 0; i < q.flux.length; i++) {
    if (q.nu) q.nu[i] = Math.min(3.9, Math.max(-0.8, q.nu[i] + 0.2 * u()));
    if (q.bulgeFrac) {
      q.bulgeFrac[i] = Math.min(0.95, Math.max(0.05, q.bulgeFrac[i] + 0.1 * u()));
      q.bulgeHlr![i] *= 1 + 0.2 * u();
      q.bulgeE1![i] += 0.1 * u();
      q.bulgeE2![i] += 0.1 * u();
    }
  }
  return q;
}

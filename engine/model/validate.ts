/**
 * Input validation shared by the GPU engine and the float64 reference: everything is checked on
 * the CPU before any dispatch, and every problem is reported as a SceneError that names the
 * source (index and catalog id), the pair or the quadrant, and the offending field.
 */
import { SceneError } from '../errors.ts';
import type { ExposureSet, RenderOptions, SceneParams } from '../scene/types.ts';
import { DEFAULT_RENDER_OPTIONS, SOURCE_PARAM_NAMES } from '../scene/types.ts';
import { psfBandBeyond } from './psf-spectrum.ts';
import { SPERGEL_NU_MAX, SPERGEL_NU_MIN } from './spergel.ts';
import { type GalaxyProfile } from './profile.ts';
import { profileParamNames } from './profile-params.ts';

function isPow2(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
}

/** FFT grid factors: 2^k or 1.5·2^k (k ≥ 0), so that the grid is 2^k or 3·2^k (engine/gpu/fft/fft.ts sizes; docs/bench.md "FFT size"). */
export function isFftFactor(f: number): boolean {
  return typeof f === 'number' && f >= 1 && (isPow2(f) || isPow2(f / 1.5));
}

/** An FFT grid size the GPU FFT handles in kind: 2^k or 3·2^k. */
function isFftGrid(m: number): boolean {
  return isPow2(m) || (m % 3 === 0 && isPow2(m / 3));
}

/** Fill in defaults and check the render options. */
export function resolveRenderOptions(opts: Partial<RenderOptions> = {}): RenderOptions {
  const o: RenderOptions = { ...DEFAULT_RENDER_OPTIONS, ...opts };
  if (!isFftFactor(o.fftFactor)) {
    throw new SceneError(`fftFactor = ${o.fftFactor} must be a power of two or 1.5 × one (1, 1.5, 2, 3, 4, ...)`, { field: 'fftFactor' });
  }
  if (typeof o.pixelResponse !== 'boolean') {
    throw new SceneError(`pixelResponse must be true or false, got ${String(o.pixelResponse)}`, { field: 'pixelResponse' });
  }
  if (!Number.isInteger(o.badPixelMask) || o.badPixelMask < 0 || o.badPixelMask > 0xffffffff) {
    throw new SceneError(`badPixelMask = ${o.badPixelMask} must be an integer in [0, 2^32)`, { field: 'badPixelMask' });
  }
  if (!(o.aliasTolerance > 0 && o.aliasTolerance < 1)) {
    throw new SceneError(`aliasTolerance = ${o.aliasTolerance} must be in (0, 1)`, { field: 'aliasTolerance' });
  }
  if (o.aliasOrders !== 'auto' && !(Number.isInteger(o.aliasOrders) && o.aliasOrders >= 0)) {
    throw new SceneError(`aliasOrders = ${String(o.aliasOrders)} must be 'auto' or a non-negative integer`, { field: 'aliasOrders' });
  }
  if (o.profile === undefined) o.profile = DEFAULT_RENDER_OPTIONS.profile;
  const pr = o.profile as { type?: unknown; nu?: unknown; free?: unknown; bulgeNu?: unknown } | null;
  if (pr === null || typeof pr !== 'object' || (pr.type !== 'exponential' && pr.type !== 'spergel' && pr.type !== 'bulge_disk')) {
    throw new SceneError(`profile must be {type: 'exponential'}, {type: 'spergel', nu, free?} or {type: 'bulge_disk', bulgeNu}, got ${JSON.stringify(pr)}`, {
      field: 'profile',
    });
  }
  const nuOk = (nu: unknown) => typeof nu === 'number' && Number.isFinite(nu) && nu >= SPERGEL_NU_MIN && nu <= SPERGEL_NU_MAX;
  if (pr.type === 'spergel') {
    if (!nuOk(pr.nu)) {
      throw new SceneError(`profile.nu = ${String(pr.nu)} must be a number in [${SPERGEL_NU_MIN}, ${SPERGEL_NU_MAX}] (GalSim's Spergel range)`, {
        field: 'profile.nu',
      });
    }
    if (pr.free !== undefined && typeof pr.free !== 'boolean') {
      throw new SceneError(`profile.free must be true or false, got ${JSON.stringify(pr.free)}`, { field: 'profile.free' });
    }
  }
  if (pr.type === 'bulge_disk' && !nuOk(pr.bulgeNu)) {
    throw new SceneError(`profile.bulgeNu = ${String(pr.bulgeNu)} must be a number in [${SPERGEL_NU_MIN}, ${SPERGEL_NU_MAX}] (GalSim's Spergel range)`, {
      field: 'profile.bulgeNu',
    });
  }
  return o;
}

/** PSF-model pixels per detector pixel of a scene (1 when not given). */
export function psfOversamplingOf(set: Pick<ExposureSet, 'psfOversampling'>): number {
  return set.psfOversampling ?? 1;
}

/**
 * Alias orders N actually folded. The PSF model of oversampling q is band-limited to |k| < qπ,
 * which orders up to ceil((q − 1)/2) reach; more would only add zeros. 'auto' takes the smallest
 * N for which the model beyond the (2N+1)π cell is below `aliasTolerance` of P̂(0) on every
 * sampled PSF (up to 16 visible pairs spread over the scene; engine/model/psf-spectrum.ts
 * `psfBandBeyond`); an integer is used as given (capped at the reach).
 */
export function aliasOrdersFor(set: Pick<ExposureSet, 'psfOversampling' | 'pairs' | 'psfSize'>, opts: Pick<RenderOptions, 'aliasOrders'> & Partial<Pick<RenderOptions, 'aliasTolerance' | 'pixelResponse'>>): number {
  const q = psfOversamplingOf(set);
  const reach = Math.ceil((q - 1) / 2);
  if (opts.aliasOrders !== 'auto') return Math.min(opts.aliasOrders, reach);
  if (reach === 0) return 0;
  const tol = opts.aliasTolerance ?? DEFAULT_RENDER_OPTIONS.aliasTolerance;
  const withPsf = set.pairs.filter((p) => p.visible && p.psf);
  const sampled = withPsf.length <= 16 ? withPsf : Array.from({ length: 16 }, (_, i) => withPsf[Math.floor((i * (withPsf.length - 1)) / 15)]);
  let need = 0;
  for (const p of sampled) {
    const beyond = psfBandBeyond(p.psf!, set.psfSize, q, opts.pixelResponse ?? false);
    let n = 0;
    while (n < reach && beyond[n] > tol) n++;
    need = Math.max(need, n);
  }
  return need;
}

function describeSource(set: ExposureSet, s: number): string {
  const src = set.sources[s];
  return src ? `source ${s} (id ${src.id})` : `source ${s}`;
}

function describePair(set: ExposureSet, p: number): string {
  const pr = set.pairs[p];
  if (!pr) return `pair ${p}`;
  const q = set.quadrants[pr.quadrant];
  return `pair ${p} (${describeSource(set, pr.source)} in quadrant ${pr.quadrant}${q ? ` "${q.name}"` : ''})`;
}

/**
 * Structural checks of an ExposureSet: image sizes, stamp sizes (M = fftFactor·N must be 2^k
 * or 3·2^k, with an integer padding (M − N)/2), pair indices, finite positions and non-singular Jacobians, and a PSF of
 * psfSize² finite values for every visible pair.
 */
export function validateExposureSet(set: ExposureSet, optsIn: Partial<RenderOptions> = {}): void {
  const opts = resolveRenderOptions(optsIn);
  const P = set.psfSize;
  if (!Number.isInteger(P) || P < 1 || P % 2 !== 1) {
    throw new SceneError(`psfSize = ${P} must be a positive odd integer (21 for Euclid)`, { field: 'psfSize' });
  }
  const q = psfOversamplingOf(set);
  if (!Number.isInteger(q) || q < 1) {
    throw new SceneError(`psfOversampling = ${q} must be a positive integer (PSF pixels per detector pixel)`, { field: 'psfOversampling' });
  }
  set.quadrants.forEach((q, j) => {
    const where = `quadrant ${j} "${q.name}"`;
    if (!Number.isInteger(q.width) || q.width < 1 || !Number.isInteger(q.height) || q.height < 1) {
      throw new SceneError(`${where}: width × height = ${q.width} × ${q.height} must be positive integers`, { field: `quadrants[${j}].width` });
    }
    // pixels kept: the whole crop, or 128 per active block (engine/scene/pixels.ts)
    const n = q.blocks ? q.blocks.nActive * 128 : q.width * q.height;
    for (const key of ['sci', 'rms', 'flags'] as const) {
      const arr = q[key];
      if (!arr || arr.length !== n) {
        throw new SceneError(
          q.blocks
            ? `${where}: ${key} has ${arr ? arr.length : 'no'} pixels, expected 128 per active block = ${n}`
            : `${where}: ${key} has ${arr ? arr.length : 'no'} pixels, expected width·height = ${q.width}·${q.height} = ${n}`,
          { field: `quadrants[${j}].${key}` },
        );
      }
    }
    if (q.background !== undefined) {
      if (typeof q.background === 'number') {
        if (!Number.isFinite(q.background)) {
          throw new SceneError(`${where}: background = ${q.background} is not finite`, { field: `quadrants[${j}].background` });
        }
      } else if (q.background.length !== n) {
        throw new SceneError(`${where}: background map has ${q.background.length} pixels, expected ${n}`, {
          field: `quadrants[${j}].background`,
        });
      }
    }
  });
  set.sources.forEach((s, i) => {
    const N = s.stampSize;
    if (!Number.isInteger(N) || N < 2 || N % 2 !== 0) {
      throw new SceneError(`${describeSource(set, i)}: stampSize = ${N} must be a positive even integer`, {
        field: `sources[${i}].stampSize`,
      });
    }
    const M = opts.fftFactor * N;
    if (!isFftGrid(M) || (M - N) % 2 !== 0) {
      throw new SceneError(
        `${describeSource(set, i)}: FFT size fftFactor·stampSize = ${opts.fftFactor}·${N} = ${M} is not a power of two or 3 × one with an even padding`,
        { field: `sources[${i}].stampSize` },
      );
    }
  });
  set.pairs.forEach((pr, p) => {
    if (!Number.isInteger(pr.source) || pr.source < 0 || pr.source >= set.sources.length) {
      throw new SceneError(`pair ${p}: source index ${pr.source} out of range [0, ${set.sources.length})`, { field: `pairs[${p}].source` });
    }
    if (!Number.isInteger(pr.quadrant) || pr.quadrant < 0 || pr.quadrant >= set.quadrants.length) {
      throw new SceneError(`pair ${p}: quadrant index ${pr.quadrant} out of range [0, ${set.quadrants.length})`, {
        field: `pairs[${p}].quadrant`,
      });
    }
    if (!pr.visible) return;
    const where = describePair(set, p);
    if (!Number.isFinite(pr.x) || !Number.isFinite(pr.y)) {
      throw new SceneError(`${where}: position (${pr.x}, ${pr.y}) is not finite`, { field: `pairs[${p}].x` });
    }
    const J = pr.jacobian;
    if (!J || J.length !== 4 || !J.every(Number.isFinite)) {
      throw new SceneError(`${where}: jacobian must be 4 finite numbers [dudx, dudy, dvdx, dvdy], got ${String(J)}`, {
        field: `pairs[${p}].jacobian`,
      });
    }
    const det = J[0] * J[3] - J[1] * J[2];
    const scale = Math.max(Math.abs(J[0]), Math.abs(J[1]), Math.abs(J[2]), Math.abs(J[3]));
    if (!(Math.abs(det) > 1e-12 * scale * scale) || scale === 0) {
      throw new SceneError(`${where}: jacobian [${J.join(', ')}] is singular (det = ${det})`, { field: `pairs[${p}].jacobian` });
    }
    if (!pr.psf) {
      throw new SceneError(`${where}: the pair is visible but has no PSF stamp`, { field: `pairs[${p}].psf` });
    }
    if (pr.psf.length !== P * P) {
      throw new SceneError(`${where}: PSF stamp has ${pr.psf.length} values, expected psfSize² = ${P}² = ${P * P}`, {
        field: `pairs[${p}].psf`,
      });
    }
    for (let i = 0; i < pr.psf.length; i++) {
      if (!Number.isFinite(pr.psf[i])) {
        throw new SceneError(`${where}: PSF stamp value ${i} (row ${Math.floor(i / P)}, column ${i % P}) is ${pr.psf[i]}`, {
          field: `pairs[${p}].psf`,
        });
      }
    }
  });
}

/**
 * Parameter checks: array lengths equal to the number of sources, every value finite,
 * hlr > 0, |e| < 1 per source, |g| < 1 for the sub-tile.
 */
export function validateParams(set: ExposureSet, params: SceneParams, profile?: GalaxyProfile): void {
  const n = set.sources.length;
  validateProfileParams(set, params, profile);
  for (const name of SOURCE_PARAM_NAMES) {
    const arr = params[name];
    if (!arr || arr.length !== n) {
      throw new SceneError(`params.${name} has ${arr ? arr.length : 'no'} values, expected one per source (${n})`, { field: name });
    }
    for (let i = 0; i < n; i++) {
      if (!Number.isFinite(arr[i])) {
        throw new SceneError(`${describeSource(set, i)}: ${name} = ${arr[i]} is not finite`, { field: `${name}[${i}]` });
      }
    }
  }
  for (const name of ['g1', 'g2'] as const) {
    if (!Number.isFinite(params[name])) throw new SceneError(`shear ${name} = ${params[name]} is not finite`, { field: name });
  }
  const g2 = params.g1 * params.g1 + params.g2 * params.g2;
  if (!(g2 < 1)) {
    throw new SceneError(`shear |g| = ${Math.sqrt(g2)} must be < 1 (g1 = ${params.g1}, g2 = ${params.g2})`, { field: 'g1' });
  }
  for (let i = 0; i < n; i++) {
    if (!(params.hlr[i] > 0)) {
      throw new SceneError(`${describeSource(set, i)}: hlr = ${params.hlr[i]} must be > 0`, { field: `hlr[${i}]` });
    }
    const e2 = params.e1[i] * params.e1[i] + params.e2[i] * params.e2[i];
    if (!(e2 < 1)) {
      throw new SceneError(
        `${describeSource(set, i)}: distortion |e| = ${Math.sqrt(e2)} must be < 1 (e1 = ${params.e1[i]}, e2 = ${params.e2[i]})`,
        { field: `e1[${i}]` },
      );
    }
  }
}

/**
 * The per-source parameters of the profile (SceneParams.nu for a free-ν Spergel, the bulge
 * arrays for bulge + disk; engine/model/profile-params.ts): one finite value per source, in range
 * (ν ∈ [−0.85, 4], bulgeFrac ∈ [0, 1], bulgeHlr > 0, |bulge e| < 1). Without a profile (or for
 * profiles without such parameters) nothing is checked.
 */
function validateProfileParams(set: ExposureSet, params: SceneParams, profile?: GalaxyProfile): void {
  const n = set.sources.length;
  const names = profileParamNames(profile);
  for (const name of names) {
    const arr = params[name];
    if (!arr || arr.length !== n) {
      throw new SceneError(`params.${name} has ${arr ? arr.length : 'no'} values, expected one per source (${n}) for the ${profile!.type} profile`, { field: name });
    }
    for (let i = 0; i < n; i++) {
      const v = arr[i];
      const bad =
        !Number.isFinite(v)
          ? 'is not finite'
          : name === 'nu' && !(v >= SPERGEL_NU_MIN && v <= SPERGEL_NU_MAX)
            ? `must be in [${SPERGEL_NU_MIN}, ${SPERGEL_NU_MAX}] (GalSim's Spergel range)`
            : name === 'bulgeFrac' && !(v >= 0 && v <= 1)
              ? 'must be in [0, 1]'
              : name === 'bulgeHlr' && !(v > 0)
                ? 'must be > 0'
                : '';
      if (bad) throw new SceneError(`${describeSource(set, i)}: ${name} = ${v} ${bad}`, { field: `${name}[${i}]` });
    }
  }
  if (names.includes('bulgeE1')) {
    for (let i = 0; i < n; i++) {
      const e2 = params.bulgeE1![i] ** 2 + params.bulgeE2![i] ** 2;
      if (!(e2 < 1)) {
        throw new SceneError(`${describeSource(set, i)}: bulge distortion |e| = ${Math.sqrt(e2)} must be < 1 (bulgeE1 = ${params.bulgeE1![i]}, bulgeE2 = ${params.bulgeE2![i]})`, {
          field: `bulgeE1[${i}]`,
        });
      }
    }
  }
}

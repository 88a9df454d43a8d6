/**
 * Masking of unmodelled objects (issue 11 item 4: "everything in the pixels is modelled or
 * masked"). Stage 1 lists, per sub-tile, the catalog objects whose light reaches the modelled area
 * but that are not modelled (removed by the selection, selected but beyond the extended area, or
 * over sources.max_per_sub_tile); Stage 2 masks a disc around each of them by OR-ing
 * UNMODELLED_FLAG_BIT into the quadrant's in-memory flag array and adding that bit to the mask the
 * engine applies, so those pixels leave the likelihood exactly as flagged pixels do.
 *
 * Radius of an object's disc (docs/config.md, `masking`):
 *   r = max(footprint_scale × a, footprint_min_arcsec), a = SEMIMAJOR_AXIS × data.pixel_scale;
 *   point-like objects with mag < halo_mag_max: r = max(r, min(halo_max_arcsec,
 *     halo_radius_arcsec · 10^(−0.2 (mag − halo_mag_ref))));
 *   other objects, with wing_flux_mag set: r = max(r, r_w), r_w the radius outside which a
 *     circular exponential of half-light radius a and the catalog flux holds the flux of AB
 *     magnitude wing_flux_mag: (1 + x) e^(−x) = 10^(−0.4 (wing_flux_mag − mag)), r_w = x a / b,
 *     b = 1.67835 (hlr / scale length).
 *
 * Runtime-agnostic; no file access.
 */
import type { MaskingConfig } from '../config/schema.ts';
import { AB_MAG_1UJY } from '../data/catalog/mer.ts';
import { EXP_HLR_OVER_R0 } from '../model/galsim.ts';
import { pixelIndex } from '../scene/pixels.ts';
import type { ActiveBlocks } from '../scene/types.ts';

/**
 * The in-memory FLG bit of pixels masked for unmodelled objects: bit 30 (0x40000000), unused by
 * the VIS flag map. It is never written to a file.
 */
export const UNMODELLED_FLAG_BIT = 0x40000000;

/** What masking needs of one unmodelled object. */
export interface UnmodelledObject {
  ra: number;
  dec: number;
  /** AB magnitude from the catalog flux (NaN when the flux is not positive). */
  mag: number;
  /** Catalog semi-major axis in arcsec (NaN when unknown). */
  semimajorArcsec: number;
  pointLike: boolean;
}

/** The radius rule's parameters (the fields of the `masking` section that set a radius). */
export type MaskRadiusRule = Pick<MaskingConfig, 'footprint_scale' | 'footprint_min_arcsec' | 'halo_mag_max' | 'halo_radius_arcsec' | 'halo_mag_ref' | 'halo_max_arcsec' | 'wing_flux_mag'>;

export function radiusRuleOf(m: MaskingConfig): MaskRadiusRule {
  return {
    footprint_scale: m.footprint_scale,
    footprint_min_arcsec: m.footprint_min_arcsec,
    halo_mag_max: m.halo_mag_max,
    halo_radius_arcsec: m.halo_radius_arcsec,
    halo_mag_ref: m.halo_mag_ref,
    halo_max_arcsec: m.halo_max_arcsec,
    wing_flux_mag: m.wing_flux_mag,
  };
}

/** AB magnitude of a flux in µJy (NaN when not positive). */
export function abMagnitude(fluxUJy: number): number {
  return fluxUJy > 0 && Number.isFinite(fluxUJy) ? AB_MAG_1UJY - 2.5 * Math.log10(fluxUJy) : NaN;
}

/** Halo radius (arcsec) of a point-like object of magnitude `mag`; 0 when it gets none. */
export function haloRadiusArcsec(mag: number, rule: MaskRadiusRule): number {
  if (rule.halo_mag_max === null || !(mag < rule.halo_mag_max)) return 0;
  return Math.min(rule.halo_max_arcsec, rule.halo_radius_arcsec * Math.pow(10, -0.2 * (mag - rule.halo_mag_ref)));
}

/**
 * x = r / r0 at which a circular exponential profile keeps the fraction `q` of its flux outside r:
 * the root of (1 + x) e^(−x) = q (0 when q ≥ 1). The left side falls monotonically from 1 at x = 0;
 * Newton's iteration on the concave, decreasing f(x) = log(1 + x) − x − log q, started at
 * −log q + log(1 − log q) (just below the root), lands above it and then falls to it monotonically.
 */
export function exponentialWingX(q: number): number {
  if (!(q < 1)) return 0;
  if (!(q > 0)) return Infinity;
  const lq = Math.log(q);
  let x = -lq + Math.log(1 - lq);
  for (let i = 0; i < 50; i++) {
    const f = Math.log1p(x) - x - lq;
    const step = f / (1 / (1 + x) - 1);
    x -= step;
    if (Math.abs(step) < 1e-12 * (1 + x)) break;
  }
  return x;
}

/**
 * Radius (arcsec) outside which a galaxy of magnitude `mag` and half-light radius `a` (arcsec), as
 * a circular exponential, holds the flux of magnitude `wingMag`; 0 when its whole flux is fainter.
 */
export function wingRadiusArcsec(mag: number, a: number, wingMag: number): number {
  if (!Number.isFinite(mag) || !(a > 0)) return 0;
  return (exponentialWingX(Math.pow(10, -0.4 * (wingMag - mag))) * a) / EXP_HLR_OVER_R0;
}

/** Mask radius (arcsec) of one object. */
export function maskRadiusArcsec(o: Pick<UnmodelledObject, 'mag' | 'semimajorArcsec' | 'pointLike'>, rule: MaskRadiusRule): number {
  const a = Number.isFinite(o.semimajorArcsec) && o.semimajorArcsec > 0 ? o.semimajorArcsec : 0;
  let r = Math.max(rule.footprint_scale * a, rule.footprint_min_arcsec);
  if (o.pointLike) r = Math.max(r, haloRadiusArcsec(o.mag, rule));
  else if (rule.wing_flux_mag !== null) r = Math.max(r, wingRadiusArcsec(o.mag, a, rule.wing_flux_mag));
  return r;
}

/** Half-extent in pixels along x and y of a disc of radius r (arcsec): r times the norms of the rows of J⁻¹. */
function discHalfExtent(jac: ArrayLike<number>, r: number): [number, number] {
  const det = Math.abs(jac[0] * jac[3] - jac[1] * jac[2]);
  return [(r * Math.hypot(jac[3], jac[1])) / det, (r * Math.hypot(jac[2], jac[0])) / det];
}

/** One disc in a quadrant's pixel frame. */
export interface PixelDisc {
  /** Centre, 0-based pixels (pixel i covers [i − 0.5, i + 0.5)). */
  x: number;
  y: number;
  /** Local WCS Jacobian at the centre, [du/dx, du/dy, dv/dx, dv/dy] in arcsec per pixel. */
  jacobian: readonly [number, number, number, number];
  radiusArcsec: number;
}

/**
 * Sets `bit` in `flags` for every pixel whose centre lies within the disc, the sky distance being
 * measured through the local Jacobian at the disc centre (|J (p − c)| ≤ r; the WCS is affine to
 * ≪ 0.01″ over a few arcsec). Returns the pixels of the quadrant inside the disc and how many of
 * them did not have the bit before. `index` maps a pixel to its place in `flags` (−1: not kept;
 * default row-major), for quadrants that keep only their active blocks (engine/scene/pixels.ts).
 */
export function maskDisc(
  flags: Int32Array | Uint32Array,
  width: number,
  height: number,
  d: PixelDisc,
  bit: number,
  index: (x: number, y: number) => number = (x, y) => y * width + x,
): { inside: number; added: number } {
  const [a, b, c, e] = d.jacobian;
  const det = a * e - b * c;
  const r = d.radiusArcsec;
  if (!(r > 0) || !Number.isFinite(d.x) || !Number.isFinite(d.y) || !(Math.abs(det) > 0)) return { inside: 0, added: 0 };
  const [hx, hy] = discHalfExtent(d.jacobian, r);
  const x0 = Math.max(0, Math.ceil(d.x - hx));
  const x1 = Math.min(width - 1, Math.floor(d.x + hx));
  const y0 = Math.max(0, Math.ceil(d.y - hy));
  const y1 = Math.min(height - 1, Math.floor(d.y + hy));
  const r2 = r * r;
  let inside = 0;
  let added = 0;
  for (let y = y0; y <= y1; y++) {
    const py = y - d.y;
    for (let x = x0; x <= x1; x++) {
      const px = x - d.x;
      const du = a * px + b * py;
      const dv = c * px + e * py;
      if (du * du + dv * dv > r2) continue;
      inside++;
      const i = index(x, y);
      if (i >= 0 && ((flags[i] >>> 0) & bit) === 0) {
        flags[i] = (flags[i] | bit) as number;
        added++;
      }
    }
  }
  return { inside, added };
}

/** What a quadrant offers for the projection of objects. */
export interface PixelProjection {
  skyToPixel(ra: number, dec: number): [number, number];
  localJacobian(x: number, y: number): readonly number[];
}

export interface MaskQuadrant {
  name: string;
  width: number;
  height: number;
  flags: Int32Array | Uint32Array;
  wcs: PixelProjection;
  /** The pixels kept when not the whole crop (engine/scene/pixels.ts). */
  blocks?: ActiveBlocks;
}

export interface MaskResult {
  /** Pixels newly masked per quadrant (the whole quadrant). */
  maskedPerQuadrant: number[];
  /** Per object: the radius used (arcsec) and whether its disc holds at least one pixel of some quadrant. */
  radius: Float64Array;
  touched: Uint8Array;
}

/**
 * Masks every object's disc in every quadrant. Objects whose pixel position is not finite or whose
 * disc misses the quadrant are skipped.
 */
export function maskUnmodelled(quadrants: MaskQuadrant[], objects: UnmodelledObject[], rule: MaskRadiusRule, bit = UNMODELLED_FLAG_BIT): MaskResult {
  const radius = Float64Array.from(objects, (o) => maskRadiusArcsec(o, rule));
  const touched = new Uint8Array(objects.length);
  const maskedPerQuadrant = quadrants.map((q) => {
    let n = 0;
    objects.forEach((o, k) => {
      const [x, y] = q.wcs.skyToPixel(o.ra, o.dec);
      if (!Number.isFinite(x) || !Number.isFinite(y)) return;
      const j = q.wcs.localJacobian(x, y);
      const disc = { x, y, jacobian: [j[0], j[1], j[2], j[3]] as const, radiusArcsec: radius[k] };
      const { inside, added } = maskDisc(q.flags, q.width, q.height, disc, bit, (px, py) => pixelIndex(q, px, py));
      if (inside > 0) touched[k] = 1;
      n += added;
    });
    return n;
  });
  return { maskedPerQuadrant, radius, touched };
}

/** Clears `bit` in flags (input FLG data that happen to use the in-memory bit); returns how many pixels had it. */
export function clearFlagBit(flags: Int32Array | Uint32Array, bit: number): number {
  let n = 0;
  for (let i = 0; i < flags.length; i++) {
    if (((flags[i] >>> 0) & bit) !== 0) {
      flags[i] = (flags[i] & ~bit) as number;
      n++;
    }
  }
  return n;
}

// ---------------------------------------------------------------------------------------------
// Stage 2: mask a sub-tile's unmodelled objects in its ExposureSet

/** The manifest's list (engine/tiling/manifest.ts, `unmodelled`), as far as masking needs it. */
export interface UnmodelledList {
  search: { beyond_extended_arcsec: number; rule: MaskRadiusRule };
  object_id: string[];
  ra: number[];
  dec: number[];
  mag: number[];
  semimajor_arcsec: number[];
  point_like: boolean[];
  cut: string[];
}

export interface UnmodelledMaskSummary {
  mode: 'mask' | 'model' | 'none';
  /** The in-memory FLG bit (UNMODELLED_FLAG_BIT). */
  bit: number;
  /** Objects listed in the manifest (null: the manifest has no list — written by an older prepare). */
  listed: number | null;
  /** Listed objects whose disc holds at least one pixel of some quadrant (0 when mode is none). */
  masked: number;
  /** Those per reason (manifest `cut`). */
  masked_by_cut: Record<string, number>;
  /** Listed objects modelled as nuisance sources instead (masking.unmodelled: model), and per reason. */
  modelled: number;
  modelled_by_cut: Record<string, number>;
  /** Of the modelled ones, the point-like objects modelled as point sources (masking.point_like: model). */
  modelled_point_like: number;
  /** Modelled sources whose centre pixel lies inside an unmodelled object's disc in some quadrant. */
  covered_source_centres: number;
  /** Those sources (ExposureSet indices, ascending). */
  covered_sources: number[];
  /** Of those, the ones whose centre lies in the disc of an object modelled as a nuisance source (masking.unmodelled: model). */
  covered_by_modelled?: number;
  /** Their names (OBJECT_ID) when made shear-blind (masking.covered_centres: shear_blind; set by the caller). */
  shear_blind?: string[];
  /** Pixels carrying the bit, per quadrant (whole crop, or its active blocks when only those are kept), in ExposureSet order. */
  pixels: number[];
}

export interface ApplyMaskInput {
  quadrants: Array<{ name: string; width: number; height: number; flags: Int32Array | Uint32Array; blocks?: ActiveBlocks }>;
  wcs: PixelProjection[];
  /** Modelled sources' pixel positions (the ExposureSet pairs). */
  pairs: Array<{ source: number; quadrant: number; x: number; y: number; visible: boolean }>;
  /** A modelled source's name for the warnings (e.g. its OBJECT_ID). */
  sourceName: (source: number) => string;
  /** Indices into the list of the objects modelled as nuisance sources (masking.unmodelled: model): not masked. */
  modelled?: ReadonlySet<number>;
}

/**
 * The sources (indices) of `input.pairs` whose centre pixel lies within the disc of one of the
 * objects in some quadrant: |J (p − c)| ≤ r, J the local Jacobian at the object (as maskDisc),
 * p the centre of the pixel holding the source. The objects are bucketed per quadrant on a
 * 64-pixel grid, so each pair checks the few discs around it.
 */
export function sourcesNearObjects(input: Pick<ApplyMaskInput, 'quadrants' | 'wcs' | 'pairs'>, objects: Array<{ ra: number; dec: number; radiusArcsec: number }>): Set<number> {
  const CELL = 64;
  const near = new Set<number>();
  input.quadrants.forEach((q, j) => {
    const ncx = Math.ceil(q.width / CELL);
    const cells = new Map<number, Array<{ x: number; y: number; jac: readonly number[]; r: number }>>();
    for (const o of objects) {
      const [x, y] = input.wcs[j].skyToPixel(o.ra, o.dec);
      if (!Number.isFinite(x) || !Number.isFinite(y) || !(o.radiusArcsec > 0)) continue;
      const jac = input.wcs[j].localJacobian(x, y);
      if (!(Math.abs(jac[0] * jac[3] - jac[1] * jac[2]) > 0)) continue;
      const [hx, hy] = discHalfExtent(jac, o.radiusArcsec);
      const d = { x, y, jac, r: o.radiusArcsec };
      for (let gy = Math.floor(Math.max(0, y - hy) / CELL); gy <= Math.floor(Math.min(q.height - 1, y + hy) / CELL); gy++)
        for (let gx = Math.floor(Math.max(0, x - hx) / CELL); gx <= Math.floor(Math.min(q.width - 1, x + hx) / CELL); gx++) {
          const list = cells.get(gy * ncx + gx);
          if (list) list.push(d);
          else cells.set(gy * ncx + gx, [d]);
        }
    }
    if (!cells.size) return;
    for (const p of input.pairs) {
      if (p.quadrant !== j || !p.visible) continue;
      const px = Math.round(p.x);
      const py = Math.round(p.y);
      if (px < 0 || py < 0 || px >= q.width || py >= q.height) continue;
      const list = cells.get(Math.floor(py / CELL) * ncx + Math.floor(px / CELL));
      if (list?.some((d) => Math.hypot(d.jac[0] * (px - d.x) + d.jac[1] * (py - d.y), d.jac[2] * (px - d.x) + d.jac[3] * (py - d.y)) <= d.r)) near.add(p.source);
    }
  });
  return near;
}

function sameRule(a: MaskRadiusRule, b: MaskRadiusRule): boolean {
  return (Object.keys(b) as Array<keyof MaskRadiusRule>).every((k) => (a[k] ?? null) === (b[k] ?? null));
}

/**
 * Masks the listed unmodelled objects (masking.unmodelled: mask; with model, all but those modelled as
 * nuisance sources, `input.modelled`) by OR-ing UNMODELLED_FLAG_BIT
 * into the quadrants' flags, in place. Returns the mask the engine must apply (badPixelMask with
 * the bit when masking), the summary for the metadata, and warnings: no list in the manifest, a
 * list searched with other radii, input FLG data using the bit, modelled source centres covered.
 */
export function applyUnmodelledMask(
  input: ApplyMaskInput,
  list: UnmodelledList | undefined,
  masking: MaskingConfig,
  badPixelMask: number,
): { engineMask: number; summary: UnmodelledMaskSummary; warnings: string[] } {
  const bit = UNMODELLED_FLAG_BIT;
  const warnings: string[] = [];
  const mode = masking.unmodelled;
  const summary: UnmodelledMaskSummary = {
    mode,
    bit,
    listed: list ? list.ra.length : null,
    masked: 0,
    masked_by_cut: {},
    modelled: 0,
    modelled_by_cut: {},
    modelled_point_like: 0,
    covered_source_centres: 0,
    covered_sources: [],
    pixels: input.quadrants.map(() => 0),
  };
  if (mode === 'none') return { engineMask: badPixelMask, summary, warnings };
  const bitInMask = ((badPixelMask >>> 0) & bit) !== 0;
  if (!bitInMask) {
    // input FLG data that use the bit: it would mask them as unmodelled; clear it (in memory)
    input.quadrants.forEach((q) => {
      const n = clearFlagBit(q.flags, bit);
      if (n) warnings.push(`quadrant ${q.name}: ${n} pixel(s) of the FLG data carry bit 30 (0x40000000), which shine uses in memory for unmodelled objects; that input bit is ignored`);
    });
  }
  if (!list) {
    warnings.push('the manifest lists no unmodelled objects (written by an older shine prepare, manifest version 1): objects the selection removed (stars, faint or flagged objects) are not masked; re-run shine prepare');
    return { engineMask: (badPixelMask | bit) >>> 0, summary, warnings };
  }
  const rule = radiusRuleOf(masking);
  if (!sameRule(list.search.rule, rule)) {
    warnings.push(
      `the manifest's unmodelled objects were searched with other masking radii (${JSON.stringify(list.search.rule)}) than this configuration's (${JSON.stringify(rule)}); objects that only the new radii bring within reach are missing: re-run shine prepare`,
    );
  }
  // the objects modelled as nuisance sources are not masked: their light is in the model
  const modelled = input.modelled ?? new Set<number>();
  const kept = list.ra.map((_, k) => k).filter((k) => !modelled.has(k));
  for (const k of modelled) {
    summary.modelled++;
    summary.modelled_by_cut[list.cut[k]] = (summary.modelled_by_cut[list.cut[k]] ?? 0) + 1;
    if (list.point_like[k]) summary.modelled_point_like++;
  }
  const objects: UnmodelledObject[] = kept.map((k) => ({ ra: list.ra[k], dec: list.dec[k], mag: list.mag[k], semimajorArcsec: list.semimajor_arcsec[k], pointLike: list.point_like[k] }));
  const res = maskUnmodelled(
    input.quadrants.map((q, j) => ({ name: q.name, width: q.width, height: q.height, flags: q.flags, wcs: input.wcs[j], ...(q.blocks ? { blocks: q.blocks } : {}) })),
    objects,
    rule,
    bit,
  );
  summary.pixels = res.maskedPerQuadrant;
  res.touched.forEach((t, i) => {
    if (!t) return;
    const cut = list.cut[kept[i]];
    summary.masked++;
    summary.masked_by_cut[cut] = (summary.masked_by_cut[cut] ?? 0) + 1;
  });
  // modelled sources whose centre pixel got masked
  const covered = new Set<number>();
  for (const p of input.pairs) {
    if (!p.visible) continue;
    const q = input.quadrants[p.quadrant];
    const x = Math.round(p.x);
    const y = Math.round(p.y);
    const i = pixelIndex(q, x, y);
    if (i < 0) continue;
    if (((q.flags[i] >>> 0) & bit) !== 0) covered.add(p.source);
  }
  // with masking.unmodelled: model, a modelled object's disc removes no pixel, but a source whose
  // centre it covers is as blended with it as one under a mask: it is counted the same way
  if (modelled.size) {
    const near = sourcesNearObjects(
      input,
      [...modelled].map((k) => ({ ra: list.ra[k], dec: list.dec[k], radiusArcsec: maskRadiusArcsec({ mag: list.mag[k], semimajorArcsec: list.semimajor_arcsec[k], pointLike: list.point_like[k] }, rule) })),
    );
    summary.covered_by_modelled = near.size;
    for (const s of near) covered.add(s);
  }
  summary.covered_source_centres = covered.size;
  summary.covered_sources = [...covered].sort((a, b) => a - b);
  if (covered.size) {
    const names = summary.covered_sources.map(input.sourceName);
    const blind = masking.covered_centres === 'shear_blind';
    warnings.push(
      `${covered.size} modelled source(s) have their centre inside an unmodelled object's ${modelled.size ? 'disc (masked, or modelled as a nuisance source)' : 'mask'} (${names.slice(0, 5).join(', ')}${names.length > 5 ? ', …' : ''}): their core pixels are left out of the likelihood (the unmodelled light is not in the model)${blind ? '; they are fitted shear-blind (masking.covered_centres)' : ''}`,
    );
  }
  return { engineMask: (badPixelMask | bit) >>> 0, summary, warnings };
}

/**
 * Goodness of fit per quadrant (docs/outputs.md, metadata `quadrant_chi2`): χ² = Σ ((obs − model) / rms)²
 * over the quadrant's modelled area — pixels under at least one visible modelled stamp that enter
 * the likelihood (flags & mask = 0, finite data, rms > 0) — at the fitted estimate, in float64 on
 * the CPU from the rendered model image. For a correct model and honest rms, χ²/N ≈ 1.
 * Runtime-agnostic.
 */
import { coverageMask, coveringPairs } from '../model/geometry.ts';
import { pixelIndex, usablePixel } from '../scene/pixels.ts';
import type { ExposureSet } from '../scene/types.ts';

export interface QuadrantChi2 {
  name: string;
  /** Pixels in the sum (modelled area, unmasked): the engine's likelihood pixels. */
  n_pixels: number;
  chi2: number;
  /** chi2 / n_pixels (NaN when no pixel). */
  chi2_per_pixel: number;
  /** Pixels of the modelled area that only the unmodelled-object mask removes from the likelihood. */
  masked_unmodelled: number;
  /** Pixels of the quadrant carrying the unmodelled-object bit (of its active blocks when it keeps only those). */
  masked_unmodelled_all: number;
}


/**
 * χ² per quadrant of `models` (one full-size image per quadrant, e.g. ShearEngine.render at the
 * estimate). `mask`: the FLG bits the likelihood masks (including `unmodelledBit` when masking);
 * `unmodelledBit`: the bit of the unmodelled-object mask (0: none), for the counts.
 * `blockModels`: the models are on the quadrants' kept blocks (ShearEngine.renderBlocks; every
 * quadrant keeps only its active blocks, in the engine's numbering), not full-size.
 */
export function quadrantChi2(set: ExposureSet, models: ArrayLike<ArrayLike<number>>, mask: number, unmodelledBit = 0, blockModels = false): QuadrantChi2[] {
  const by = coveringPairs(set); // the modelled area: under at least one visible stamp, one quadrant at a time
  const m = mask >>> 0;
  const other = (m & ~unmodelledBit) >>> 0;
  return set.quadrants.map((q, j) => {
    const model = models[j];
    const c = coverageMask(set, j, by[j]);
    const bg = q.background;
    let chi2 = 0;
    let n = 0;
    let maskedU = 0;
    let maskedAll = 0;
    for (let d = 0; d < q.width * q.height; d++) {
      // a compact quadrant keeps only its active blocks (engine/scene/pixels.ts): every pixel of the
      // modelled area is among them; the others are not counted
      const i = q.blocks ? pixelIndex(q, d % q.width, Math.floor(d / q.width)) : d;
      if (i < 0) continue;
      const f = q.flags[i] >>> 0;
      const hasBit = unmodelledBit !== 0 && (f & unmodelledBit) !== 0;
      if (hasBit) maskedAll++;
      if (!c[d]) continue;
      const b = bg === undefined ? 0 : typeof bg === 'number' ? bg : bg[i];
      // float32, as the likelihood holds it (engine/scene/layout.ts) and as a compact store keeps it
      const obs = Math.fround(q.sci[i] - b);
      const rms = q.rms[i];
      if (!usablePixel(obs, rms, f, other)) continue;
      if ((f & m) !== 0) {
        if (hasBit) maskedU++;
        continue;
      }
      const r = (obs - model[blockModels ? i : d]) / rms;
      chi2 += r * r;
      n++;
    }
    return { name: q.name, n_pixels: n, chi2, chi2_per_pixel: n > 0 ? chi2 / n : NaN, masked_unmodelled: maskedU, masked_unmodelled_all: maskedAll };
  });
}

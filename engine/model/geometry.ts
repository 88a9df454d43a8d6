/**
 * Stamp geometry shared by the GPU engine and the float64 reference.
 *
 * A stamp of N pixels covers image pixels corner .. corner + N - 1 in each axis. The corner is
 * fixed when the scene is built (so accumulation can be precomputed and is deterministic);
 * the sub-pixel position and the offsets (dx, dy) enter as a Fourier phase.
 *
 * The FFT grid has M = fftFactor·N pixels; stamp pixel i sits at FFT index i + pad with
 * pad = (M − N) / 2, so a source at the stamp centre sits at the FFT grid centre and its
 * light wraps around only beyond the cropped stamp.
 */
import type { ExposureSet } from '../scene/types.ts';

/** Integer corner of the N-pixel stamp for a source at 0-based pixel coordinate x. */
export function stampCorner(x: number, n: number): number {
  return Math.round(x) - n / 2;
}

/** Padding of the stamp inside its FFT grid. */
export function fftPad(n: number, m: number): number {
  return (m - n) / 2;
}

/** Signed frequency index m ∈ [−M/2, M/2) of FFT index i (numpy fftfreq·M). */
export function signedFreq(i: number, m: number): number {
  return i < m / 2 ? i : i - m;
}

/**
 * Half-light radius (arcsec) at which a point source (SourceInfo.pointSource) is rendered: the
 * profile's spectrum 1 − O((k r0)²) is 1 to float32 precision at every frequency of an
 * alias-complete stamp (|k| ≲ 100 /″, (k r0)² ≲ 10⁻⁸), so the model is the PSF alone, while every
 * formula of the galaxy path stays finite (the hlr gradient divides by it).
 */
export const POINT_SOURCE_HLR = 1e-6;

/** The stamp side (pixels) a source of half-light radius h_pix needs: 2 (3 h_pix + 10.5) (SHINE's rule). */
export function stampNeed(hlrPixels: number): number {
  return 2 * (3 * hlrPixels + 10.5);
}

/**
 * Smallest tier with stampNeed ≤ size; the largest tier otherwise — then the source's light
 * beyond that stamp is not modelled, which buildExposureSet reports (`oversize`).
 */
export function chooseTier(hlrPixels: number, tiers: readonly number[] = [64, 128, 256]): number {
  const need = stampNeed(hlrPixels);
  for (const t of tiers) if (need <= t) return t;
  return tiers[tiers.length - 1];
}

/** Per quadrant, 1 where at least one visible stamp of a non-nuisance source covers the pixel (the likelihood's pixels). */
export function coverageMasks(set: ExposureSet): Uint8Array[] {
  const by = coveringPairs(set);
  return set.quadrants.map((_, j) => coverageMask(set, j, by[j]));
}

/**
 * Per quadrant, the pairs whose stamps make its modelled area: visible, of a non-nuisance source
 * (a nuisance source's stamp renders into the covered pixels but adds none, SourceInfo.nuisance).
 * With `coverageMask` it gives one quadrant's mask at a time: a realistic sub-tile's 52 crops
 * hold 141 M pixels, so the masks of all of them at once are 141 MB.
 */
export function coveringPairs(set: ExposureSet): number[][] {
  const by: number[][] = set.quadrants.map(() => []);
  set.pairs.forEach((pr, i) => {
    if (pr.visible && !set.sources[pr.source].nuisance) by[pr.quadrant].push(i);
  });
  return by;
}

/** The modelled area of quadrant j, full size (1 under a stamp of `pairs`, from `coveringPairs`). */
export function coverageMask(set: ExposureSet, j: number, pairs: readonly number[]): Uint8Array {
  const q = set.quadrants[j];
  const c = new Uint8Array(q.width * q.height);
  for (const i of pairs) {
    const pr = set.pairs[i];
    const N = set.sources[pr.source].stampSize;
    const cx = stampCorner(pr.x, N);
    const cy = stampCorner(pr.y, N);
    const x0 = Math.max(0, cx);
    const x1 = Math.min(q.width, cx + N);
    const y0 = Math.max(0, cy);
    const y1 = Math.min(q.height, cy + N);
    for (let y = y0; y < y1; y++) c.fill(1, y * q.width + x0, y * q.width + x1);
  }
  return c;
}

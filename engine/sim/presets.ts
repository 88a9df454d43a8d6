/**
 * Simulation presets. All share the VIS focal plane, 4 dithers, the photometry of scene.ts and
 * the tile 102018211 (centre RA 57.9990741°, Dec −51.5°).
 *
 *  ci       a 4′ × 4′ tile core cut in 4 × 4 sub-tiles of 1′; only sub-tile (row 1, col 1) and
 *           its 12″ margin are populated and imaged (1.4′ × 1.4′ + 4″ pad); quadrants are CROPPED
 *           to that area (each crop keeps its own NAXIS, CRPIX-shifted TPV WCS, and PSF grid);
 *           galaxies to mag 25.5. Pointing centred on the sub-tile: it straddles the gap cross
 *           between CCDs 3-3, 3-4, 4-3, 4-4, so rotated and unrotated CCDs both contribute.
 *  medium   a 12′ tile core cut in 4 × 4 sub-tiles of 3′; sub-tile (1, 1) with its 20″ margin
 *           imaged (3.67′ × 3.67′), quadrants cropped to it, galaxies to mag 26: ~1/7 of a realistic
 *           sub-tile's sources and pixels, for the fit's behaviour at scale in minutes, not hours.
 *  subtile  the real 30′ tile geometry (4 × 4 sub-tiles of 7.5′), sub-tile (1, 1) with its 1′
 *           margin imaged (9.5′ × 9.5′), quadrants cropped to it, galaxies to mag 26.
 *  tile     the whole 30′ tile core + 1′ margin, all 144 full 2048 × 2066 quadrants of each of the
 *           4 exposures (≈ 7 GB per DET file, like the real ones), galaxies to mag 26.
 *  minitile a small WHOLE tile for survey-run tests: a 2′ core cut in 4 × 4 sub-tiles of 30″, the
 *           whole core and its 4″ margin imaged (2.13′ × 2.13′ + 3″ pad), quadrants cropped to it,
 *           galaxies to mag 23 of hlr ≤ 0.5″ (64-px stamps hold them; a handful of sources per
 *           sub-tile, so every sub-tile of the grid is fitted in seconds). Pointing centred on the tile: the gap cross of CCDs 3-3 … 4-4.
 */
export type PresetName = 'ci' | 'medium' | 'subtile' | 'tile' | 'minitile';

export interface Preset {
  name: PresetName;
  tileId: number;
  tileRa: number;
  tileDec: number;
  /** Tile core side (arcsec) and sub-tile grid. */
  tileCore: number;
  grid: number;
  /** Margin around a sub-tile core (arcsec). */
  margin: number;
  /** Sub-tile rendered (row, col), or null for the whole tile. */
  subTile: [number, number] | null;
  /** Extra band populated with objects around the imaged area (arcsec). */
  pad: number;
  /** Crop quadrants to the imaged area. */
  crop: boolean;
  magMax: number;
  /** Instrument position angle (deg). */
  pa: number;
  /** Observation id of the pointing. */
  obsId: number;
  /** Stamp tiers for the pipeline config. */
  stampTiers: number[];
  /**
   * Largest galaxy half-light radius drawn (arcsec; default 3, scene.ts): a preset whose tiers
   * stop short keeps its galaxies inside its stamps (stampNeed, engine/model/geometry.ts).
   */
  hlrMax?: number;
  /**
   * Bumped whenever the preset's scenes change for the same seed (default 1): a calibration does
   * not resume or pool simulations of another revision (docs/calibrate.md "Resume").
   */
  revision?: number;
}

/** The revision of a preset's scenes (Preset.revision, default 1). */
export function presetRevision(p: Preset): number {
  return p.revision ?? 1;
}

const TILE = { tileId: 102018211, tileRa: 57.9990741, tileDec: -51.5 };

export const PRESETS: Record<PresetName, Preset> = {
  ci: { name: 'ci', ...TILE, tileCore: 240, grid: 4, margin: 12, subTile: [1, 1], pad: 4, crop: true, magMax: 25.5, pa: 7, obsId: 2701, stampTiers: [64, 128] },
  medium: { name: 'medium', ...TILE, tileCore: 720, grid: 4, margin: 20, subTile: [1, 1], pad: 5, crop: true, magMax: 26, pa: 7, obsId: 2701, stampTiers: [64, 128, 256] },
  subtile: { name: 'subtile', ...TILE, tileCore: 1800, grid: 4, margin: 60, subTile: [1, 1], pad: 5, crop: true, magMax: 26, pa: 7, obsId: 2701, stampTiers: [64, 128, 256] },
  tile: { name: 'tile', ...TILE, tileCore: 1800, grid: 4, margin: 60, subTile: null, pad: 5, crop: false, magMax: 26, pa: 7, obsId: 2701, stampTiers: [64, 128, 256] },
  // minitile revision 2 (2026-12-07): galaxies of hlr ≤ 0.5″, so that the catalog size (noisy
  // by ~10 % at this depth) needs no more than its 64-px stamps; revision 1 drew up to 3″ and
  // truncated 58 of the 257 modelled galaxies of seeds 1–4 (docs/simulate.md)
  minitile: { name: 'minitile', ...TILE, tileCore: 120, grid: 4, margin: 4, subTile: null, pad: 3, crop: true, magMax: 23, pa: 7, obsId: 2701, stampTiers: [64], hlrMax: 0.5, revision: 2 },
};

/** Imaged area on the tile tangent plane [umin, umax, vmin, vmax] (arcsec), without the pad. */
export function imagedRegion(p: Preset): [number, number, number, number] {
  if (!p.subTile) {
    const h = p.tileCore / 2 + p.margin;
    return [-h, h, -h, h];
  }
  const cell = p.tileCore / p.grid;
  const [row, col] = p.subTile;
  const xi0 = -p.tileCore / 2 + col * cell;
  const v0 = -p.tileCore / 2 + row * cell;
  // u = −ξ
  return [-(xi0 + cell) - p.margin, -xi0 + p.margin, v0 - p.margin, v0 + cell + p.margin];
}

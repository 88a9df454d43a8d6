/**
 * calibration.fits (docs/calibrate.md), written with the project's FITS writer:
 *   HDU 1 SHEARFITS  one row per planned fit (seed, component, sign, rotation, sub-tile, truth,
 *                    the shear product's G1, G2, G1_ERR, G2_ERR, CONVERGED, N_SOURCES, status)
 *   HDU 2 SUMMARY    one row: m1, m2, c1, c2, leakages with bootstrap errors, pulls, counts
 *   HDU 3 SETS       one row per (seed, sub-tile) set: complete, m1, m2, c1, c2, leakages
 *   HDU 4 SEEDS      one row per seed: complete sets, mean m1, m2, c1, c2 of its sets
 * Runtime-agnostic: returns bytes.
 */
import { writeFits, type ColumnSpec } from '../data/fits/write.ts';
import type { CardInput } from '../data/fits/header.ts';
import { asciiText } from '../outputs/provenance.ts';
import { memberLabel, memberRotated, memberRotationDeg } from './design.ts';
import { QUANTITIES, type CalibrationFit, type CalibrationSummary, type Quantity } from './stats.ts';

export const FITS_EXTNAME = 'SHEARFITS';
export const SUMMARY_EXTNAME = 'SUMMARY';
export const SETS_EXTNAME = 'SETS';
export const SEEDS_EXTNAME = 'SEEDS';

/** FITS column stem of each quantity (M1, LEAK12 = response of ĝ2 to g1, C1X = c1 from the pair along 2). */
export const QUANTITY_COLUMNS: Record<Quantity, string> = {
  m1: 'M1', m2: 'M2', c1: 'C1', c2: 'C2', leak1to2: 'LEAK12', leak2to1: 'LEAK21', c1Cross: 'C1X', c2Cross: 'C2X',
};

export interface CalibrationFitsHeader {
  preset: string;
  g: number;
  method: string;
  priors: string;
  noise: boolean;
  /** R, the rotations of the intrinsic shapes per (component, sign) (NROT). */
  rotations: number;
  configHash: string;
  softwareVersion: string;
  /** ISO 8601 creation time (from the caller). */
  created: string;
}

function pull(v: number, t: number, e: number): number {
  return Number.isFinite(v) && Number.isFinite(e) && e > 0 ? (v - t) / e : NaN;
}

export function calibrationFits(fits: readonly CalibrationFit[], s: CalibrationSummary, h: CalibrationFitsHeader): Uint8Array {
  const cards: CardInput[] = [
    ['ORIGIN', 'shine-webgpu', 'shine calibrate'],
    ['SHINEVER', asciiText(h.softwareVersion), 'software version'],
    ['DATE', asciiText(h.created.replace(/Z$/, '').slice(0, 19)), 'creation time (UTC)'],
    ['PRESET', asciiText(h.preset), 'simulation preset'],
    ['GSHEAR', h.g, 'shear amplitude g of the simulations'],
    ['METHOD', asciiText(h.method), 'inference method'],
    ['PRIORS', asciiText(h.priors), 'priors: default (schema) or shine'],
    ['NOISE', h.noise, 'pixel noise in the simulations'],
    ['NROT', h.rotations, 'intrinsic-shape rotations 180*k/NROT per shear'],
    ['CFGHASH', asciiText(h.configHash), 'hash of the derived Stage-2 config template'],
  ];
  const n = fits.length;
  const f32 = (get: (f: CalibrationFit) => number) => Float32Array.from(fits, get);
  const f64 = (get: (f: CalibrationFit) => number) => Float64Array.from(fits, get);
  const rows: ColumnSpec[] = [
    { name: 'SEED', format: 'J', data: Int32Array.from(fits, (f) => f.seed) },
    { name: 'SIM', format: '6A', data: fits.map((f) => memberLabel(f)) },
    { name: 'COMPONENT', format: 'I', data: Int16Array.from(fits, (f) => f.component) },
    { name: 'SIGN', format: 'I', data: Int16Array.from(fits, (f) => f.sign) },
    { name: 'ROTATED', format: 'L', data: fits.map((f) => memberRotated(f)) },
    { name: 'ROTATION', format: 'D', data: f64((f) => memberRotationDeg(f)), unit: 'deg' },
    { name: 'TILE_ID', format: 'K', data: BigInt64Array.from(fits, (f) => BigInt(f.tileId)) },
    { name: 'SUBTILE_ROW', format: 'I', data: Int16Array.from(fits, (f) => f.row) },
    { name: 'SUBTILE_COL', format: 'I', data: Int16Array.from(fits, (f) => f.col) },
    { name: 'G_TRUE1', format: 'D', data: f64((f) => f.gTrue1) },
    { name: 'G_TRUE2', format: 'D', data: f64((f) => f.gTrue2) },
    { name: 'G1', format: 'E', data: f32((f) => f.g1) },
    { name: 'G2', format: 'E', data: f32((f) => f.g2) },
    { name: 'G1_ERR', format: 'E', data: f32((f) => f.g1Err) },
    { name: 'G2_ERR', format: 'E', data: f32((f) => f.g2Err) },
    { name: 'CONVERGED', format: 'L', data: fits.map((f) => f.converged) },
    { name: 'N_SOURCES', format: 'J', data: Int32Array.from(fits, (f) => f.nSources) },
    { name: 'STATUS', format: '8A', data: fits.map((f) => f.status) },
    { name: 'PULL1', format: 'D', data: f64((f) => (f.status === 'ok' ? pull(f.g1, f.gTrue1, f.g1Err) : NaN)) },
    { name: 'PULL2', format: 'D', data: f64((f) => (f.status === 'ok' ? pull(f.g2, f.gTrue2, f.g2Err) : NaN)) },
  ];

  const E = s.estimates;
  const one = (v: number) => new Float64Array([v]);
  const j1 = (v: number) => new Int32Array([v]);
  const summaryCols: ColumnSpec[] = [{ name: 'G', format: 'D', data: one(s.g) }];
  for (const q of QUANTITIES) {
    const c = QUANTITY_COLUMNS[q];
    summaryCols.push(
      { name: c, format: 'D', data: one(E[q].mean) },
      { name: `${c}_ERR`, format: 'D', data: one(E[q].err) },
      { name: `${c}_LO`, format: 'D', data: one(E[q].lo) },
      { name: `${c}_HI`, format: 'D', data: one(E[q].hi) },
      { name: `${c}_SEM`, format: 'D', data: one(E[q].sem) },
    );
  }
  // m and c with each set weighted by its fits' mean 1/σ̂² per component (engine/calibrate/stats.ts)
  for (const q of ['m1', 'm2', 'c1', 'c2'] as const) {
    const c = QUANTITY_COLUMNS[q];
    summaryCols.push({ name: `${c}_W`, format: 'D', data: one(s.estimatesWeighted[q].mean) }, { name: `${c}_W_ERR`, format: 'D', data: one(s.estimatesWeighted[q].err) });
  }
  const fc = s.fits;
  summaryCols.push(
    { name: 'PULL_MEAN', format: 'D', data: one(s.pulls.all.mean) },
    { name: 'PULL_SD', format: 'D', data: one(s.pulls.all.sd) },
    { name: 'PULL_RSD', format: 'D', data: one(s.pulls.all.robustSd) },
    { name: 'N_PULLS', format: 'J', data: j1(s.pulls.all.n) },
    // one pull per realisation (seed, sub-tile, rotation): the independent values, and the width's bootstrap error
    { name: 'PULL_SD_REAL', format: 'D', data: one(s.pullsByRealisation.all.sd) },
    { name: 'PULL_SD_REAL_ERR', format: 'D', data: one(s.pullsByRealisation.all.sdErr) },
    { name: 'N_PULLS_REAL', format: 'J', data: j1(s.pullsByRealisation.all.n) },
    { name: 'N_SETS', format: 'J', data: j1(s.nSets) },
    { name: 'N_COMPLETE', format: 'J', data: j1(s.nSetsComplete) },
    { name: 'N_SEEDS', format: 'J', data: j1(s.bootstrap.seeds) },
    { name: 'N_FITS', format: 'J', data: j1(fc.total) },
    { name: 'N_ATTEMPTED', format: 'J', data: j1(fc.attempted) },
    { name: 'N_OK', format: 'J', data: j1(fc.byStatus.ok) },
    { name: 'N_NAN', format: 'J', data: j1(fc.byStatus.nan) },
    { name: 'N_FAILED', format: 'J', data: j1(fc.byStatus.failed) },
    { name: 'N_MISSING', format: 'J', data: j1(fc.byStatus.missing) },
    { name: 'N_STALE', format: 'J', data: j1(fc.byStatus.stale) },
    { name: 'N_EMPTY', format: 'J', data: j1(fc.byStatus.empty) },
    { name: 'FRAC_CONVERGED', format: 'D', data: one(fc.fracConverged) },
    { name: 'FRAC_ERR_FINITE', format: 'D', data: one(fc.fracErrFinite) },
    { name: 'BOOTSTRAP', format: 'J', data: j1(s.bootstrap.replicates) },
  );

  const sets = s.sets;
  const setCols: ColumnSpec[] = [
    { name: 'SEED', format: 'J', data: Int32Array.from(sets, (x) => x.seed) },
    { name: 'TILE_ID', format: 'K', data: BigInt64Array.from(sets, (x) => BigInt(x.tileId)) },
    { name: 'SUBTILE_ROW', format: 'I', data: Int16Array.from(sets, (x) => x.row) },
    { name: 'SUBTILE_COL', format: 'I', data: Int16Array.from(sets, (x) => x.col) },
    { name: 'COMPLETE', format: 'L', data: sets.map((x) => x.complete) },
    { name: 'NSRC_VARIES', format: 'L', data: sets.map((x) => x.nSourcesVaries) },
    ...QUANTITIES.map((q) => ({ name: QUANTITY_COLUMNS[q], format: 'D', data: Float64Array.from(sets, (x) => x[q]) })),
  ];
  const seeds = s.perSeed;
  const seedCols: ColumnSpec[] = [
    { name: 'SEED', format: 'J', data: Int32Array.from(seeds, (x) => x.seed) },
    { name: 'N_SETS', format: 'J', data: Int32Array.from(seeds, (x) => x.nSets) },
    { name: 'N_COMPLETE', format: 'J', data: Int32Array.from(seeds, (x) => x.nComplete) },
    ...QUANTITIES.map((q) => ({ name: QUANTITY_COLUMNS[q], format: 'D', data: Float64Array.from(seeds, (x) => x.values[q]) })),
  ];
  return writeFits([
    { kind: 'bintable', name: FITS_EXTNAME, nRows: n, columns: rows, cards },
    { kind: 'bintable', name: SUMMARY_EXTNAME, nRows: 1, columns: summaryCols, cards },
    { kind: 'bintable', name: SETS_EXTNAME, nRows: sets.length, columns: setCols, cards },
    { kind: 'bintable', name: SEEDS_EXTNAME, nRows: seeds.length, columns: seedCols, cards },
  ]);
}

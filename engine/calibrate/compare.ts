/**
 * Two calibrations of the same simulations compared (`shine calibrate-compare A B`,
 * docs/calibrate.md "Comparing two configurations"): the change of m and c from A to B with
 * paired errors, and what B costs in shear precision.
 *
 * Why paired: two calibration folders with the same preset, seeds and simulation options hold the
 * same pixels — the same scene, intrinsic shapes and noise deviates — fitted two ways (other
 * masks, priors, estimator, method). Most of each folder's scatter in m is shape and pixel noise
 * common to both, and it cancels in the per-set difference m_B − m_A: a configuration change is
 * measured far more tightly than either m (the per-set scatter of m on noisy `ci` sets is ~10⁻²).
 * The bootstrap resamples seeds, the same draws for A, B and the difference.
 *
 * The price of a change: per fit present in both, σ̂_B/σ̂_A per component. The sets a calibration
 * needs for a given σ(m) scale as σ̂², so the squared median ratio is B's cost in simulations; a
 * bias traded for precision is worth it when the bias cannot be averaged away and the noise can.
 */
import { ShineError } from '../errors.ts';
import type { ParsedReport, PooledSettings } from './include.ts';
import { bootstrapClusterMeans, groupSets, mean, median, quantileSorted, sd, setEstimate, usable, QUANTITIES, type CalibrationFit, type Quantity, type SetEstimate } from './stats.ts';
import { memberKey } from './design.ts';

/**
 * The settings that make two folders' simulations the same pixels (the fit may differ in everything
 * else). `sim_omit_undetected` is not among them on purpose: with and without the objects the
 * catalog never detected, the sets share every listed object, shear, noise deviate and the catalog
 * itself, so the paired B − A is the undetected objects' share of m and c.
 */
export const SIMULATION_KEYS = ['preset', 'preset_revision', 'g', 'rotations', 'noise', 'psf_oversampling', 'position_angle', 'sim_spergel_nu', 'sim_profile'] as const satisfies ReadonlyArray<keyof PooledSettings>;

/** The simulation settings that differ between A and B, as `key A → B` phrases (empty: comparable). */
export function simulationDiff(a: PooledSettings, b: PooledSettings): string[] {
  const show = (v: unknown) => (v === null ? 'none' : String(v));
  return SIMULATION_KEYS.filter((k) => a[k] !== b[k]).map((k) => `${k} ${show(a[k])} in A, ${show(b[k])} in B`);
}

/** One quantity of A and B over the paired sets, and their paired difference. */
export interface ComparedQuantity {
  a: number;
  b: number;
  /** Mean over the paired sets of (B − A) per set; equals b − a. */
  delta: number;
  /** Bootstrap standard deviations over seeds (the same draws for all three; NaN with < 2 seeds). */
  aErr: number;
  bErr: number;
  deltaErr: number;
  /** 16th and 84th percentiles of the bootstrap replicates of delta. */
  deltaLo: number;
  deltaHi: number;
  /** Scatter of the per-set values (sd over sets): what one more set adds to the error. */
  aSdPerSet: number;
  bSdPerSet: number;
  deltaSdPerSet: number;
}

export interface ErrorRatio {
  /** Median over fits usable in both with finite positive errors of σ̂_B/σ̂_A. */
  median: number;
  n: number;
}

export interface Comparison {
  g: number;
  /** Sets complete in both (the pairs). */
  pairedSets: number;
  seeds: number[];
  /** Sets complete in one folder only (not compared), and sets planned in both but incomplete in either. */
  onlyA: number;
  onlyB: number;
  incomplete: number;
  quantities: Record<Quantity, ComparedQuantity>;
  errorRatio: { g1: ErrorRatio; g2: ErrorRatio };
  /** (mean of the two median ratios)²: the factor on the number of sets B needs for A's σ(m). */
  setsFactor: number;
  /** Usable fits (shear known) and fits with finite errors, of the planned non-empty fits, per folder. */
  fits: { a: { attempted: number; usable: number; withErrors: number }; b: { attempted: number; usable: number; withErrors: number } };
}

export interface CompareOptions {
  bootstrap?: number;
  bootstrapSeed?: number;
}

const setKey = (s: { seed: number; tileId: number; row: number; col: number }) => `${s.seed}|${s.tileId}|${s.row}|${s.col}`;

function completeSets(fits: readonly CalibrationFit[], g: number): Map<string, SetEstimate> {
  const out = new Map<string, SetEstimate>();
  for (const members of groupSets(fits)) {
    if (members.every((f) => f.status === 'empty')) continue;
    const s = setEstimate(members, g);
    out.set(setKey(s), s);
  }
  return out;
}

function fitCounts(fits: readonly CalibrationFit[]) {
  const attempted = fits.filter((f) => f.status !== 'empty');
  const ok = attempted.filter(usable);
  return { attempted: attempted.length, usable: ok.length, withErrors: ok.filter((f) => f.g1Err > 0 && f.g2Err > 0 && Number.isFinite(f.g1Err) && Number.isFinite(f.g2Err)).length };
}

/**
 * Compares report B with report A (B − A). Throws a ShineError when their simulations differ
 * (the difference would not be paired) or when they share no complete set.
 */
export function compareReports(a: ParsedReport, b: ParsedReport, o: CompareOptions = {}): Comparison {
  const diff = simulationDiff(a.settings, b.settings);
  if (diff.length) throw new ShineError(`${a.file} and ${b.file} are calibrations of different simulations (${diff.join('; ')}): a paired comparison needs the same preset, shear, rotations, noise and simulation options`);
  const g = a.settings.g;
  const B = o.bootstrap ?? 2000;
  const bseed = o.bootstrapSeed ?? 1;
  const setsA = completeSets(a.fits, g);
  const setsB = completeSets(b.fits, g);
  const paired: Array<[SetEstimate, SetEstimate]> = [];
  let onlyA = 0;
  let incomplete = 0;
  for (const [k, sa] of setsA) {
    const sb = setsB.get(k);
    if (!sb) {
      if (sa.complete) onlyA++;
    } else if (sa.complete && sb.complete) paired.push([sa, sb]);
    else incomplete++;
  }
  const onlyB = [...setsB].filter(([k, s]) => s.complete && !setsA.has(k)).length;
  if (!paired.length) throw new ShineError(`${a.file} and ${b.file} have no set (seed, sub-tile) complete in both: nothing to compare (seeds ${a.seeds.join(',') || 'none'} and ${b.seeds.join(',') || 'none'})`);

  const seeds = [...new Set(paired.map(([s]) => s.seed))].sort((x, y) => x - y);
  const bySeed = (f: (p: [SetEstimate, SetEstimate]) => number) => seeds.map((seed) => paired.filter(([s]) => s.seed === seed).map(f));
  const boot = (groups: number[][]) => Array.from(bootstrapClusterMeans(groups, B, bseed)).sort((x, y) => x - y);
  const quantities = {} as Record<Quantity, ComparedQuantity>;
  for (const q of QUANTITIES) {
    const va = paired.map(([x]) => x[q]);
    const vb = paired.map(([, y]) => y[q]);
    const vd = paired.map(([x, y]) => y[q] - x[q]);
    const ra = boot(bySeed(([x]) => x[q]));
    const rb = boot(bySeed(([, y]) => y[q]));
    const rd = boot(bySeed(([x, y]) => y[q] - x[q]));
    quantities[q] = {
      a: mean(va),
      b: mean(vb),
      delta: mean(vd),
      aErr: ra.length ? sd(ra) : NaN,
      bErr: rb.length ? sd(rb) : NaN,
      deltaErr: rd.length ? sd(rd) : NaN,
      deltaLo: rd.length ? quantileSorted(rd, 0.16) : NaN,
      deltaHi: rd.length ? quantileSorted(rd, 0.84) : NaN,
      aSdPerSet: va.length >= 2 ? sd(va) : NaN,
      bSdPerSet: vb.length >= 2 ? sd(vb) : NaN,
      deltaSdPerSet: vd.length >= 2 ? sd(vd) : NaN,
    };
  }

  // σ̂_B/σ̂_A per fit of the paired sets (the same member of the same set in both)
  const pairedKeys = new Set(paired.map(([s]) => setKey(s)));
  const fitKey = (f: CalibrationFit) => `${setKey(f)}|${memberKey(f)}`;
  const fitsA = new Map(a.fits.filter((f) => pairedKeys.has(setKey(f))).map((f) => [fitKey(f), f]));
  const r1: number[] = [];
  const r2: number[] = [];
  const good = (e: number) => Number.isFinite(e) && e > 0;
  for (const fb of b.fits) {
    const fa = fitsA.get(fitKey(fb));
    if (!fa || !usable(fa) || !usable(fb)) continue;
    if (good(fa.g1Err) && good(fb.g1Err)) r1.push(fb.g1Err / fa.g1Err);
    if (good(fa.g2Err) && good(fb.g2Err)) r2.push(fb.g2Err / fa.g2Err);
  }
  const ratio = (r: number[]): ErrorRatio => ({ median: r.length ? median(r) : NaN, n: r.length });
  const errorRatio = { g1: ratio(r1), g2: ratio(r2) };
  const setsFactor = ((errorRatio.g1.median + errorRatio.g2.median) / 2) ** 2;
  return { g, pairedSets: paired.length, seeds, onlyA, onlyB, incomplete, quantities, errorRatio, setsFactor, fits: { a: fitCounts(a.fits), b: fitCounts(b.fits) } };
}

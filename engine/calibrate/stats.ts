/**
 * Shear-calibration statistics (docs/calibrate.md), pure float64 functions: the multiplicative
 * and additive bias of each (seed, sub-tile) set of 4·R fits, their mean over every complete set
 * with bootstrap errors (resampling seeds, seeded RNG), per-seed values, the pull distribution of
 * every fit and the bookkeeping of fits that failed, are empty or have no shear.
 *
 * For a set and component i, with ĝ_i(s) the mean over the R rotations (intrinsic shapes turned
 * by 180°·k/R, k = 0 … R−1) of the fits with the shear s·g applied along i:
 *   m_i = (ĝ_i(+) − ĝ_i(−)) / (2g) − 1        c_i = (ĝ_i(+) + ĝ_i(−)) / 2
 * and the leakage into the other component j: (ĝ_j(+) − ĝ_j(−)) / (2g) with the shear along i.
 */
import { mulberry32 } from '../util/rng.ts';
import { designMembers, memberKey, memberLabel, type Component, type Member, type Sign } from './design.ts';

/**
 * What became of one planned fit:
 *  ok      products complete, G1 and G2 finite
 *  nan     products complete, but G1 or G2 is NaN (with core sources)
 *  empty   the sub-tile has no core source (Stage 1) or no data: not fitted, not a failure
 *  failed  Stage 2 failed (every attempt), or the products are unreadable
 *  missing no products yet (not run, killed, still queued)
 *  stale   products made with another configuration (metadata config hash differs)
 */
export type FitStatus = 'ok' | 'nan' | 'empty' | 'failed' | 'missing' | 'stale';
export const FIT_STATUSES: readonly FitStatus[] = ['ok', 'nan', 'empty', 'failed', 'missing', 'stale'];

export interface CalibrationFit extends Member {
  seed: number;
  tileId: number;
  row: number;
  col: number;
  /** True shear of the simulation. */
  gTrue1: number;
  gTrue2: number;
  /** Shear estimate and marginal errors from the shear product (NaN when none). */
  g1: number;
  g2: number;
  g1Err: number;
  g2Err: number;
  /** CONVERGED of the shear product (false when none). */
  converged: boolean;
  /** N_SOURCES of the shear product (−1 when none; from Stage 1 for empty sub-tiles). */
  nSources: number;
  status: FitStatus;
  /** Why it is not ok (failure marker, NaN, …). */
  reason?: string;
  /**
   * The MAP's shear of the same fit when G1/G2 are another estimator's (metadata
   * `shear.laplace_marginal.map_g`), or G1/G2 themselves when they are the MAP's; absent otherwise.
   */
  mapG?: [number, number];
  /** Sources the fit made shear-blind (metadata `unmodelled.shear_blind`; absent: not recorded). */
  nShearBlind?: number;
  /** Sources larger than the largest stamp tier (metadata `oversize_stamps`; absent: not recorded). */
  nOversize?: number;
  /**
   * The fit's metadata warns that its MAP's shear may be off its mode (engine/infer/laplace.ts
   * polishWarning): by how many σ̂ (absent: no such warning, or not recorded).
   */
  offModeSigma?: number;
}

/** How many ok fits with sources have a count > 0, the sum and the largest (absent counts as 0). */
function countTally(fits: readonly CalibrationFit[], count: (f: CalibrationFit) => number | undefined): { fits: number; with: number; sources: number; max_per_fit: number } {
  const ok = fits.filter((f) => f.status === 'ok' && f.nSources > 0);
  const n = ok.map((f) => count(f) ?? 0);
  return { fits: ok.length, with: n.filter((v) => v > 0).length, sources: n.reduce((a, b) => a + b, 0), max_per_fit: n.reduce((a, b) => Math.max(a, b), 0) };
}

/** How many fits had shear-blind sources, and how many such sources in all (ok fits with sources). */
export function shearBlindTally(fits: readonly CalibrationFit[]): { fits: number; with_shear_blind: number; sources: number; max_per_fit: number } {
  const t = countTally(fits, (f) => f.nShearBlind);
  return { fits: t.fits, with_shear_blind: t.with, sources: t.sources, max_per_fit: t.max_per_fit };
}

/** How many ok fits with sources carry the off-mode warning, and the largest distance it names (σ̂). */
export function offModeTally(fits: readonly CalibrationFit[]): { fits: number; off_mode: number; max_sigma: number } {
  const ok = fits.filter((f) => f.status === 'ok' && f.nSources > 0);
  const off = ok.filter((f) => f.offModeSigma !== undefined);
  return { fits: ok.length, off_mode: off.length, max_sigma: off.reduce((a, f) => (Number.isFinite(f.offModeSigma) ? Math.max(a, f.offModeSigma!) : a), 0) };
}

/** How many fits rendered sources in stamps smaller than their size needs (their light beyond not modelled). */
export function oversizeTally(fits: readonly CalibrationFit[]): { fits: number; with_oversize: number; sources: number; max_per_fit: number } {
  const t = countTally(fits, (f) => f.nOversize);
  return { fits: t.fits, with_oversize: t.with, sources: t.sources, max_per_fit: t.max_per_fit };
}

/**
 * The MAP's shear recorded in a fit's metadata when G1/G2 are another estimator's: the
 * Laplace-marginal step's starting point (`shear.laplace_marginal.map_g`), or the MAP that
 * initialised VI or NUTS (`posterior.map.g1/g2`); undefined when neither is there.
 */
export function mapShearFromMetadata(meta: unknown): [number, number] | undefined {
  const o = (v: unknown): Record<string, unknown> | undefined => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined);
  const m = o(meta);
  const mg = o(o(m?.shear)?.laplace_marginal)?.map_g;
  if (Array.isArray(mg) && mg.length === 2 && mg.every((v) => typeof v === 'number')) return [mg[0], mg[1]];
  const pm = o(o(m?.posterior)?.map);
  if (pm && typeof pm.g1 === 'number' && typeof pm.g2 === 'number') return [pm.g1, pm.g2];
  return undefined;
}

/**
 * The fits with G1/G2 replaced by the MAP's shear of the same fits, so that one calibration
 * measures both estimators on identical fits; null when an ok fit with sources lacks it.
 */
export function mapShearFits(fits: readonly CalibrationFit[]): CalibrationFit[] | null {
  const ok = fits.filter((f) => f.status === 'ok' && f.nSources > 0);
  if (!ok.length || ok.some((f) => !f.mapG)) return null;
  return fits.map((f) => (f.status === 'ok' && f.mapG ? { ...f, g1: f.mapG[0], g2: f.mapG[1] } : f));
}

/** Bias estimates of one (seed, sub-tile) set; NaN when the set is incomplete. */
export interface SetEstimate {
  seed: number;
  tileId: number;
  row: number;
  col: number;
  complete: boolean;
  /** `label: status` of the members that are not ok (empty when complete). */
  missing: string[];
  /** N_SOURCES differs between the members. */
  nSourcesVaries: boolean;
  m1: number;
  m2: number;
  c1: number;
  c2: number;
  /** Response of ĝ2 to g1 (shear along 1): (ĝ2(+g,0) − ĝ2(−g,0)) / (2g). */
  leak1to2: number;
  /** Response of ĝ1 to g2: (ĝ1(0,+g) − ĝ1(0,−g)) / (2g). */
  leak2to1: number;
  /** Additive term of component 1 from the pair along 2: (ĝ1(0,+g) + ĝ1(0,−g)) / 2 (and vice versa). */
  c1Cross: number;
  c2Cross: number;
}

export const QUANTITIES = ['m1', 'm2', 'c1', 'c2', 'leak1to2', 'leak2to1', 'c1Cross', 'c2Cross'] as const;
export type Quantity = (typeof QUANTITIES)[number];

/** A mean over sets with its errors. */
export interface Estimate {
  /** Mean over every complete set (seeds × sub-tiles). */
  mean: number;
  /** Bootstrap standard deviation of the mean, resampling seeds (NaN with fewer than 2 seeds). */
  err: number;
  /** Bootstrap 16th and 84th percentiles of the mean (NaN with fewer than 2 seeds). */
  lo: number;
  hi: number;
  /** Standard error of the mean treating every set as independent: sd / √n (NaN for n < 2). */
  sem: number;
  /** Number of complete sets. */
  n: number;
}

export interface PullStats {
  n: number;
  mean: number;
  /** Sample standard deviation (n − 1). */
  sd: number;
  /** 1.4826 × median absolute deviation from the median. */
  robustSd: number;
}

export interface PerSeed {
  seed: number;
  /** Sets of this seed, and how many are complete. */
  nSets: number;
  nComplete: number;
  /** Means over the complete sets of this seed (NaN when none). */
  values: Record<Quantity, number>;
}

export interface FitCounts {
  /** Every planned fit (4·R per set). */
  total: number;
  /** total − empty: the fits that had something to fit. */
  attempted: number;
  byStatus: Record<FitStatus, number>;
  /** Fits whose CONVERGED is true (of the attempted ones). */
  converged: number;
  /** Fits with finite G1_ERR and G2_ERR (of the attempted ones). */
  errFinite: number;
  fracConverged: number;
  fracErrFinite: number;
}

export interface FitNote {
  seed: number;
  member: string;
  tileId: number;
  row: number;
  col: number;
  status: FitStatus;
  reason?: string;
}

/** Pull statistics over realisations, with the width's error from a bootstrap over seeds. */
export interface RealisationPullStats extends PullStats {
  /** Bootstrap standard error of `sd` (whole seeds resampled); NaN with fewer than 2 seeds. */
  sdErr: number;
  /** Usable fits behind the n values. */
  nFits: number;
}

export interface CalibrationSummary {
  g: number;
  nSets: number;
  nSetsComplete: number;
  /** Sets of only empty members (no core source in any simulation): not counted as incomplete. */
  nSetsEmpty: number;
  estimates: Record<Quantity, Estimate>;
  /**
   * The same quantities with each set weighted by the mean 1/σ̂² of its fits in the component the
   * quantity reads (ĝ1: m1, c1, g2 → ĝ1, c1 cross; ĝ2: the others), as a catalogue of sub-tile
   * shears is averaged: with one sub-tile per set (`ci`) the same as `estimates`; where sets differ
   * in how much they know (a `minitile` sub-tile of 2 galaxies beside one of 9) the sets that carry
   * no information no longer carry the mean. Sets without a finite σ̂ in that component get no weight.
   */
  estimatesWeighted: Record<Quantity, Estimate>;
  perSeed: PerSeed[];
  sets: SetEstimate[];
  /** Per fit: (ĝ − g)/σ̂ of every usable fit with a finite error. */
  pulls: { all: PullStats; g1: PullStats; g2: PullStats };
  /**
   * Per realisation (seed, sub-tile, rotation; `realisationPulls`): the fits of one realisation
   * share noise and intrinsic shapes, so these are the independent values, and `sdErr` says how
   * well their width is known.
   */
  pullsByRealisation: { all: RealisationPullStats; g1: RealisationPullStats; g2: RealisationPullStats };
  fits: FitCounts;
  /** Every attempted fit that is not ok, in plan order. */
  problems: FitNote[];
  /** Every ok fit without a finite G1_ERR or G2_ERR (in m and c, not in the pulls of that component). */
  noErrors: FitNote[];
  bootstrap: { replicates: number; seed: number; unit: 'seed'; seeds: number };
}

// ---------------------------------------------------------------------------------------------
// small statistics

export function mean(x: readonly number[]): number {
  if (!x.length) return NaN;
  let s = 0;
  for (const v of x) s += v;
  return s / x.length;
}

/** Sample standard deviation (n − 1); NaN for fewer than 2 values. */
export function sd(x: readonly number[]): number {
  if (x.length < 2) return NaN;
  const m = mean(x);
  let s = 0;
  for (const v of x) s += (v - m) * (v - m);
  return Math.sqrt(s / (x.length - 1));
}

/** Linear-interpolation quantile (numpy's default) of sorted values. */
export function quantileSorted(s: readonly number[], q: number): number {
  if (!s.length) return NaN;
  const h = (s.length - 1) * q;
  const i = Math.floor(h);
  const f = h - i;
  return i + 1 < s.length ? s[i] + f * (s[i + 1] - s[i]) : s[i];
}

export function median(x: readonly number[]): number {
  return quantileSorted([...x].sort((a, b) => a - b), 0.5);
}

/** 1.4826 × MAD: the standard deviation for Gaussian data, insensitive to outliers. */
export function robustSd(x: readonly number[]): number {
  if (!x.length) return NaN;
  const m = median(x);
  return 1.4826 * median(x.map((v) => Math.abs(v - m)));
}

export function pullStats(x: readonly number[]): PullStats {
  return { n: x.length, mean: mean(x), sd: sd(x), robustSd: robustSd(x) };
}

/**
 * Bootstrap of the mean of values grouped by cluster (seed): `replicates` resamples of the
 * clusters with replacement; each replicate is the mean over every value of the drawn clusters
 * (with multiplicity). Returns the replicate means (empty with fewer than 2 clusters).
 */
export function bootstrapClusterMeans(groups: ReadonlyArray<readonly number[]>, replicates: number, seed: number): Float64Array {
  // weight 1 per value: Σ 1·v / Σ 1 is the plain mean, bit for bit
  return bootstrapClusterWeightedMeans(groups.map((v) => v.map((x) => [x, 1] as const)), replicates, seed);
}

/**
 * `bootstrapClusterMeans` with a weight per value: each replicate is Σ w·v / Σ w over the values
 * of the drawn clusters (with multiplicity). `groups[k]` pairs values and weights. Empty when
 * fewer than 2 clusters have values.
 */
export function bootstrapClusterWeightedMeans(groups: ReadonlyArray<ReadonlyArray<readonly [number, number]>>, replicates: number, seed: number): Float64Array {
  const g = groups.filter((v) => v.length > 0);
  if (g.length < 2 || replicates < 1) return new Float64Array(0);
  const sums = g.map((v) => v.reduce((a, [x, w]) => a + w * x, 0));
  const weights = g.map((v) => v.reduce((a, [, w]) => a + w, 0));
  const rnd = mulberry32(seed);
  const out = new Float64Array(replicates);
  for (let b = 0; b < replicates; b++) {
    let s = 0;
    let n = 0;
    for (let k = 0; k < g.length; k++) {
      const j = Math.min(g.length - 1, Math.floor(rnd() * g.length));
      s += sums[j];
      n += weights[j];
    }
    out[b] = s / n;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// sets

/** Whether a fit can enter m and c: its shear is known. */
export function usable(f: CalibrationFit): boolean {
  return f.status === 'ok' && Number.isFinite(f.g1) && Number.isFinite(f.g2);
}

function setKey(f: { seed: number; tileId: number; row: number; col: number }): string {
  return `${f.seed}|${f.tileId}|${f.row}|${f.col}`;
}

/** The fits grouped in (seed, tile, row, col) sets, in first-seen order. */
export function groupSets(fits: readonly CalibrationFit[]): CalibrationFit[][] {
  const map = new Map<string, CalibrationFit[]>();
  for (const f of fits) {
    const k = setKey(f);
    let l = map.get(k);
    if (!l) map.set(k, (l = []));
    l.push(f);
  }
  return [...map.values()];
}

/**
 * Bias estimates of one set of fits (its members in any order; a missing member makes it
 * incomplete). The design — R rotations — is the members' own (`rotations`), the same for all.
 */
export function setEstimate(members: readonly CalibrationFit[], g: number): SetEstimate {
  const f0 = members[0];
  const R = f0.rotations;
  const byKey = new Map<string, CalibrationFit>();
  for (const f of members) {
    if (f.rotations !== R) throw new Error(`calibration set seed ${f.seed} sub-tile (${f.row}, ${f.col}) mixes designs of ${R} and ${f.rotations} rotations`);
    byKey.set(memberKey(f), f);
  }
  const missing: string[] = [];
  for (const m of designMembers(R)) {
    const f = byKey.get(memberKey(m));
    if (!f) missing.push(`${memberLabel(m)}: not planned`);
    else if (!usable(f)) missing.push(`${memberLabel(m)}: ${f.status}`);
  }
  const ns = new Set(members.map((f) => f.nSources).filter((n) => n >= 0));
  const base = { seed: f0.seed, tileId: f0.tileId, row: f0.row, col: f0.col, missing, nSourcesVaries: ns.size > 1 };
  if (missing.length) {
    return { ...base, complete: false, m1: NaN, m2: NaN, c1: NaN, c2: NaN, leak1to2: NaN, leak2to1: NaN, c1Cross: NaN, c2Cross: NaN };
  }
  // ĝ_j with the shear s·g along i, averaged over the R rotations of the intrinsic shapes (the
  // ring: R = 2 cancels the shape noise to O(e²), R = 4 to O(e⁴))
  const avg = (i: Component, s: Sign, j: Component) => {
    let sum = 0;
    for (let k = 0; k < R; k++) {
      const f = byKey.get(memberKey({ component: i, sign: s, rotation: k }))!;
      sum += j === 1 ? f.g1 : f.g2;
    }
    return sum / R;
  };
  const resp = (i: Component, j: Component) => (avg(i, 1, j) - avg(i, -1, j)) / (2 * g);
  const add = (i: Component, j: Component) => (avg(i, 1, j) + avg(i, -1, j)) / 2;
  return {
    ...base,
    complete: true,
    m1: resp(1, 1) - 1,
    m2: resp(2, 2) - 1,
    c1: add(1, 1),
    c2: add(2, 2),
    leak1to2: resp(1, 2),
    leak2to1: resp(2, 1),
    c1Cross: add(2, 1),
    c2Cross: add(1, 2),
  };
}

/** Pulls (ĝ_i − g_i)/σ̂_i of every ok fit with a finite positive error, per component. */
export function pulls(fits: readonly CalibrationFit[]): { g1: number[]; g2: number[] } {
  const p1: number[] = [];
  const p2: number[] = [];
  for (const f of fits) {
    if (!usable(f)) continue;
    if (Number.isFinite(f.g1Err) && f.g1Err > 0) p1.push((f.g1 - f.gTrue1) / f.g1Err);
    if (Number.isFinite(f.g2Err) && f.g2Err > 0) p2.push((f.g2 - f.gTrue2) / f.g2Err);
  }
  return { g1: p1, g2: p2 };
}

/** One realisation's pull of one component. */
export interface RealisationPull {
  seed: number;
  /** Mean of (ĝ − g)/σ̂ over the realisation's usable fits. */
  value: number;
  /** Fits averaged. */
  n: number;
}

/**
 * Pulls per realisation. The fits of one (seed, sub-tile, rotation) see the same noise and the
 * same intrinsic shapes and differ only in the applied shear (±g on each component), so their
 * ĝ − g are nearly one number, counted four times by the per-fit pulls: a width from those
 * looks four times better known than it is. One value per realisation and component: the mean of
 * its usable fits' pulls. (The rotations of a seed still share its noise; `realisationPullStats`
 * bootstraps whole seeds for the width's error.)
 */
export function realisationPulls(fits: readonly CalibrationFit[]): { g1: RealisationPull[]; g2: RealisationPull[] } {
  const groups = new Map<string, { seed: number; p1: number[]; p2: number[] }>();
  for (const f of fits) {
    if (!usable(f)) continue;
    const key = `${f.seed}|${f.tileId}|${f.row}|${f.col}|${f.rotation}`;
    let gr = groups.get(key);
    if (!gr) groups.set(key, (gr = { seed: f.seed, p1: [], p2: [] }));
    if (Number.isFinite(f.g1Err) && f.g1Err > 0) gr.p1.push((f.g1 - f.gTrue1) / f.g1Err);
    if (Number.isFinite(f.g2Err) && f.g2Err > 0) gr.p2.push((f.g2 - f.gTrue2) / f.g2Err);
  }
  const out = { g1: [] as RealisationPull[], g2: [] as RealisationPull[] };
  for (const gr of groups.values()) {
    if (gr.p1.length) out.g1.push({ seed: gr.seed, value: mean(gr.p1), n: gr.p1.length });
    if (gr.p2.length) out.g2.push({ seed: gr.seed, value: mean(gr.p2), n: gr.p2.length });
  }
  return out;
}

/** Mean, widths and the bootstrap error of the width (resampling seeds: `replicates` draws, RNG `seed`). */
export function realisationPullStats(x: readonly RealisationPull[], replicates: number, seed: number): RealisationPullStats {
  const base = pullStats(x.map((p) => p.value));
  const bySeed = new Map<number, number[]>();
  for (const p of x) {
    let l = bySeed.get(p.seed);
    if (!l) bySeed.set(p.seed, (l = []));
    l.push(p.value);
  }
  const groups = [...bySeed.values()];
  let sdErr = NaN;
  if (groups.length >= 2 && replicates >= 2) {
    const rnd = mulberry32(seed);
    const reps: number[] = [];
    for (let b = 0; b < replicates; b++) {
      const draw: number[] = [];
      for (let k = 0; k < groups.length; k++) draw.push(...groups[Math.min(groups.length - 1, Math.floor(rnd() * groups.length))]);
      const v = sd(draw);
      if (Number.isFinite(v)) reps.push(v);
    }
    sdErr = sd(reps);
  }
  return { ...base, sdErr, nFits: x.reduce((a, p) => a + p.n, 0) };
}

export interface SummaryOptions {
  /** The shear amplitude g of the simulations. */
  g: number;
  /** Bootstrap replicates (default 2000). */
  bootstrap?: number;
  /** Seed of the bootstrap RNG (default 1): the same inputs give the same errors. */
  bootstrapSeed?: number;
}

/** Everything calibration.json reports, from the list of planned fits (4·R per (seed, sub-tile)). */
export function summarize(fits: readonly CalibrationFit[], o: SummaryOptions): CalibrationSummary {
  const g = o.g;
  const B = o.bootstrap ?? 2000;
  const bseed = o.bootstrapSeed ?? 1;
  const groups = groupSets(fits);
  const allEmpty = (l: CalibrationFit[]) => l.every((f) => f.status === 'empty');
  const sets = groups.filter((l) => !allEmpty(l)).map((l) => setEstimate(l, g));
  const complete = sets.filter((s) => s.complete);

  const seeds = [...new Set(fits.map((f) => f.seed))].sort((a, b) => a - b);
  const estimates = {} as Record<Quantity, Estimate>;
  for (const q of QUANTITIES) {
    const vals = complete.map((s) => s[q]);
    const bySeed = seeds.map((sd_) => complete.filter((s) => s.seed === sd_).map((s) => s[q]));
    const reps = Array.from(bootstrapClusterMeans(bySeed, B, bseed)).sort((a, b) => a - b);
    estimates[q] = {
      mean: mean(vals),
      err: reps.length ? sd(reps) : NaN,
      lo: reps.length ? quantileSorted(reps, 0.16) : NaN,
      hi: reps.length ? quantileSorted(reps, 0.84) : NaN,
      sem: vals.length >= 2 ? sd(vals) / Math.sqrt(vals.length) : NaN,
      n: vals.length,
    };
  }
  // per set and component: the mean 1/σ̂² of its usable fits with a finite positive error
  // (the fits grouped by set once: a survey-size calibration has many thousands of sets)
  const bySet = new Map<string, CalibrationFit[]>();
  for (const f of fits) {
    if (!usable(f)) continue;
    const k = `${f.seed}|${f.tileId}|${f.row}|${f.col}`;
    const l = bySet.get(k);
    if (l) l.push(f);
    else bySet.set(k, [f]);
  }
  const setWeight = (set: SetEstimate, c: 1 | 2): number => {
    const ws = (bySet.get(`${set.seed}|${set.tileId}|${set.row}|${set.col}`) ?? [])
      .map((f) => (c === 1 ? f.g1Err : f.g2Err))
      .filter((e) => Number.isFinite(e) && e > 0)
      .map((e) => 1 / (e * e));
    return ws.length ? mean(ws) : 0;
  };
  const weights = complete.map((s) => [setWeight(s, 1), setWeight(s, 2)] as const);
  const READS_G1: ReadonlySet<Quantity> = new Set(['m1', 'c1', 'leak2to1', 'c1Cross']);
  const estimatesWeighted = {} as Record<Quantity, Estimate>;
  for (const q of QUANTITIES) {
    const c = READS_G1.has(q) ? 0 : 1;
    const pairs = complete.map((s, i) => [s[q], weights[i][c]] as const).filter(([, w]) => w > 0);
    const W = pairs.reduce((a, [, w]) => a + w, 0);
    const m = W > 0 ? pairs.reduce((a, [v, w]) => a + w * v, 0) / W : NaN;
    const bySeed = seeds.map((sd_) => complete.flatMap((s, i) => (s.seed === sd_ && weights[i][c] > 0 ? [[s[q], weights[i][c]] as const] : [])));
    const reps = Array.from(bootstrapClusterWeightedMeans(bySeed, B, bseed)).sort((a, b) => a - b);
    estimatesWeighted[q] = {
      mean: m,
      err: reps.length ? sd(reps) : NaN,
      lo: reps.length ? quantileSorted(reps, 0.16) : NaN,
      hi: reps.length ? quantileSorted(reps, 0.84) : NaN,
      sem: NaN,
      n: pairs.length,
    };
  }
  const perSeed: PerSeed[] = seeds.map((seed) => {
    const mine = sets.filter((s) => s.seed === seed);
    const done = mine.filter((s) => s.complete);
    const values = {} as Record<Quantity, number>;
    for (const q of QUANTITIES) values[q] = mean(done.map((s) => s[q]));
    return { seed, nSets: mine.length, nComplete: done.length, values };
  });

  const p = pulls(fits);
  const rp = realisationPulls(fits);
  const byStatus = Object.fromEntries(FIT_STATUSES.map((s) => [s, 0])) as Record<FitStatus, number>;
  for (const f of fits) byStatus[f.status]++;
  const attemptedFits = fits.filter((f) => f.status !== 'empty');
  const attempted = attemptedFits.length;
  const converged = attemptedFits.filter((f) => f.converged && (f.status === 'ok' || f.status === 'nan')).length;
  const errFinite = attemptedFits.filter((f) => (f.status === 'ok' || f.status === 'nan') && Number.isFinite(f.g1Err) && Number.isFinite(f.g2Err)).length;
  const note = (f: CalibrationFit): FitNote => ({ seed: f.seed, member: memberLabel(f), tileId: f.tileId, row: f.row, col: f.col, status: f.status, ...(f.reason ? { reason: f.reason } : {}) });
  const problems = attemptedFits.filter((f) => f.status !== 'ok').map(note);
  const noErrors = attemptedFits.filter((f) => f.status === 'ok' && !(Number.isFinite(f.g1Err) && Number.isFinite(f.g2Err))).map(note);

  return {
    g,
    nSets: sets.length,
    nSetsComplete: complete.length,
    nSetsEmpty: groups.length - sets.length,
    estimates,
    estimatesWeighted,
    perSeed,
    sets,
    pulls: { all: pullStats([...p.g1, ...p.g2]), g1: pullStats(p.g1), g2: pullStats(p.g2) },
    pullsByRealisation: {
      all: realisationPullStats([...rp.g1, ...rp.g2], B, bseed),
      g1: realisationPullStats(rp.g1, B, bseed),
      g2: realisationPullStats(rp.g2, B, bseed),
    },
    fits: {
      total: fits.length,
      attempted,
      byStatus,
      converged,
      errFinite,
      fracConverged: attempted ? converged / attempted : NaN,
      fracErrFinite: attempted ? errFinite / attempted : NaN,
    },
    problems,
    noErrors,
    bootstrap: { replicates: B, seed: bseed, unit: 'seed', seeds: seeds.filter((s) => complete.some((c) => c.seed === s)).length },
  };
}

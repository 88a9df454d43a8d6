/**
 * No-U-Turn sampler (multinomial variant, as in Stan and NumPyro) with warm-up adaptation:
 * dual-averaging step size and a diagonal mass matrix estimated in Stan's doubling windows.
 *
 * Model-independent: it drives any async log density of an unconstrained vector z,
 * `logDensity(z) → {value, grad}` (e.g. `Posterior.logDensity`). Several chains advance in
 * lock-step: each chain is a generator that yields the point it needs evaluated next, and the
 * driver evaluates the pending points of all chains in one `logDensityBatch` call when given
 * one (chains as a batch dimension), else calls `logDensity` once per chain.
 *
 * Float64 on the CPU; seeded with mulberry32, so runs are reproducible.
 */
import { Random as Rng } from '../util/rng.ts';
import { ShineError } from '../errors.ts';

export interface NutsDensity {
  value: number;
  grad: ArrayLike<number>;
}
export type LogDensityFn = (z: Float64Array) => Promise<NutsDensity>;
export type LogDensityBatchFn = (zs: Float64Array[]) => Promise<NutsDensity[]>;

export interface NutsTarget {
  /** Dimension of z. */
  dim: number;
  /** log density (up to a constant) and its gradient. */
  logDensity?: LogDensityFn;
  /** Optional batched evaluation: one call evaluates the pending point of every active chain. */
  logDensityBatch?: LogDensityBatchFn;
}

export interface NutsOptions {
  numWarmup?: number; // 500
  numSamples?: number; // 1000
  numChains?: number; // 4
  seed?: number; // 0
  maxTreeDepth?: number; // 10
  targetAccept?: number; // 0.8
  /** Energy error above which a transition is divergent. */
  maxEnergyError?: number; // 1000
  /** Initial step size (refined by the doubling/halving heuristic before warm-up). */
  initStepSize?: number; // 1
  /** Dual averaging: γ, t0, κ (NumPyro's defaults). */
  gamma?: number; // 0.05
  t0?: number; // 10
  kappa?: number; // 0.75
  adaptStepSize?: boolean; // true
  adaptMassMatrix?: boolean; // true
  /** Initial inverse mass diagonal (default ones). */
  invMassDiag?: ArrayLike<number>;
  /** Initial point: one vector for all chains or one per chain. Default uniform(−radius, radius). */
  init?: ArrayLike<number> | ArrayLike<number>[];
  /** Radius of the uniform random initialisation (default 2, as Stan/NumPyro). */
  initRadius?: number;
  /** Keep every `thinning`-th draw (default 1). */
  thinning?: number;
  /** Called after each iteration of each chain (warm-up and sampling), e.g. for progress. */
  onIteration?: (chain: number, iteration: number, warmup: boolean) => void;
}

export interface NutsChainInfo {
  stepSize: number;
  invMassDiag: Float64Array;
  /** Divergent transitions after warm-up. */
  divergences: number;
  warmupDivergences: number;
  /** Mean acceptance statistic over the kept draws. */
  meanAcceptProb: number;
  /** Tree depth of each kept draw. */
  treeDepths: Int32Array;
  /** Number of leapfrog steps of each kept draw. */
  numSteps: Int32Array;
  /** Whether each kept draw ended in a divergence. */
  divergent: Uint8Array;
  /** log density at each kept draw. */
  logDensity: Float64Array;
  /** Draws that hit the maximum tree depth. */
  maxDepthHits: number;
}

export interface NutsResult {
  /** samples[chain][draw] = z (length dim). */
  samples: Float64Array[][];
  chains: NutsChainInfo[];
  /** Total divergent transitions after warm-up, over all chains. */
  divergences: number;
  /** Number of density evaluations (points), and of calls to the density function(s). */
  evaluations: number;
  calls: number;
}

/** Draws of component i as chains × draws (input layout of the diagnostics). */
export function componentDraws(result: NutsResult, i: number): Float64Array[] {
  return result.samples.map((ch) => Float64Array.from(ch, (z) => z[i]));
}

// ---------------------------------------------------------------------------------------------
// Random numbers

/** The chains' generator (uniforms and normals): engine/util/rng.ts. */
export { Random as Rng } from '../util/rng.ts';

/** A per-chain seed from the run seed (integer hash, so neighbouring seeds decorrelate). */
function chainSeed(seed: number, chain: number): number {
  let h = (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(chain + 1, 0x85ebca77)) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d) >>> 0;
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

// ---------------------------------------------------------------------------------------------
// Generators: a chain yields the point it needs evaluated and receives its density.

type Eval = Generator<Float64Array, NutsDensity, NutsDensity>;

function* evaluate(z: Float64Array): Eval {
  const r: NutsDensity = yield z;
  return r;
}

interface Point {
  z: Float64Array;
  p: Float64Array;
  grad: Float64Array;
  logp: number;
}

interface Tree {
  begin: Point; // first point in traversal order
  end: Point; // last point
  pSharpBegin: Float64Array;
  pSharpEnd: Float64Array;
  rho: Float64Array;
  proposal: Point;
  logSumW: number;
  turning: boolean;
  diverging: boolean;
  sumAccept: number;
  nSteps: number;
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

function logAddExp(a: number, b: number): number {
  if (a === -Infinity) return b;
  if (b === -Infinity) return a;
  const m = Math.max(a, b);
  return m + Math.log(Math.exp(a - m) + Math.exp(b - m));
}

/** Generalised no-U-turn criterion (both ends' p♯ have positive projection on ρ). */
function noUTurn(pSharpMinus: Float64Array, pSharpPlus: Float64Array, rho: Float64Array): boolean {
  return dot(pSharpPlus, rho) > 0 && dot(pSharpMinus, rho) > 0;
}

/** Merging a tree F (first) with its continuation E: Stan's three checks (whole and across the seam). */
function mergedPersists(first: Tree, second: Tree, rho: Float64Array): boolean {
  if (!noUTurn(first.pSharpBegin, second.pSharpEnd, rho)) return false;
  const n = rho.length;
  const r1 = new Float64Array(n);
  for (let i = 0; i < n; i++) r1[i] = first.rho[i] + second.begin.p[i];
  if (!noUTurn(first.pSharpBegin, second.pSharpBegin, r1)) return false;
  for (let i = 0; i < n; i++) r1[i] = second.rho[i] + first.end.p[i];
  return noUTurn(first.pSharpEnd, second.pSharpEnd, r1);
}

class Kinetic {
  constructor(readonly invMass: Float64Array) {}
  energy(p: Float64Array): number {
    let s = 0;
    for (let i = 0; i < p.length; i++) s += p[i] * p[i] * this.invMass[i];
    return 0.5 * s;
  }
  sharp(p: Float64Array): Float64Array {
    const o = new Float64Array(p.length);
    for (let i = 0; i < p.length; i++) o[i] = p[i] * this.invMass[i];
    return o;
  }
  sampleMomentum(rng: Rng): Float64Array {
    const o = new Float64Array(this.invMass.length);
    for (let i = 0; i < o.length; i++) o[i] = rng.normal() / Math.sqrt(this.invMass[i]);
    return o;
  }
}

function toF64(g: ArrayLike<number>): Float64Array {
  return g instanceof Float64Array ? g : Float64Array.from(g);
}

function* leapfrog(x: Point, eps: number, K: Kinetic): Generator<Float64Array, Point, NutsDensity> {
  const n = x.z.length;
  const ph = new Float64Array(n);
  const z = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    ph[i] = x.p[i] + 0.5 * eps * x.grad[i];
    z[i] = x.z[i] + eps * K.invMass[i] * ph[i];
  }
  const r = yield* evaluate(z);
  const grad = toF64(r.grad);
  const p = new Float64Array(n);
  for (let i = 0; i < n; i++) p[i] = ph[i] + 0.5 * eps * grad[i];
  const logp = Number.isFinite(r.value) ? r.value : -Infinity;
  return { z, p, grad, logp };
}

interface TreeCtx {
  eps: number; // signed by direction
  K: Kinetic;
  H0: number;
  maxEnergyError: number;
  rng: Rng;
}

function* buildTree(from: Point, depth: number, c: TreeCtx): Generator<Float64Array, Tree, NutsDensity> {
  if (depth === 0) {
    const x = yield* leapfrog(from, c.eps, c.K);
    const H = -x.logp + c.K.energy(x.p);
    const dH = H - c.H0; // energy error
    const bad = !Number.isFinite(H) || Number.isNaN(dH);
    const diverging = bad || dH > c.maxEnergyError;
    const logW = bad ? -Infinity : -dH;
    const accept = bad ? 0 : Math.min(1, Math.exp(-dH));
    const ps = c.K.sharp(x.p);
    return {
      begin: x, end: x, pSharpBegin: ps, pSharpEnd: ps, rho: Float64Array.from(x.p), proposal: x,
      logSumW: logW, turning: false, diverging, sumAccept: accept, nSteps: 1,
    };
  }
  const first = yield* buildTree(from, depth - 1, c);
  if (first.turning || first.diverging) return first;
  const second = yield* buildTree(first.end, depth - 1, c);
  const nSteps = first.nSteps + second.nSteps;
  const sumAccept = first.sumAccept + second.sumAccept;
  if (second.turning || second.diverging) {
    return { ...second, begin: first.begin, pSharpBegin: first.pSharpBegin, nSteps, sumAccept };
  }
  const logSumW = logAddExp(first.logSumW, second.logSumW);
  // Uniform (multinomial) sampling within a subtree.
  const takeSecond = logSumW > -Infinity && c.rng.uniform() < Math.exp(second.logSumW - logSumW);
  const rho = new Float64Array(first.rho.length);
  for (let i = 0; i < rho.length; i++) rho[i] = first.rho[i] + second.rho[i];
  const turning = !mergedPersists(first, second, rho);
  return {
    begin: first.begin, end: second.end, pSharpBegin: first.pSharpBegin, pSharpEnd: second.pSharpEnd, rho,
    proposal: takeSecond ? second.proposal : first.proposal, logSumW, turning, diverging: false, sumAccept, nSteps,
  };
}

interface Transition {
  point: Point;
  acceptProb: number;
  divergent: boolean;
  depth: number;
  nSteps: number;
}

function* nutsTransition(
  x0: Point, eps: number, K: Kinetic, rng: Rng, maxDepth: number, maxEnergyError: number,
): Generator<Float64Array, Transition, NutsDensity> {
  const p0 = K.sampleMomentum(rng);
  const start: Point = { ...x0, p: p0 };
  const H0 = -x0.logp + K.energy(p0);
  const ps0 = K.sharp(p0);
  // Whole trajectory, oriented from the minus end to the plus end.
  let minus = start, plus = start;
  let pSharpMinus = ps0, pSharpPlus = ps0;
  let rho = Float64Array.from(p0);
  let logSumW = 0;
  let sample = start;
  let depth = 0, nSteps = 0, sumAccept = 0;
  let divergent = false;
  while (depth < maxDepth) {
    const dir = rng.uniform() < 0.5 ? -1 : 1;
    const ctx: TreeCtx = { eps: dir * eps, K, H0, maxEnergyError, rng };
    const t = yield* buildTree(dir > 0 ? plus : minus, depth, ctx);
    nSteps += t.nSteps;
    sumAccept += t.sumAccept;
    depth++;
    if (t.diverging) {
      divergent = true;
      break;
    }
    if (t.turning) break;
    // Biased progressive sampling at the top level.
    if (t.logSumW > logSumW || rng.uniform() < Math.exp(t.logSumW - logSumW)) sample = t.proposal;
    logSumW = logAddExp(logSumW, t.logSumW);
    // Old tree as seen in traversal order, then the new subtree.
    const old: Tree = dir > 0
      ? { ...t, begin: minus, end: plus, pSharpBegin: pSharpMinus, pSharpEnd: pSharpPlus, rho }
      : { ...t, begin: plus, end: minus, pSharpBegin: pSharpPlus, pSharpEnd: pSharpMinus, rho };
    const rhoAll = new Float64Array(rho.length);
    for (let i = 0; i < rho.length; i++) rhoAll[i] = rho[i] + t.rho[i];
    const persist = mergedPersists(old, t, rhoAll);
    rho = rhoAll;
    if (dir > 0) {
      plus = t.end;
      pSharpPlus = t.pSharpEnd;
    } else {
      minus = t.end;
      pSharpMinus = t.pSharpEnd;
    }
    if (!persist) break;
  }
  return { point: sample, acceptProb: nSteps > 0 ? sumAccept / nSteps : 0, divergent, depth, nSteps };
}

/** Stan's heuristic: double or halve ε until the one-step acceptance crosses 0.8. */
function* findReasonableStepSize(x: Point, eps0: number, K: Kinetic, rng: Rng): Generator<Float64Array, number, NutsDensity> {
  let eps = eps0;
  const logTarget = Math.log(0.8);
  const p0 = K.sampleMomentum(rng);
  const H0 = -x.logp + K.energy(p0);
  let direction = 0;
  for (let k = 0; k < 100; k++) {
    const y = yield* leapfrog({ ...x, p: p0 }, eps, K);
    const H = -y.logp + K.energy(y.p);
    const delta = Number.isFinite(H) ? H0 - H : -Infinity;
    const dir = delta > logTarget ? 1 : -1;
    if (direction === 0) direction = dir;
    if (dir !== direction) break;
    const next = direction > 0 ? eps * 2 : eps / 2;
    if (next > 1e7 || next < 1e-10) break;
    eps = next;
  }
  return eps;
}

class DualAveraging {
  private mu = 0;
  private xBar = 0;
  private gBar = 0;
  private t = 0;
  x = 0;
  constructor(private readonly gamma: number, private readonly t0: number, private readonly kappa: number) {}
  restart(eps: number): void {
    this.mu = Math.log(10 * eps);
    this.x = Math.log(eps);
    this.xBar = 0;
    this.gBar = 0;
    this.t = 0;
  }
  update(g: number): void {
    this.t++;
    const a = 1 / (this.t + this.t0);
    this.gBar = (1 - a) * this.gBar + a * g;
    this.x = this.mu - (Math.sqrt(this.t) / this.gamma) * this.gBar;
    const w = Math.pow(this.t, -this.kappa);
    this.xBar = w * this.x + (1 - w) * this.xBar;
  }
  get final(): number {
    return Math.exp(this.xBar);
  }
}

/** Stan's windowed adaptation schedule: indices (0-based, inclusive) at which a slow window ends. */
export function massAdaptationWindows(numWarmup: number): { start: number; ends: number[] } {
  let init = 75, term = 50, base = 25;
  if (numWarmup < 20) return { start: numWarmup, ends: [] };
  if (init + term + base > numWarmup) {
    init = Math.floor(0.15 * numWarmup);
    term = Math.floor(0.1 * numWarmup);
    base = numWarmup - init - term;
  }
  const ends: number[] = [];
  const lastEnd = numWarmup - term; // exclusive end of the slow phase
  let start = init;
  let size = base;
  while (start < lastEnd) {
    let end = start + size;
    // If the next (doubled) window would not fit, extend this one to the end of the slow phase.
    if (end + 2 * size > lastEnd) end = lastEnd;
    ends.push(end - 1);
    start = end;
    size *= 2;
  }
  return { start: init, ends };
}

interface ChainOut {
  draws: Float64Array[];
  info: NutsChainInfo;
}

function* runChain(
  chain: number, dim: number, opts: Required<Omit<NutsOptions, 'init' | 'invMassDiag' | 'onIteration'>> & NutsOptions,
): Generator<Float64Array, ChainOut, NutsDensity> {
  const rng = new Rng(chainSeed(opts.seed, chain));
  // Initial point.
  let z0: Float64Array | null = null;
  let r0: NutsDensity | null = null;
  const given = opts.init;
  if (given !== undefined) {
    const v = (Array.isArray(given) && typeof given[0] !== 'number') ? (given as ArrayLike<number>[])[chain] : given as ArrayLike<number>;
    if (!v || v.length !== dim) throw new ShineError(`nuts: init for chain ${chain} must have length ${dim}`, { field: 'init' });
    z0 = Float64Array.from(v);
    r0 = yield* evaluate(z0);
    if (!Number.isFinite(r0.value)) throw new ShineError(`nuts: log density is not finite at the initial point of chain ${chain}`, { field: 'init' });
  } else {
    for (let k = 0; k < 100 && !z0; k++) {
      const z = new Float64Array(dim);
      for (let i = 0; i < dim; i++) z[i] = (2 * rng.uniform() - 1) * opts.initRadius;
      const r = yield* evaluate(z);
      if (Number.isFinite(r.value) && Array.from(r.grad).every(Number.isFinite)) {
        z0 = z;
        r0 = r;
      }
    }
    if (!z0 || !r0) throw new ShineError(`nuts: no finite log density found in 100 random initialisations of chain ${chain} (radius ${opts.initRadius})`, { field: 'init' });
  }
  let x: Point = { z: z0, p: new Float64Array(dim), grad: toF64(r0.grad), logp: r0.value };
  const invMass = new Float64Array(dim).fill(1);
  if (opts.invMassDiag) {
    if (opts.invMassDiag.length !== dim) throw new ShineError(`nuts: invMassDiag must have length ${dim}`, { field: 'invMassDiag' });
    invMass.set(opts.invMassDiag);
  }
  let K = new Kinetic(invMass);
  let eps = opts.initStepSize;
  const da = new DualAveraging(opts.gamma, opts.t0, opts.kappa);
  if (opts.adaptStepSize && opts.numWarmup > 0) eps = yield* findReasonableStepSize(x, eps, K, rng);
  da.restart(eps);
  const { start: winStart, ends } = massAdaptationWindows(opts.numWarmup);
  const endSet = new Set(ends);
  // Welford accumulators for the current window.
  let wn = 0;
  let wMean = new Float64Array(dim), wM2 = new Float64Array(dim);
  let warmupDivergences = 0;
  for (let it = 0; it < opts.numWarmup; it++) {
    const tr = yield* nutsTransition(x, eps, K, rng, opts.maxTreeDepth, opts.maxEnergyError);
    x = tr.point;
    if (tr.divergent) warmupDivergences++;
    if (opts.adaptStepSize) {
      da.update(opts.targetAccept - tr.acceptProb);
      eps = Math.exp(da.x);
    }
    if (opts.adaptMassMatrix && it >= winStart && ends.length > 0 && it <= ends[ends.length - 1]) {
      wn++;
      for (let i = 0; i < dim; i++) {
        const d = x.z[i] - wMean[i];
        wMean[i] += d / wn;
        wM2[i] += d * (x.z[i] - wMean[i]);
      }
      if (endSet.has(it)) {
        const nv = new Float64Array(dim);
        for (let i = 0; i < dim; i++) {
          const v = wn > 1 ? wM2[i] / (wn - 1) : 1;
          nv[i] = (wn / (wn + 5)) * v + 1e-3 * (5 / (wn + 5)); // Stan's regularisation
        }
        K = new Kinetic(nv);
        wn = 0;
        wMean = new Float64Array(dim);
        wM2 = new Float64Array(dim);
        if (opts.adaptStepSize) {
          eps = yield* findReasonableStepSize(x, eps, K, rng);
          da.restart(eps);
        }
      }
    }
    opts.onIteration?.(chain, it, true);
  }
  if (opts.adaptStepSize && opts.numWarmup > 0) eps = da.final;
  const nKeep = Math.floor(opts.numSamples / opts.thinning);
  const draws: Float64Array[] = [];
  const treeDepths = new Int32Array(nKeep), numSteps = new Int32Array(nKeep), divergent = new Uint8Array(nKeep);
  const logDensity = new Float64Array(nKeep);
  let divergences = 0, sumAccept = 0, maxDepthHits = 0;
  for (let it = 0; it < opts.numSamples; it++) {
    const tr = yield* nutsTransition(x, eps, K, rng, opts.maxTreeDepth, opts.maxEnergyError);
    x = tr.point;
    if (tr.divergent) divergences++;
    if (it % opts.thinning === 0 && draws.length < nKeep) {
      const k = draws.length;
      draws.push(Float64Array.from(x.z));
      treeDepths[k] = tr.depth;
      numSteps[k] = tr.nSteps;
      divergent[k] = tr.divergent ? 1 : 0;
      logDensity[k] = x.logp;
      sumAccept += tr.acceptProb;
      if (tr.depth >= opts.maxTreeDepth && !tr.divergent) maxDepthHits++;
    }
    opts.onIteration?.(chain, opts.numWarmup + it, false);
  }
  return {
    draws,
    info: {
      stepSize: eps, invMassDiag: Float64Array.from(K.invMass), divergences, warmupDivergences,
      meanAcceptProb: nKeep > 0 ? sumAccept / nKeep : NaN, treeDepths, numSteps, divergent, logDensity, maxDepthHits,
    },
  };
}

/**
 * Run NUTS. All chains advance in lock-step: at every round each unfinished chain contributes
 * the one point it needs next, and the round is evaluated by one `logDensityBatch` call (or by
 * `logDensity` per chain when no batch function is given). Results do not depend on which is used.
 */
export async function runNuts(target: NutsTarget, options: NutsOptions = {}): Promise<NutsResult> {
  const opts = {
    numWarmup: 500, numSamples: 1000, numChains: 4, seed: 0, maxTreeDepth: 10, targetAccept: 0.8,
    maxEnergyError: 1000, initStepSize: 1, gamma: 0.05, t0: 10, kappa: 0.75, adaptStepSize: true,
    adaptMassMatrix: true, initRadius: 2, thinning: 1, ...options,
  };
  const dim = target.dim;
  const check = (ok: boolean, field: string, what: string) => {
    if (!ok) throw new ShineError(`nuts: ${field} ${what}`, { field });
  };
  check(Number.isInteger(dim) && dim > 0, 'dim', 'must be a positive integer');
  check(Number.isInteger(opts.numWarmup) && opts.numWarmup >= 0, 'numWarmup', 'must be an integer ≥ 0');
  check(Number.isInteger(opts.numSamples) && opts.numSamples >= 0, 'numSamples', 'must be an integer ≥ 0');
  check(Number.isInteger(opts.numChains) && opts.numChains >= 1, 'numChains', 'must be an integer ≥ 1');
  check(Number.isInteger(opts.maxTreeDepth) && opts.maxTreeDepth >= 1, 'maxTreeDepth', 'must be an integer ≥ 1');
  check(opts.targetAccept > 0 && opts.targetAccept < 1, 'targetAccept', 'must lie in (0, 1)');
  check(opts.initStepSize > 0, 'initStepSize', 'must be > 0');
  check(Number.isInteger(opts.thinning) && opts.thinning >= 1, 'thinning', 'must be an integer ≥ 1');
  check(!!(target.logDensity || target.logDensityBatch), 'logDensity', 'or logDensityBatch must be given');

  const gens = Array.from({ length: opts.numChains }, (_, c) => runChain(c, dim, opts));
  const outs: (ChainOut | null)[] = gens.map(() => null);
  const pending: (Float64Array | null)[] = gens.map((g, c) => {
    const r = g.next();
    if (r.done) {
      outs[c] = r.value;
      return null;
    }
    return r.value;
  });
  let evaluations = 0, calls = 0;
  for (;;) {
    const active: number[] = [];
    for (let c = 0; c < pending.length; c++) if (pending[c]) active.push(c);
    if (active.length === 0) break;
    const zs = active.map((c) => pending[c] as Float64Array);
    let res: NutsDensity[];
    if (target.logDensityBatch) {
      res = await target.logDensityBatch(zs);
      calls++;
      if (!Array.isArray(res) || res.length !== zs.length) {
        throw new ShineError(`nuts: logDensityBatch returned ${Array.isArray(res) ? res.length : typeof res} results for ${zs.length} points`, { field: 'logDensityBatch' });
      }
    } else {
      const f = target.logDensity as LogDensityFn;
      res = [];
      for (const z of zs) {
        res.push(await f(z));
        calls++;
      }
    }
    evaluations += zs.length;
    active.forEach((c, k) => {
      const r = res[k];
      if (!r || r.grad === undefined || r.grad.length !== dim) {
        throw new ShineError(`nuts: log density returned a gradient of length ${r?.grad?.length} (expected ${dim})`, { field: 'logDensity' });
      }
      const nx = gens[c].next(r);
      if (nx.done) {
        outs[c] = nx.value;
        pending[c] = null;
      } else pending[c] = nx.value;
    });
  }
  const chains = outs.map((o) => (o as ChainOut).info);
  return {
    samples: outs.map((o) => (o as ChainOut).draws),
    chains,
    divergences: chains.reduce((s, c) => s + c.divergences, 0),
    evaluations,
    calls,
  };
}

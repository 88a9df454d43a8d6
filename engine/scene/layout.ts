/**
 * CPU-side preparation of a scene for the GPU, done once per ExposureSet:
 *  - which pairs are rendered (visible ones, docs/architecture.md "The SHINE distributed specification"), grouped into batches by
 *    (quadrant, FFT size) and split to fit the memory limits (no cap on the number of pairs);
 *  - per quadrant, the "active" 16×8 blocks that some stamp touches, their compact numbering,
 *    and the observed pixels / inverse variances on them (w = 0 where masked or uncovered);
 *  - per batch, the block → overlapping-stamps lists (CSR) for the deterministic gather.
 */
import { stampCorner } from '../model/geometry.ts';
import { aliasOrdersFor } from '../model/validate.ts';
import { BLOCK_H, BLOCK_PIXELS, BLOCK_W, PAIR_BYTES } from '../gpu/render/render.wgsl.ts';
import { pixelIndex, usablePixel } from './pixels.ts';
import type { ExposureSet, QuadrantData, RenderOptions } from './types.ts';

export interface PairLayout {
  /** Index into set.pairs. */
  pairIndex: number;
  source: number;
  quadrant: number;
  n: number;
  m: number;
  cx: number;
  cy: number;
}

export interface BatchLayout {
  quadrant: number;
  m: number;
  /** First rendered-pair index (into QuadrantLayout order = the engine's pair table). */
  pairBase: number;
  count: number;
  /** CSR for the gather: touched compact blocks, their starts, and local pair indices. */
  touched: Uint32Array;
  starts: Uint32Array;
  entries: Uint32Array;
}

export interface QuadrantLayout {
  width: number;
  height: number;
  nbx: number;
  nby: number;
  /** Block (bx, by) → compact index, −1 when inactive. */
  blockIndex: Int32Array;
  /** Compact index → (bx, by). */
  blockXY: Uint32Array;
  nActive: number;
  /** Per compact pixel: (obs, w), interleaved. */
  obsW: Float32Array;
  /** Number of pixels with w > 0. */
  nPixels: number;
}

export interface SceneLayout {
  pairs: PairLayout[];
  batches: BatchLayout[];
  quadrants: QuadrantLayout[];
  fftSizes: number[];
}

export interface LayoutLimits {
  /** Largest storage binding / buffer the device allows (bytes). */
  maxBindingBytes: number;
  /** Optional cap on pairs per batch (tests use it to force several batches). */
  maxPairsPerBatch?: number;
}

function overlaps(c: number, n: number, size: number): boolean {
  return c + n > 0 && c < size;
}

/** Builds the layout. `includeInvisible` renders every pair (validation of the visibility filter). */
export function buildLayout(set: ExposureSet, opts: RenderOptions, limits: LayoutLimits, includeInvisible = false): SceneLayout {
  const nq = set.quadrants.length;
  // 1. rendered pairs, grouped by quadrant then FFT size, in input order within a group
  const groups = new Map<string, PairLayout[]>();
  set.pairs.forEach((p, pairIndex) => {
    if (!p.visible && !includeInvisible) return;
    const n = set.sources[p.source].stampSize;
    const m = opts.fftFactor * n;
    const pl: PairLayout = { pairIndex, source: p.source, quadrant: p.quadrant, n, m, cx: stampCorner(p.x, n), cy: stampCorner(p.y, n) };
    // Invisible pairs (rendered only when validating the filter) get batches of their own, so
    // the visible pairs are batched and packed exactly as when filtering: identical images.
    const key = `${p.quadrant}:${m}:${p.visible ? 0 : 1}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = []));
    g.push(pl);
  });
  const fftSizes = [...new Set([...groups.values()].map((g) => g[0].m))].sort((a, b) => a - b);

  // 2. active blocks per quadrant: every block a rendered stamp's crop touches inside the image
  const ordered: PairLayout[] = [];
  const groupKeys = [...groups.keys()].sort((a, b) => {
    const [qa, ma, va] = a.split(':').map(Number);
    const [qb, mb, vb] = b.split(':').map(Number);
    return qa - qb || ma - mb || va - vb;
  });
  for (const key of groupKeys) ordered.push(...groups.get(key)!);
  const byQuadrant: PairLayout[][] = Array.from({ length: nq }, () => []);
  for (const p of ordered) byQuadrant[p.quadrant].push(p);
  // Replicas of a quadrant (replicateSet: the same pixel arrays, the same stamps) get the same
  // QuadrantLayout object: its observed pixels and weights are made once, not once per replica
  // (8 replicas of the realistic sub-tile would otherwise hold 8 × 0.4 GiB on the host).
  const made = new Map<Float32Array, Array<{ q: QuadrantData; key: string; ql: QuadrantLayout }>>();
  const quadrants: QuadrantLayout[] = [];
  for (let j = 0; j < nq; j++) {
    const q = set.quadrants[j];
    const pairs = byQuadrant[j];
    const key = pairs.map((p) => `${p.cx},${p.cy},${p.n},${set.sources[p.source].nuisance ? 1 : 0}`).join(';');
    const same = made.get(q.sci)?.find((c) => c.key === key && c.q.rms === q.rms && c.q.flags === q.flags && c.q.background === q.background && c.q.width === q.width && c.q.height === q.height && c.q.blocks === q.blocks);
    if (same) {
      quadrants.push(same.ql);
      continue;
    }
    const ql = quadrantLayout(set, q, pairs, opts);
    quadrants.push(ql);
    const list = made.get(q.sci);
    if (list) list.push({ q, key, ql });
    else made.set(q.sci, [{ q, key, ql }]);
  }

  // 3. batches: split each (quadrant, M) group so that one batch's M×M complex work fits a binding
  const batches: BatchLayout[] = [];
  const aliasSlots = (2 * aliasOrdersFor(set, opts) + 1) ** 2;
  let base = 0;
  for (const key of groupKeys) {
    const g = groups.get(key)!;
    const m = g[0].m;
    // (2N+1)² M×M complex images per pair for the PSF spectra, one per alias order (two pairs
    // share one work slot)
    const perPair = aliasSlots * m * m * 8;
    let cap = Math.max(1, Math.floor(limits.maxBindingBytes / perPair));
    cap = Math.min(cap, 65535, Math.floor(limits.maxBindingBytes / PAIR_BYTES));
    if (limits.maxPairsPerBatch) cap = Math.min(cap, limits.maxPairsPerBatch);
    // even batch sizes keep the two-per-FFT pairing independent of the batching
    if (cap > 1) cap -= cap % 2;
    for (let s = 0; s < g.length; s += cap) {
      const count = Math.min(cap, g.length - s);
      batches.push(buildBatchCsr(quadrants[g[0].quadrant], g.slice(s, s + count), base + s, m));
    }
    base += g.length;
  }
  return { pairs: ordered, batches, quadrants, fftSizes };
}

/**
 * One quadrant's active blocks (every block a stamp of `pairs` touches inside the image), their
 * compact numbering and the observed pixels / inverse variances on them (w = 0 where masked or
 * outside every non-nuisance stamp). The coverage map is made for this quadrant alone.
 */
function quadrantLayout(set: ExposureSet, q: QuadrantData, pairs: readonly PairLayout[], opts: RenderOptions): QuadrantLayout {
  const nbx = Math.ceil(q.width / BLOCK_W);
  const nby = Math.ceil(q.height / BLOCK_H);
  const ql: QuadrantLayout = { width: q.width, height: q.height, nbx, nby, blockIndex: new Int32Array(nbx * nby).fill(-1), blockXY: new Uint32Array(0), nActive: 0, obsW: new Float32Array(0), nPixels: 0 };
  const covered = new Uint8Array(q.width * q.height);
  for (const p of pairs) {
    const x0 = Math.max(0, p.cx);
    const x1 = Math.min(ql.width, p.cx + p.n);
    const y0 = Math.max(0, p.cy);
    const y1 = Math.min(ql.height, p.cy + p.n);
    if (x0 >= x1 || y0 >= y1) continue;
    // a nuisance source's stamp adds no pixel to the likelihood (SourceInfo.nuisance), but its blocks are rendered
    if (!set.sources[p.source].nuisance) for (let y = y0; y < y1; y++) covered.fill(1, y * ql.width + x0, y * ql.width + x1);
    for (let by = Math.floor(y0 / BLOCK_H); by <= Math.floor((y1 - 1) / BLOCK_H); by++)
      for (let bx = Math.floor(x0 / BLOCK_W); bx <= Math.floor((x1 - 1) / BLOCK_W); bx++) ql.blockIndex[by * ql.nbx + bx] = 0;
  }
  const xy: number[] = [];
  let c = 0;
  for (let b = 0; b < ql.blockIndex.length; b++) {
    if (ql.blockIndex[b] < 0) continue;
    ql.blockIndex[b] = c++;
    xy.push(b % ql.nbx, Math.floor(b / ql.nbx));
  }
  ql.nActive = c;
  ql.blockXY = Uint32Array.from(xy);
  ql.obsW = new Float32Array(c * BLOCK_PIXELS * 2);
  const bkg = q.background;
  const mask = opts.badPixelMask >>> 0;
  let nPix = 0;
  for (let cb = 0; cb < c; cb++) {
    const bx = ql.blockXY[2 * cb];
    const by = ql.blockXY[2 * cb + 1];
    for (let t = 0; t < BLOCK_PIXELS; t++) {
      const x = bx * BLOCK_W + (t % BLOCK_W);
      const y = by * BLOCK_H + Math.floor(t / BLOCK_W);
      if (x >= q.width || y >= q.height) continue;
      if (!covered[y * q.width + x]) continue;
      // the quadrant's own pixel store: whole crop or active blocks only (engine/scene/pixels.ts)
      const i = pixelIndex(q, x, y);
      if (i < 0) continue;
      const sci = q.sci[i];
      const rms = q.rms[i];
      const b = bkg === undefined ? 0 : typeof bkg === 'number' ? bkg : bkg[i];
      const obs = sci - b;
      if (!usablePixel(obs, rms, q.flags[i], mask)) continue;
      ql.obsW[2 * (cb * BLOCK_PIXELS + t)] = obs;
      ql.obsW[2 * (cb * BLOCK_PIXELS + t) + 1] = 1 / (rms * rms);
      nPix++;
    }
  }
  ql.nPixels = nPix;
  return ql;
}

function buildBatchCsr(ql: QuadrantLayout, pairs: PairLayout[], pairBase: number, m: number): BatchLayout {
  const lists = new Map<number, number[]>();
  pairs.forEach((p, l) => {
    const x0 = Math.max(0, p.cx);
    const x1 = Math.min(ql.width, p.cx + p.n);
    const y0 = Math.max(0, p.cy);
    const y1 = Math.min(ql.height, p.cy + p.n);
    if (x0 >= x1 || y0 >= y1 || !overlaps(p.cx, p.n, ql.width)) return;
    for (let by = Math.floor(y0 / BLOCK_H); by <= Math.floor((y1 - 1) / BLOCK_H); by++)
      for (let bx = Math.floor(x0 / BLOCK_W); bx <= Math.floor((x1 - 1) / BLOCK_W); bx++) {
        const cb = ql.blockIndex[by * ql.nbx + bx];
        let a = lists.get(cb);
        if (!a) lists.set(cb, (a = []));
        a.push(l);
      }
  });
  const touched = Uint32Array.from([...lists.keys()].sort((a, b) => a - b));
  const starts = new Uint32Array(touched.length + 1);
  const entries: number[] = [];
  touched.forEach((cb, i) => {
    starts[i] = entries.length;
    entries.push(...lists.get(cb)!);
  });
  starts[touched.length] = entries.length;
  return { quadrant: pairs[0].quadrant, m, pairBase, count: pairs.length, touched, starts, entries: Uint32Array.from(entries) };
}

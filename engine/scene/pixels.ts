/**
 * How a quadrant's pixels are kept in memory (docs/plan.md "Host memory").
 *
 * Dense: the whole crop, row-major, pixel (x, y) at y·width + x.
 *
 * Active blocks: only the 16×8 blocks that some visible stamp touches — the only pixels the
 * likelihood, the χ² and the fit ever read (docs/forward-model.md: pixels outside every stamp do
 * not depend on the parameters). In the realistic `subtile` preset they are ~40 % of the crop
 * pixels, so Stage 2 keeps these only (`ExposureSetOptions.compact`). Block-major: active block c
 * (its number in `blockIndex`) holds pixel (x, y) at c·128 + (y mod 8)·16 + (x mod 16) — the same
 * numbering as the engine's compact images (engine/scene/layout.ts), so the GPU layout and the
 * host store agree block for block. A block sticking out of the crop keeps its outside slots
 * (never read).
 */
import { stampCorner } from '../model/geometry.ts';
import { BLOCK_H, BLOCK_PIXELS, BLOCK_W } from '../gpu/render/render.wgsl.ts';
import type { ActiveBlocks, ExposureSet, QuadrantData } from './types.ts';

/**
 * The one rule for a pixel that enters the likelihood: finite observed value (sci − background),
 * finite rms > 0, and none of the masked FLG bits set. The layout (engine/scene/layout.ts), the χ²
 * per quadrant and the diagnostics mask use it; the float64 reference keeps its own on purpose.
 */
export function usablePixel(observed: number, rms: number, flags: number, mask: number): boolean {
  return Number.isFinite(observed) && Number.isFinite(rms) && rms > 0 && ((flags >>> 0) & (mask >>> 0)) === 0;
}

/** A stamp's footprint: lower-left corner and side, in the quadrant's pixels. */
export interface StampFootprint {
  cx: number;
  cy: number;
  n: number;
}

/** Calls `fn(i, j)` for every cell (cw × ch pixels, cell (i, j) at x ∈ [i·cw, (i+1)·cw)) that the footprint's part inside the width×height crop touches. */
function forEachCell(s: StampFootprint, width: number, height: number, cw: number, ch: number, fn: (i: number, j: number) => void): void {
  const x0 = Math.max(0, s.cx);
  const x1 = Math.min(width, s.cx + s.n);
  const y0 = Math.max(0, s.cy);
  const y1 = Math.min(height, s.cy + s.n);
  if (x0 >= x1 || y0 >= y1) return;
  for (let j = Math.floor(y0 / ch); j <= Math.floor((y1 - 1) / ch); j++) for (let i = Math.floor(x0 / cw); i <= Math.floor((x1 - 1) / cw); i++) fn(i, j);
}

/** The active 16×8 blocks of a width×height crop: every block a footprint touches inside the crop, numbered in raster order. */
export function activeBlocks(width: number, height: number, stamps: Iterable<StampFootprint>): ActiveBlocks {
  const nbx = Math.ceil(width / BLOCK_W);
  const nby = Math.ceil(height / BLOCK_H);
  const blockIndex = new Int32Array(nbx * nby).fill(-1);
  for (const s of stamps) forEachCell(s, width, height, BLOCK_W, BLOCK_H, (bx, by) => (blockIndex[by * nbx + bx] = 0));
  const xy: number[] = [];
  let c = 0;
  for (let b = 0; b < blockIndex.length; b++) {
    if (blockIndex[b] < 0) continue;
    blockIndex[b] = c++;
    xy.push(b % nbx, Math.floor(b / nbx));
  }
  return { nbx, nby, blockIndex, blockXY: Uint32Array.from(xy), nActive: c };
}

/** The footprints of the visible pairs of quadrant j (stamp sizes from `stampSize(source)`). */
export function visibleFootprints(
  pairs: ReadonlyArray<{ source: number; quadrant: number; x: number; y: number; visible: boolean }>,
  j: number,
  stampSize: (source: number) => number,
): StampFootprint[] {
  const out: StampFootprint[] = [];
  for (const p of pairs) {
    if (p.quadrant !== j || !p.visible) continue;
    const n = stampSize(p.source);
    out.push({ cx: stampCorner(p.x, n), cy: stampCorner(p.y, n), n });
  }
  return out;
}

/** Which pixels of a quadrant some stamp covers, answered without a per-pixel map (a realistic sub-tile has 52 crops of 4k × 2k pixels). */
export interface StampCoverIndex {
  /** Whether the pixel holding position (x, y) (0-based, pixel i spans [i − 0.5, i + 0.5)) lies under one of the footprints. */
  covers(x: number, y: number): boolean;
}

/** A coarse grid (64-pixel cells) of the footprints touching each cell: a query checks one cell's few footprints. */
export function stampCoverIndex(width: number, height: number, stamps: readonly StampFootprint[]): StampCoverIndex {
  const CELL = 64;
  const ncx = Math.max(1, Math.ceil(width / CELL));
  const cells = new Map<number, StampFootprint[]>();
  for (const s of stamps)
    forEachCell(s, width, height, CELL, CELL, (gx, gy) => {
      const list = cells.get(gy * ncx + gx);
      if (list) list.push(s);
      else cells.set(gy * ncx + gx, [s]);
    });
  return {
    covers(x: number, y: number): boolean {
      const px = Math.round(x);
      const py = Math.round(y);
      if (!(px >= 0 && py >= 0 && px < width && py < height)) return false;
      const list = cells.get(Math.floor(py / CELL) * ncx + Math.floor(px / CELL));
      return !!list && list.some((s) => px >= s.cx && px < s.cx + s.n && py >= s.cy && py < s.cy + s.n);
    },
  };
}

/** Index of pixel (x, y) in the quadrant's pixel arrays, −1 when it lies outside the crop or is not kept. */
export function pixelIndex(q: { width: number; height: number; blocks?: ActiveBlocks }, x: number, y: number): number {
  if (x < 0 || y < 0 || x >= q.width || y >= q.height) return -1;
  const b = q.blocks;
  if (!b) return y * q.width + x;
  const by = Math.floor(y / BLOCK_H);
  const bx = Math.floor(x / BLOCK_W);
  const c = b.blockIndex[by * b.nbx + bx];
  return c < 0 ? -1 : c * BLOCK_PIXELS + (y - by * BLOCK_H) * BLOCK_W + (x - bx * BLOCK_W);
}

/** Length of the quadrant's pixel arrays: width·height (dense) or 128 per active block. */
export function storedLength(q: { width: number; height: number; blocks?: ActiveBlocks }): number {
  return q.blocks ? q.blocks.nActive * BLOCK_PIXELS : q.width * q.height;
}

type PixelArray = Float32Array | Float64Array | Int32Array | Uint32Array | Uint8Array;

/** The active blocks' pixels of a dense row-major image, block-major (slots outside the crop 0). */
export function compactPixels<T extends PixelArray>(dense: T, width: number, height: number, blocks: ActiveBlocks): T {
  const ctor = dense.constructor as new (n: number) => T;
  const out = new ctor(blocks.nActive * BLOCK_PIXELS);
  for (let c = 0; c < blocks.nActive; c++) {
    const x0 = blocks.blockXY[2 * c] * BLOCK_W;
    const y0 = blocks.blockXY[2 * c + 1] * BLOCK_H;
    const w = Math.min(BLOCK_W, width - x0);
    for (let dy = 0; dy < BLOCK_H && y0 + dy < height; dy++) {
      const from = (y0 + dy) * width + x0;
      out.set(dense.subarray(from, from + w) as never, c * BLOCK_PIXELS + dy * BLOCK_W);
    }
  }
  return out;
}

/**
 * A dense quadrant reduced to its active blocks. A background map is subtracted here, once:
 * `sci` then holds the observed value sci − background rounded to float32 — the value the
 * likelihood compares with (engine/scene/layout.ts stores it as float32) — and `background` is 0,
 * so the store keeps 12 bytes per pixel instead of 16 (docs/plan.md "Host memory"). Every reader
 * forms sci − background, so nothing downstream changes.
 */
export function compactQuadrant(q: QuadrantData, blocks: ActiveBlocks): QuadrantData {
  if (q.blocks) throw new Error(`quadrant ${q.name} is already compact`);
  const bg = q.background;
  const sci = compactPixels(q.sci, q.width, q.height, blocks);
  if (bg !== undefined && typeof bg !== 'number') {
    const map = compactPixels(bg, q.width, q.height, blocks);
    for (let i = 0; i < sci.length; i++) sci[i] -= map[i];
  }
  return {
    name: q.name,
    width: q.width,
    height: q.height,
    sci,
    rms: compactPixels(q.rms, q.width, q.height, blocks),
    flags: compactPixels(q.flags, q.width, q.height, blocks),
    ...(bg === undefined ? {} : { background: typeof bg === 'number' ? bg : 0 }),
    blocks,
  };
}

/**
 * A full-size row-major copy of one per-pixel array of the quadrant (e.g. for a diagnostics
 * image); pixels that are not kept get `fill`.
 */
export function expandPixels(q: QuadrantData, values: Float32Array, fill: number): Float32Array {
  const out = new Float32Array(q.width * q.height);
  if (!q.blocks) {
    out.set(values);
    return out;
  }
  out.fill(fill);
  const b = q.blocks;
  for (let c = 0; c < b.nActive; c++) {
    const x0 = b.blockXY[2 * c] * BLOCK_W;
    const y0 = b.blockXY[2 * c + 1] * BLOCK_H;
    const w = Math.min(BLOCK_W, q.width - x0);
    for (let dy = 0; dy < BLOCK_H && y0 + dy < q.height; dy++) {
      const from = c * BLOCK_PIXELS + dy * BLOCK_W;
      out.set(values.subarray(from, from + w), (y0 + dy) * q.width + x0);
    }
  }
  return out;
}

/** Whether any quadrant of the set keeps only its active blocks. */
export function isCompact(set: ExposureSet): boolean {
  return set.quadrants.some((q) => q.blocks !== undefined);
}

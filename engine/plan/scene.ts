/**
 * The plan's view of a scene (engine/plan/plan.ts PlanScene), from a loaded ExposureSet: exact
 * pair counts per (quadrant, FFT size), blocks each stamp covers and active blocks per quadrant,
 * computed from the pair positions alone (no per-pixel arrays: a 16×8-block bitmap per quadrant).
 */
import { BLOCK_H, BLOCK_W } from '../gpu/render/render.wgsl.ts';
import { stampCorner } from '../model/geometry.ts';
import { aliasOrdersFor, psfOversamplingOf, resolveRenderOptions } from '../model/validate.ts';
import type { ExposureSet, RenderOptions } from '../scene/types.ts';
import { blocksPerStamp, type PlanGroup, type PlanScene } from './plan.ts';

/** Blocks (bx0, by0, bx1, by1) inclusive that the stamp at corner (cx, cy), side n, covers inside w×h; null if none. */
function blockRange(cx: number, cy: number, n: number, w: number, h: number): [number, number, number, number] | null {
  const x0 = Math.max(0, cx);
  const x1 = Math.min(w, cx + n);
  const y0 = Math.max(0, cy);
  const y1 = Math.min(h, cy + n);
  if (x0 >= x1 || y0 >= y1) return null;
  return [Math.floor(x0 / BLOCK_W), Math.floor(y0 / BLOCK_H), Math.floor((x1 - 1) / BLOCK_W), Math.floor((y1 - 1) / BLOCK_H)];
}

export function planSceneFromSet(
  set: ExposureSet,
  opts: Partial<RenderOptions> & { method?: 'map' | 'vi' | 'nuts'; replicasWanted?: number; diagnostics?: boolean } = {},
): PlanScene {
  // whole crops unless the set keeps only its active blocks (engine/scene/pixels.ts)
  const pixels = set.quadrants.some((q) => q.blocks) ? 'active-blocks' : 'crop';
  const render = resolveRenderOptions(opts);
  const groups = new Map<string, PlanGroup>();
  const active = set.quadrants.map((q) => new Uint8Array(Math.ceil(q.width / BLOCK_W) * Math.ceil(q.height / BLOCK_H)));
  for (const p of set.pairs) {
    if (!p.visible) continue;
    const n = set.sources[p.source].stampSize;
    const m = render.fftFactor * n;
    const q = set.quadrants[p.quadrant];
    const key = `${p.quadrant}:${m}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { quadrant: p.quadrant, m, n, count: 0, blockEntries: 0 }));
    g.count++;
    const r = blockRange(stampCorner(p.x, n), stampCorner(p.y, n), n, q.width, q.height);
    if (!r) continue;
    const nbx = Math.ceil(q.width / BLOCK_W);
    g.blockEntries += (r[2] - r[0] + 1) * (r[3] - r[1] + 1);
    for (let by = r[1]; by <= r[3]; by++) active[p.quadrant].fill(1, by * nbx + r[0], by * nbx + r[2] + 1);
  }
  return {
    sources: set.sources.length,
    quadrants: set.quadrants.map((q, j) => ({ width: q.width, height: q.height, activeBlocks: active[j].reduce((s, v) => s + v, 0) })),
    groups: [...groups.values()].sort((a, b) => a.quadrant - b.quadrant || a.m - b.m),
    psfSize: set.psfSize,
    psfOversampling: psfOversamplingOf(set),
    aliasOrders: aliasOrdersFor(set, render),
    method: opts.method ?? 'map',
    replicasWanted: opts.replicasWanted ?? 1,
    diagnostics: opts.diagnostics ?? true,
    pixels,
  };
}

/**
 * The plan's view of a sub-tile before its pixels are read (`shine plan`): pairs from source
 * positions already projected into each quadrant, active blocks bounded by the stamps' blocks.
 */
export function planSceneFromPositions(input: {
  quadrants: Array<{ width: number; height: number }>;
  /** Per source: its stamp side and, per quadrant it falls on, its pixel position. */
  sources: Array<{ stampSize: number; at: Array<{ quadrant: number; x: number; y: number }> }>;
  fftFactor: number;
  psfSize: number;
  psfOversampling: number;
  aliasOrders: number;
  method: 'map' | 'vi' | 'nuts';
  replicasWanted: number;
  diagnostics: boolean;
}): PlanScene {
  const groups = new Map<string, PlanGroup>();
  const active = input.quadrants.map((q) => new Uint8Array(Math.ceil(q.width / BLOCK_W) * Math.ceil(q.height / BLOCK_H)));
  let nSources = 0;
  for (const s of input.sources) {
    const n = s.stampSize;
    let any = false;
    for (const a of s.at) {
      const q = input.quadrants[a.quadrant];
      const r = blockRange(stampCorner(a.x, n), stampCorner(a.y, n), n, q.width, q.height);
      if (!r) continue;
      any = true;
      const m = input.fftFactor * n;
      const key = `${a.quadrant}:${m}`;
      let g = groups.get(key);
      if (!g) groups.set(key, (g = { quadrant: a.quadrant, m, n, count: 0, blockEntries: 0 }));
      g.count++;
      g.blockEntries += Math.min(blocksPerStamp(n), (r[2] - r[0] + 1) * (r[3] - r[1] + 1));
      const nbx = Math.ceil(q.width / BLOCK_W);
      for (let by = r[1]; by <= r[3]; by++) active[a.quadrant].fill(1, by * nbx + r[0], by * nbx + r[2] + 1);
    }
    if (any) nSources++;
  }
  return {
    sources: nSources,
    quadrants: input.quadrants.map((q, j) => ({ width: q.width, height: q.height, activeBlocks: active[j].reduce((s, v) => s + v, 0) })),
    groups: [...groups.values()].sort((a, b) => a.quadrant - b.quadrant || a.m - b.m),
    psfSize: input.psfSize,
    psfOversampling: input.psfOversampling,
    aliasOrders: input.aliasOrders,
    method: input.method,
    replicasWanted: input.replicasWanted,
    diagnostics: input.diagnostics,
  };
}

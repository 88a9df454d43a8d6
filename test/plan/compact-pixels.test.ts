/**
 * Stage 2 keeps only the pixels of the 16×8 blocks some visible stamp touches (docs/plan.md
 * "Host memory", engine/scene/pixels.ts). Checked against the whole crops:
 *  - the active blocks are exactly the blocks holding a stamp pixel inside the crop (brute force);
 *  - every kept pixel equals the crop's pixel at (x, y) (SCI less the background map, in float32),
 *    every other one is reported missing, and the full-size expansion gives the crop back on the
 *    active blocks;
 *  - masking an unmodelled object's disc sets the same bits on the kept pixels as on the crop;
 *  - the engine on a compact set: the same active blocks, logL and gradient as on the whole crops,
 *    and its model on the kept blocks (renderBlocks) equals the full-size render there;
 *  - a short Stage 2 run on the ci simulation ends with the same shear, parameters, χ² per
 *    quadrant and model images whichever pixels are kept, and the plan's host bytes shrink;
 *  - the browser app's images of the active-block run (app/src/page-images.ts) equal the whole-crop
 *    run's model and mask wherever the fit holds pixels, are marked "not held" only off every
 *    stamp, and their χ² is the float64 sum of the whole-crop images over the held pixels.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decode } from 'fast-png';
import { parse as parseYaml } from 'yaml';
import { activeBlocks, compactQuadrant, expandPixels, pixelIndex, visibleFootprints, type StampFootprint } from '../../engine/scene/pixels.ts';
import { ShearEngine } from '../../engine/gpu/render/engine.ts';
import { makeTestScene } from '../../engine/reference/scene-builder.ts';
import type { QuadrantData } from '../../engine/scene/types.ts';
import { maskDisc } from '../../engine/exposures/masking.ts';
import { loadConfig } from '../../platform/node/config.ts';
import { openFits } from '../../platform/node/files.ts';
import { manifestFileName, parseManifest } from '../../engine/tiling/manifest.ts';
import { runSubtile } from '../../engine/subtile/run.ts';
import type { SubtileResult } from '../../engine/subtile/result.ts';
import { subtileProducts } from '../../engine/subtile/products.ts';
import { testDevice } from '../helpers/device.ts';
import { CI_TILE, preparedCiSimulation } from '../helpers/ci-sim.ts';
import { testProductContext } from '../helpers/products.ts';
import { pageImages } from '../../app/src/page-images.ts';
import { MASK_NOT_HELD } from '../../app/src/api.ts';

const cropArb = fc
  .record({ w: fc.integer({ min: 1, max: 90 }), h: fc.integer({ min: 1, max: 70 }), seed: fc.integer({ min: 1, max: 1e9 }) })
  .chain(({ w, h, seed }) =>
    fc.record({
      w: fc.constant(w),
      h: fc.constant(h),
      seed: fc.constant(seed),
      stamps: fc.array(fc.record({ cx: fc.integer({ min: -40, max: w + 5 }), cy: fc.integer({ min: -40, max: h + 5 }), n: fc.constantFrom(2, 4, 8, 16, 32) }), { maxLength: 6 }),
    }),
  );

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

function denseQuadrant(w: number, h: number, seed: number): QuadrantData {
  const r = lcg(seed);
  const n = w * h;
  return {
    name: 'q',
    width: w,
    height: h,
    sci: Float32Array.from({ length: n }, () => r() * 100 - 20),
    rms: Float32Array.from({ length: n }, () => 1 + r()),
    flags: Int32Array.from({ length: n }, () => (r() < 0.1 ? 1 : 0)),
    background: Float32Array.from({ length: n }, () => r()),
  };
}

/** Blocks holding at least one stamp pixel inside the crop, by visiting every such pixel. */
function bruteBlocks(w: number, h: number, stamps: StampFootprint[]): Set<string> {
  const out = new Set<string>();
  for (const s of stamps)
    for (let y = s.cy; y < s.cy + s.n; y++)
      for (let x = s.cx; x < s.cx + s.n; x++) if (x >= 0 && y >= 0 && x < w && y < h) out.add(`${Math.floor(x / 16)},${Math.floor(y / 8)}`);
  return out;
}

describe('active-block pixel store', () => {
  it('keeps exactly the blocks the stamps touch, with the crop values at every kept pixel', () => {
    fc.assert(
      fc.property(cropArb, ({ w, h, seed, stamps }) => {
        const blocks = activeBlocks(w, h, stamps);
        const want = bruteBlocks(w, h, stamps);
        const got = new Set<string>();
        for (let c = 0; c < blocks.nActive; c++) got.add(`${blocks.blockXY[2 * c]},${blocks.blockXY[2 * c + 1]}`);
        expect(got).toEqual(want);
        const dense = denseQuadrant(w, h, seed);
        const q = compactQuadrant(dense, blocks);
        expect(q.sci.length).toBe(128 * want.size);
        // a background map is subtracted on compaction: sci holds the float32 observed value
        expect(q.background).toBe(0);
        const bg = dense.background as Float32Array;
        const sci = expandPixels(q, q.sci, NaN);
        for (let y = 0; y < h; y++)
          for (let x = 0; x < w; x++) {
            const d = y * w + x;
            const i = pixelIndex(q, x, y);
            if (!want.has(`${Math.floor(x / 16)},${Math.floor(y / 8)}`)) {
              expect(i).toBe(-1);
              expect(sci[d]).toBeNaN();
              continue;
            }
            expect(q.sci[i]).toBe(Math.fround(dense.sci[d] - bg[d]));
            expect(q.rms[i]).toBe(dense.rms[d]);
            expect(q.flags[i]).toBe(dense.flags[d]);
            expect(sci[d]).toBe(q.sci[i]);
          }
        expect(pixelIndex(q, -1, 0)).toBe(-1);
        expect(pixelIndex(q, w, 0)).toBe(-1);
        expect(pixelIndex(q, 0, h)).toBe(-1);
      }),
      { numRuns: 150, seed: 7 },
    );
  });

  it('masks the same pixels of a disc on the kept pixels as on the whole crop', () => {
    fc.assert(
      fc.property(cropArb, fc.double({ min: -5, max: 95, noNaN: true }), fc.double({ min: -5, max: 75, noNaN: true }), fc.double({ min: 0.05, max: 3, noNaN: true }), ({ w, h, seed, stamps }, x, y, r) => {
        const dense = denseQuadrant(w, h, seed);
        const q = compactQuadrant(dense, activeBlocks(w, h, stamps));
        const disc = { x, y, jacobian: [-0.1, 0.003, 0.002, 0.1] as const, radiusArcsec: r };
        const a = maskDisc(dense.flags as Int32Array, w, h, disc, 1 << 30);
        const b = maskDisc(q.flags as Int32Array, w, h, disc, 1 << 30, (px, py) => pixelIndex(q, px, py));
        expect(b.inside).toBe(a.inside);
        let addedKept = 0;
        for (let py = 0; py < h; py++)
          for (let px = 0; px < w; px++) {
            const i = pixelIndex(q, px, py);
            if (i < 0) continue;
            expect(q.flags[i]).toBe(dense.flags[py * w + px]);
            if (dense.flags[py * w + px] & (1 << 30)) addedKept++;
          }
        expect(b.added).toBe(addedKept);
      }),
      { numRuns: 150, seed: 11 },
    );
  });
});

describe('the engine on a set that keeps only its active blocks', () => {
  it('has the same blocks, logL and gradient; renderBlocks is render on the kept pixels', async () => {
    const device = await testDevice();
    const quadrants = [
      { width: 300, height: 260, rotationDeg: 0, origin: [150.3, 140.7] as [number, number] },
      { width: 310, height: 300, rotationDeg: 180, origin: [160.2, 150.6] as [number, number] },
    ];
    const { set, params } = makeTestScene({ seed: 4, nSources: 8, sourceTiers: [64, 128], quadrants });
    const compact = {
      ...set,
      quadrants: set.quadrants.map((q, j) => compactQuadrant(q, activeBlocks(q.width, q.height, visibleFootprints(set.pairs, j, (k) => set.sources[k].stampSize)))),
    };
    const dense = await ShearEngine.create(device, set);
    const blocks = await ShearEngine.create(device, compact);
    const a = await dense.evaluate(params);
    const b = await blocks.evaluate(params);
    expect(b.logL).toBe(a.logL);
    expect(Array.from(b.gradient.e1)).toEqual(Array.from(a.gradient.e1));
    expect(b.gradient.g1).toBe(a.gradient.g1);
    const full = await dense.render(params);
    const kept = await blocks.renderBlocks(params);
    compact.quadrants.forEach((q, j) => {
      expect(Array.from(blocks.layout.quadrants[j].blockXY)).toEqual(Array.from(q.blocks!.blockXY));
      expect(kept[j].length).toBe(q.sci.length);
      let nonzero = 0;
      for (let y = 0; y < q.height; y++)
        for (let x = 0; x < q.width; x++) {
          const i = pixelIndex(q, x, y);
          const v = full[j][y * q.width + x];
          if (i < 0) expect(v).toBe(0);
          else {
            expect(kept[j][i]).toBe(v);
            if (v !== 0) nonzero++;
          }
        }
      expect(nonzero).toBeGreaterThan(1000);
      expect(expandPixels(q, kept[j], 0)).toEqual(full[j]);
    });
    dense.destroy();
    blocks.destroy();
  }, 300_000);
});

describe('Stage 2 with active blocks against whole crops (ci simulation)', () => {
  const TILE = CI_TILE;
  let cfgFile = '';
  let row = 1;
  let col = 1;
  beforeAll(async () => {
    ({ cfgFile, row, col } = await preparedCiSimulation(6, 'shine-compact-'));
  }, 300_000);

  it('same shear, parameters, χ² and model images; fewer host bytes planned', async () => {
    const device = await testDevice();
    const cfg = await loadConfig(cfgFile);
    const short = { ...cfg, inference: { ...cfg.inference, map: { ...cfg.inference.map, max_iterations: 3, laplace: false } } };
    const file = join(cfg.distributed.scratch_dir, `tile_${TILE}`, manifestFileName(TILE, row, col));
    const run = async (pixels: 'crop' | 'active-blocks') => {
      const manifest = parseManifest(await readFile(file, 'utf8'), file);
      return { manifest, result: await runSubtile(device, manifest, short, { openFits: (p, o) => openFits(p, o) }, { pixels }) };
    };
    const crop = await run('crop');
    const act = await run('active-blocks');
    const a = crop.result;
    const b = act.result;
    expect(a.status).toBe('ok');
    expect(b.status).toBe('ok');
    expect(b.g1).toBe(a.g1);
    expect(b.g2).toBe(a.g2);
    expect(b.core).toEqual(a.core);
    const qa = a.quadrantChi2!;
    const qb = b.quadrantChi2!;
    expect(qb.map((q) => [q.name, q.n_pixels, q.chi2, q.masked_unmodelled])).toEqual(qa.map((q) => [q.name, q.n_pixels, q.chi2, q.masked_unmodelled]));
    expect(qa.every((q, j) => qb[j].masked_unmodelled_all <= q.masked_unmodelled_all)).toBe(true);
    // images: identical models; observed and mask identical wherever a stamp lands
    let modelled = 0;
    a.images.forEach((ia, j) => {
      const ib = b.images[j];
      expect(ib.model).toEqual(ia.model);
      expect(ib.modelled).toEqual(ia.modelled);
      const [oa, ob, ma, mb] = [ia.observed, ib.observed, ia.mask, ib.mask];
      for (let d = 0; d < oa.length; d++) {
        if (!ia.modelled[d]) continue;
        modelled++;
        if (Number.isNaN(oa[d])) expect(ob[d]).toBeNaN();
        else expect(ob[d]).toBe(oa[d]);
        expect(mb[d]).toBe(ma[d]);
      }
    });
    expect(modelled).toBeGreaterThan(1000);
    // the app's images of the active-block run against the whole-crop run's images
    const page = pageImages(b);
    let held = 0;
    let notHeld = 0;
    let chi2 = 0;
    let n = 0;
    page.images.forEach((ip, j) => {
      const ia = a.images[j];
      expect(ip.name).toBe(ia.name);
      expect(ip.model).toEqual(ia.model);
      const [oa, ra, ma] = [ia.observed, ia.rms, ia.mask];
      for (let d = 0; d < ip.mask.length; d++) {
        if (ip.mask[d] === MASK_NOT_HELD) {
          notHeld++;
          expect(ia.modelled[d]).toBe(0);
          expect(ia.model[d]).toBe(0);
          continue;
        }
        held++;
        expect(ip.mask[d]).toBe(ma[d]);
        if (!ma[d]) continue;
        chi2 += ((oa[d] - ia.model[d]) / ra[d]) ** 2;
        n++;
      }
    });
    expect(held).toBeGreaterThan(modelled);
    expect(notHeld).toBeGreaterThan(0);
    expect(page.n).toBe(n);
    expect(Math.abs(page.chi2 - chi2)).toBeLessThan(1e-9 * chi2);
    // the plan of each run: the pixels held shrink with active blocks
    const meta = (r: { manifest: Parameters<typeof subtileProducts>[1]; result: SubtileResult }) => {
      const p = subtileProducts(r.result, r.manifest, testProductContext(file, cfgFile, true));
      return { meta: parseYaml(p.metadata), png: decode(p.diagnostics) };
    };
    const ma = meta(crop);
    const mb = meta(act);
    expect(mb.meta.plan.host_bytes.pixels).toBeLessThan(ma.meta.plan.host_bytes.pixels);
    // the diagnostics PNG is drawn from the lazily expanded quadrants: same layout
    expect([mb.png.width, mb.png.height]).toEqual([ma.png.width, ma.png.height]);
  }, 900_000);
});

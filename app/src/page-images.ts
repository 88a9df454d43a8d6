/**
 * The page's images of a Stage 2 run (app/src/worker.ts), and χ² over the pixels the fit holds.
 * The fit keeps only the active blocks of each crop (Stage 2's pixel store, docs/plan.md "Host
 * memory"): the engine's full-size views are made here one quadrant at a time, and pixels outside
 * those blocks get the mask value MASK_NOT_HELD, where the page shows the data's own mask (it holds
 * the whole crops from the load). Checked against a whole-crop run in test/plan/compact-pixels.test.ts.
 */
import type { SubtileResult } from '../../engine/subtile/result.ts';
import { MASK_NOT_HELD, type ModelImage } from './api.ts';

export function pageImages(r: SubtileResult): { images: ModelImage[]; chi2: number; n: number } {
  let s = 0;
  let n = 0;
  const images = r.images.map((q) => {
    // each is a full-size array made on read: read once
    const { model, mask, rms, observed, modelled } = q;
    for (let i = 0; i < mask.length; i++) {
      if (Number.isNaN(rms[i])) {
        mask[i] = MASK_NOT_HELD;
        continue;
      }
      if (!mask[i]) continue;
      const z = (observed[i] - model[i]) / rms[i];
      s += z * z;
      n++;
    }
    return { name: q.name, model, mask, modelled };
  });
  return { images, chi2: s, n };
}


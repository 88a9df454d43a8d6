/// <reference lib="webworker" />
/**
 * Colour limits and bitmaps off the main thread (comlink): the page sends each quadrant's images
 * once, then asks for the limits of a stretch and for the RGBA of a panel at a block size. Stretch,
 * colormap and limit changes (quantiles and zscale over every quadrant, a pass over every pixel)
 * take seconds on large quadrants; here they never freeze the page.
 */
import * as Comlink from 'comlink';
import { renderRgba, residualChi, sharedLimits, type Limits, type RenderRequest } from './render.ts';
import type { StretchName } from './stretch.ts';

interface Held {
  width: number;
  height: number;
  observed: Float32Array;
  mask: Uint8Array;
  model: Float32Array | null;
  chi: Float32Array | null;
}

let quads: Held[] = [];

export interface RenderApi {
  /** Replaces every quadrant (a new sub-tile). */
  setData(q: Array<{ width: number; height: number; observed: Float32Array; mask: Uint8Array }>): void;
  /** The model of quadrant j (null: none); χ is computed here with the fit's mask. */
  setModel(j: number, model: Float32Array | null, rms: Float32Array | null, mask: Uint8Array | null): void;
  limits(stretch: StretchName, manual: { image?: [number, number] | null; chi?: number | null }): Limits;
  render(j: number, r: RenderRequest): { rgba: Uint8ClampedArray; width: number; height: number; values: Float32Array; k: number } | null;
}

const api: RenderApi = {
  setData(q) {
    quads = q.map((x) => ({ ...x, model: null, chi: null }));
  },
  setModel(j, model, rms, mask) {
    const q = quads[j];
    if (!q) return;
    if (mask) q.mask = mask;
    q.model = model;
    q.chi = model && rms ? residualChi(q.observed, model, rms, q.mask) : null;
  },
  limits(stretch, manual) {
    return sharedLimits(quads, stretch, manual);
  },
  render(j, r) {
    const q = quads[j];
    if (!q) return null;
    const v = r.panel === 'observed' ? q.observed : r.panel === 'model' ? q.model : q.chi;
    if (!v) return null;
    const out = renderRgba(v, q.mask, q.width, q.height, r);
    return Comlink.transfer({ ...out, k: r.k }, [out.rgba.buffer, out.values.buffer]);
  },
};

Comlink.expose(api);

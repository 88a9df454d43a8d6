/**
 * Replicas of a scene for batched evaluation (several MCMC chains or VI particles in one GPU
 * pass): K copies of every quadrant and source, replica r's pairs linking only its own copies.
 * Pixel arrays and PSF stamps are shared (no copy); only the index fields change. Replica r's
 * quadrants are [r·Q, (r+1)·Q), its sources [r·S, (r+1)·S), its pairs follow replica r−1's in
 * the same order, so the layout (grouped by quadrant) repeats the single-scene layout K times:
 * every replica is rendered and reduced in exactly the order of a single scene (bit-identical).
 */
import type { ExposureSet } from './types.ts';

export function replicateSet(set: ExposureSet, replicas: number): ExposureSet {
  if (!Number.isInteger(replicas) || replicas < 1) throw new RangeError(`replicas must be a positive integer, got ${replicas}`);
  if (replicas === 1) return set;
  const nq = set.quadrants.length;
  const ns = set.sources.length;
  // every other field (psfOversampling, …) is shared by the replicas
  const out: ExposureSet = { ...set, quadrants: [], sources: [], pairs: [], psfSize: set.psfSize };
  for (let r = 0; r < replicas; r++) {
    for (const q of set.quadrants) out.quadrants.push({ ...q, name: `${q.name}#${r}` });
    for (const s of set.sources) out.sources.push({ ...s });
    for (const p of set.pairs) out.pairs.push({ ...p, source: p.source + r * ns, quadrant: p.quadrant + r * nq });
  }
  return out;
}

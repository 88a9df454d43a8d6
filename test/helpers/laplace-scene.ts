/**
 * The small scene of the Laplace tests: five unblended galaxies on two 200×200 quadrants turned by
 * 90° against each other, 64-pixel stamps, so that their stamp-overlap graph is a chain plus a
 * triangle and the distance-2 colouring perturbs several sources per evaluation.
 */
import { makeTestScene, type TestSceneOptions } from '../../engine/reference/scene-builder.ts';

export function laplaceScene(o: Pick<TestSceneOptions, 'seed' | 'fluxRange' | 'g1' | 'g2'> = {}) {
  return makeTestScene({
    seed: 5,
    nSources: 5,
    blended: false,
    quadrants: [
      { width: 200, height: 200, rotationDeg: 0, name: 'a' },
      { width: 200, height: 200, rotationDeg: 90, name: 'b' },
    ],
    sourceTiers: [64],
    tiers: [64],
    fluxRange: [1500, 3000],
    ...o,
  });
}

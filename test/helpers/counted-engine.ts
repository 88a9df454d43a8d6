/**
 * A replicated engine that counts its calls and the parameter sets they evaluate, for tests that
 * check how finite-difference columns are batched (Laplace Hessian, MAP preconditioner).
 */
import type { ShearEngine } from '../../engine/gpu/render/engine.ts';
import type { SceneParams } from '../../engine/scene/types.ts';

export function countedEngine(engine: ShearEngine) {
  const count = { calls: 0, sets: 0 };
  const wrapped = {
    set: engine.set,
    layout: engine.layout,
    replicas: engine.replicas,
    evaluate: (p: SceneParams) => (count.calls++, count.sets++, engine.evaluate(p)),
    evaluateMany: (list: readonly SceneParams[]) => (count.calls++, (count.sets += list.length), engine.evaluateMany(list)),
  };
  return { engine: wrapped, count };
}

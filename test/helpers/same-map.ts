/** Two MAP fits that must have ended at the same point bit for bit (a disturbed run against an undisturbed one). */
import { expect } from 'vitest';
import type { MapResult } from '../../engine/infer/map.ts';

const FIELDS = ['flux', 'hlr', 'e1', 'e2', 'dx', 'dy'] as const;
const hex = (a: ArrayLike<number>) => Buffer.from(Float64Array.from(a).buffer).toString('hex');

export function expectSameMapFit(ma: MapResult, mb: MapResult): void {
  expect(ma.iterations).toBeGreaterThan(3);
  expect(mb.iterations).toBe(ma.iterations);
  expect(mb.evaluations).toBe(ma.evaluations);
  expect(mb.lossHistory).toEqual(ma.lossHistory);
  for (const f of FIELDS) expect(hex(mb.params[f])).toBe(hex(ma.params[f]));
  expect(mb.params.g1).toBe(ma.params.g1);
  expect(mb.params.g2).toBe(ma.params.g2);
}

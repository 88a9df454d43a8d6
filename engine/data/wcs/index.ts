/** WCS: TAN / TPV / TAN-SIP, sky ↔ pixel, local Jacobians, tangent-plane helpers. */
export * from './wcs.ts';
export * from './sphere.ts';
export { TPV_TERMS, TPV_NCOEF } from './poly.ts';
export { readWcs } from './read.ts';

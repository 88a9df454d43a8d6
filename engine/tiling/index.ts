/** Survey tiling (Stage 1): tile footprint, sub-tile grid, source partition, quadrant discovery, manifests. See docs/prepare.md. */
export * from './geometry.ts';
export * from './partition.ts';
export * from './polygon.ts';
export * from './quadrants.ts';
export * from './tiles.ts';
export * from './manifest.ts';
export * from './prepare.ts';

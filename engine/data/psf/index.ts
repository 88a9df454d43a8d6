/** Euclid VIS PSF grids: layout, grid positions, bilinear interpolation renormalised to unit sum. */
export * from './grid.ts';
export { readPsfGrid } from './read.ts';

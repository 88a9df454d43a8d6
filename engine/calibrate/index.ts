/**
 * Shear calibration (docs/calibrate.md), runtime-agnostic: the simulation set, the derived
 * Stage-2 configuration, the statistics (m, c, leakage, bootstrap, pulls), calibration.fits and
 * calibration.png. The Node command is cli/commands/calibrate.ts.
 */
export * from './design.ts';
export * from './config.ts';
export * from './stats.ts';
export * from './table.ts';
export * from './plot.ts';
export * from './include.ts';
export * from './compare.ts';

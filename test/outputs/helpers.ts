/** Shared test data for the output-product tests. */
import { subtileOutputNames, type SubtileMetadata } from '../../engine/outputs/index.ts';

export function sampleMetadata(tileId: number, row: number, col: number): SubtileMetadata {
  return {
    format: 'shine-subtile-metadata',
    version: 1,
    tile_id: tileId,
    sub_tile_row: row,
    sub_tile_col: col,
    created: '2025-03-04T05:06:07Z',
    software: { name: 'shine-webgpu', version: '0.1.0' },
    inputs: {
      manifest: '/scratch/manifest_1_0_0.yaml',
      config: '/run/config.yaml',
      config_hash: 'abc',
      quadrants: [{ id: 'E1.3-4.F', file: '/data/E1.fits', sci_hdu: '3-4.F.SCI', rms_hdu: '3-4.F.RMS', flg_hdu: '3-4.F.FLG', psf_file: null, psf_hdu: null }],
      catalogs: [{ file: '/data/cat.fits', hdu: 1 }],
    },
    adapter: { label: 'llvmpipe', backend: 'opengl', feature_level: 'compatibility' },
    runtime: { name: 'node', version: 'v22.0.0' },
    method: 'map',
    optimizer: 'lbfgs',
    timings_ms: { load: 1, build: 2, inference: 3, laplace: 4, write: 5, total: 15 },
    inference: { iterations: 42, final_loss: -1234.5, converged: true, reason: 'gtol', convergence: -1234.5 },
    shear: { ra: 1, dec: 2, g1: 0.01, g2: NaN, g1_err: 0.003, g2_err: 0.004, covariance: [[9e-6, 1e-7], [1e-7, 1.6e-5]] },
    sources: { core: 10, extended: 14, dropped: 1 },
    n_quadrants: 1,
    warnings: ['quadrant E1.3-4.F: 3% masked'],
    products: subtileOutputNames(tileId, row, col),
  };
}

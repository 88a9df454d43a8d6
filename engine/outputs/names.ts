/**
 * File names and identity of the per-sub-tile output products (docs/outputs.md).
 * Runtime-agnostic.
 */
import { ShineError } from '../errors.ts';

/** A sub-tile: MER tile id and its (row, col) in the sub-tile grid. */
export interface SubtileId {
  /** MER tile identifier (a non-negative integer; bigint accepted for ids beyond 2^53). */
  tileId: number | bigint;
  row: number;
  col: number;
}

export interface SubtileOutputNames {
  shear: string;
  params: string;
  diagnostics: string;
  metadata: string;
}

/** The four product kinds, in the order they are written (metadata last: the completion marker). */
export const PRODUCT_KINDS = ['shear', 'params', 'diagnostics', 'metadata'] as const;
export type ProductKind = (typeof PRODUCT_KINDS)[number];

/** Checks a sub-tile id: tile id a non-negative integer, row and col integers in 0..127 (int8 columns). */
export function checkSubtileId(tileId: number | bigint, row: number, col: number): void {
  const okTile = typeof tileId === 'bigint' ? tileId >= 0n && tileId < 2n ** 63n : Number.isSafeInteger(tileId) && tileId >= 0;
  if (!okTile) throw new ShineError(`invalid tile id ${String(tileId)}: expected a non-negative integer`, { field: 'tile_id' });
  for (const [name, v] of [
    ['sub_tile_row', row],
    ['sub_tile_col', col],
  ] as const) {
    if (!Number.isInteger(v) || v < 0 || v > 127) {
      throw new ShineError(`invalid ${name} ${v}: expected an integer in 0..127 (stored as int8)`, { field: name });
    }
  }
}

/** `shear_{tile}_{row}_{col}.fits`, `params_…fits`, `diagnostics_…png`, `metadata_…yaml`. */
export function subtileOutputNames(tileId: number | bigint, row: number, col: number): SubtileOutputNames {
  checkSubtileId(tileId, row, col);
  const s = `${String(tileId)}_${row}_${col}`;
  return {
    shear: `shear_${s}.fits`,
    params: `params_${s}.fits`,
    diagnostics: `diagnostics_${s}.png`,
    metadata: `metadata_${s}.yaml`,
  };
}

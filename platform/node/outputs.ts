/**
 * Node side of the per-sub-tile outputs (docs/outputs.md): writing the four products atomically
 * and checking whether a sub-tile's outputs on disk are complete and valid (skip / resume).
 *
 * Write order: the old metadata file (the completion marker) is removed first, then shear,
 * params and diagnostics are written (each to a temporary name in the same directory, fsync'ed,
 * renamed), and the metadata YAML last. A crash at any point leaves either the previous
 * complete set (if it failed before the marker was removed), or a set without a valid
 * metadata file, which `subtileOutputsComplete` reports as incomplete.
 */
import { readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { ShineError } from '../../engine/errors.ts';
import { PRODUCT_KINDS, subtileOutputNames, type ProductKind, type SubtileOutputNames } from '../../engine/outputs/names.ts';
import { checkProductBytes } from '../../engine/outputs/validate.ts';
import { writeFileAtomic } from './files.ts';
import { parse as parseYaml } from 'yaml';
import { fitMismatch, type FitMethod, type FittedWith } from '../../engine/config/fit-settings.ts';
import type { ShineConfig } from '../../engine/config/schema.ts';
import { fitQuality, type FitQuality } from '../../engine/outputs/quality.ts';

export { subtileOutputNames };

export interface SubtileProducts {
  shear: Uint8Array;
  params: Uint8Array;
  diagnostics: Uint8Array;
  /** YAML text (or its UTF-8 bytes). */
  metadata: string | Uint8Array;
}

export interface OutputsStatus {
  complete: boolean;
  /** File names (not paths) that do not exist. */
  missing: string[];
  /** 'name: reason' for files that exist but are not valid. */
  invalid: string[];
}

export interface WriteOutputsOptions {
  /** Validate the bytes before writing (default true): invalid products throw and nothing is written. */
  validate?: boolean;
}

function bytesOf(p: string | Uint8Array): Uint8Array {
  return typeof p === 'string' ? new TextEncoder().encode(p) : p;
}

/**
 * Writes the four products of a sub-tile into `dir` (created if needed), metadata last.
 * Returns the full paths.
 */
export async function writeSubtileOutputs(
  dir: string,
  tileId: number | bigint,
  row: number,
  col: number,
  products: SubtileProducts,
  options: WriteOutputsOptions = {},
): Promise<SubtileOutputNames> {
  const names = subtileOutputNames(tileId, row, col);
  const bytes: Record<ProductKind, Uint8Array> = {
    shear: products.shear,
    params: products.params,
    diagnostics: products.diagnostics,
    metadata: bytesOf(products.metadata),
  };
  if (options.validate !== false) {
    const expected = { tileId, row, col };
    const problems: string[] = [];
    for (const k of PRODUCT_KINDS) {
      for (const p of await checkProductBytes(k, bytes[k], expected)) problems.push(`${names[k]}: ${p}`);
    }
    if (problems.length) throw new ShineError(`refusing to write invalid sub-tile outputs:\n  ${problems.join('\n  ')}`, { file: join(dir, names.metadata) });
  }
  const paths = Object.fromEntries(PRODUCT_KINDS.map((k) => [k, join(dir, names[k])])) as unknown as SubtileOutputNames;
  // remove the completion marker of an earlier run first: a crash below must not leave an old
  // marker next to new products
  await unlink(paths.metadata).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'ENOENT' && e.code !== 'ENOTDIR') throw new ShineError(`cannot remove the old metadata file: ${e.message}`, { file: paths.metadata });
  });
  for (const k of PRODUCT_KINDS) {
    try {
      await writeFileAtomic(paths[k], bytes[k]);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err instanceof ShineError) throw err;
      throw new ShineError(`cannot write: ${err.code === 'EACCES' ? 'permission denied' : err.message}`, { file: paths[k] });
    }
  }
  return paths;
}

/**
 * Whether the outputs of a sub-tile in `dir` are complete and valid: all four files exist, the
 * FITS tables parse with the expected columns (one row for shear) and name this sub-tile, the PNG
 * is well-formed to its IEND chunk, and the metadata YAML parses and names this sub-tile.
 */
export async function subtileOutputsComplete(dir: string, tileId: number | bigint, row: number, col: number): Promise<OutputsStatus> {
  const names = subtileOutputNames(tileId, row, col);
  const missing: string[] = [];
  const invalid: string[] = [];
  for (const k of PRODUCT_KINDS) {
    const path = join(dir, names[k]);
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(await readFile(path));
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err.code === 'ENOENT') missing.push(names[k]);
      else invalid.push(`${names[k]}: ${err.code === 'EISDIR' ? 'is a directory' : err.message}`);
      continue;
    }
    const problems = await checkProductBytes(k, bytes, { tileId, row, col });
    if (problems.length) invalid.push(`${names[k]}: ${problems.join('; ')}`);
  }
  return { complete: missing.length === 0 && invalid.length === 0, missing, invalid };
}

/**
 * Null when the sub-tile's metadata says it was fitted as this configuration (with this method)
 * would fit it, else why not (engine/config/fit-settings.ts). Call on complete products.
 * `method: 'recorded'` judges the products under the method they record (`shine status` without
 * `--method`: a NUTS run is not stale for being NUTS, only for other settings).
 */
export async function subtileFitMismatch(dir: string, tileId: number | bigint, row: number, col: number, cfg: ShineConfig, method: FitMethod | 'recorded' = cfg.inference.method): Promise<string | null> {
  const file = join(dir, subtileOutputNames(tileId, row, col).metadata);
  let meta: FittedWith;
  try {
    meta = parseYaml(await readFile(file, 'utf8')) as FittedWith;
  } catch (e) {
    return `its metadata ${file} cannot be read (${String((e as Error).message ?? e).split('\n')[0]})`;
  }
  if (method !== 'recorded') return fitMismatch(meta, cfg, method);
  const m = meta?.method;
  return fitMismatch(meta, cfg, m === 'map' || m === 'vi' || m === 'nuts' ? m : cfg.inference.method);
}

/** What the metadata of a sub-tile's complete products says of its fit (engine/outputs/quality.ts); null when it cannot be read. */
export async function subtileQuality(dir: string, tileId: number | bigint, row: number, col: number): Promise<FitQuality | null> {
  try {
    return fitQuality(parseYaml(await readFile(join(dir, subtileOutputNames(tileId, row, col).metadata), 'utf8')));
  } catch {
    return null;
  }
}

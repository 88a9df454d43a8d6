/**
 * `--start-from PATH` of `shine subtile` (docs/subtile.md "Starting from an earlier fit"): reads
 * the earlier fit's tables for engine/subtile/start.ts. PATH is a folder of products — every
 * `params_{tile}_{row}_{col}.fits` and assembled `params_{tile}.fits` in it, and this sub-tile's
 * `shear_{tile}_{row}_{col}.fits` — or one params file, with the shear table beside it when there
 * is one. The first row of a source wins, read in this order: this sub-tile's PARAMS (its core
 * sources), its MARGIN table (the margin and nuisance sources at their values in the same fit),
 * then the other files' PARAMS (a neighbour's core: the margin sources an older params file,
 * without MARGIN, leaves out).
 */
import { readdir, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { openFits } from '../platform/node/files.ts';
import { MARGIN_EXTNAME, PARAMS_EXTNAME } from '../engine/outputs/params.ts';
import { SHEAR_EXTNAME } from '../engine/outputs/shear.ts';
import { subtileOutputNames } from '../engine/outputs/names.ts';
import { addParamsTable, emptyStartValues, shearFromTable, type StartValues } from '../engine/subtile/start.ts';
import { UserError } from './command.ts';

const PARAMS_NAME = /^params_\d+(_\d+_\d+)?\.fits$/;

export async function readStartValues(path: string, id: { tileId: number; row: number; col: number }): Promise<StartValues> {
  const st = await stat(path).catch(() => null);
  if (!st) throw new UserError(`--start-from ${path}: no such file or folder`);
  const own = subtileOutputNames(id.tileId, id.row, id.col);
  let paramsFiles: string[];
  let shearFile: string;
  if (st.isDirectory()) {
    const names = (await readdir(path)).filter((n) => PARAMS_NAME.test(n)).sort((a, b) => Number(b === own.params) - Number(a === own.params) || a.localeCompare(b));
    if (!names.length) throw new UserError(`--start-from ${path}: the folder holds no params_*.fits table (the products of an earlier run: docs/outputs.md)`);
    paramsFiles = names.map((n) => join(path, n));
    shearFile = join(path, own.shear);
  } else {
    paramsFiles = [path];
    shearFile = join(dirname(path), own.shear);
    if (basename(path) === own.shear) throw new UserError(`--start-from ${path}: give the PARAMS table (${own.params}) or the folder of products, not the SHEAR table`);
  }
  const values = emptyStartValues();
  const tables = async (f: string, hdus: string[]) => {
    const fits = await openFits(f);
    try {
      for (const h of hdus) if (h === PARAMS_EXTNAME || fits.hdus.some((x) => x.name.toUpperCase() === h)) addParamsTable(values, await fits.readTable(h), h === PARAMS_EXTNAME ? f : `${f}[${h}]`);
    } finally {
      await fits.close();
    }
  };
  // a MARGIN table is this sub-tile's fit (or the one file named): read before the neighbours' PARAMS
  const ownFirst = !st.isDirectory() || basename(paramsFiles[0]) === own.params;
  await tables(paramsFiles[0], ownFirst ? [PARAMS_EXTNAME, MARGIN_EXTNAME] : [PARAMS_EXTNAME]);
  for (const f of paramsFiles.slice(1)) await tables(f, [PARAMS_EXTNAME]);
  if (await stat(shearFile).then((s) => s.isFile(), () => false)) {
    const fits = await openFits(shearFile);
    try {
      values.g = shearFromTable(await fits.readTable(SHEAR_EXTNAME), id);
    } finally {
      await fits.close();
    }
    values.shearFile = values.g ? shearFile : null;
  }
  return values;
}

/**
 * `--start-from PATH` of `shine subtile` (docs/subtile.md "Starting from an earlier fit"): reads
 * the earlier fit's tables for engine/subtile/start.ts. PATH is a folder of products — every
 * `params_{tile}_{row}_{col}.fits` and assembled `params_{tile}.fits` in it (this sub-tile's
 * first, so its own rows win; its neighbours' tables start the margin sources they own) and this
 * sub-tile's `shear_{tile}_{row}_{col}.fits` — or one PARAMS table, with the shear table beside it
 * when there is one.
 */
import { readdir, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { openFits } from '../platform/node/files.ts';
import { PARAMS_EXTNAME } from '../engine/outputs/params.ts';
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
  for (const f of paramsFiles) addParamsTable(values, await (await openFits(f)).readTable(PARAMS_EXTNAME), f);
  if (await stat(shearFile).then((s) => s.isFile(), () => false)) {
    values.g = shearFromTable(await (await openFits(shearFile)).readTable(SHEAR_EXTNAME), id);
    values.shearFile = values.g ? shearFile : null;
  }
  return values;
}

/**
 * `shine sky2xy FILE [--hdu NAME] [--origin 1|0] [--json] RA DEC [RA DEC …]`: sky → pixel with
 * the image's WCS (TAN, TPV, TAN-SIP), like wcstools' sky2xy. Pixels in the FITS convention
 * (first pixel centre = 1.0) unless `--origin 0`. RA/Dec in degrees, or sexagesimal
 * (RA hh:mm:ss.s, Dec ±dd:mm:ss.s). Also exports the helpers shared with `xy2sky`.
 */
import { UserError, type Command } from '../command.ts';
import { openFits } from '../../platform/node/files.ts';
import { readWcs, type Wcs } from '../../engine/data/wcs/index.ts';
import type { FitsFile } from '../../engine/data/fits/file.ts';

export interface WcsCliArgs {
  file: string;
  hdu?: string;
  origin: 0 | 1;
  json: boolean;
  values: string[];
}

export function parseWcsCliArgs(argv: string[], usage: string): WcsCliArgs {
  const out: WcsCliArgs = { file: '', origin: 1, json: false, values: [] };
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--help' || a === '-h') throw new UserError(usage);
    if (a === '--json') out.json = true;
    else if (a === '--hdu' || a === '--origin') {
      const v = argv[++i];
      if (v === undefined) throw new UserError(`${a} needs a value\n${usage}`);
      if (a === '--hdu') out.hdu = v;
      else if (v === '0' || v === '1') out.origin = Number(v) as 0 | 1;
      else throw new UserError(`--origin must be 0 or 1, got '${v}'`);
    } else if (a.startsWith('--hdu=')) out.hdu = a.slice(6);
    else if (a.startsWith('--origin=')) {
      const v = a.slice(9);
      if (v !== '0' && v !== '1') throw new UserError(`--origin must be 0 or 1, got '${v}'`);
      out.origin = Number(v) as 0 | 1;
    } else if (a.startsWith('--')) throw new UserError(`unknown option '${a}'\n${usage}`);
    else positional.push(a);
  }
  if (positional.length < 3) throw new UserError(usage);
  out.file = positional[0];
  out.values = positional.slice(1);
  if (out.values.length % 2 !== 0) throw new UserError(`coordinates come in pairs; got ${out.values.length} values\n${usage}`);
  return out;
}

/** Opens the file and the WCS of the HDU (default: the first HDU with CTYPE1). */
export async function openWcs(file: string, hdu?: string): Promise<{ fits: FitsFile; wcs: Wcs; hduName: string; naxis?: number[] }> {
  const fits = await openFits(file);
  try {
    let ref: string | number;
    if (hdu !== undefined) ref = /^\d+$/.test(hdu) ? Number(hdu) : hdu;
    else {
      const found = fits.hdus.find((h) => fits.header(h.index).has('CTYPE1'));
      if (!found) throw new UserError(`${file}: no HDU has a WCS (CTYPE1); choose one with --hdu NAME`);
      ref = found.index;
    }
    const info = fits.hdu(ref);
    const hduName = info.name || String(info.index);
    const wcs = readWcs(fits, info.index);
    return { fits, wcs, hduName, naxis: info.naxis.length >= 2 ? info.naxis.slice() : undefined };
  } catch (e) {
    await fits.close().catch(() => undefined);
    throw e;
  }
}

/** A number, or sexagesimal 'a:b:c' (hours for RA when `hours`). */
export function parseAngle(s: string, what: string, hours: boolean): number {
  const t = s.trim();
  if (t.includes(':')) {
    const m = /^([+-]?)(\d+):(\d+)(?::(\d+(?:\.\d*)?))?$/.exec(t);
    if (!m) throw new UserError(`cannot read ${what} '${s}'`);
    const v = Number(m[2]) + Number(m[3]) / 60 + (m[4] ? Number(m[4]) / 3600 : 0);
    return (m[1] === '-' ? -1 : 1) * v * (hours ? 15 : 1);
  }
  const v = Number(t);
  if (t === '' || !Number.isFinite(v)) throw new UserError(`cannot read ${what} '${s}' as a number`);
  return v;
}

export function onImage(x0: number, y0: number, naxis?: number[]): boolean | undefined {
  if (!naxis || naxis.length < 2) return undefined;
  return x0 >= -0.5 && x0 <= naxis[0] - 0.5 && y0 >= -0.5 && y0 <= naxis[1] - 0.5;
}

const USAGE = 'usage: shine sky2xy FILE [--hdu NAME] [--origin 1|0] [--json] RA DEC [RA DEC …]';

const command: Command = {
  summary: 'sky → pixel with the image WCS (TAN/TPV/SIP), like wcstools sky2xy',
  async run(argv: string[]): Promise<number> {
    const args = parseWcsCliArgs(argv, USAGE);
    const { fits, wcs, hduName, naxis } = await openWcs(args.file, args.hdu);
    await fits.close().catch(() => undefined);
    const rows: Array<{ ra: number; dec: number; x: number; y: number; onImage?: boolean }> = [];
    for (let i = 0; i < args.values.length; i += 2) {
      const ra = parseAngle(args.values[i], 'RA', true);
      const dec = parseAngle(args.values[i + 1], 'Dec', false);
      if (dec < -90 || dec > 90) throw new UserError(`Dec ${dec} is outside [−90, 90]`);
      const [x0, y0] = wcs.skyToPixel(ra, dec);
      const row: { ra: number; dec: number; x: number; y: number; onImage?: boolean } = {
        ra,
        dec,
        x: x0 + args.origin,
        y: y0 + args.origin,
      };
      const on = onImage(x0, y0, naxis);
      if (on !== undefined && Number.isFinite(x0)) row.onImage = on;
      rows.push(row);
    }
    if (args.json) {
      console.log(JSON.stringify({ file: args.file, hdu: hduName, origin: args.origin, wcs: wcs.kind, results: rows }, null, 1));
    } else {
      for (const r of rows) {
        const pix = Number.isFinite(r.x) ? `${r.x.toFixed(6)} ${r.y.toFixed(6)}` : '(not on the projection: no solution)';
        const off = r.onImage === false ? ' (off image)' : '';
        console.log(`${r.ra.toFixed(9)} ${r.dec.toFixed(9)} -> ${pix}${off}`);
      }
    }
    return rows.every((r) => Number.isFinite(r.x)) ? 0 : 1;
  },
};

export default command;

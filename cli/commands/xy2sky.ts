/**
 * `shine xy2sky FILE [--hdu NAME] [--origin 1|0] [--json] X Y [X Y …]`: pixel → sky with the
 * image's WCS (TAN, TPV, TAN-SIP), like wcstools' xy2sky. Pixels in the FITS convention (first
 * pixel centre = 1.0) unless `--origin 0`; output RA/Dec in degrees (ICRS as in the header).
 */
import { UserError, type Command } from '../command.ts';
import { onImage, openWcs, parseWcsCliArgs } from './sky2xy.ts';

const USAGE = 'usage: shine xy2sky FILE [--hdu NAME] [--origin 1|0] [--json] X Y [X Y …]';

const command: Command = {
  summary: 'pixel → sky with the image WCS (TAN/TPV/SIP), like wcstools xy2sky',
  async run(argv: string[]): Promise<number> {
    const args = parseWcsCliArgs(argv, USAGE);
    const { fits, wcs, hduName, naxis } = await openWcs(args.file, args.hdu);
    await fits.close().catch(() => undefined);
    const rows: Array<{ x: number; y: number; ra: number; dec: number; onImage?: boolean }> = [];
    for (let i = 0; i < args.values.length; i += 2) {
      const x = Number(args.values[i]);
      const y = Number(args.values[i + 1]);
      if (!Number.isFinite(x) || !Number.isFinite(y) || args.values[i].trim() === '' || args.values[i + 1].trim() === '') {
        throw new UserError(`cannot read pixel '${args.values[i]} ${args.values[i + 1]}' as two numbers`);
      }
      const [ra, dec] = wcs.pixelToSky(x - args.origin, y - args.origin);
      const row: { x: number; y: number; ra: number; dec: number; onImage?: boolean } = { x, y, ra, dec };
      const on = onImage(x - args.origin, y - args.origin, naxis);
      if (on !== undefined) row.onImage = on;
      rows.push(row);
    }
    if (args.json) {
      console.log(JSON.stringify({ file: args.file, hdu: hduName, origin: args.origin, wcs: wcs.kind, results: rows }, null, 1));
    } else {
      for (const r of rows) {
        const off = r.onImage === false ? ' (off image)' : '';
        console.log(`${r.x} ${r.y} -> ${r.ra.toFixed(9)} ${r.dec.toFixed(9)}${off}`);
      }
    }
    return 0;
  },
};

export default command;

/**
 * `--omit-undetected` (SimulateOptions.omitUndetected): objects the MER catalog does not list are
 * left out of the pixels, everything else identical. Noise-free, no defects, on a 2′ version of
 * the `ci` preset; the oracle is the truth table itself (each object's total flux in ADU and
 * position), read through the header WCS:
 *  (a) the catalog and the truth table are the same (truth rows of undetected objects keep
 *      OBJECT_ID −1); the DET and truth headers say OMITUND only when set;
 *  (b) SCI(all) − SCI(omitted), summed in a box around each isolated undetected galaxy, is its
 *      truth FLUX_ADU (the box holds ≳ 99.8 % of an exponential's light) — so the omitted light is
 *      exactly the undetected objects', not more, not less;
 *  (c) the difference is exactly 0 in a box around every catalogued object that no undetected
 *      object's light reaches.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nodeSimOutput, parseSimulateArgs } from '../../cli/commands/simulate.ts';
import { simulate, detFileName, merFileName } from '../../engine/sim/simulate.ts';
import { PRESETS, type Preset } from '../../engine/sim/presets.ts';
import { openFits } from '../../platform/node/files.ts';
import { parseWcs } from '../../engine/data/wcs/index.ts';

type Fits = Awaited<ReturnType<typeof openFits>>;
// galaxies to mag 26.5 (the preset stops at 25.5): many below the catalog's S/N 3
const tiny: Preset = { ...PRESETS.ci, tileCore: 120, margin: 6, pad: 2, magMax: 26.5 };
const SHEAR: [number, number] = [0.03, -0.02];
let root = '';
const open: Fits[] = [];
async function fits(path: string): Promise<Fits> {
  const f = await openFits(path);
  open.push(f);
  return f;
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'shine-omit-'));
  for (const omit of [false, true]) {
    await simulate(nodeSimOutput(join(root, omit ? 'omit' : 'all')), { preset: tiny, seed: 5, shear: SHEAR, noise: false, defects: false, ...(omit ? { omitUndetected: true } : {}) });
  }
}, 90_000);

afterAll(async () => {
  await Promise.all(open.map((f) => f.close()));
  if (root) await rm(root, { recursive: true, force: true });
});

describe('--omit-undetected', () => {
  it('parses as a flag', () => {
    expect(parseSimulateArgs(['--preset', 'ci', '--seed', '1', '--out', 'x', '--omit-undetected']).omitUndetected).toBe(true);
    expect(parseSimulateArgs(['--preset', 'ci', '--seed', '1', '--out', 'x']).omitUndetected).toBe(false);
  });

  it('(a) catalog and truth unchanged; OMITUND only when set', async () => {
    const mer = merFileName(tiny.tileId);
    expect(Buffer.compare(await readFile(join(root, 'all', 'MER', mer)), await readFile(join(root, 'omit', 'MER', mer)))).toBe(0);
    const ta = await fits(join(root, 'all', 'truth', 'sources.fits'));
    const to = await fits(join(root, 'omit', 'truth', 'sources.fits'));
    const a = await ta.readTable(1);
    const o = await to.readTable(1);
    expect(o.nRows).toBe(a.nRows);
    for (const name of a.names) expect(Array.from(o.column(name).data as ArrayLike<unknown>)).toEqual(Array.from(a.column(name).data as ArrayLike<unknown>));
    expect(ta.header(1).has('OMITUND')).toBe(false);
    expect(to.header(1).getBool('OMITUND')).toBe(true);
    const da = await fits(join(root, 'all', 'VIS', detFileName(tiny.obsId, 0)));
    const dd = await fits(join(root, 'omit', 'VIS', detFileName(tiny.obsId, 0)));
    expect(da.header(0).has('OMITUND')).toBe(false);
    expect(dd.header(0).getBool('OMITUND')).toBe(true);
  });

  it('(b, c) the pixels lose exactly the undetected objects\' light', async () => {
    const t = await (await fits(join(root, 'all', 'truth', 'sources.fits'))).readTable(1);
    const oid = t.column('OBJECT_ID').data as BigInt64Array;
    const ra = t.column('RA').data as Float64Array;
    const dec = t.column('DEC').data as Float64Array;
    const flux = t.column('FLUX_ADU').data as Float64Array;
    const hlr = t.column('HLR').data as Float64Array;
    const star = t.column('IS_STAR').data as ArrayLike<unknown>;
    const undetected = Array.from({ length: t.nRows }, (_, i) => i).filter((i) => oid[i] === -1n);
    const listed = Array.from({ length: t.nRows }, (_, i) => i).filter((i) => oid[i] !== -1n);
    console.log(`tiny ci to mag 26.5, seed 5: ${t.nRows} truth objects, ${undetected.length} not in the catalog`);
    expect(undetected.length).toBeGreaterThan(3);
    let fluxChecked = 0;
    let zeroChecked = 0;
    for (let d = 0; d < 4; d++) {
      const fa = await fits(join(root, 'all', 'VIS', detFileName(tiny.obsId, d)));
      const fo = await fits(join(root, 'omit', 'VIS', detFileName(tiny.obsId, d)));
      for (const h of fa.hdus.filter((x) => x.name.endsWith('.SCI'))) {
        const wcs = parseWcs(fa.header(h.name));
        const [sa, so] = await Promise.all([fa.readImageFloat32(h.name), fo.readImageFloat32(h.name)]);
        const w = sa.width;
        const ht = sa.height;
        const diff = new Float64Array(sa.data.length);
        for (let i = 0; i < diff.length; i++) diff[i] = sa.data[i] - so.data[i];
        const pos = Array.from({ length: t.nRows }, (_, i) => wcs.skyToPixel(ra[i], dec[i]));
        const reach = (i: number) => (star[i] ? 20 : Math.max(20, (12 * hlr[i]) / 0.1)); // pixels holding ≳ 99.8 % of the light
        const boxSum = (x: number, y: number, r: number) => {
          let s = 0;
          for (let yy = Math.ceil(y - r); yy <= Math.floor(y + r); yy++) for (let xx = Math.ceil(x - r); xx <= Math.floor(x + r); xx++) s += diff[yy * w + xx];
          return s;
        };
        const inside = (x: number, y: number, r: number) => x - r >= 0 && y - r >= 0 && x + r <= w - 1 && y + r <= ht - 1;
        for (const i of undetected) {
          const [x, y] = pos[i];
          const r = reach(i);
          if (!inside(x, y, r)) continue;
          if (undetected.some((k) => k !== i && Math.hypot(pos[k][0] - x, pos[k][1] - y) < r + reach(k) + 2)) continue;
          const s = boxSum(x, y, r);
          expect(Math.abs(s / flux[i] - 1), `undetected object ${i}: box sum ${s} vs FLUX_ADU ${flux[i]}`).toBeLessThan(0.005);
          fluxChecked++;
        }
        for (const i of listed) {
          const [x, y] = pos[i];
          if (!inside(x, y, 10)) continue;
          if (undetected.some((k) => Math.hypot(pos[k][0] - x, pos[k][1] - y) < 10 * Math.SQRT2 + reach(k) + 2)) continue;
          for (let yy = Math.ceil(y - 10); yy <= Math.floor(y + 10); yy++) for (let xx = Math.ceil(x - 10); xx <= Math.floor(x + 10); xx++) expect(diff[yy * w + xx]).toBe(0);
          zeroChecked++;
        }
      }
    }
    console.log(`flux of ${fluxChecked} isolated undetected objects recovered from the difference; ${zeroChecked} catalogued objects' boxes unchanged`);
    expect(fluxChecked).toBeGreaterThanOrEqual(3);
    expect(zeroChecked).toBeGreaterThan(10);
  });
});

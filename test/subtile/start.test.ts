/**
 * The warm start (engine/subtile/start.ts, cli/start-from.ts; docs/subtile.md "Starting from an
 * earlier fit"): which values a start takes from which table, checked against values written into
 * the tables by hand — the sub-tile's own PARAMS and MARGIN before a neighbour's PARAMS, OBJECT_IDs
 * matched whatever the row order, a moved catalog position or a value outside this run's priors
 * sent back to the catalog start (the supports checked against the priors' bounds written here), the
 * shear from this sub-tile's SHEAR row only — and the clear errors for bad paths and foreign files.
 * The fit from a warm start is checked end to end in subtile.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { paramsTable, shearTable, subtileOutputNames, type SourceParamsColumns, type SubtileShear } from '../../engine/outputs/index.ts';
import { applyStart, emptyStartValues, MOVED_ARCSEC, type StartValues } from '../../engine/subtile/start.ts';
import { ParamSpace } from '../../engine/infer/posterior.ts';
import { allocParams, type SceneParams } from '../../engine/scene/types.ts';
import { readStartValues } from '../../cli/start-from.ts';

const TILE = 102018211;
const PROV = { softwareVersion: 'test', created: '2026-12-07T00:00:00Z', configHash: 'x', configFile: 'c.yaml' };

/** A params table of `ids` whose fitted values encode the id and the table (`tag`): flux = 1000·tag + id. */
function table(ids: number[], tag: number, over: Partial<SourceParamsColumns> = {}): SourceParamsColumns {
  return {
    objectId: ids,
    ra: ids.map((i) => 150 + i * 1e-3),
    dec: ids.map((i) => 2 + i * 1e-3),
    flux: ids.map((i) => 1000 * tag + i),
    hlr: ids.map((i) => 0.2 + 0.01 * i),
    e1: ids.map(() => 0.01 * tag),
    e2: ids.map(() => -0.01 * tag),
    dx: ids.map(() => 0.001 * tag),
    dy: ids.map(() => -0.001 * tag),
    ...over,
  };
}

function shear(row: number, col: number, g1: number, g2: number): SubtileShear {
  return { tileId: TILE, row, col, ra: 150, dec: 2, g1, g2, g1Err: 0.01, g2Err: 0.01, nSources: 3, method: 'map', convergence: 0, converged: true };
}

/** Sources 1…6 at the catalog positions `table` writes; the catalog start flux 1, hlr 0.3, e 0. */
function scene(): { init: SceneParams; keys: Array<{ objectId: string; ra: number; dec: number }> } {
  const ids = [1, 2, 3, 4, 5, 6];
  const init = allocParams(ids.length);
  init.flux.fill(1);
  init.hlr.fill(0.3);
  return { init, keys: ids.map((i) => ({ objectId: String(i), ra: 150 + i * 1e-3, dec: 2 + i * 1e-3 })) };
}

describe('readStartValues: which table a source starts from', () => {
  it("this sub-tile's PARAMS, then its MARGIN, then the neighbours' PARAMS; the shear of this sub-tile's row", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'shine-start-'));
    const own = subtileOutputNames(TILE, 1, 1);
    // own: core 1, 2 (tag 1), margin 3, 4 (tag 2); the neighbour (1, 2): core 4, 5 (tag 3); an older
    // neighbour file (0, 1) with a MARGIN that must not be read (source 6, tag 4), and its core 2 (tag 5)
    await writeFile(join(dir, own.params), paramsTable({ tileId: TILE, row: 1, col: 1 }, table([2, 1], 1), PROV, table([4, 3], 2)));
    await writeFile(join(dir, subtileOutputNames(TILE, 1, 2).params), paramsTable({ tileId: TILE, row: 1, col: 2 }, table([4, 5], 3), PROV));
    await writeFile(join(dir, subtileOutputNames(TILE, 0, 1).params), paramsTable({ tileId: TILE, row: 0, col: 1 }, table([2], 5), PROV, table([6], 4)));
    await writeFile(join(dir, own.shear), shearTable(shear(1, 1, 0.0123, -0.0456), PROV));
    await writeFile(join(dir, 'params_notes.txt'), 'not a table');
    const v = await readStartValues(dir, { tileId: TILE, row: 1, col: 1 });
    expect(v.files[0]).toBe(join(dir, own.params));
    expect(v.files).toHaveLength(4); // own PARAMS, own MARGIN, two neighbours' PARAMS
    expect([...v.sources.keys()].sort()).toEqual(['1', '2', '3', '4', '5']);
    expect(v.sources.get('1')!.values.flux).toBe(1001);
    expect(v.sources.get('2')!.values.flux).toBe(1002); // own core wins over the (0, 1) file's row
    expect(v.sources.get('3')!.values.flux).toBe(2003);
    expect(v.sources.get('4')!.values.flux).toBe(2004); // own MARGIN (same fit) before the neighbour's PARAMS
    expect(v.sources.get('5')!.values.flux).toBe(3005);
    expect(v.sources.get('5')!.values.e1).toBeCloseTo(0.03, 15);
    expect(v.g![0]).toBeCloseTo(0.0123, 6);
    expect(v.g![1]).toBeCloseTo(-0.0456, 6);
    expect(v.shearFile).toBe(join(dir, own.shear));
    // another sub-tile's shear is not this one's: no row → the catalog start
    const other = await readStartValues(dir, { tileId: TILE, row: 1, col: 2 });
    expect(other.g).toBeNull();
    // one file named: its PARAMS and MARGIN, and the shear table beside it
    const one = await readStartValues(join(dir, own.params), { tileId: TILE, row: 1, col: 1 });
    expect([...one.sources.keys()].sort()).toEqual(['1', '2', '3', '4']);
    expect(one.g).not.toBeNull();
  });

  it('a row with a non-finite value is not a start (an empty sub-tile writes NaN shear)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'shine-start-'));
    const own = subtileOutputNames(TILE, 1, 1);
    await writeFile(join(dir, own.params), paramsTable({ tileId: TILE, row: 1, col: 1 }, table([1, 2], 1, { hlr: [0.2, NaN] }), PROV));
    await writeFile(join(dir, own.shear), shearTable(shear(1, 1, NaN, NaN), PROV));
    const v = await readStartValues(dir, { tileId: TILE, row: 1, col: 1 });
    expect([...v.sources.keys()]).toEqual(['1']);
    expect(v.g).toBeNull();
    expect(v.shearFile).toBeNull();
  });

  it('bad paths and foreign files: one line naming them', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'shine-start-'));
    const id = { tileId: TILE, row: 1, col: 1 };
    await expect(readStartValues(join(dir, 'nope'), id)).rejects.toThrow(/--start-from .*nope: no such file or folder/);
    await expect(readStartValues(dir, id)).rejects.toThrow(/holds no params_\*\.fits table/);
    const own = subtileOutputNames(TILE, 1, 1);
    await writeFile(join(dir, own.shear), shearTable(shear(1, 1, 0, 0), PROV));
    await expect(readStartValues(join(dir, own.shear), id)).rejects.toThrow(/give the PARAMS table .* not the SHEAR table/);
    // a FITS file without a PARAMS table: the reader names the file and the HDU
    await writeFile(join(dir, own.params), shearTable(shear(1, 1, 0, 0), PROV));
    await expect(readStartValues(dir, id)).rejects.toThrow(new RegExp(`${own.params}.*PARAMS|PARAMS.*${own.params}`));
  });
});

describe('applyStart: the start each source gets', () => {
  it('matched by OBJECT_ID; a moved catalog position or a value outside the priors keeps the catalog start', () => {
    const { init, keys } = scene();
    const v: StartValues = emptyStartValues();
    v.files.push('p.fits');
    const row = (id: number, flux: number, hlr: number, e1: number, moveArcsec = 0) =>
      v.sources.set(String(id), { values: { flux, hlr, e1, e2: 0.02, dx: 0.01, dy: -0.01 }, ra: 150 + id * 1e-3, dec: 2 + id * 1e-3 + moveArcsec / 3600, file: 'p.fits' });
    row(6, 60, 0.6, 0.1);
    row(1, 10, 0.4, 0.2);
    row(2, 20, 0.5, 0.3, 0.5 * MOVED_ARCSEC); // within the tolerance: used
    row(3, 30, 0.5, 0.3, 3 * MOVED_ARCSEC); // moved: catalog start
    row(4, 40, 5.0, 0.3); // hlr 5 outside the uniform hlr prior (0.05, 2): catalog start
    row(5, 50, 0.5, 0.95); // |e| 0.9502 outside the disc of radius 0.9: catalog start
    row(99, 990, 0.5, 0.1); // not in this scene
    v.g = [0.01, -0.02];
    v.shearFile = 's.fits';
    // the supports of these priors, written out: g in (−0.05, 0.05), hlr in (0.05, 2), |e| < 0.9, flux > 0
    const space = new ParamSpace({ g1: { type: 'uniform', low: -0.05, high: 0.05 }, g2: { type: 'uniform', low: -0.05, high: 0.05 }, hlr: { type: 'uniform', low: 0.05, high: 2 }, ellipticityMax: 0.9 }, init);
    const { params: p, report } = applyStart(init, keys, v, (x) => space.outsideSupport(x));
    expect(Array.from(p.flux)).toEqual([10, 20, 1, 1, 1, 60]);
    expect(Array.from(p.hlr)).toEqual([0.4, 0.5, 0.3, 0.3, 0.3, 0.6]);
    expect(Array.from(p.e1)).toEqual([0.2, 0.3, 0, 0, 0, 0.1]);
    expect(Array.from(p.dx)).toEqual([0.01, 0.01, 0, 0, 0, 0.01]);
    expect([p.g1, p.g2]).toEqual([0.01, -0.02]);
    expect(report).toEqual({ files: ['p.fits'], shearFile: 's.fits', sources: 3, of: 6, moved: 1, outsideSupport: 2, shear: 'table' });
    // init is left alone
    expect(Array.from(init.flux)).toEqual([1, 1, 1, 1, 1, 1]);
  });

  it('a point source takes only its flux and offsets: its size and shape stay where the start holds them', () => {
    const { init, keys } = scene();
    init.hlr[0] = 0.01;
    const v = emptyStartValues();
    v.sources.set('1', { values: { flux: 10, hlr: 0.5, e1: 0.2, e2: -0.1, dx: 0.02, dy: -0.03 }, ra: keys[0].ra, dec: keys[0].dec, file: 'p.fits' });
    const pointKeys = keys.map((k, i) => ({ ...k, pointSource: i === 0 }));
    const { params: p, report } = applyStart(init, pointKeys, v, () => ({ sources: new Set<number>(), shear: false }));
    expect([p.flux[0], p.hlr[0], p.e1[0], p.e2[0], p.dx[0], p.dy[0]]).toEqual([10, 0.01, 0, 0, 0.02, -0.03]);
    expect(report.sources).toBe(1);
  });

  it('a shear outside the prior (here |g1| ≥ 0.05) starts at the catalog start (0, 0)', () => {
    const { init, keys } = scene();
    const v = emptyStartValues();
    v.g = [0.07, 0];
    v.shearFile = 's.fits';
    const space = new ParamSpace({ g1: { type: 'uniform', low: -0.05, high: 0.05 }, g2: { type: 'uniform', low: -0.05, high: 0.05 } }, init);
    const { params: p, report } = applyStart(init, keys, v, (x) => space.outsideSupport(x));
    expect([p.g1, p.g2]).toEqual([0, 0]);
    expect(report.shear).toBe('catalog');
    expect(report.shearFile).toBeNull();
    expect(report.sources).toBe(0);
  });
});

describe('ParamSpace.outsideSupport', () => {
  it('flags exactly the values inverse() refuses', () => {
    const { init } = scene();
    const space = new ParamSpace({ hlr: { type: 'uniform', low: 0.05, high: 2 }, ellipticityMax: 0.9 }, init);
    const p = allocParams(6);
    p.flux.fill(1);
    p.hlr.fill(0.3);
    expect(space.outsideSupport(p)).toEqual({ sources: new Set(), shear: false });
    p.flux[0] = -1;
    p.hlr[1] = 2;
    p.e1[2] = 0.9;
    p.dx[3] = NaN;
    p.g1 = 1;
    const o = space.outsideSupport(p);
    expect([...o.sources].sort()).toEqual([0, 1, 2, 3]);
    expect(o.shear).toBe(true);
    for (const s of [0, 1, 2, 3]) {
      const q = allocParams(6);
      q.flux.fill(1);
      q.hlr.fill(0.3);
      for (const k of ['flux', 'hlr', 'e1', 'dx'] as const) q[k][s] = p[k][s];
      expect(() => space.inverse(space.pack(q)), `source ${s}`).toThrow(/outside the prior's support/);
    }
  });
});

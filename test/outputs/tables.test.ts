/**
 * Shear and params tables: astropy (independent FITS reader) sees exactly the columns and types
 * of docs/outputs.md with the values written; our reader round-trips them; metadata YAML.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { python, tempDir } from '../fits/helpers.ts';
import { sampleMetadata } from './helpers.ts';
import { FitsFile } from '../../engine/data/fits/file.ts';
import { memorySource } from '../../engine/data/fits/source.ts';
import {
  checkMetadataText,
  checkShearTable,
  metadataYaml,
  paramsTable,
  parseMetadataYaml,
  readShearRow,
  shearTable,
  subtileOutputNames,
  type SubtileShear,
} from '../../engine/outputs/index.ts';

const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'outputs', 'read_table.py');

interface AstropyTable {
  names: string[];
  dtypes: Record<string, string>;
  kinds: Record<string, string>;
  tforms: Record<string, string>;
  tzero: Record<string, number | null>;
  nrows: number;
  values: Record<string, Array<string | boolean>>;
  header: Record<string, string | number | null>;
  hdus: number;
}

/** Reads several tables with one python run (astropy's import dominates the time). */
function astropyAll(items: Array<[Uint8Array, string]>): AstropyTable[] {
  const dir = tempDir('shine-outputs-');
  const args: string[] = [];
  items.forEach(([bytes, ext], i) => {
    const path = join(dir, `t${i}.fits`);
    writeFileSync(path, bytes);
    args.push(path, ext);
  });
  return (JSON.parse(execFileSync(python(), [SCRIPT, ...args], { encoding: 'utf8' })) as { tables: AstropyTable[] }).tables;
}

const PROV = { softwareVersion: '0.1.0-test', created: '2025-03-04T05:06:07.089Z', configHash: 'sha256:0123abcd', configFile: '/data/run/config.yaml' };

const SHEAR: SubtileShear = {
  tileId: 102018211,
  row: 3,
  col: 0,
  ra: 150.123456789012,
  dec: -2.98765432101234,
  g1: 0.0123456,
  g2: -0.0234567,
  g1Err: 0.00312,
  g2Err: 0.00298,
  nSources: 1873,
  method: 'map',
  convergence: -123456.789,
  converged: true,
  g1g2Cov: 1.5e-7,
  g1ErrConditional: 0.0021,
  nQuadrants: 24,
  iterations: 87,
};

// the catalog columns of docs/architecture.md "The SHINE distributed specification", written out independently of the code's column list
const CATALOG = [
  ['TILE_ID', 'int64'],
  ['SUBTILE_ROW', 'int8'],
  ['SUBTILE_COL', 'int8'],
  ['RA', 'float64'],
  ['DEC', 'float64'],
  ['G1', 'float32'],
  ['G2', 'float32'],
  ['G1_ERR', 'float32'],
  ['G2_ERR', 'float32'],
  ['N_SOURCES', 'int32'],
  ['METHOD', 'string'],
  ['CONVERGENCE', 'float32'],
] as const;

const SHEAR_BYTES = shearTable(SHEAR, PROV);
const SHEAR_BIG = shearTable({ ...SHEAR, tileId: 2n ** 62n + 5n, row: 127, col: 0, method: 'nuts', convergence: 1.01 }, PROV);
const src = {
  objectId: ['-1234567890123456789', 42n, 7, '9007199254740993'],
  ra: [10.5, 10.6, 10.7, 10.8],
  dec: [-1.5, -1.6, -1.7, -1.8],
  flux: [1000.5, 2000.25, 3000, 4000],
  hlr: [0.31, 0.42, 0.53, 0.64],
  e1: [0.1, -0.2, 0.3, -0.4],
  e2: [-0.05, 0.06, -0.07, 0.08],
  dx: [0.01, -0.02, 0.03, -0.04],
  dy: [0.001, 0.002, 0.003, 0.004],
  errors: { flux: [10, 20, 30, 40], e1: [0.01, 0.02, 0.03, 0.04] },
  init: { flux: [900, 1900, 2900, 3900] },
  nQuadrants: [4, 3, 2, 1],
  indices: [0, 1, 3], // the core sources
};
const PARAMS_BYTES = paramsTable({ tileId: 102018211, row: 1, col: 2 }, src, PROV);
const PARAMS_EMPTY = paramsTable({ tileId: 5, row: 0, col: 0 }, { ...src, indices: [] }, PROV);
// the core rows 0, 1, 3 in PARAMS and the other modelled source (row 2) in MARGIN
const PARAMS_MARGIN = paramsTable({ tileId: 102018211, row: 1, col: 2 }, src, PROV, { ...src, indices: [2] });

let cached: AstropyTable[] | undefined;
/** astropy's reading of [shear, shear (big id, row 127, nuts), params, params (0 rows), params with MARGIN: its PARAMS, its MARGIN]. */
function astropyTables(): AstropyTable[] {
  cached ??= astropyAll([
    [SHEAR_BYTES, 'SHEAR'],
    [SHEAR_BIG, 'SHEAR'],
    [PARAMS_BYTES, 'PARAMS'],
    [PARAMS_EMPTY, 'PARAMS'],
    [PARAMS_MARGIN, 'PARAMS'],
    [PARAMS_MARGIN, 'MARGIN'],
  ]);
  return cached;
}

describe('shear table', () => {
  it('astropy reads exactly the catalog columns, in order, with their types and values', () => {
    const t = astropyTables()[0];
    expect(t.nrows).toBe(1);
    expect(t.names.slice(0, 12)).toEqual(CATALOG.map((c) => c[0]));
    for (const [name, type] of CATALOG) {
      const dt = t.dtypes[name];
      const kind = t.kinds[name];
      if (type === 'int64') expect(dt, name).toMatch(/^[<>]i8$/);
      else if (type === 'int32') expect(dt, name).toMatch(/^[<>]i4$/);
      else if (type === 'float32') expect(dt, name).toMatch(/^[<>]f4$/);
      else if (type === 'float64') expect(dt, name).toMatch(/^[<>]f8$/);
      else if (type === 'string') expect(['U', 'S']).toContain(kind);
      else if (type === 'int8') {
        // FITS: B with TZERO -128; astropy 5.2 returns float64 with the right values (docs/outputs.md)
        expect(t.tforms[name]).toBe('B');
        expect(t.tzero[name]).toBe(-128);
        expect(['|i1', '<f8', '>f8']).toContain(dt);
      }
    }
    const v = (n: string) => t.values[n][0];
    expect(BigInt(v('TILE_ID') as string)).toBe(102018211n);
    expect(Number(v('SUBTILE_ROW'))).toBe(3);
    expect(Number(v('SUBTILE_COL'))).toBe(0);
    expect(Number(v('RA'))).toBe(SHEAR.ra);
    expect(Number(v('DEC'))).toBe(SHEAR.dec);
    expect(Number(v('G1'))).toBe(Math.fround(SHEAR.g1));
    expect(Number(v('G2'))).toBe(Math.fround(SHEAR.g2));
    expect(Number(v('G1_ERR'))).toBe(Math.fround(SHEAR.g1Err));
    expect(Number(v('G2_ERR'))).toBe(Math.fround(SHEAR.g2Err));
    expect(Number(v('N_SOURCES'))).toBe(1873);
    expect(v('METHOD')).toBe('map');
    expect(Number(v('CONVERGENCE'))).toBe(Math.fround(SHEAR.convergence));
    // extras after the catalog columns
    expect(Number(v('G1G2_COV'))).toBe(Math.fround(1.5e-7));
    expect(Number.isNaN(Number(v('G2_ERR_COND')))).toBe(true); // not given
    expect(Number(v('N_QUADRANTS'))).toBe(24);
    expect(Number(v('N_SOURCES_EXT'))).toBe(-1); // not given
    expect(v('CONVERGED')).toBe(true);
    // provenance from the caller (no clock inside)
    expect(t.header.DATE).toBe('2025-03-04T05:06:07.089');
    expect(t.header.SHINEVER).toBe('0.1.0-test');
    expect(t.header.CFGHASH).toBe('sha256:0123abcd');
    expect(t.header.TILEID).toBe(102018211);
    expect(t.hdus).toBe(2);
  });

  it('our reader round-trips it; identical inputs give identical bytes', async () => {
    const f = await FitsFile.open(memorySource(SHEAR_BYTES));
    const t = await f.readTable('SHEAR');
    expect(checkShearTable(t, { tileId: 102018211, row: 3, col: 0 })).toEqual([]);
    expect(checkShearTable(t, { tileId: 102018211, row: 3, col: 1 })[0]).toMatch(/expected tile 102018211 sub-tile \(3, 1\)/);
    const r = readShearRow(t);
    expect(r.tileId).toBe(102018211);
    expect(r.row).toBe(3);
    expect(r.g1).toBe(Math.fround(SHEAR.g1));
    expect(r.ra).toBe(SHEAR.ra);
    expect(r.method).toBe('map');
    expect(r.converged).toBe(true);
    expect(r.nQuadrants).toBe(24);
    expect(r.nSourcesExtended).toBeUndefined();
    expect(shearTable({ ...SHEAR }, { ...PROV })).toEqual(SHEAR_BYTES);
  });

  it('int8 limits, NUTS, big tile ids', () => {
    const t = astropyTables()[1];
    expect(Number(t.values.SUBTILE_ROW[0])).toBe(127);
    expect(BigInt(t.values.TILE_ID[0] as string)).toBe(2n ** 62n + 5n);
    expect(t.values.METHOD[0]).toBe('nuts');
  });

  it('rejects bad input with the field named', () => {
    expect(() => shearTable({ ...SHEAR, method: 'mcmc' as 'map' }, PROV)).toThrow(/method 'mcmc'/);
    expect(() => shearTable({ ...SHEAR, row: 128 }, PROV)).toThrow(/sub_tile_row 128/);
    expect(() => shearTable({ ...SHEAR, nSources: -1 }, PROV)).toThrow(/N_SOURCES/);
    expect(() => subtileOutputNames(-1, 0, 0)).toThrow(/tile id/);
  });
});

describe('params table', () => {
  it('astropy reads the core rows with their values, NaN where not given', () => {
    const t = astropyTables()[2];
    expect(t.nrows).toBe(3);
    for (const n of ['OBJECT_ID', 'RA', 'DEC', 'FLUX', 'HLR', 'E1', 'E2', 'DX', 'DY', 'FLUX_ERR', 'E1_ERR', 'INIT_FLUX', 'INIT_HLR', 'TILE_ID', 'SUBTILE_ROW', 'SUBTILE_COL', 'N_QUADRANTS']) {
      expect(t.names, n).toContain(n);
    }
    expect(t.dtypes.OBJECT_ID).toMatch(/i8$/);
    expect(t.values.OBJECT_ID.map((s) => BigInt(s as string))).toEqual([-1234567890123456789n, 42n, 9007199254740993n]);
    expect(t.values.RA.map(Number)).toEqual([10.5, 10.6, 10.8]);
    expect(t.values.FLUX.map(Number)).toEqual([1000.5, 2000.25, 4000]);
    expect(t.values.HLR.map(Number)).toEqual([0.31, 0.42, 0.64]);
    expect(t.values.E1_ERR.map(Number)).toEqual([0.01, 0.02, 0.04].map(Math.fround));
    expect(t.values.HLR_ERR.map(Number).every(Number.isNaN)).toBe(true);
    expect(t.values.INIT_FLUX.map(Number)).toEqual([900, 1900, 3900]);
    expect(t.values.INIT_E1.map(Number).every(Number.isNaN)).toBe(true);
    expect(t.values.SUBTILE_ROW.map(Number)).toEqual([1, 1, 1]);
    expect(t.values.SUBTILE_COL.map(Number)).toEqual([2, 2, 2]);
    expect(t.values.N_QUADRANTS.map(Number)).toEqual([4, 3, 1]);
  });

  it('zero core sources: an empty table astropy reads', () => {
    const t = astropyTables()[3];
    expect(t.nrows).toBe(0);
    expect(t.names).toContain('FLUX');
  });

  it('the MARGIN table (the other modelled sources) follows PARAMS with the same columns; PARAMS unchanged', () => {
    const [core, margin] = astropyTables().slice(4);
    expect(core.hdus).toBe(3);
    expect(core.nrows).toBe(3);
    expect(core.values.FLUX.map(Number)).toEqual([1000.5, 2000.25, 4000]);
    expect(margin.names).toEqual(core.names);
    expect(margin.nrows).toBe(1);
    expect(margin.values.OBJECT_ID).toEqual(['7']);
    expect(margin.values.FLUX.map(Number)).toEqual([3000]);
    expect(margin.values.E1.map(Number)).toEqual([0.3]);
    expect(margin.values.DX.map(Number)).toEqual([0.03]);
    expect(margin.values.E1_ERR.map(Number)).toEqual([Math.fround(0.03)]);
    expect(margin.values.SUBTILE_COL.map(Number)).toEqual([2]);
  });

  it('rejects mismatched lengths and non-integer ids', () => {
    expect(() => paramsTable({ tileId: 1, row: 0, col: 0 }, { ...src, hlr: [1, 2] }, PROV)).toThrow(/hlr has 2 entries/);
    expect(() => paramsTable({ tileId: 1, row: 0, col: 0 }, { ...src, objectId: ['a', 'b', 'c', 'd'] }, PROV)).toThrow(/OBJECT_ID of row 0/);
    expect(() => paramsTable({ tileId: 1, row: 0, col: 0 }, { ...src, indices: [4] }, PROV)).toThrow(/row index 4/);
  });
});

describe('metadata YAML', () => {
  it('round-trips (NaN included) and names the sub-tile', () => {
    const m = sampleMetadata(77, 2, 3);
    const text = metadataYaml(m);
    const back = parseMetadataYaml(text);
    expect(back.tile_id).toBe(77);
    expect(back.shear.g1).toBe(0.01);
    expect(Number.isNaN(back.shear.g2)).toBe(true);
    expect(back.shear.covariance).toEqual([[9e-6, 1e-7], [1e-7, 1.6e-5]]);
    expect(back.inputs.quadrants[0].sci_hdu).toBe('3-4.F.SCI');
    expect(back.products.metadata).toBe('metadata_77_2_3.yaml');
    expect(checkMetadataText(text, { tileId: 77, row: 2, col: 3 })).toEqual([]);
    expect(checkMetadataText(text, { tileId: 77, row: 2, col: 2 })[0]).toMatch(/names tile 77 sub-tile \(2, 3\)/);
  });

  it('reports the invalid field', () => {
    const text = metadataYaml(sampleMetadata(77, 2, 3)).replace('converged: true', 'converged: maybe');
    expect(() => parseMetadataYaml(text, 'm.yaml')).toThrow(/file m\.yaml, field inference\.converged/);
    expect(checkMetadataText('a: [', undefined)[0]).toMatch(/invalid YAML/);
  });
});

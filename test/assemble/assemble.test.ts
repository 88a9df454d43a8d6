/**
 * `shine assemble` (Stage 3): sub-tile outputs written with engine/outputs for a fake 2-tile 2×2
 * grid → the unified catalog and params_{tile}.fits, read back with astropy (the oracle); missing,
 * truncated and duplicated sub-tile outputs.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, truncateSync, unlinkSync, writeFileSync, copyFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { python, tempDir } from '../fits/helpers.ts';
import { diagnosticsPng, metadataYaml, paramsTable, shearTable, type SubtileShear } from '../../engine/outputs/index.ts';
import { writeSubtileOutputs } from '../../platform/node/outputs.ts';
import { sampleMetadata } from '../outputs/helpers.ts';
import { runCli } from '../helpers/cli.ts';
import assemble from '../../cli/commands/assemble.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SCRIPT = join(ROOT, 'test', 'fixtures', 'assemble', 'read_catalog.py');
const PROV = { softwareVersion: '0.1.0', created: '2025-01-01T00:00:00Z' };
const TILES = [102018211, 102018212];
const GRID = 2;

/** Independent inputs per sub-tile (the oracle for the catalog values). */
function shearOf(tileId: number, row: number, col: number): SubtileShear {
  const k = (tileId - 102018211) * 4 + row * 2 + col;
  return {
    tileId, row, col,
    ra: 150.1 + 0.123456789012 * k, dec: -2.5 + 0.0987654321 * k,
    g1: 0.01 * (k - 3) + 1e-9, g2: -0.0137 * k, g1Err: 0.001 + 1e-4 * k, g2Err: 0.002 + 1e-4 * k,
    nSources: nSrc(k), method: k % 3 === 0 ? 'map' : k % 3 === 1 ? 'vi' : 'nuts', convergence: -1234.5 - k, converged: true,
  };
}
/** Sub-tile k has k % 3 core sources (some are empty). */
const nSrc = (k: number) => k % 3;
/** OBJECT_IDs beyond 2^53: exercise full int64 precision. */
const objectIds = (k: number) => Array.from({ length: nSrc(k) }, (_, j) => (2n ** 60n + BigInt(k * 10 + j)).toString());

async function writeSubtile(dir: string, tileId: number, row: number, col: number, ids?: string[], nu?: (j: number) => number): Promise<void> {
  const s = shearOf(tileId, row, col);
  const k = (tileId - 102018211) * 4 + row * 2 + col;
  const oid = ids ?? objectIds(k);
  const n = oid.length;
  const seq = (f: (j: number) => number) => Array.from({ length: n }, (_, j) => f(j));
  const obs = new Float32Array(64).map((_, i) => i % 5);
  await writeSubtileOutputs(dir, tileId, row, col, {
    shear: shearTable({ ...s, nSources: n }, PROV),
    params: paramsTable(
      { tileId, row, col },
      {
        objectId: oid, ra: seq((j) => s.ra + j * 1e-4), dec: seq((j) => s.dec), flux: seq((j) => 100 * k + j), hlr: seq(() => 0.3), e1: seq(() => 0.1), e2: seq(() => -0.1), dx: seq(() => 0), dy: seq(() => 0),
        ...(nu ? { profile: { nu: { value: seq(nu), err: seq((j) => 0.01 * (j + 1)), init: seq(() => 0.5) } } } : {}),
      },
      PROV,
    ),
    diagnostics: diagnosticsPng({ title: ['T'], quadrants: [{ name: 'Q', width: 8, height: 8, observed: obs, model: obs, rms: new Float32Array(64).fill(1) }] }),
    metadata: metadataYaml(sampleMetadata(tileId, row, col)),
  });
}

async function survey(base: string): Promise<{ cfg: string; out: string }> {
  const out = join(base, 'out');
  for (const t of TILES) for (let r = 0; r < GRID; r++) for (let c = 0; c < GRID; c++) await writeSubtile(out, t, r, c);
  const cfg = join(base, 'config.yaml');
  writeFileSync(cfg, `distributed: {output_dir: out, sub_tile_grid: [${GRID}, ${GRID}]}\n`);
  return { cfg, out };
}

/** Runs the command in-process; returns the exit code and what it printed. */
async function run(args: string[]): Promise<{ code: number; text: string }> {
  const r = await runCli(assemble, args, {});
  return { code: r.code, text: r.out };
}

interface Table {
  name: string;
  nrows: number;
  names: string[];
  dtypes: Record<string, string>;
  tforms: Record<string, string>;
  tzero: Record<string, number>;
  values: Record<string, Array<number | string | boolean>>;
  header: Record<string, number | string>;
}
function astropy(catalog: string, params: string[] = []): { catalog: { hdus: string[]; primary: Record<string, number>; tables: Table[] }; params: Table[] } {
  return JSON.parse(execFileSync(python(), [SCRIPT, catalog, ...params], { encoding: 'utf8' }));
}

const CATALOG: Array<[string, string]> = [
  ['TILE_ID', 'int64'], ['SUBTILE_ROW', 'int8'], ['SUBTILE_COL', 'int8'], ['RA', 'float64'], ['DEC', 'float64'],
  ['G1', 'float32'], ['G2', 'float32'], ['G1_ERR', 'float32'], ['G2_ERR', 'float32'], ['N_SOURCES', 'int32'], ['METHOD', 'string'], ['CONVERGENCE', 'float32'],
];

let base: string;
let cfg: string;
let outDir: string;
beforeAll(async () => {
  base = tempDir('shine-assemble-');
  ({ cfg, out: outDir } = await survey(base));
});

describe('shine assemble', () => {
  afterEach(() => vi.restoreAllMocks());

  it('builds the catalog with exactly the §8.2 columns and types; values equal the inputs; params per tile', async () => {
    const cat = join(base, 'res', 'catalog.fits');
    const r = await run(['--config', cfg, '--tiles', TILES.join(','), '--out', cat]);
    expect(r.code, r.text).toBe(0);
    expect(r.text).toMatch(/8 expected: 8 found, 0 missing or invalid, 3 empty/);
    const params = TILES.map((t) => join(base, 'res', `params_${t}.fits`));
    const a = astropy(cat, params);
    expect(a.catalog.hdus).toEqual(['PRIMARY', 'SHEAR_CATALOG', 'MISSING']);
    const t = a.catalog.tables[0];
    expect(t.names).toEqual(CATALOG.map((c) => c[0]));
    for (const [name, type] of CATALOG) {
      const dt = t.dtypes[name];
      if (type === 'int64') expect(dt, name).toMatch(/^[<>]i8$/);
      else if (type === 'int32') expect(dt, name).toMatch(/^[<>]i4$/);
      else if (type === 'float32') expect(dt, name).toMatch(/^[<>]f4$/);
      else if (type === 'float64') expect(dt, name).toMatch(/^[<>]f8$/);
      else if (type === 'string') expect(dt, name).toMatch(/^[<>|][US]\d+$/);
      else {
        // int8: B with TZERO -128; astropy 5.2 gives float64 with the right values
        expect(t.tforms[name]).toBe('B');
        expect(t.tzero[name]).toBe(-128);
        expect(['|i1', '<f8', '>f8']).toContain(dt);
      }
    }
    expect(t.tforms.METHOD).toBe('4A');
    expect(t.nrows).toBe(8);
    let i = 0;
    for (const tile of TILES) {
      for (let row = 0; row < GRID; row++) {
        for (let col = 0; col < GRID; col++, i++) {
          const s = shearOf(tile, row, col);
          const v = (n: string) => t.values[n][i];
          expect(Number(v('TILE_ID'))).toBe(tile);
          expect(Number(v('SUBTILE_ROW'))).toBe(row);
          expect(Number(v('SUBTILE_COL'))).toBe(col);
          expect(v('RA')).toBe(s.ra);
          expect(v('DEC')).toBe(s.dec);
          expect(v('G1')).toBe(Math.fround(s.g1));
          expect(v('G2')).toBe(Math.fround(s.g2));
          expect(v('G1_ERR')).toBe(Math.fround(s.g1Err));
          expect(v('G2_ERR')).toBe(Math.fround(s.g2Err));
          expect(v('N_SOURCES')).toBe(s.nSources);
          expect(v('METHOD')).toBe(s.method);
          expect(v('CONVERGENCE')).toBe(Math.fround(s.convergence));
        }
      }
    }
    expect(a.catalog.primary).toMatchObject({ NFOUND: 8, NMISSING: 0, NEMPTY: 3 });
    expect(a.catalog.tables[1].nrows).toBe(0);
    // (e) params: the sub-tiles' rows concatenated, OBJECT_IDs unique and equal to the inputs
    a.params.forEach((p, ti) => {
      const ks = [0, 1, 2, 3].map((x) => ti * 4 + x);
      const want = ks.flatMap((k) => objectIds(k));
      expect(p.values.OBJECT_ID.map(String)).toEqual(want);
      expect(new Set(p.values.OBJECT_ID).size).toBe(want.length);
      expect(p.dtypes.OBJECT_ID).toMatch(/i8$/);
      expect(p.values.FLUX).toEqual(ks.flatMap((k) => Array.from({ length: nSrc(k) }, (_, j) => 100 * k + j)));
      expect(p.values.TILE_ID.every((x) => Number(x) === TILES[ti])).toBe(true);
      expect(p.values.SUBTILE_ROW.map(Number)).toEqual(ks.flatMap((k) => Array(nSrc(k)).fill(Math.floor((k % 4) / 2))));
      expect(p.header).toMatchObject({ NSOURCE: want.length, NSUBTILE: 4 });
    });
  });

  it('a missing sub-tile fails naming it; --allow-missing leaves it out and lists it', async () => {
    const b = tempDir('shine-assemble-');
    const { cfg: c, out } = await survey(b);
    for (const f of ['shear', 'params', 'diagnostics', 'metadata']) unlinkSync(join(out, `${f}_102018212_1_0.${f === 'diagnostics' ? 'png' : f === 'metadata' ? 'yaml' : 'fits'}`));
    // an unfinished one: no metadata (the completion marker)
    unlinkSync(join(out, 'metadata_102018211_0_1.yaml'));
    const cat = join(b, 'catalog.fits');
    const r = await run(['--config', c, '--tiles', TILES.join(','), '--out', cat]);
    expect(r.code).toBe(1);
    expect(r.text).toContain(join(out, 'shear_102018212_1_0.fits'));
    expect(r.text).toContain(join(out, 'metadata_102018211_0_1.yaml'));
    expect(existsSync(cat)).toBe(false);
    const r2 = await run(['--config', c, '--tiles', TILES.join(','), '--out', cat, '--allow-missing']);
    expect(r2.code, r2.text).toBe(0);
    expect(r2.text).toMatch(/6 found, 2 missing/);
    expect(r2.text).toContain('shear_102018212_1_0.fits');
    const a = astropy(cat);
    const t = a.catalog.tables[0];
    expect(t.nrows).toBe(6);
    const keys = t.values.TILE_ID.map((x, i) => `${x}_${t.values.SUBTILE_ROW[i]}_${t.values.SUBTILE_COL[i]}`);
    expect(keys).not.toContain('102018212_1_0');
    expect(keys).not.toContain('102018211_0_1');
    const m = a.catalog.tables[1];
    expect(m.name).toBe('MISSING');
    expect(m.nrows).toBe(2);
    expect(m.values.FILE).toEqual([join(out, 'metadata_102018211_0_1.yaml'), join(out, 'shear_102018212_1_0.fits')]);
    expect(a.catalog.primary.NMISSING).toBe(2);
  });

  it('a truncated shear file is reported by name', async () => {
    const b = tempDir('shine-assemble-');
    const { cfg: c, out } = await survey(b);
    const f = join(out, 'shear_102018211_1_1.fits');
    truncateSync(f, 2880 * 2);
    const r = await run(['--config', c, '--tiles', '102018211', '--out', join(b, 'cat.fits')]);
    expect(r.code).toBe(1);
    expect(r.text).toMatch(new RegExp(`invalid: tile 102018211 sub-tile \\(1, 1\\): ${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: .+`));
  });

  it('duplicates are errors naming both files', async () => {
    const b = tempDir('shine-assemble-');
    const { cfg: c, out } = await survey(b);
    const other = join(b, 'out2');
    mkdirSync(other);
    for (const f of ['shear_102018211_0_0.fits', 'params_102018211_0_0.fits', 'metadata_102018211_0_0.yaml']) copyFileSync(join(out, f), join(other, f));
    const r = await run(['--config', c, '--tiles', TILES.join(','), '--output-dir', `${out},${other}`, '--out', join(b, 'cat.fits'), '--allow-missing']);
    expect(r.code).toBe(1);
    expect(r.text).toContain(join(out, 'shear_102018211_0_0.fits'));
    expect(r.text).toContain(join(other, 'shear_102018211_0_0.fits'));
    // a tile listed twice
    const r2 = await run(['--config', c, '--tiles', '102018211,102018211', '--out', join(b, 'cat.fits')]);
    expect(r2.code).toBe(1);
    expect(r2.text).toMatch(/listed twice/);
    // the same OBJECT_ID in two sub-tiles' cores
    await writeSubtile(out, 102018212, 1, 1, [objectIds(5)[0]]);
    const r3 = await run(['--config', c, '--tiles', '102018212', '--out', join(b, 'cat.fits')]);
    expect(r3.code).toBe(1);
    expect(r3.text).toContain('params_102018212_0_1.fits');
    expect(r3.text).toContain('params_102018212_1_1.fits');
    expect(existsSync(join(b, 'cat.fits'))).toBe(false);
  });

  it('carries the profile columns (NU, NU_ERR, INIT_NU) into params_{tile}.fits; refuses a tile with mixed profiles', async () => {
    const b = tempDir('shine-assemble-profile-');
    const out = join(b, 'out');
    const tile = 102018211;
    const ids = (r: number, c: number) => [0, 1, 2].map((j) => (2n ** 60n + BigInt(1000 + 100 * r + 10 * c + j)).toString());
    const nuOf = (r: number, c: number) => (j: number) => 0.1 * (r * GRID + c) + 0.01 * j - 0.3;
    for (let r = 0; r < GRID; r++) for (let c = 0; c < GRID; c++) await writeSubtile(out, tile, r, c, ids(r, c), nuOf(r, c));
    const c = join(b, 'config.yaml');
    writeFileSync(c, `distributed: {output_dir: out, sub_tile_grid: [${GRID}, ${GRID}]}\n`);
    const r = await run(['--config', c, '--tiles', String(tile), '--out', join(b, 'res', 'cat.fits')]);
    expect(r.code, r.text).toBe(0);
    const p = astropy(join(b, 'res', 'cat.fits'), [join(b, 'res', `params_${tile}.fits`)]).params[0];
    expect(p.names.slice(-3)).toEqual(['NU', 'NU_ERR', 'INIT_NU']);
    // rows in sub-tile order (row-major), each sub-tile's values as written (float32 in the file)
    const want: number[] = [];
    for (let rr = 0; rr < GRID; rr++) for (let cc = 0; cc < GRID; cc++) for (let j = 0; j < 3; j++) want.push(nuOf(rr, cc)(j));
    expect(p.nrows).toBe(want.length);
    (p.values.NU as number[]).forEach((v, i) => expect(Math.abs(v - want[i])).toBeLessThan(1e-6));
    expect(p.values.INIT_NU).toEqual(want.map(() => 0.5));
    // one sub-tile fitted without the free ν: refused, naming both files
    await writeSubtile(out, tile, 1, 1, ids(1, 1));
    const bad = await run(['--config', c, '--tiles', String(tile), '--out', join(b, 'res2', 'cat.fits')]);
    expect(bad.code).toBe(1);
    expect(bad.text).toMatch(/different profile columns/);
    expect(bad.text).toContain(`params_${tile}_1_1.fits`);
    expect(existsSync(join(b, 'res2', 'cat.fits'))).toBe(false);
  });

  it('the CLI dispatcher runs it (--tiles-file, --params-dir)', () => {
    const tf = join(base, 'tiles.txt');
    writeFileSync(tf, '# tiles\n102018211\n102018212 # second\n');
    const cat = join(base, 'cli', 'cat.fits');
    const pd = join(base, 'cli', 'params');
    const out = execFileSync(process.execPath, [join(ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs'), join(ROOT, 'cli', 'shine.ts'), 'assemble', '--config', cfg, '--tiles-file', tf, '--out', cat, '--params-dir', pd], {
      encoding: 'utf8',
    });
    expect(out).toMatch(/8 found/);
    expect(readFileSync(cat).length % 2880).toBe(0);
    expect(existsSync(join(pd, 'params_102018212.fits'))).toBe(true);
  });
});

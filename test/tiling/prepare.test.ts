/**
 * `shine prepare` end to end on the `ci` simulation (simulated in a temp dir), the manifest round
 * trip, and the user-facing failures (unknown tile, missing file, bad manifest).
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { mkdtempSync, readFileSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { simulate } from '../../engine/sim/simulate.ts';
import { nodeSimOutput } from '../../cli/commands/simulate.ts';
import prepareCommand from '../../cli/commands/prepare.ts';
import { commandExitCode } from '../../cli/command.ts';
import { openFits } from '../../platform/node/files.ts';
import { manifestFileName, manifestToYaml, parseManifest, type Manifest } from '../../engine/tiling/manifest.ts';
import { tangentPlane } from '../../engine/data/wcs/sphere.ts';

let dir = '';
let out = '';
const TILE = 102018211;

async function runPrepare(args: string[]): Promise<{ code: number; err: string; log: string }> {
  const errs: string[] = [];
  const logs: string[] = [];
  const e = vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void errs.push(a.join(' ')));
  const l = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void logs.push(a.join(' ')));
  try {
    const code = await commandExitCode(() => prepareCommand.run(args));
    return { code, err: errs.join('\n'), log: logs.join('\n') };
  } finally {
    e.mockRestore();
    l.mockRestore();
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'shine-prepare-'));
  await simulate(nodeSimOutput(dir), { preset: 'ci', seed: 1 });
  out = join(dir, 'manifests');
}, 600_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('shine prepare on the ci simulation', () => {
  let manifests: Manifest[] = [];

  it('writes one valid manifest per sub-tile and an index, atomically', async () => {
    const r = await runPrepare(['--config', join(dir, 'config.yaml'), '--tile-id', String(TILE), '--out', out]);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/prepare: sub-tile \(1, 1\): \d+ sources \(\d+ core\), \d+ quadrants/);
    expect(r.log).toMatch(/16 manifest\(s\)/);
    const files = readdirSync(out).sort();
    expect(files.filter((f) => f.endsWith('.tmp') || f.startsWith('.'))).toEqual([]);
    for (let row = 0; row < 4; row++) {
      for (let col = 0; col < 4; col++) {
        const f = join(out, manifestFileName(TILE, row, col));
        const m = parseManifest(readFileSync(f, 'utf8'), f);
        expect([m.tile_id, m.sub_tile_row, m.sub_tile_col]).toEqual([TILE, row, col]);
        manifests.push(m);
      }
    }
    const index = parseYaml(readFileSync(join(out, `prepare_${TILE}.yaml`), 'utf8'));
    expect(index.sub_tiles).toHaveLength(16);
  });

  it('manifest round trip: YAML text → manifest → YAML text is lossless', () => {
    for (const m of manifests) {
      const again = parseManifest(manifestToYaml(m), 'round-trip');
      expect(again).toEqual(m);
    }
  });

  it('core sources: each selected catalog source in the tile core is core in exactly one manifest, in the sub-tile the simulator put it', async () => {
    const coreOwner = new Map<string, string>();
    for (const m of manifests) {
      m.sources.object_id.forEach((id, k) => {
        if (!m.sources.core[k]) return;
        expect(coreOwner.has(id), `object ${id} is core twice`).toBe(false);
        coreOwner.set(id, `${m.sub_tile_row},${m.sub_tile_col}`);
      });
    }
    // the simulator's truth: true positions and the sub-tile it drew each object's shear from
    const f = await openFits(join(dir, 'truth', 'sources.fits'));
    const t = await f.readTable(1);
    await f.close();
    const ids = t.column('OBJECT_ID').data as BigInt64Array;
    const ra = t.column('RA').data as Float64Array;
    const dec = t.column('DEC').data as Float64Array;
    const rows = t.column('SUBTILE_ROW').data as Int32Array;
    const cols = t.column('SUBTILE_COL').data as Int32Array;
    const tp = tangentPlane(57.9990741, -51.5);
    let checked = 0;
    for (let i = 0; i < t.nRows; i++) {
      const id = ids[i].toString();
      if (!coreOwner.has(id)) continue;
      const [u, v] = tp.toUV(ra[i], dec[i]);
      // skip objects within 1″ of a sub-tile boundary (catalog positions are measured, with noise)
      const nearEdge = [-u, v].some((x) => Math.min(...[-120, -60, 0, 60, 120].map((e) => Math.abs(x - e))) < 1);
      if (nearEdge) continue;
      expect(coreOwner.get(id)).toBe(`${rows[i]},${cols[i]}`);
      checked++;
    }
    expect(checked).toBeGreaterThan(30);
    // every manifest source lies in its extended box (independent plane projection)
    for (const m of manifests) {
      m.sources.ra.forEach((a, k) => {
        const [u, v] = tp.toUV(a, m.sources.dec[k]);
        const xi = -u;
        const inExt = xi >= m.sub_tile.extended.xi[0] && xi < m.sub_tile.extended.xi[1] && v >= m.sub_tile.extended.eta[0] && v < m.sub_tile.extended.eta[1];
        const inCore = xi >= m.sub_tile.core.xi[0] && xi < m.sub_tile.core.xi[1] && v >= m.sub_tile.core.eta[0] && v < m.sub_tile.core.eta[1];
        expect(inExt).toBe(true);
        expect(m.sources.core[k]).toBe(inCore);
      });
    }
  });

  it('quadrants: the imaged sub-tile (1, 1) gets every simulated quadrant, far sub-tiles none; HDUs and companions recorded', () => {
    const m11 = manifests.find((m) => m.sub_tile_row === 1 && m.sub_tile_col === 1)!;
    // the simulator crops every quadrant to sub-tile (1, 1)'s extended area (+4″): all overlap it
    const det = readdirSync(join(dir, 'VIS')).filter((f) => f.includes('SWL-DET'));
    expect(det).toHaveLength(4);
    expect(m11.n_quadrants).toBeGreaterThanOrEqual(4);
    expect(new Set(m11.quadrants.map((q) => q.exposure)).size).toBe(4);
    for (const m of manifests) {
      if (m.sub_tile_row === 3 || m.sub_tile_col === 3) expect(m.n_quadrants).toBe(0);
    }
    for (const q of m11.quadrants) {
      expect(q.id).toBe(`${q.quadrant}@${q.exposure}`);
      expect(q.id).toMatch(/^\d-\d\.[EFGH]@exp\d$/);
      expect([q.sci_hdu, q.rms_hdu, q.flg_hdu]).toEqual([`${q.quadrant}.SCI`, `${q.quadrant}.RMS`, `${q.quadrant}.FLG`]);
      expect(q.bkg_file).toMatch(/SWL-BKG-002701-0\d/);
      expect(q.psf_file).toMatch(/SWL-PSF-002701-0\d/);
      expect(q.bkg_hdu).toBe(q.quadrant);
      // the companions belong to the same dither as the DET file
      const d = /SWL-DET-002701-(\d\d)/.exec(q.file)![1];
      expect(q.bkg_file).toContain(`SWL-BKG-002701-${d}`);
      expect(q.psf_file).toContain(`SWL-PSF-002701-${d}`);
    }
    // rotated (CCD columns 4–6) and unrotated CCDs both contribute (the ci preset straddles them)
    expect(m11.quadrants.some((q) => Number(q.quadrant[2]) >= 4)).toBe(true);
    expect(m11.quadrants.some((q) => Number(q.quadrant[2]) <= 3)).toBe(true);
  });

  it('a second run reads the DET header scans from the cache and writes the same manifests; a touched file is rescanned', async () => {
    const out2 = join(dir, 'manifests2');
    const r = await runPrepare(['--config', join(dir, 'config.yaml'), '--out', out2]);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/4 exposure file\(s\), \d+ quadrants \(4 file scan\(s\) from the cache\)/);
    for (const f of readdirSync(out).filter((x) => x.startsWith('manifest_'))) {
      const a = readFileSync(join(out, f), 'utf8').replace(/^created: .*$/m, '');
      const b = readFileSync(join(out2, f), 'utf8').replace(/^created: .*$/m, '');
      expect(b).toBe(a);
    }
    const det = join(dir, 'VIS', readdirSync(join(dir, 'VIS')).find((f) => f.includes('SWL-DET-002701-01'))!);
    utimesSync(det, new Date(), new Date(Date.now() + 5000));
    const r2 = await runPrepare(['--config', join(dir, 'config.yaml'), '--out', out2]);
    expect(r2.err).toMatch(/\(3 file scan\(s\) from the cache\)/);
  });

  it('an unknown tile id, a missing file and a bad config fail with a clear message', async () => {
    const r1 = await runPrepare(['--config', join(dir, 'config.yaml'), '--tile-id', '999', '--out', join(dir, 'x')]);
    expect(r1.code).toBe(1);
    expect(r1.err).toMatch(/tiles\.fits.*tile 999 is not in the tile index \(1 tile: 102018211\)/);

    const cfg = readFileSync(join(dir, 'config.yaml'), 'utf8').replace(/VIS\/EUC_VIS_SWL-DET-002701-02/, 'VIS/MISSING-DET-002701-02');
    writeFileSync(join(dir, 'missing.yaml'), cfg);
    const r2 = await runPrepare(['--config', join(dir, 'missing.yaml'), '--out', join(dir, 'y')]);
    expect(r2.code).toBe(1);
    expect(r2.err).toMatch(/MISSING-DET-002701-02.*cannot open: no such file/);

    writeFileSync(join(dir, 'bad.yaml'), readFileSync(join(dir, 'config.yaml'), 'utf8').replace('margin_arcmin: 0.2', 'margin_arcmin: 0.05'));
    const r3 = await runPrepare(['--config', join(dir, 'bad.yaml')]);
    expect(r3.code).toBe(1);
    expect(r3.err).toMatch(/bad\.yaml: tile\.margin_arcmin: expected number ≥ 0\.10666\d* arcmin/);

    const r4 = await runPrepare(['--tile-id', '1']);
    expect(r4.code).toBe(1);
    expect(r4.err).toMatch(/--config is required/);
  });

  it('no source surviving the selection: a documented empty result (manifests with 0 sources), not a crash', async () => {
    writeFileSync(join(dir, 'nosrc.yaml'), readFileSync(join(dir, 'config.yaml'), 'utf8').replace('snr_min: 10', 'snr_min: 1.0e+12'));
    const o = join(dir, 'nosrc');
    const r = await runPrepare(['--config', join(dir, 'nosrc.yaml'), '--out', o, '--sub-tile', '1,1']);
    expect(r.code, r.err).toBe(0);
    const m = parseManifest(readFileSync(join(o, manifestFileName(TILE, 1, 1)), 'utf8'), 'm');
    expect([m.n_sources_extended, m.n_sources_core]).toEqual([0, 0]);
    expect(m.catalogs[0].n_selected).toBe(0);
    expect(m.n_quadrants).toBeGreaterThan(0);
    expect(readdirSync(o).filter((f) => f.startsWith('manifest_'))).toEqual([manifestFileName(TILE, 1, 1)]);
    const bad = await runPrepare(['--config', join(dir, 'config.yaml'), '--out', o, '--sub-tile', '4,0']);
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/sub-tile \(4, 0\) is outside the 4 × 4 grid/);
  });

  it('a bad manifest is rejected naming the file and the field', () => {
    const f = join(out, manifestFileName(TILE, 1, 1));
    const text = readFileSync(f, 'utf8');
    expect(() => parseManifest(text.replace(/n_quadrants: \d+/, 'n_quadrants: 99'), f)).toThrow(/manifest_102018211_1_1\.yaml: n_quadrants: is 99, the quadrant list has \d+/);
    expect(() => parseManifest(text.replace(/\n *sci_hdu: .*/, ''), f)).toThrow(/manifest_102018211_1_1\.yaml: quadrants\.0\.sci_hdu: /);
    expect(() => parseManifest(text.replace(/^format: .*$/m, 'format: other'), f)).toThrow(/manifest_102018211_1_1\.yaml: format: /);
    expect(() => parseManifest(text + 'extra_field: 1\n', f)).toThrow(/unknown field\(s\) extra_field/);
    expect(() => parseManifest('a: [', f)).toThrow(/manifest_102018211_1_1\.yaml: YAML syntax error/);
  });
});

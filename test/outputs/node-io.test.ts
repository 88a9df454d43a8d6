/**
 * platform/node/outputs.ts: the four products written atomically (metadata last), and the
 * completeness check used to skip completed sub-tiles and to resume after a crash.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, truncateSync, unlinkSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decode } from 'fast-png';
import { tempDir } from '../fits/helpers.ts';
import { diagnosticsPng, metadataYaml, paramsTable, shearTable, type SubtileShear } from '../../engine/outputs/index.ts';
import { subtileOutputNames, subtileOutputsComplete, writeSubtileOutputs, type SubtileProducts } from '../../platform/node/outputs.ts';
import { sampleMetadata } from './helpers.ts';

const PROV = { softwareVersion: '0.1.0', created: '2025-01-01T00:00:00Z' };

function products(tileId: number, row: number, col: number, g1 = 0.01): SubtileProducts {
  const shear: SubtileShear = { tileId, row, col, ra: 10, dec: 20, g1, g2: 0.02, g1Err: 0.001, g2Err: 0.002, nSources: 2, method: 'map', convergence: 3, converged: true };
  const n = 16 * 16;
  const obs = new Float32Array(n).map((_, i) => i % 7);
  return {
    shear: shearTable(shear, PROV),
    params: paramsTable({ tileId, row, col }, { objectId: [1, 2], ra: [1, 2], dec: [3, 4], flux: [1, 2], hlr: [1, 2], e1: [0, 0], e2: [0, 0], dx: [0, 0], dy: [0, 0] }, PROV),
    diagnostics: diagnosticsPng({ title: ['T'], quadrants: [{ name: 'Q', width: 16, height: 16, observed: obs, model: obs, rms: new Float32Array(n).fill(1) }] }),
    metadata: metadataYaml(sampleMetadata(tileId, row, col)),
  };
}

const leftovers = (dir: string) => readdirSync(dir).filter((f) => f.endsWith('.tmp'));

describe('writeSubtileOutputs / subtileOutputsComplete', () => {
  it('names', () => {
    expect(subtileOutputNames(102018211, 1, 2)).toEqual({
      shear: 'shear_102018211_1_2.fits',
      params: 'params_102018211_1_2.fits',
      diagnostics: 'diagnostics_102018211_1_2.png',
      metadata: 'metadata_102018211_1_2.yaml',
    });
  });

  it('writes all four; the set is complete and valid; other sub-tiles are not', async () => {
    const dir = join(tempDir('shine-out-'), 'nested', 'out');
    const paths = await writeSubtileOutputs(dir, 7, 1, 2, products(7, 1, 2));
    expect(readdirSync(dir).sort()).toEqual(['diagnostics_7_1_2.png', 'metadata_7_1_2.yaml', 'params_7_1_2.fits', 'shear_7_1_2.fits']);
    expect(paths.shear).toBe(join(dir, 'shear_7_1_2.fits'));
    expect(decode(readFileSync(paths.diagnostics)).width).toBeGreaterThan(0);
    expect(await subtileOutputsComplete(dir, 7, 1, 2)).toEqual({ complete: true, missing: [], invalid: [] });
    const other = await subtileOutputsComplete(dir, 7, 1, 3);
    expect(other.complete).toBe(false);
    expect(other.missing).toHaveLength(4);
  });

  it('detects a missing file, a truncated FITS, a truncated PNG and a YAML of another sub-tile', async () => {
    const base = tempDir('shine-out-');
    const fresh = async (name: string) => {
      const d = join(base, name);
      await writeSubtileOutputs(d, 7, 0, 0, products(7, 0, 0));
      return d;
    };
    let d = await fresh('missing');
    unlinkSync(join(d, 'params_7_0_0.fits'));
    expect(await subtileOutputsComplete(d, 7, 0, 0)).toEqual({ complete: false, missing: ['params_7_0_0.fits'], invalid: [] });

    d = await fresh('truncfits');
    truncateSync(join(d, 'shear_7_0_0.fits'), 2880 + 100);
    let s = await subtileOutputsComplete(d, 7, 0, 0);
    expect(s.complete).toBe(false);
    expect(s.invalid).toHaveLength(1);
    expect(s.invalid[0]).toMatch(/^shear_7_0_0\.fits: .*truncated/);

    d = await fresh('truncfits2'); // truncated at a block boundary: the table data is gone
    truncateSync(join(d, 'shear_7_0_0.fits'), 2 * 2880);
    s = await subtileOutputsComplete(d, 7, 0, 0);
    expect(s.invalid[0]).toMatch(/^shear_7_0_0\.fits: /);

    d = await fresh('truncpng');
    const png = readFileSync(join(d, 'diagnostics_7_0_0.png'));
    writeFileSync(join(d, 'diagnostics_7_0_0.png'), png.subarray(0, png.length - 20));
    s = await subtileOutputsComplete(d, 7, 0, 0);
    expect(s.invalid).toEqual([expect.stringMatching(/^diagnostics_7_0_0\.png: PNG truncated/)]);

    d = await fresh('otheryaml');
    writeFileSync(join(d, 'metadata_7_0_0.yaml'), metadataYaml(sampleMetadata(7, 0, 1)));
    s = await subtileOutputsComplete(d, 7, 0, 0);
    expect(s.invalid).toEqual([expect.stringMatching(/^metadata_7_0_0\.yaml: names tile 7 sub-tile \(0, 1\)/)]);

    d = await fresh('othershear'); // a shear table of another sub-tile under this name
    writeFileSync(join(d, 'shear_7_0_0.fits'), products(8, 0, 0).shear);
    s = await subtileOutputsComplete(d, 7, 0, 0);
    expect(s.invalid).toEqual([expect.stringMatching(/^shear_7_0_0\.fits: holds tile 8/)]);

    d = await fresh('garbageyaml');
    writeFileSync(join(d, 'metadata_7_0_0.yaml'), 'format: [');
    s = await subtileOutputsComplete(d, 7, 0, 0);
    expect(s.invalid[0]).toMatch(/^metadata_7_0_0\.yaml: invalid YAML/);
  });

  it('invalid products are refused before anything is written', async () => {
    const dir = join(tempDir('shine-out-'), 'out');
    const p = products(7, 0, 0);
    await expect(writeSubtileOutputs(dir, 7, 0, 0, { ...p, metadata: metadataYaml(sampleMetadata(7, 0, 1)) })).rejects.toThrow(/metadata_7_0_0\.yaml: names tile 7 sub-tile \(0, 1\)/);
    await expect(writeSubtileOutputs(dir, 7, 0, 0, { ...p, diagnostics: p.diagnostics.subarray(0, 100) })).rejects.toThrow(/diagnostics_7_0_0\.png: PNG truncated/);
    expect(existsSync(dir)).toBe(false);
  });

  it('a failure mid-way leaves no temporary file, no metadata, and an incomplete set', async () => {
    const dir = tempDir('shine-out-');
    // the diagnostics target is a directory: shear and params get written, the PNG rename fails
    mkdirSync(join(dir, 'diagnostics_7_0_0.png'));
    await expect(writeSubtileOutputs(dir, 7, 0, 0, products(7, 0, 0))).rejects.toThrow(/diagnostics_7_0_0\.png/);
    expect(leftovers(dir)).toEqual([]);
    expect(existsSync(join(dir, 'metadata_7_0_0.yaml'))).toBe(false);
    const s = await subtileOutputsComplete(dir, 7, 0, 0);
    expect(s.complete).toBe(false);
    expect(s.missing).toEqual(['metadata_7_0_0.yaml']);
    expect(s.invalid).toEqual([expect.stringMatching(/^diagnostics_7_0_0\.png: is a directory/)]);
  });

  it('re-running over a complete set (--force) removes the old marker first, then replaces everything', async () => {
    const dir = tempDir('shine-out-');
    await writeSubtileOutputs(dir, 7, 0, 0, products(7, 0, 0, 0.01));
    expect((await subtileOutputsComplete(dir, 7, 0, 0)).complete).toBe(true);
    // a forced re-run that crashes while writing the PNG: the old metadata must not survive
    rmSync(join(dir, 'diagnostics_7_0_0.png'));
    mkdirSync(join(dir, 'diagnostics_7_0_0.png'));
    await expect(writeSubtileOutputs(dir, 7, 0, 0, products(7, 0, 0, 0.05))).rejects.toThrow();
    expect((await subtileOutputsComplete(dir, 7, 0, 0)).complete).toBe(false);
    expect(existsSync(join(dir, 'metadata_7_0_0.yaml'))).toBe(false);
    rmSync(join(dir, 'diagnostics_7_0_0.png'), { recursive: true });
    const p = products(7, 0, 0, 0.05);
    await writeSubtileOutputs(dir, 7, 0, 0, p);
    expect((await subtileOutputsComplete(dir, 7, 0, 0)).complete).toBe(true);
    expect(new Uint8Array(readFileSync(join(dir, 'shear_7_0_0.fits')))).toEqual(p.shear);
    expect(leftovers(dir)).toEqual([]);
  });

  it('a directory path that is a file: nothing written, a clear error', async () => {
    const base = tempDir('shine-out-');
    writeFileSync(join(base, 'file'), 'x');
    await expect(writeSubtileOutputs(join(base, 'file', 'out'), 7, 0, 0, products(7, 0, 0))).rejects.toThrow(/file .*shear_7_0_0\.fits: cannot write/);
    expect(readdirSync(base)).toEqual(['file']);
  });
});

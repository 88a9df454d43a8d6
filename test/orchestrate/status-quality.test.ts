/**
 * `shine status` on complete products whose fits differ in quality: a run counts them all as done,
 * so status names what their metadata says — not converged, no finite shear or errors, a MAP that
 * may be off its mode (the Newton polish's warning, engine/infer/laplace.ts polishWarning). The
 * products are written by the real writers (engine/outputs, platform/node/outputs) with metadata
 * fabricated per case; the oracle is what each case was made to be.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { runCli } from '../helpers/cli.ts';
import statusCmd from '../../cli/commands/status.ts';
import { diagnosticsPng, metadataYaml, paramsTable, shearTable, type SubtileMetadata } from '../../engine/outputs/index.ts';
import { writeSubtileOutputs } from '../../platform/node/outputs.ts';
import { sampleMetadata } from '../outputs/helpers.ts';
import { loadConfig } from '../../platform/node/config.ts';
import { fitSettingsHash } from '../../engine/config/fit-settings.ts';
import { fitQuality } from '../../engine/outputs/quality.ts';

afterEach(() => vi.restoreAllMocks());

describe('shine status: the quality of done sub-tiles', () => {
  it('names sub-tiles that did not converge, lack errors or may be off their mode', async () => {
    const base = mkdtempSync(join(tmpdir(), 'status-quality '));
    const cfgFile = join(base, 'config.yaml');
    writeFileSync(cfgFile, 'distributed: {output_dir: out, scratch_dir: scratch, sub_tile_grid: [2, 2]}\n');
    const cfg = await loadConfig(cfgFile);
    const out = join(base, 'out');
    const tileId = 7;
    const offMode = "the MAP's shear may be 5.70σ̂ off its mode: the Newton step in shear (1.55e-2, 1.04e-2) was not taken (…); refit from these products";
    const cases: Record<string, (m: SubtileMetadata) => void> = {
      '0,0': () => {},
      '0,1': (m) => {
        m.inference.converged = false;
        m.inference.reason = 'max-iterations';
      },
      '1,0': (m) => {
        m.shear!.g1_err = NaN;
      },
      '1,1': (m) => {
        m.warnings.push(offMode);
      },
    };
    const PROV = { softwareVersion: '0.1.0', created: '2025-01-01T00:00:00Z' };
    const obs = new Float32Array(16).map((_, i) => i % 3);
    for (const [key, edit] of Object.entries(cases)) {
      const [row, col] = key.split(',').map(Number);
      const m = sampleMetadata(tileId, row, col);
      m.shear!.g2 = -0.01;
      m.inputs.fit_settings_hash = fitSettingsHash(cfg, 'map');
      edit(m);
      await writeSubtileOutputs(out, tileId, row, col, {
        shear: shearTable({ tileId, row, col, ra: 10, dec: -5, g1: 0.01, g2: -0.01, g1Err: 0.01, g2Err: 0.01, nSources: 1, method: 'map', convergence: -1, converged: m.inference.converged }, PROV),
        params: paramsTable({ tileId, row, col }, { objectId: ['1'], ra: [10], dec: [-5], flux: [100], hlr: [0.3], e1: [0.1], e2: [0], dx: [0], dy: [0] }, PROV),
        diagnostics: diagnosticsPng({ title: ['case'], quadrants: [{ name: 'Q', width: 4, height: 4, observed: obs, model: obs, rms: new Float32Array(16).fill(1) }] }),
        metadata: metadataYaml(m),
      });
    }
    const js = await runCli(statusCmd, ['--config', cfgFile, '--tiles', '7', '--json'], { PATH: '/nonexistent' });
    expect(js.code, js.out).toBe(0);
    const subs = (JSON.parse(js.out.slice(js.out.indexOf('{'))) as { tiles: Array<{ sub_tiles: Array<{ row: number; col: number; state: string; detail?: string; quality?: ReturnType<typeof fitQuality> }> }> }).tiles[0].sub_tiles;
    expect(subs.map((s) => s.state)).toEqual(['done', 'done', 'done', 'done']);
    const at = (r: number, c: number) => subs.find((s) => s.row === r && s.col === c)!;
    expect(at(0, 0).detail).toBeUndefined();
    expect(at(0, 0).quality).toMatchObject({ converged: true, shear: true, errors: true, offMode: false, warnings: 1, problems: [] });
    expect(at(0, 1).detail).toBe('not converged (max-iterations)');
    expect(at(1, 0).detail).toBe('no shear errors (G1_ERR/G2_ERR not finite)');
    expect(at(1, 1).detail).toBe("the MAP's shear may be 5.70σ̂ off its mode");
    expect(at(1, 1).quality).toMatchObject({ converged: true, errors: true, offMode: true, offModeSigma: 5.7, warnings: 2 });
    const table = await runCli(statusCmd, ['--config', cfgFile, '--tiles', '7'], { PATH: '/nonexistent' });
    expect(table.out).toMatch(/total: 4 done, 0 running, 0 failed, 0 pending, 0 empty/);
    expect(table.out).toMatch(/of the 4 done: 1 not converged, 1 without a finite shear and errors, 1 whose MAP may be off its mode/);
  });

  it('reads a clean fit as clean, and a metadata without the fields as untrusted', () => {
    expect(fitQuality({ inference: { converged: true, reason: 'precision-floor' }, shear: { g1: 0, g2: 0, g1_err: 0.01, g2_err: 0.01 }, warnings: [] }).problems).toEqual([]);
    expect(fitQuality({}).problems).toEqual(['not converged (unknown)', 'no shear (G1/G2 not finite)']);
    expect(fitQuality({ inference: { converged: true, reason: 'x' }, shear: { g1: 0, g2: 0, g1_err: 0, g2_err: 0.01 } }).errors).toBe(false);
  });
});

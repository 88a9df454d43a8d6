/**
 * A `ci`-preset simulation, prepared for its imaged sub-tile (Stage 1 run): the config file and
 * the sub-tile (row, col) the simulation images, as `shine simulate` wrote them.
 */
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { runCli } from './cli.ts';
import simulate from '../../cli/commands/simulate.ts';
import prepare from '../../cli/commands/prepare.ts';

export const CI_TILE = 102018211;

export async function preparedCiSimulation(seed: number, prefix: string): Promise<{ dir: string; cfgFile: string; row: number; col: number }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const sim = await runCli(simulate, ['--preset', 'ci', '--seed', String(seed), '--out', join(dir, 'sim')], {});
  expect(sim.code, sim.out).toBe(0);
  const cfgFile = join(dir, 'sim', 'config.yaml');
  const m = /simulated_sub_tile:\s*\[(\d+),\s*(\d+)\]/.exec(await readFile(cfgFile, 'utf8'));
  const [row, col] = m ? [Number(m[1]), Number(m[2])] : [1, 1];
  const prep = await runCli(prepare, ['--config', cfgFile, '--tile-id', String(CI_TILE), '--sub-tile', `${row},${col}`, '--quiet'], {});
  expect(prep.code, prep.out).toBe(0);
  return { dir, cfgFile, row, col };
}

/**
 * `shine demo [--out DIR] [--seed S] [--force]`: the README's main job on built-in simulated data.
 * Simulates the `ci` preset (a small Euclid-like observation with known shear, written in the real
 * file formats by the independent CPU renderer), runs Stage 1 (`prepare`) and Stage 2 (`subtile`)
 * on its imaged sub-tile, and prints the recovered shear with its error next to the truth.
 * `shine demo --synthetic …` runs the engine alone on a synthetic scene (cli/commands/demo-synthetic.ts).
 */
import { join } from 'node:path';
import { stat } from 'node:fs/promises';
import type { Command } from '../command.ts';
import { UserError } from '../command.ts';
import { parseOptions } from '../args.ts';
import { loadConfig } from '../../platform/node/config.ts';
import { openFits } from '../../platform/node/files.ts';

const USAGE = 'usage: shine demo [--out DIR (out/demo)] [--seed S (1)] [--force] [--adapter X]\n       shine demo --synthetic [...]   (engine only; see --synthetic --help)';

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

const demo: Command = {
  summary: 'main job on built-in data: simulate the ci preset, prepare, fit its sub-tile, compare with the truth',
  async run(argv) {
    if (argv.includes('--synthetic')) return (await import('./demo-synthetic.ts')).default.run(argv.filter((a) => a !== '--synthetic'));
    const deviceArgs: string[] = [];
    const rest: string[] = [];
    for (let i = 0; i < argv.length; i++) {
      if (argv[i] === '--adapter' || argv[i] === '--limits') deviceArgs.push(argv[i], argv[++i]);
      else rest.push(argv[i]);
    }
    const { opts } = parseOptions(rest, { out: 'string', seed: 'integer', force: 'boolean', help: 'boolean' }, USAGE);
    if (opts.help) {
      console.log(USAGE);
      return 0;
    }
    const out = (opts.out as string) ?? 'out/demo';
    const seed = (opts.seed as number) ?? 1;
    const config = join(out, 'config.yaml');
    const t0 = performance.now();
    if (opts.force || !(await exists(config))) {
      console.log(`demo: 1/3 simulate --preset ci --seed ${seed} --out ${out}`);
      const rc = await (await import('./simulate.ts')).default.run(['--preset', 'ci', '--seed', String(seed), '--out', out]);
      if (rc !== 0) return rc;
    } else console.log(`demo: 1/3 using the simulation in ${out} (--force to redo)`);
    const cfg = await loadConfig(config);
    const tileId = cfg.distributed.tile_id;
    const sub = cfg.tile.simulated_sub_tile;
    if (typeof tileId !== 'number' || !sub) throw new UserError(`${config}: expected distributed.tile_id and tile.simulated_sub_tile from shine simulate`);
    const [row, col] = sub;
    console.log(`demo: 2/3 prepare --config ${config} --tile-id ${tileId}`);
    const rc1 = await (await import('./prepare.ts')).default.run(['--config', config, '--tile-id', String(tileId), '--quiet']);
    if (rc1 !== 0) return rc1;
    console.log(`demo: 3/3 subtile --tile-id ${tileId} --sub-tile-row ${row} --sub-tile-col ${col}`);
    const rc2 = await (await import('../subtile.ts')).default.run(['--tile-id', String(tileId), '--sub-tile-row', String(row), '--sub-tile-col', String(col), '--config', config, ...(opts.force ? ['--force'] : []), ...deviceArgs]);
    if (rc2 !== 0) return rc2;

    // compare with the truth
    const { subtileOutputNames } = await import('../../engine/outputs/index.ts');
    const names = subtileOutputNames(tileId, row, col);
    const shearFits = await openFits(join(cfg.distributed.output_dir, names.shear));
    const got = await shearFits.readTable(1);
    const g = (n: string) => Number((got.column(n).data as ArrayLike<number>)[0]);
    const truthFile = cfg.truth?.shear ?? join(out, 'truth', 'shear.fits');
    const truth = await (await openFits(truthFile)).readTable(1);
    const tr = (n: string) => truth.column(n).data as ArrayLike<number | bigint>;
    let tg1 = NaN;
    let tg2 = NaN;
    for (let i = 0; i < truth.nRows; i++) {
      if (Number(tr('SUBTILE_ROW')[i]) === row && Number(tr('SUBTILE_COL')[i]) === col) {
        tg1 = Number(tr('G1')[i]);
        tg2 = Number(tr('G2')[i]);
      }
    }
    const line = (name: string, v: number, e: number, t: number) =>
      `  ${name}   ${v.toFixed(5).padStart(9)} ± ${e.toFixed(5)}   truth ${t.toFixed(5).padStart(9)}   (${((v - t) / e).toFixed(2)} σ)`;
    console.log(`\ndemo: tile ${tileId}, sub-tile (${row}, ${col}), ${g('N_SOURCES')} core sources, ${g('N_QUADRANTS')} quadrants — ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    console.log(line('g1', g('G1'), g('G1_ERR'), tg1));
    console.log(line('g2', g('G2'), g('G2_ERR'), tg2));
    console.log(`  products: ${join(cfg.distributed.output_dir, '*_' + tileId + '_' + row + '_' + col + '.*')}`);
    return 0;
  },
};

export default demo;

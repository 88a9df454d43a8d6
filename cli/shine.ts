/**
 * `shine <command> [args]`: dispatches to cli/commands/<command>.ts, whose default export is
 * `{ summary: string, run(argv: string[]): Promise<number> }` (exit code). Runs under Node
 * (`npm run shine -- …`, via tsx) and Deno (`deno task shine …`).
 */
import { commandExitCode, type Command } from './command.ts';

const COMMANDS: Record<string, () => Promise<{ default: Command }>> = {
  doctor: () => import('./commands/doctor.ts'),
  bench: () => import('./commands/bench.ts'),
  demo: () => import('./commands/demo.ts'),
  'fits-info': () => import('./commands/fits-info.ts'),
  sky2xy: () => import('./commands/sky2xy.ts'),
  xy2sky: () => import('./commands/xy2sky.ts'),
  simulate: () => import('./commands/simulate.ts'),
  subtile: () => import('./subtile.ts'),
  prepare: () => import('./commands/prepare.ts'),
  crossmatch: () => import('./commands/crossmatch.ts'),
  assemble: () => import('./commands/assemble.ts'),
  run: () => import('./commands/run.ts'),
  status: () => import('./commands/status.ts'),
  retry: () => import('./commands/retry.ts'),
  calibrate: () => import('./commands/calibrate.ts'),
  'calibrate-compare': () => import('./commands/calibrate-compare.ts'),
  plan: () => import('./commands/plan.ts'),
};

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    const lines = ['usage: shine <command> [options]', '', 'commands:'];
    for (const [n, load] of Object.entries(COMMANDS)) {
      try {
        lines.push(`  ${n.padEnd(12)} ${(await load()).default.summary}`);
      } catch {
        lines.push(`  ${n.padEnd(12)} (not available in this build)`);
      }
    }
    console.log(lines.join('\n'));
    return name ? 0 : 2;
  }
  const load = COMMANDS[name];
  if (!load) {
    console.error(`shine: unknown command '${name}' (try: shine --help)`);
    return 2;
  }
  const cmd = (await load()).default;
  return commandExitCode(() => cmd.run(rest));
}

const code = await main(process.argv.slice(2));
// Dawn can keep the event loop alive after the device is destroyed: exit explicitly.
process.exit(code);

/** Tiny option parser for the CLI: --name value, --name=value, --flag; unknown options are errors. */
import { UserError } from './command.ts';

export interface OptionSpec {
  /** 'number': a decimal number literal; 'integer': a whole decimal number (both: no empty value, no hex, no 'Infinity'). */
  [name: string]: 'string' | 'number' | 'integer' | 'boolean';
}

const NUMBER_LITERAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/**
 * A command-line number: a decimal literal (`Number('')` would be 0, `Number('0x10')` 16: both
 * refused), an integer when `integer`. Throws a one-line UserError naming the option.
 */
export function parseNumberOption(name: string, raw: string, integer = false): number {
  const t = raw.trim();
  const v = Number(t);
  if (!NUMBER_LITERAL.test(t) || !Number.isFinite(v)) throw new UserError(`--${name} must be ${integer ? 'an integer' : 'a number'}, got '${raw}'`);
  if (integer && !Number.isSafeInteger(v)) throw new UserError(`--${name} must be an integer, got '${raw}'`);
  return v;
}

export function parseOptions(argv: string[], spec: OptionSpec, usage: string): { opts: Record<string, string | number | boolean>; positional: string[] } {
  const opts: Record<string, string | number | boolean> = {};
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) {
      positional.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = a.slice(2, eq < 0 ? undefined : eq);
    const kind = spec[name];
    if (!kind) throw new UserError(`unknown option --${name}\n${usage}`);
    if (kind === 'boolean') {
      opts[name] = true;
      continue;
    }
    const raw = eq >= 0 ? a.slice(eq + 1) : argv[++i];
    if (raw === undefined) throw new UserError(`--${name} needs a value\n${usage}`);
    if (kind === 'number' || kind === 'integer') opts[name] = parseNumberOption(name, raw, kind === 'integer');
    else opts[name] = raw;
  }
  return { opts, positional };
}

/**
 * Options of a command that uses a device: `--adapter`/`--limits` split off, the rest parsed by
 * `spec` (plus `--help`). Returns null when --help was asked (usage printed).
 */
export async function parseDeviceCommand(
  argv: string[],
  spec: OptionSpec,
  usage: string,
): Promise<{ adapter?: string; limits?: 'adapter' | 'default'; opts: Record<string, string | number | boolean> } | null> {
  const { parseDeviceFlags } = await import('../platform/acquire.ts');
  const flags = parseDeviceFlags(argv);
  const { opts } = parseOptions(flags.rest, { ...spec, help: 'boolean' }, usage);
  if (opts.help) {
    console.log(usage);
    return null;
  }
  return { adapter: flags.adapter, limits: flags.limits, opts };
}

/**
 * Options of a command over a list of tiles (`run`, `retry`, `status`): parsed by `spec` (which
 * must hold config, tiles, tiles-file and help), no positional argument, `--config` required,
 * exactly one of `--tiles` / `--tiles-file`. Returns null when --help was asked (usage printed).
 */
export function parseTileCommand(argv: string[], spec: OptionSpec, usage: string): Record<string, string | number | boolean> | null {
  const { opts, positional } = parseOptions(argv, spec, usage);
  if (opts.help) {
    console.log(usage);
    return null;
  }
  if (positional.length) throw new UserError(`unexpected argument '${positional[0]}'\n${usage}`);
  if (!opts.config) throw new UserError(`--config is required\n${usage}`);
  if ((opts.tiles === undefined) === (opts['tiles-file'] === undefined)) throw new UserError(`give exactly one of --tiles or --tiles-file\n${usage}`);
  return opts;
}

/**
 * Runs a CLI command in this process with extra environment variables, capturing what it prints
 * (console.log and console.error) and its exit code as `shine` would report it.
 */
import { vi } from 'vitest';
import { commandExitCode, type Command } from '../../cli/command.ts';

export async function runCli(cmd: Command, args: string[], env: Record<string, string>): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((...a) => void lines.push(a.join(' ')));
  vi.spyOn(console, 'error').mockImplementation((...a) => void lines.push(a.join(' ')));
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  try {
    const code = await commandExitCode(() => cmd.run(args));
    return { code, out: lines.join('\n') };
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    vi.restoreAllMocks();
  }
}

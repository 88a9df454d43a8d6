/** Shared CLI plumbing: a command, and turning thrown errors into one clear line + exit code. */

export interface Command {
  summary: string;
  run(argv: string[]): Promise<number>;
}

/** An error meant for the user: printed without a stack trace. */
export class UserError extends Error {
  override name = 'UserError';
}

export async function commandExitCode(fn: () => Promise<number>): Promise<number> {
  try {
    return await fn();
  } catch (e) {
    const err = e as Error;
    if (err && (err.name === 'UserError' || (err as { userFacing?: boolean }).userFacing)) {
      console.error(`shine: ${err.message}`);
      return 1;
    }
    console.error(`shine: internal error: ${err?.stack ?? String(e)}`);
    return 70;
  }
}

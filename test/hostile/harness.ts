/**
 * The hostile-input corpus (issue 17): every case runs the way the CLI runs it — the command's
 * `run(argv)` (or the library call the command makes) inside `commandExitCode`, with the console
 * captured — and asserts its exact outcome class:
 *
 *  - 'error':   a clear error: non-zero exit, exactly one line on stderr, `shine: ` + a message
 *               naming the file / HDU / key / field (the case's pattern), no stack trace;
 *  - 'cut':     a counted, reported decision: the run goes on, and the count or warning is in the
 *               outputs (manifest, log line, metadata counts);
 *  - 'handled': input that looks hostile but is valid (folder names with glob characters, …) and
 *               works as it should.
 *
 * Each case registers itself in `CORPUS` (id, group, what, outcome) so that the README's table and
 * docs/hostile-input.md can be checked against what the tests really assert.
 */
import { appendFileSync } from 'node:fs';
import { afterAll, expect, vi } from 'vitest';
import { commandExitCode } from '../../cli/command.ts';

export type Outcome = 'error' | 'cut' | 'handled';

export interface CaseRecord {
  group: string;
  id: string;
  what: string;
  outcome: Outcome;
}

export const CORPUS: CaseRecord[] = [];

// SHINE_HOSTILE_LIST=FILE: every file appends its cases (JSON lines) — the source of docs/hostile-input.md
afterAll(() => {
  const out = process.env.SHINE_HOSTILE_LIST;
  if (out) appendFileSync(out, CORPUS.map((c) => `${JSON.stringify(c)}\n`).join(''));
  // every case is in one of the three classes, and no id is used twice
  expect(new Set(CORPUS.map((c) => c.id)).size).toBe(CORPUS.length);
});

export function record(group: string, id: string, what: string, outcome: Outcome): void {
  CORPUS.push({ group, id, what, outcome });
}

export interface CliOutcome {
  code: number;
  stderr: string;
  stdout: string;
}

/** Runs `fn` as the CLI runs a command (commandExitCode), capturing stdout and stderr. */
export async function asCli(fn: () => Promise<number | void>): Promise<CliOutcome> {
  const err: string[] = [];
  const out: string[] = [];
  const e = vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void err.push(a.map(String).join(' ')));
  const w = vi.spyOn(console, 'warn').mockImplementation((...a: unknown[]) => void err.push(a.map(String).join(' ')));
  const l = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.map(String).join(' ')));
  try {
    const code = await commandExitCode(async () => (await fn()) ?? 0);
    return { code, stderr: err.join('\n'), stdout: out.join('\n') };
  } finally {
    e.mockRestore();
    w.mockRestore();
    l.mockRestore();
  }
}

/** A clear one-line error: non-zero exit, one stderr line `shine: …` matching `re`, no stack trace. */
export function expectClearError(r: CliOutcome, re: RegExp): void {
  const lines = r.stderr.split('\n').filter((s) => s.trim() !== '');
  expect(r.code, r.stderr).not.toBe(0);
  expect(r.code, r.stderr).not.toBe(70); // 70 = internal error (a stack trace)
  // one line; a usage error may be followed by the command's usage text (lines 'usage: …' and indented ones)
  const usageAt = lines.findIndex((l) => /^usage: /.test(l));
  const extra = usageAt > 0 ? lines.slice(1, usageAt) : lines.slice(1);
  if (usageAt > 0) expect(lines.slice(usageAt + 1).every((l) => /^\s/.test(l)), r.stderr).toBe(true);
  expect(extra.length, `expected one line, got:\n${r.stderr}`).toBe(0);
  expect(lines[0]).toMatch(/^shine: /);
  expect(lines[0]).not.toMatch(/internal error|\bat .*\(.*:\d+:\d+\)|ReferenceError|TypeError|RangeError/);
  expect(lines[0]).toMatch(re);
}

/** Registers and runs a case that must end in a clear one-line error. */
export async function errorCase(group: string, id: string, what: string, fn: () => Promise<number | void>, re: RegExp): Promise<void> {
  record(group, id, what, 'error');
  expectClearError(await asCli(fn), re);
}

/**
 * Shell-safety helpers for generated job scripts (runtime-agnostic).
 *
 * Every value that comes from a configuration or the command line reaches a generated script
 * only through `shq` (POSIX single quotes: nothing inside is expanded; a `'` is written as `'\''`),
 * or, for `#SBATCH` directive lines (read by sbatch, not by a shell, and line-oriented), only
 * after a strict format check.
 */
import { ShineError } from '../errors.ts';

/** POSIX single-quoted word: safe for any string, including newlines, `$(…)`, backticks, quotes. */
export function shq(s: string): string {
  if (s.includes('\0')) throw new ShineError(`a value holds a NUL byte, which no shell argument can carry: ${JSON.stringify(s)}`);
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Words quoted and joined by spaces. */
export function shjoin(words: readonly string[]): string {
  return words.map(shq).join(' ');
}

function check(value: string, re: RegExp, what: string, example: string): string {
  if (!re.test(value)) throw new ShineError(`invalid ${what} ${JSON.stringify(value)} (expected e.g. ${example})`, { field: what });
  return value;
}

/** SLURM partition name(s): letters, digits, `_ . -`, comma-separated. */
export function checkPartition(p: string): string {
  return check(p, /^[A-Za-z0-9_.-]+(,[A-Za-z0-9_.-]+)*$/, 'partition', "'gpu' or 'gpu,gpu-long'");
}

/** SLURM time limit: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS (or UNLIMITED). */
export function checkTime(t: string): string {
  return check(t, /^(UNLIMITED|infinite|\d+|\d+:\d{1,2}|\d+:\d{1,2}:\d{1,2}|\d+-\d{1,2}|\d+-\d{1,2}:\d{1,2}|\d+-\d{1,2}:\d{1,2}:\d{1,2})$/, 'time', "'01:00:00', '90' (minutes) or '1-12:00:00'");
}

/** SLURM memory: an integer with an optional unit K, M, G or T (default M). */
export function checkMem(m: string): string {
  return check(m, /^\d+[KMGT]?$/, 'mem', "'32G' or '16000M'");
}

/** A positive integer option (GPUs, CPUs). */
export function checkCount(n: number, what: string): number {
  if (!Number.isSafeInteger(n) || n < 0) throw new ShineError(`invalid ${what} ${n} (expected a non-negative integer)`, { field: what });
  return n;
}

/** A job name reduced to `[A-Za-z0-9_.-]` (other characters become `_`), at most 100 characters. */
export function safeJobName(s: string): string {
  const t = s.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 100);
  return t || 'shine';
}

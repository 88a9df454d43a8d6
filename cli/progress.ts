/**
 * Progress of the stages of a run, with an estimate of the time left (docs/plan.md "Progress").
 * The engine only reports (`(stage, done, total, detail)` callbacks); this module decides what
 * to print:
 *  - on a terminal, one line per stage rewritten in place (`\r…` + erase to the end of the line),
 *    finished with a newline when the stage changes;
 *  - otherwise (a SLURM log, a pipe, a file), plain lines without control characters: at most one
 *    every `intervalMs` while a stage runs, and its last line when it ends — only for stages that
 *    last at least `minStageMs` (short stages say nothing).
 * The estimate is the stage's own rate: elapsed × (total − done) / done; for a stage whose total
 * is a cap (MAP iterations), it is an upper bound ("at most").
 */

export interface ProgressDetail {
  loss?: number;
  gradNorm?: number;
  /** A few words (the build step, the quadrant). */
  note?: string;
}

export type ProgressCallback = (stage: string, done: number, total: number, detail?: ProgressDetail) => void;

export interface ProgressOptions {
  /** Where lines go (process.stderr.write). */
  write: (text: string) => void;
  /** A terminal: rewrite the line in place. */
  tty: boolean;
  /** Line prefix, e.g. 'subtile'. */
  prefix: string;
  /** Clock in ms (tests pass their own). */
  now?: () => number;
  /** Not a terminal: most one line per this many ms while a stage runs (default 10 000). */
  intervalMs?: number;
  /** Not a terminal: stages shorter than this print nothing (default 2 000). */
  minStageMs?: number;
  /** Stages whose total is an upper bound (their estimate is "at most"). */
  capped?: readonly string[];
  quiet?: boolean;
  /** Current host memory (resident set, bytes), shown with each line when given. */
  rss?: () => number;
}

/** "45 s", "3 min 20 s", "2 h 05 min". */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

/** Time left at the stage's own rate so far; null before the first unit is done. */
export function timeLeftMs(elapsedMs: number, done: number, total: number): number | null {
  if (!(done > 0) || !(total > done)) return done >= total && total > 0 ? 0 : null;
  return (elapsedMs * (total - done)) / done;
}

export function createProgress(o: ProgressOptions): ProgressCallback & { end(): void } {
  const now = o.now ?? (() => performance.now());
  const interval = o.intervalMs ?? 10_000;
  const minStage = o.minStageMs ?? 2_000;
  const capped = new Set(o.capped ?? ['map']);
  let stage: string | null = null;
  let stageStart = 0;
  let lastPrint = -Infinity;
  let lastLine = '';
  let printed = false; // something of this stage is on screen (tty) / in the log
  const line = (st: string, done: number, total: number, d: ProgressDetail | undefined, elapsed: number) => {
    const pct = total > 0 ? ` (${Math.min(100, Math.floor((100 * done) / total))}%)` : '';
    const parts = [`${o.prefix}: ${st} ${done}/${total}${pct}`];
    if (d?.note) parts.push(d.note);
    if (d?.loss !== undefined && Number.isFinite(d.loss)) parts.push(`loss ${d.loss.toFixed(2)}`);
    if (d?.gradNorm !== undefined && Number.isFinite(d.gradNorm)) parts.push(`|grad| ${d.gradNorm.toExponential(2)}`);
    const left = timeLeftMs(elapsed, done, total);
    const time = [formatDuration(elapsed)];
    if (left !== null && done < total) time.push(`${capped.has(st) ? 'at most ' : ''}${formatDuration(left)} left`);
    parts.push(time.join(', '));
    if (o.rss) parts.push(`RSS ${(o.rss() / 2 ** 30).toFixed(2)} GiB`);
    // no control characters in what is logged (a note may come from a file name)
    return parts
      .join(' · ')
      .replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '')
      .replace(/[\u0000-\u001f\u007f]/g, ' ');
  };
  const finish = () => {
    if (o.tty && printed) o.write('\n');
    else if (!o.tty && stage !== null && lastLine && now() - stageStart >= minStage && !printedLast) o.write(`${lastLine}\n`);
    printed = false;
  };
  let printedLast = false;
  const cb = ((st: string, done: number, total: number, d?: ProgressDetail) => {
    if (o.quiet) return;
    const t = now();
    if (st !== stage) {
      finish();
      stage = st;
      stageStart = t;
      lastPrint = -Infinity;
    }
    const elapsed = t - stageStart;
    lastLine = line(st, done, total, d, elapsed);
    printedLast = false;
    if (o.tty) {
      o.write(`\r${lastLine}\x1b[K`);
      printed = true;
      return;
    }
    const ended = total > 0 && done >= total;
    if (elapsed >= minStage && (t - lastPrint >= interval || ended)) {
      o.write(`${lastLine}\n`);
      lastPrint = t;
      printed = true;
      printedLast = true;
    }
  }) as ProgressCallback & { end(): void };
  cb.end = () => {
    if (o.quiet) return;
    finish();
    stage = null;
    lastLine = '';
  };
  return cb;
}

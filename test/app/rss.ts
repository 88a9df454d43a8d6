/**
 * Resident memory of the browser this process launched (Linux /proc; for test/app/realistic.ts).
 * Chromium splits into processes — the browser, the GPU process, one renderer per page (its Web
 * Workers included), utilities — so the page's memory is the renderer's RSS, not this process's.
 * The sampler walks the descendants of this Node process every `periodMs` and keeps the peak RSS
 * of each process type (`--type=…` on its command line; 'browser' when it has none) and of their sum.
 */
import { readdirSync, readFileSync } from 'node:fs';

interface Proc {
  pid: number;
  ppid: number;
}

function processes(): Proc[] {
  const out: Proc[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      // the command name (field 2) is in parentheses and may hold spaces: read after its closing one
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.push({ pid: Number(name), ppid: Number(rest[1]) });
    } catch {
      // exited while listed
    }
  }
  return out;
}

function rssBytes(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

function typeOf(pid: number): string {
  try {
    // Chromium rewrites its children's process titles: the arguments are joined by spaces, not NULs
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split(/[\0 ]/);
    const t = cmd.find((a) => a.startsWith('--type='));
    return t ? t.slice('--type='.length) : cmd[0].includes('chrom') ? 'browser' : 'other';
  } catch {
    return 'gone';
  }
}

/** Current RSS (bytes) of every descendant of `root`, summed per process type. */
export function descendantRss(root = process.pid): Record<string, number> {
  const procs = processes();
  const children = new Map<number, number[]>();
  for (const p of procs) children.set(p.ppid, [...(children.get(p.ppid) ?? []), p.pid]);
  const byType: Record<string, number> = {};
  const stack = [...(children.get(root) ?? [])];
  while (stack.length) {
    const pid = stack.pop()!;
    stack.push(...(children.get(pid) ?? []));
    const t = typeOf(pid);
    byType[t] = (byType[t] ?? 0) + rssBytes(pid);
  }
  return byType;
}

/** Samples descendantRss until stopped; `peaks()` gives each type's peak and the peak of the total, in GiB. */
export function rssSampler(periodMs = 1000): { peaks: () => Record<string, number>; stop: () => void } {
  const peak: Record<string, number> = {};
  const sample = () => {
    const now = descendantRss();
    let total = 0;
    for (const [t, b] of Object.entries(now)) {
      peak[t] = Math.max(peak[t] ?? 0, b);
      total += b;
    }
    peak.total = Math.max(peak.total ?? 0, total);
  };
  sample();
  const timer = setInterval(sample, periodMs);
  return {
    peaks: () => {
      sample();
      return Object.fromEntries(Object.entries(peak).map(([t, b]) => [t, +(b / 2 ** 30).toFixed(2)]));
    },
    stop: () => clearInterval(timer),
  };
}

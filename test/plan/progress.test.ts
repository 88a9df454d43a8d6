/**
 * Progress reporting (cli/progress.ts) with a fabricated clock:
 *  - in a log (not a terminal): no control character, stages under 2 s silent, at most one line
 *    per interval while a stage runs, the stage's last line when it ends, and a time left equal
 *    to elapsed × (total − done) / done worked out here;
 *  - on a terminal: the line is rewritten in place and finished with a newline at the next stage.
 */
import { describe, expect, it } from 'vitest';
import { createProgress, formatDuration } from '../../cli/progress.ts';

function fake(tty: boolean) {
  let t = 0;
  let out = '';
  const p = createProgress({ write: (s) => void (out += s), tty, prefix: 'subtile', now: () => t, intervalMs: 10_000, minStageMs: 2_000 });
  return { p, set: (ms: number) => (t = ms), out: () => out };
}

describe('progress', () => {
  it('in a log: plain lines, short stages silent, one line per interval, the last line of each stage, the time left', () => {
    const f = fake(false);
    // a 1 s stage: nothing
    f.set(0);
    f.p('catalog', 0, 1);
    f.set(1000);
    f.p('catalog', 1, 1);
    // quadrants loaded one per second for 52 s, with control characters in the note
    f.set(1000);
    for (let q = 0; q <= 52; q++) {
      f.set(1000 + q * 1000);
      f.p('load', q, 52, { note: `quadrant\x1b[31m ${q}\r` });
    }
    // MAP: an iteration every 3 s, total a cap of 500, stopped at 20
    for (let i = 0; i <= 20; i++) {
      f.set(60_000 + i * 3000);
      f.p('map', i, 500, { loss: 1000 - i });
    }
    f.p.end();
    const text = f.out();
    expect(text).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f]/);
    const lines = text.trimEnd().split('\n');
    expect(lines.some((l) => l.includes('catalog'))).toBe(false);
    const load = lines.filter((l) => l.startsWith('subtile: load'));
    // 52 s of loading: lines at 2 s (first after minStage), then every 10 s, and the end (52/52)
    expect(load.length).toBeGreaterThanOrEqual(5);
    expect(load.length).toBeLessThanOrEqual(7);
    expect(load[load.length - 1]).toMatch(/^subtile: load 52\/52 \(100%\) · quadrant 52 {2}· 52 s$/);
    // a line mid-way: done q at q s elapsed → q·(52 − q)/q = (52 − q) s left
    const mid = load.find((l) => /load 12\/52/.test(l))!;
    expect(mid).toMatch(/· 12 s, 40 s left$/);
    const map = lines.filter((l) => l.startsWith('subtile: map'));
    // the stage ended without reaching its cap: its last line is written at the end
    expect(map[map.length - 1]).toMatch(/^subtile: map 20\/500 \(4%\) · loss 980\.00 · 1 min 00 s, at most 24 min 00 s left$/);
  });

  it('on a terminal: rewritten in place, a newline when the stage changes', () => {
    const f = fake(true);
    f.p('load', 1, 2);
    f.set(500);
    f.p('load', 2, 2);
    f.set(900);
    f.p('map', 1, 10);
    f.p.end();
    const text = f.out();
    expect(text.startsWith('\rsubtile: load 1/2 (50%) · 0 s, 0 s left\x1b[K')).toBe(true);
    expect(text).toContain('\rsubtile: load 2/2 (100%) · 1 s\x1b[K\n\rsubtile: map 1/10');
    expect(text.endsWith('\x1b[K\n')).toBe(true);
  });

  it('with the resident set when asked', () => {
    let out = '';
    const p = createProgress({ write: (s) => void (out += s), tty: true, prefix: 'subtile', now: () => 0, rss: () => 1.5 * 2 ** 30 });
    p('load', 1, 4);
    expect(out).toBe('\rsubtile: load 1/4 (25%) · 0 s, 0 s left · RSS 1.50 GiB\x1b[K');
  });

  it('durations', () => {
    expect(formatDuration(59_400)).toBe('59 s');
    expect(formatDuration(200_000)).toBe('3 min 20 s');
    expect(formatDuration(7_500_000)).toBe('2 h 05 min');
  });
});

/** Locate a python3 with astropy for the oracle scripts (SHINE_PYTHON overrides). */
import { execFileSync } from 'node:child_process';

let cached: string | null | undefined;

export function astropyPython(): string | null {
  if (cached !== undefined) return cached;
  const candidates = [process.env.SHINE_PYTHON, '/usr/bin/python3', 'python3'].filter(Boolean) as string[];
  for (const py of candidates) {
    try {
      execFileSync(py, ['-c', 'import astropy, numpy'], { stdio: 'ignore' });
      cached = py;
      return py;
    } catch {
      /* try the next one */
    }
  }
  cached = null;
  return null;
}

/** True on CI (CI set, and not to 'false' or '0'). */
export function onCi(): boolean {
  const v = process.env.CI;
  return !!v && !/^(false|0)$/i.test(v);
}

/**
 * True when the astropy oracle tests may be skipped: no python3 with astropy and not on CI. With
 * CI=true they run, and a missing astropy fails them (as the FITS tests do): an oracle never
 * silently skips in CI.
 */
export function skipOracle(): boolean {
  return astropyPython() === null && !onCi();
}

export function runPython(script: string, args: string[]): string {
  const py = astropyPython();
  if (!py) throw new Error(`python3 with astropy not found (apt-get install python3-astropy, or set SHINE_PYTHON)${onCi() ? ': required on CI' : ''}`);
  return execFileSync(py, [script, ...args], { encoding: 'utf8', maxBuffer: 1 << 28 });
}

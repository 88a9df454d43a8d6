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

export function runPython(script: string, args: string[]): string {
  const py = astropyPython();
  if (!py) throw new Error('python3 with astropy not found (set SHINE_PYTHON)');
  return execFileSync(py, [script, ...args], { encoding: 'utf8', maxBuffer: 1 << 28 });
}

/** Shared helpers for the FITS tests: the astropy python, fixture generation, value comparison. */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';

export const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'fits');

/** The python with astropy (Debian python3-astropy lives in /usr/bin/python3; pyenv shims may shadow it). */
export function python(): string {
  if (process.env.SHINE_PYTHON) return process.env.SHINE_PYTHON;
  for (const p of ['/usr/bin/python3', 'python3']) {
    try {
      execFileSync(p, ['-c', 'import astropy'], { stdio: 'ignore' });
      return p;
    } catch {
      /* next */
    }
  }
  throw new Error('no python3 with astropy found (set SHINE_PYTHON)');
}

export function runPython(script: string, args: string[]): string {
  return execFileSync(python(), [join(FIXTURES, script), ...args], { encoding: 'utf8', maxBuffer: 256 << 20 });
}

export function tempDir(prefix = 'shine-fits-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function exists(p: string): boolean {
  return existsSync(p);
}

/** Encoded expected value (see make_fixtures.py encode()): number, 'NaN', '±Infinity', decimal string for 64-bit ints, bool, string. */
export type Enc = number | string | boolean | null;

export function decodeNumber(v: Enc): number {
  if (v === 'NaN') return NaN;
  if (v === 'Infinity') return Infinity;
  if (v === '-Infinity') return -Infinity;
  return v as number;
}

/** Exact comparison of our flat values with the encoded astropy values. */
export function expectValues(ours: ArrayLike<unknown>, expected: Enc[], label: string): void {
  expect(ours.length, `${label}: length`).toBe(expected.length);
  const bad: string[] = [];
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i];
    const o = ours[i];
    let ok: boolean;
    if (typeof o === 'bigint') ok = typeof e === 'string' && BigInt(e) === o;
    else if (typeof o === 'boolean') ok = o === e;
    else if (typeof o === 'string') ok = o === e;
    else if (typeof o === 'number' && typeof e === 'boolean') ok = o === (e ? 1 : 0);
    else if (typeof o === 'number') {
      const en = typeof e === 'string' && /^-?\d+$/.test(e) ? Number(e) : decodeNumber(e);
      ok = Object.is(o, en) || (o === 0 && en === 0) || (Number.isNaN(o) && Number.isNaN(en));
    } else ok = false;
    if (!ok && bad.length < 5) bad.push(`[${i}] ours=${String(o)} astropy=${String(e)}`);
  }
  expect(bad, `${label}: mismatches`).toEqual([]);
}

/** The typed-array class we promise for an astropy dtype string. */
export const IMAGE_DTYPE_CLASS: Record<string, string> = {
  '|u1': 'Uint8Array',
  '|i1': 'Int8Array',
  '>i2': 'Int16Array',
  '>i4': 'Int32Array',
  '>i8': 'BigInt64Array',
  '>f4': 'Float32Array',
  '>f8': 'Float64Array',
  '<u2': 'Uint16Array',
  '<u4': 'Uint32Array',
  '<u8': 'BigUint64Array',
  '<f4': 'Float32Array',
  '<f8': 'Float64Array',
};

/** |a - b| ≤ ulps float32 ulps of b (for astropy's float32 arithmetic on scaled BITPIX 8/16 images). */
export function expectFloat32Ulps(values: Enc[], want: number[], ulps: number, label: string): void {
  expect(values.length, label).toBe(want.length);
  const bad: string[] = [];
  for (let i = 0; i < want.length; i++) {
    const a = decodeNumber(values[i]);
    const b = want[i];
    if (Number.isNaN(b) ? !Number.isNaN(a) : Math.abs(a - b) > ulps * Math.max(Math.abs(b), 1e-30) * 2 ** -23) {
      bad.push(`[${i}] ${a} vs ${b}`);
    }
  }
  expect(bad, label).toEqual([]);
}

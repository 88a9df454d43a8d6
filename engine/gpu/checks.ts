/**
 * Every GPU kernel's self-check against its float64 CPU reference, run by `shine doctor`, the
 * Node tests, the Deno smoke task and the in-browser (Playwright) shader tests.
 * Each kernel adds one entry here; a check builds its own small random input (seeded), runs the
 * kernel on the given device, compares with the reference and reports the max error.
 */
import type { KernelCheck, KernelCheckResult } from './check-types.ts';
export type { KernelCheck, KernelCheckResult } from './check-types.ts';

/** Loaded lazily so that a broken kernel does not stop the others from being checked. */
export const KERNEL_CHECKS: Array<() => Promise<KernelCheck[]>> = [
  () => import('./fft/check.ts').then((m) => m.checks),
  () => import('./render/check.ts').then((m) => m.checks),
  () => import('./render/profiles-check.ts').then((m) => m.checks),
];

export async function runKernelChecks(device: GPUDevice, onResult?: (r: KernelCheckResult) => void): Promise<KernelCheckResult[]> {
  const out: KernelCheckResult[] = [];
  for (const load of KERNEL_CHECKS) {
    let checks: KernelCheck[];
    try {
      checks = await load();
    } catch (e) {
      const r = { name: 'load', pass: false, maxError: NaN, tolerance: 0, detail: String(e), ms: 0 };
      out.push(r);
      onResult?.(r);
      continue;
    }
    for (const c of checks) {
      const t0 = performance.now();
      let r: KernelCheckResult;
      try {
        r = await c.run(device);
      } catch (e) {
        r = { name: c.name, pass: false, maxError: NaN, tolerance: 0, detail: String((e as Error)?.message ?? e), ms: performance.now() - t0 };
      }
      out.push(r);
      onResult?.(r);
    }
  }
  return out;
}

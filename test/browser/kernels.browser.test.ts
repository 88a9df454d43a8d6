/**
 * Every registered kernel check (engine/gpu/checks.ts) run inside real Chromium (page), plus a
 * device acquired inside a Web Worker running a small compute check against a float64 CPU value.
 * Passes when every check passes and the page logged no console error.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { runBrowserChecks, type BrowserRunResult } from './harness.ts';
import { KERNEL_CHECKS } from '../../engine/gpu/checks.ts';

let run: BrowserRunResult;

describe('kernel checks in Chromium', () => {
  beforeAll(async () => {
    run = await runBrowserChecks({
      adapter: process.env.SHINE_BROWSER_ADAPTER ?? 'auto',
      onLog: (l) => {
        if (!l.startsWith('[page debug]')) console.log(l);
      },
    });
  });

  it('acquires a WebGPU device in the page', () => {
    expect(run.report, 'no report from the page').toBeTruthy();
    expect(run.report!.error ?? null).toBeNull();
    expect(typeof run.report!.device?.label).toBe('string');
    expect(run.report!.device!.label.trim().length).toBeGreaterThan(0);
  });

  it('passes every registered kernel check against its CPU reference', async () => {
    const results = run.report?.results ?? [];
    // every registered check ran in the page (counted here, in Node, from the same registry)
    let registered = 0;
    for (const load of KERNEL_CHECKS) registered += (await load()).length;
    expect(results.length).toBe(registered);
    const failed = results.filter((r) => !r.pass).map((r) => `${r.name}: max error ${r.maxError} > ${r.tolerance} ${r.detail ?? ''}`);
    expect(failed).toEqual([]);
  });

  it('acquires a device and computes correctly in a Web Worker', () => {
    const w = run.report?.worker;
    expect(w?.error ?? null).toBeNull();
    expect(w?.ok).toBe(true);
    expect(w!.maxError!).toBeLessThanOrEqual(1e-6);
  });

  it('logs no console errors', () => {
    expect(run.consoleErrors).toEqual([]);
  });
});

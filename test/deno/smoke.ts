/**
 * Deno smoke test (`deno task test:smoke`): acquire a device in Deno and run every registered
 * kernel check (engine/gpu/checks.ts) against its float64 CPU reference. Exit code 1 if any
 * check fails or none is registered.
 *
 * Default: Deno's native WebGPU (wgpu — a different implementation and WGSL compiler than Dawn)
 * with the WebGPU default limits, so the kernels' default-limit paths are exercised. Override with
 * `--adapter X` / `--limits adapter` or SHINE_ADAPTER / SHINE_LIMITS.
 */
import { acquireDevice, parseDeviceFlags, runtimeVersion } from '../../platform/acquire.ts';
import { runKernelChecks } from '../../engine/gpu/checks.ts';

const env = (k: string): string | undefined => (globalThis as { Deno?: { env: { get(k: string): string | undefined } } }).Deno?.env.get(k);
const argv = (globalThis as { Deno?: { args: string[] } }).Deno?.args ?? process.argv.slice(2);
const flags = parseDeviceFlags(argv);
const t0 = performance.now();
const acq = await acquireDevice({
  adapter: flags.adapter ?? env('SHINE_ADAPTER') ?? 'native',
  limits: flags.limits ?? ((env('SHINE_LIMITS') as 'adapter' | 'default' | undefined) ?? 'default'),
});
console.log(`deno smoke: ${runtimeVersion()}, ${acq.label} (${acq.name}, ${acq.backend}, ${acq.featureLevel}, ${acq.limitsMode} limits)`);
let failed = 0;
const results = await runKernelChecks(acq.device, (r) => {
  if (!r.pass) failed++;
  console.log(`  ${r.pass ? 'PASS' : 'FAIL'}  ${r.name}  maxError ${r.maxError} (tolerance ${r.tolerance})  ${r.ms.toFixed(0)} ms${r.detail ? `  ${r.detail}` : ''}`);
});
acq.release();
const secs = ((performance.now() - t0) / 1000).toFixed(1);
if (results.length === 0) {
  console.log('deno smoke: FAIL — no kernel checks are registered');
  process.exit(1);
}
console.log(`deno smoke: ${results.length - failed}/${results.length} kernel checks passed in ${secs} s`);
process.exit(failed ? 1 : 0);

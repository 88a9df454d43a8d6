/**
 * `shine doctor [--json] [--adapter X] [--limits adapter|default]`: which WebGPU device this
 * machine gives, its limits and features, and every kernel's self-check against its float64 CPU
 * reference on that device. Exit code 1 when a check fails (or none could run).
 */
import type { Command } from '../command.ts';
import { UserError } from '../command.ts';
import { acquireDevice, detectRuntime, parseDeviceFlags, runtimeVersion } from '../../platform/acquire.ts';
import { runKernelChecks, type KernelCheckResult } from '../../engine/gpu/checks.ts';

const USAGE = `usage: shine doctor [--json] [--adapter auto|vulkan|opengl|swiftshader|native|<substring>] [--limits adapter|default] [--no-checks]

Prints the runtime, the chosen WebGPU adapter (backend, vendor, architecture, device, description,
fallback flag), feature level, limits and features, then runs every GPU kernel's check against its
float64 CPU reference. Exit code 1 if any check fails. SHINE_ADAPTER / SHINE_LIMITS set the defaults.`;

/** Limits printed by doctor (the compute-relevant ones first). */
const LIMIT_NAMES = [
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxComputeWorkgroupsPerDimension',
  'maxComputeWorkgroupStorageSize',
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxStorageBuffersPerShaderStage',
  'maxUniformBufferBindingSize',
  'maxUniformBuffersPerShaderStage',
  'maxBindGroups',
  'maxBindingsPerBindGroup',
  'maxStorageTexturesPerShaderStage',
  'maxTextureDimension2D',
  'minStorageBufferOffsetAlignment',
  'minUniformBufferOffsetAlignment',
];

function fmtNum(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  if (n === 0) return '0';
  const a = Math.abs(n);
  return a < 1e-3 || a >= 1e6 ? n.toExponential(2) : n.toPrecision(3);
}

const doctor: Command = {
  summary: 'show the WebGPU device, its limits and features, and check every kernel against its CPU reference',
  async run(argv: string[]): Promise<number> {
    const flags = parseDeviceFlags(argv);
    let json = false;
    let checks = true;
    for (const a of flags.rest) {
      if (a === '--json') json = true;
      else if (a === '--no-checks') checks = false;
      else if (a === '--help' || a === '-h') {
        console.log(USAGE);
        return 0;
      } else throw new UserError(`doctor: unknown option '${a}'\n${USAGE}`);
    }
    const acq = await acquireDevice({ adapter: flags.adapter, limits: flags.limits });
    try {
      const dev = acq.device;
      const limits: Record<string, number> = {};
      const devLimits = dev.limits as unknown as Record<string, number>;
      const adLimits = acq.adapter.limits as unknown as Record<string, number>;
      const adapterLimits: Record<string, number> = {};
      for (const k of LIMIT_NAMES) {
        if (typeof devLimits[k] === 'number') limits[k] = devLimits[k];
        if (typeof adLimits[k] === 'number') adapterLimits[k] = adLimits[k];
      }
      const features = [...dev.features].sort();
      const adapterFeatures = [...acq.adapter.features].sort();
      const report = {
        runtime: detectRuntime(),
        runtimeVersion: runtimeVersion(),
        adapter: acq.label,
        name: acq.name,
        backend: acq.backend,
        featureLevel: acq.featureLevel,
        software: acq.software,
        info: acq.info,
        limitsMode: acq.limitsMode,
        limits,
        adapterLimits,
        features,
        adapterFeatures,
        candidates: acq.candidates,
        checks: [] as KernelCheckResult[],
        pass: true,
      };
      if (!json) {
        const L: string[] = [];
        L.push(`runtime        ${report.runtimeVersion}`);
        L.push(`adapter        ${acq.label}${acq.software ? '  (software)' : ''}`);
        L.push(`candidate      ${acq.name}   (--adapter / SHINE_ADAPTER to choose)`);
        L.push(`backend        ${acq.backend}`);
        L.push(`feature level  ${acq.featureLevel}`);
        L.push(`vendor         ${acq.info.vendor || '-'}`);
        L.push(`architecture   ${acq.info.architecture || '-'}`);
        L.push(`device         ${acq.info.device || '-'}`);
        L.push(`description    ${acq.info.description || '-'}`);
        L.push(`fallback       ${acq.info.isFallbackAdapter}`);
        L.push('candidates:');
        for (const c of acq.candidates) {
          L.push(`  ${c.name.padEnd(18)} ${c.found ? `${c.label}${c.software ? ' (software)' : ''}` : `- ${c.reason}`}`);
        }
        L.push(`limits (${acq.limitsMode}; adapter maximum in brackets):`);
        for (const k of Object.keys(limits)) {
          const a = adapterLimits[k];
          L.push(`  ${k.padEnd(36)} ${String(limits[k]).padStart(12)}${a !== undefined && a !== limits[k] ? `  [${a}]` : ''}`);
        }
        L.push(`features: ${features.join(', ') || '(none)'}`);
        const extra = adapterFeatures.filter((f) => !features.includes(f));
        if (extra.length) L.push(`adapter also offers: ${extra.join(', ')}`);
        console.log(L.join('\n'));
      }
      if (checks) {
        if (!json) console.log('kernel checks (max error vs tolerance):');
        const results = await runKernelChecks(dev, (r) => {
          if (!json) {
            console.log(
              `  ${r.pass ? 'PASS' : 'FAIL'}  ${r.name.padEnd(40)} ${fmtNum(r.maxError).padStart(9)} <= ${fmtNum(r.tolerance).padEnd(9)} ${r.ms.toFixed(0).padStart(6)} ms${r.detail ? `  ${r.detail}` : ''}`,
            );
          }
        });
        report.checks = results;
        report.pass = results.every((r) => r.pass);
        if (!json) {
          const failed = results.filter((r) => !r.pass).length;
          console.log(
            results.length === 0
              ? 'no kernel checks are registered (engine/gpu/checks.ts)'
              : failed
                ? `${failed} of ${results.length} kernel checks FAILED on this device`
                : `all ${results.length} kernel checks passed`,
          );
        }
      }
      if (json) console.log(JSON.stringify(report, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v)));
      return report.pass ? 0 : 1;
    } finally {
      acq.release();
    }
  },
};

export default doctor;

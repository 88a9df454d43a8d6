/**
 * Browser platform layer (page or Web Worker): `navigator.gpu`, preferring a high-performance
 * adapter at the core feature level, falling back to the compatibility feature level, then to a
 * fallback (software) adapter. The browser chooses the physical adapter itself; `adapter` here
 * may be 'auto', 'core', 'compatibility', 'fallback' or a substring of the adapter description.
 */
import {
  DeviceError,
  resolveChoice,
  resolveLimits,
  selectAndRequest,
  type AcquireOptions,
  type AcquiredDevice,
  type Candidate,
  type FeatureLevel,
} from '../device-select.ts';

export type { AcquireOptions, AcquiredDevice } from '../device-select.ts';

function candidate(name: string, featureLevel: FeatureLevel, forceFallbackAdapter: boolean, softwareRank: number): Candidate {
  return {
    name,
    auto: true,
    canBeHardware: !forceFallbackAdapter,
    softwareRank,
    async probe() {
      const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
      if (!gpu) {
        return {
          ok: false,
          reason:
            'navigator.gpu is missing: this browser has no WebGPU, or the page is not a secure context ' +
            '(serve it from https:// or http://127.0.0.1 / localhost)',
        };
      }
      const options: GPURequestAdapterOptions & { featureLevel?: string } = { powerPreference: 'high-performance' };
      if (featureLevel === 'compatibility') options.featureLevel = 'compatibility';
      if (forceFallbackAdapter) options.forceFallbackAdapter = true;
      const adapter = await gpu.requestAdapter(options);
      if (!adapter) return { ok: false, reason: `no ${featureLevel}${forceFallbackAdapter ? ' fallback' : ''} adapter` };
      // A compatibility request may still return a core adapter; report what we got.
      const isCore = (adapter.features as ReadonlySet<string>).has('core-features-and-limits') || featureLevel === 'core';
      return { ok: true, value: { adapter, backend: 'browser', featureLevel: isCore ? 'core' : 'compatibility' } };
    },
  };
}

export function browserCandidates(): Candidate[] {
  // A hardware adapter at the core level wins at once. Without one, the compatibility request is
  // preferred: in Chromium it can reach Dawn's OpenGL ES backend on Mesa llvmpipe, faster than
  // the SwiftShader adapter a core request gets (docs/devices.md).
  return [candidate('core', 'core', false, 2), candidate('compatibility', 'compatibility', false, 1), candidate('fallback', 'core', true, 3)];
}

export async function acquireBrowserDevice(opts: AcquireOptions = {}): Promise<AcquiredDevice> {
  const choice = resolveChoice(opts.adapter, undefined);
  const limitsMode = resolveLimits(opts.limits, undefined);
  try {
    return await selectAndRequest('browser', browserCandidates(), { ...opts, choice, limitsMode, log: opts.log ?? ((s) => console.info(s)) });
  } catch (e) {
    if (e instanceof DeviceError) {
      throw new DeviceError(
        `${e.message}\nIn Chromium without a GPU, start it with --enable-unsafe-webgpu --enable-unsafe-swiftshader ` +
          '--use-webgpu-adapter=swiftshader (see docs/devices.md).',
      );
    }
    throw e;
  }
}

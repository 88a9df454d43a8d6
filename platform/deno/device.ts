/**
 * Deno platform layer. Candidates, in preference order:
 *   native       Deno's own navigator.gpu (wgpu): a hardware GPU, or Mesa lavapipe (Vulkan on the
 *                CPU, packages libvulkan1 mesa-vulkan-drivers) on a machine without one;
 *   dawn-*       npm:webgpu (Dawn) exactly as in Node: dawn-vulkan, dawn-opengl (Mesa llvmpipe,
 *                compatibility), dawn-opengles, dawn-swiftshader. Needs `deno run -A` (native addon).
 * 'auto' takes a hardware GPU first, then the fastest software adapter (dawn-opengl on llvmpipe
 * ≈ 1.4× lavapipe, see docs/devices.md). `--adapter native` forces wgpu.
 */
import {
  resolveChoice,
  resolveLimits,
  selectAndRequest,
  type AcquireOptions,
  type AcquiredDevice,
  type Candidate,
} from '../device-select.ts';
import { linuxGpuNodes } from '../node/gpu-nodes.ts';

export type { AcquireOptions, AcquiredDevice } from '../device-select.ts';

function denoEnv(name: string): string | undefined {
  const d = (globalThis as { Deno?: { env: { get(k: string): string | undefined } } }).Deno;
  try {
    return d ? d.env.get(name) : undefined;
  } catch {
    return undefined; // no --allow-env
  }
}

function nativeCandidate(): Candidate {
  return {
    name: 'native',
    aliases: ['wgpu', 'deno'],
    auto: true,
    canBeHardware: true,
    softwareRank: 2,
    async probe() {
      const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
      if (!gpu) return { ok: false, reason: 'navigator.gpu is not available in this Deno' };
      const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
      if (!adapter) return { ok: false, reason: 'wgpu found no adapter (Vulkan: install libvulkan1 mesa-vulkan-drivers)' };
      return { ok: true, value: { adapter, backend: 'wgpu', featureLevel: 'core' } };
    },
  };
}

/** npm:webgpu candidates, loaded only when probed (so native-only use never loads Dawn). */
function lazyDawnCandidates(): Candidate[] {
  const names: Array<[string, boolean, boolean, number, string[]]> = [
    // name, auto, canBeHardware, softwareRank, aliases
    ['vulkan', true, true, 2, []],
    ['opengl', true, true, 1, ['dawn-gl', 'opengl', 'gl', 'llvmpipe']],
    ['opengles', false, true, 1, ['dawn-gles', 'opengles', 'gles']],
    ['swiftshader', true, false, 3, ['swiftshader']],
  ];
  return names.map(([n, auto, canBeHardware, softwareRank, aliases]) => ({
    name: 'dawn-' + n,
    aliases: n === 'vulkan' ? ['dawn', 'vulkan'] : aliases,
    auto,
    autoSkip:
      n === 'vulkan'
        ? () => (process.platform !== 'linux' || linuxGpuNodes().length ? null : 'skipped: no GPU device node (/dev/dri/renderD*, /dev/nvidia*)')
        : undefined,
    canBeHardware,
    softwareRank,
    async probe() {
      let mod: typeof import('../node/dawn.ts');
      try {
        mod = await import('../node/dawn.ts');
      } catch (e) {
        return { ok: false, reason: `npm:webgpu could not be loaded (run npm ci; deno run -A): ${(e as Error)?.message ?? e}` };
      }
      const c = mod.dawnCandidates('dawn-').find((x) => x.name === 'dawn-' + n);
      if (!c) return { ok: false, reason: `Dawn has no ${n} backend on this platform` };
      return c.probe();
    },
  }));
}

export function denoCandidates(): Candidate[] {
  return [nativeCandidate(), ...lazyDawnCandidates()];
}

export async function acquireDenoDevice(opts: AcquireOptions = {}): Promise<AcquiredDevice> {
  const choice = resolveChoice(opts.adapter, denoEnv('SHINE_ADAPTER'));
  const limitsMode = resolveLimits(opts.limits, denoEnv('SHINE_LIMITS'));
  return selectAndRequest('deno', denoCandidates(), { ...opts, choice, limitsMode });
}

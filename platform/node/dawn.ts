/**
 * Dawn (npm `webgpu`) adapter candidates, shared by the Node layer and Deno's `npm:webgpu` path.
 *
 * - the platform's primary backend (Vulkan on Linux, Metal on macOS, D3D12 on Windows): hardware GPUs.
 *   Dawn refuses Debian 12's lavapipe (missing shaderUniform*ArrayDynamicIndexing), so on a machine
 *   without a GPU this finds nothing.
 * - OpenGL (desktop GL, compatibility feature level) through EGL: Mesa llvmpipe when there is no GPU
 *   (EGL_PLATFORM=surfaceless so no display is needed) — the fastest software adapter here.
 * - SwiftShader (Vulkan on the CPU) through the ICD Debian's chromium ships: VK_ICD_FILENAMES is set
 *   only while that Dawn instance is created (the Vulkan loader reads it at instance creation).
 */
import { existsSync } from 'node:fs';
import { create, globals } from 'webgpu';
import type { Candidate, Probed, ProbeResult } from '../device-select.ts';
import { linuxGpuNodes } from './gpu-nodes.ts';

type Gpu = ReturnType<typeof create>;

let globalsInstalled = false;
/** Dawn's GPUBufferUsage/GPUMapMode/… constants, where the runtime has none of its own (Node). */
export function installDawnGlobals(): void {
  if (globalsInstalled) return;
  globalsInstalled = true;
  const g = globalThis as Record<string, unknown>;
  for (const [k, v] of Object.entries(globals as Record<string, unknown>)) {
    if (g[k] === undefined) g[k] = v;
  }
}

export const SWIFTSHADER_ICD_PATHS = [
  '/usr/lib/chromium/vk_swiftshader_icd.json', // Debian / Ubuntu chromium
  '/usr/lib64/chromium-browser/vk_swiftshader_icd.json', // Fedora
  '/usr/lib/chromium-browser/vk_swiftshader_icd.json',
  '/opt/google/chrome/vk_swiftshader_icd.json',
];

export function findSwiftShaderIcd(): string | null {
  const own = process.env.SHINE_SWIFTSHADER_ICD;
  if (own) return existsSync(own) ? own : null;
  return SWIFTSHADER_ICD_PATHS.find((p) => existsSync(p)) ?? null;
}

function primaryBackend(): string {
  return process.platform === 'darwin' ? 'metal' : process.platform === 'win32' ? 'd3d12' : 'vulkan';
}

async function requestOn(gpu: Gpu, backend: string, featureLevels: Array<'core' | 'compatibility'>): Promise<ProbeResult> {
  for (const featureLevel of featureLevels) {
    const adapter = await gpu.requestAdapter({ featureLevel, powerPreference: 'high-performance' });
    if (adapter) {
      const value: Probed = { adapter, backend, featureLevel, keepAlive: gpu };
      return { ok: true, value };
    }
  }
  return { ok: false, reason: `Dawn found no ${backend} adapter` };
}

/** Run `fn` with some environment variables set, restoring them afterwards. */
async function withEnv<T>(vars: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  const saved: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(vars)) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

/** Dawn candidates in preference order. `prefix` distinguishes them in Deno ('dawn-'). */
export function dawnCandidates(prefix = ''): Candidate[] {
  const primary = primaryBackend();
  const cands: Candidate[] = [
    {
      name: prefix + primary,
      aliases: prefix ? [] : ['gpu', 'hardware'],
      auto: true,
      canBeHardware: true,
      softwareRank: 2, // lavapipe, if a newer Dawn/Mesa accepts it
      autoSkip() {
        if (process.platform !== 'linux' || process.env.VK_ICD_FILENAMES || process.env.VK_DRIVER_FILES) return null;
        return linuxGpuNodes().length ? null : 'skipped: no GPU device node (/dev/dri/renderD*, /dev/nvidia*); --adapter vulkan probes it anyway';
      },
      async probe() {
        installDawnGlobals();
        return requestOn(create([`backend=${primary}`]), primary, ['core', 'compatibility']);
      },
    },
    {
      name: prefix + 'opengl',
      aliases: prefix ? [prefix + 'gl'] : ['gl', 'llvmpipe'],
      auto: process.platform === 'linux',
      canBeHardware: true,
      softwareRank: 1,
      async probe() {
        installDawnGlobals();
        if (process.platform === 'linux' && !process.env.EGL_PLATFORM) process.env.EGL_PLATFORM = 'surfaceless';
        return requestOn(create(['backend=opengl']), 'opengl', ['compatibility']);
      },
    },
    {
      name: prefix + 'opengles',
      aliases: prefix ? [prefix + 'gles'] : ['gles'],
      auto: false,
      canBeHardware: true,
      softwareRank: 1,
      async probe() {
        installDawnGlobals();
        if (process.platform === 'linux' && !process.env.EGL_PLATFORM) process.env.EGL_PLATFORM = 'surfaceless';
        return requestOn(create(['backend=opengles']), 'opengles', ['compatibility']);
      },
    },
  ];
  if (process.platform === 'linux') {
    cands.push({
      name: prefix + 'swiftshader',
      aliases: prefix ? [] : ['swiftshader-vulkan'],
      auto: true,
      canBeHardware: false,
      softwareRank: 3,
      async probe() {
        const icd = findSwiftShaderIcd();
        if (!icd) {
          return {
            ok: false,
            reason: `no SwiftShader Vulkan ICD (looked for ${SWIFTSHADER_ICD_PATHS[0]}; install chromium or set SHINE_SWIFTSHADER_ICD)`,
          };
        }
        installDawnGlobals();
        return withEnv({ VK_ICD_FILENAMES: icd, VK_DRIVER_FILES: icd }, async () =>
          requestOn(create(['backend=vulkan']), 'vulkan', ['core', 'compatibility']),
        );
      },
    });
  }
  return cands;
}

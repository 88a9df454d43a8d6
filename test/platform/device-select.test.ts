/**
 * Device selection: the automatic choice (hardware first, then the fastest software adapter), the
 * --adapter flag / SHINE_ADAPTER overrides and their errors — first on fake candidates (pure logic),
 * then on the real Dawn adapters of this machine, then through the CLI in a child process.
 */
import { describe, it, expect, afterEach } from 'vitest';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  DeviceError,
  parseDeviceFlags,
  resolveChoice,
  selectAndRequest,
  type Candidate,
  type ProbeResult,
} from '../../platform/device-select.ts';
import { acquireNodeDevice } from '../../platform/node/device.ts';
import { findSwiftShaderIcd } from '../../platform/node/dawn.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** A fake adapter whose requestDevice records the limits it was asked for. */
function fakeAdapter(description: string, fallback = false) {
  const asked: Array<GPUDeviceDescriptor | undefined> = [];
  const adapter = {
    info: { vendor: 'v', architecture: '', device: '', description, isFallbackAdapter: fallback },
    limits: { maxComputeInvocationsPerWorkgroup: 1024, maxComputeWorkgroupStorageSize: 32768, maxBufferSize: 1 << 30, maxStorageBufferBindingSize: 2 ** 31 },
    features: new Set<string>(['shader-f16', 'texture-compression-bc']),
    async requestDevice(d?: GPUDeviceDescriptor) {
      asked.push(d);
      return { destroy() {}, lost: new Promise(() => {}) } as unknown as GPUDevice;
    },
  };
  return { adapter: adapter as unknown as GPUAdapter, asked };
}

function cand(name: string, o: { hw: boolean; rank: number; result: string | null; fallback?: boolean; auto?: boolean }, probes: string[]): Candidate {
  return {
    name,
    auto: o.auto ?? true,
    canBeHardware: o.hw,
    softwareRank: o.rank,
    async probe(): Promise<ProbeResult> {
      probes.push(name);
      if (o.result === null) return { ok: false, reason: `${name} absent` };
      return { ok: true, value: { adapter: fakeAdapter(o.result, o.fallback).adapter, backend: name, featureLevel: 'core' } };
    },
  };
}

const quiet = { quiet: true, limitsMode: 'adapter' as const };

describe('selection logic (fake adapters)', () => {
  it('auto: a hardware adapter wins over an earlier software one', async () => {
    const probes: string[] = [];
    const c = [
      cand('a', { hw: true, rank: 2, result: 'llvmpipe (LLVM 15)' }, probes),
      cand('b', { hw: true, rank: 1, result: 'NVIDIA H100' }, probes),
      cand('c', { hw: false, rank: 3, result: 'SwiftShader' }, probes),
    ];
    const got = await selectAndRequest('node', c, { ...quiet, choice: 'auto' });
    expect(got.name).toBe('b');
    expect(got.software).toBe(false);
    expect(probes).toEqual(['a', 'b']); // stops at the first hardware adapter
  });

  it('auto: without hardware, the software adapter with the best rank; slower ones are not probed', async () => {
    const probes: string[] = [];
    const c = [
      cand('vulkan', { hw: true, rank: 2, result: null }, probes),
      cand('native', { hw: true, rank: 2, result: 'lavapipe', fallback: true }, probes),
      cand('opengl', { hw: true, rank: 1, result: 'llvmpipe-llvm-15' }, probes),
      cand('swiftshader', { hw: false, rank: 3, result: 'SwiftShader driver' }, probes),
    ];
    const got = await selectAndRequest('node', c, { ...quiet, choice: 'auto' });
    expect(got.name).toBe('opengl');
    expect(got.software).toBe(true);
    expect(probes).toEqual(['vulkan', 'native', 'opengl']);
    expect(got.candidates.map((r) => r.name)).toEqual(['vulkan', 'native', 'opengl', 'swiftshader']);
  });

  it('a name picks that candidate even when auto would not; a substring matches the description', async () => {
    const probes: string[] = [];
    const c = [cand('opengl', { hw: true, rank: 1, result: 'llvmpipe' }, probes), cand('swiftshader', { hw: false, rank: 3, result: 'SwiftShader driver 5' }, probes)];
    expect((await selectAndRequest('node', c, { ...quiet, choice: 'swiftshader' })).name).toBe('swiftshader');
    expect((await selectAndRequest('node', c, { ...quiet, choice: 'DRIVER 5' })).name).toBe('swiftshader');
  });

  it('an impossible name gives a DeviceError listing the names and what was found', async () => {
    const c = [cand('opengl', { hw: true, rank: 1, result: 'llvmpipe' }, [])];
    const err = await selectAndRequest('node', c, { ...quiet, choice: 'quantum' }).catch((e) => e);
    expect(err).toBeInstanceOf(DeviceError);
    expect(err.message).toMatch(/no adapter matches 'quantum'/);
    expect(err.message).toMatch(/opengl: .*llvmpipe/);
  });

  it('no adapter at all: the error names the Debian packages and the setup script', async () => {
    const c = [cand('vulkan', { hw: true, rank: 2, result: null }, [])];
    const err = await selectAndRequest('node', c, { ...quiet, choice: 'auto' }).catch((e) => e);
    expect(err).toBeInstanceOf(DeviceError);
    for (const p of ['libegl-mesa0', 'libgl1-mesa-dri', 'mesa-vulkan-drivers', 'chromium', 'scripts/setup-debian.sh']) expect(err.message).toContain(p);
  });

  it('adapter limits mode asks for the adapter maxima; default mode asks for nothing', async () => {
    const f = fakeAdapter('x');
    const c: Candidate = { name: 'x', auto: true, canBeHardware: true, softwareRank: 1, probe: async () => ({ ok: true, value: { adapter: f.adapter, backend: 'x', featureLevel: 'core' } }) };
    await selectAndRequest('node', [c], { quiet: true, choice: 'auto', limitsMode: 'adapter' });
    const lim = f.asked[0]!.requiredLimits as Record<string, number>;
    expect(lim.maxComputeInvocationsPerWorkgroup).toBe(1024);
    expect(lim.maxComputeWorkgroupStorageSize).toBe(32768);
    expect(lim.maxStorageBufferBindingSize).toBe(1 << 30); // clamped to maxBufferSize
    expect(f.asked[0]!.requiredFeatures).toEqual(['shader-f16']);
    await selectAndRequest('node', [c], { quiet: true, choice: 'auto', limitsMode: 'default' });
    expect(f.asked[1]!.requiredLimits).toEqual({});
    expect(f.asked[1]!.requiredFeatures).toEqual([]);
  });

  it('flags and environment', () => {
    expect(parseDeviceFlags(['--json', '--adapter', 'opengl', '--limits=default', 'x'])).toEqual({ adapter: 'opengl', limits: 'default', rest: ['--json', 'x'] });
    expect(parseDeviceFlags(['--adapter=swiftshader']).adapter).toBe('swiftshader');
    expect(() => parseDeviceFlags(['--adapter'])).toThrow(DeviceError);
    expect(() => parseDeviceFlags(['--limits', 'huge'])).toThrow(/adapter' or 'default/);
    expect(resolveChoice(undefined, undefined)).toBe('auto');
    expect(resolveChoice(undefined, 'opengl')).toBe('opengl');
    expect(resolveChoice('swiftshader', 'opengl')).toBe('swiftshader'); // the flag beats the env
  });
});

describe('real Dawn adapters on this machine', () => {
  const saved = process.env.SHINE_ADAPTER;
  afterEach(() => {
    if (saved === undefined) delete process.env.SHINE_ADAPTER;
    else process.env.SHINE_ADAPTER = saved;
  });

  it('opengl when asked: Dawn OpenGL at the compatibility level, spec default limits in default mode', async () => {
    const a = await acquireNodeDevice({ adapter: 'opengl', limits: 'default', quiet: true });
    try {
      expect(a.backend).toBe('opengl');
      expect(a.featureLevel).toBe('compatibility');
      // WebGPU compatibility-mode defaults (spec): 128 invocations, 16 KiB workgroup storage.
      expect(a.device.limits.maxComputeInvocationsPerWorkgroup).toBe(128);
      expect(a.device.limits.maxComputeWorkgroupStorageSize).toBe(16384);
    } finally {
      a.release();
    }
  });

  it('adapter limits mode gets the adapter maxima', async () => {
    const a = await acquireNodeDevice({ adapter: 'opengl', limits: 'adapter', quiet: true });
    try {
      expect(a.device.limits.maxComputeInvocationsPerWorkgroup).toBe(a.adapter.limits.maxComputeInvocationsPerWorkgroup);
      expect(a.device.limits.maxComputeWorkgroupStorageSize).toBe(a.adapter.limits.maxComputeWorkgroupStorageSize);
    } finally {
      a.release();
    }
  });

  it('SHINE_ADAPTER is honoured, and an impossible value fails clearly', async () => {
    process.env.SHINE_ADAPTER = 'opengl';
    const a = await acquireNodeDevice({ quiet: true });
    expect(a.name).toBe('opengl');
    a.release();
    process.env.SHINE_ADAPTER = 'no-such-adapter-xyz';
    const err = await acquireNodeDevice({ quiet: true }).catch((e) => e);
    expect(err).toBeInstanceOf(DeviceError);
    expect(err.message).toMatch(/no adapter matches 'no-such-adapter-xyz'/);
  });

  it.skipIf(!findSwiftShaderIcd())('swiftshader when asked: Dawn Vulkan on the SwiftShader ICD', async () => {
    const a = await acquireNodeDevice({ adapter: 'swiftshader', quiet: true });
    try {
      expect(a.backend).toBe('vulkan');
      expect(a.software).toBe(true);
      expect(a.info.description.toLowerCase()).toContain('swiftshader');
    } finally {
      a.release();
    }
  });
});

describe('shine doctor in a child process', () => {
  function shine(args: string[], env: Record<string, string> = {}) {
    return spawnSync(process.execPath, ['--import', 'tsx', 'cli/shine.ts', ...args], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      encoding: 'utf8',
      timeout: 240_000,
    });
  }

  it('doctor --json exits 0 by itself, with every field, and all kernel checks passing', () => {
    const r = shine(['doctor', '--json']);
    expect(r.error ?? null).toBeNull(); // not killed by the timeout: the process exits cleanly
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/shine: device .+/);
    const j = JSON.parse(r.stdout);
    expect(j.runtime).toBe('node');
    expect(j.runtimeVersion).toBe(`node ${process.version}`);
    for (const k of ['adapter', 'name', 'backend', 'featureLevel', 'info', 'limits', 'features', 'checks', 'candidates']) expect(j).toHaveProperty(k);
    for (const k of ['vendor', 'architecture', 'device', 'description', 'isFallbackAdapter']) expect(j.info).toHaveProperty(k);
    expect(j.limits.maxComputeInvocationsPerWorkgroup).toBeGreaterThanOrEqual(128);
    expect(j.checks.length).toBeGreaterThan(0);
    expect(j.checks.every((c: { pass: boolean }) => c.pass)).toBe(true);
    expect(j.pass).toBe(true);
  });

  it('SHINE_ADAPTER=opengl and --adapter choose; a bad name exits 1 with the list', () => {
    const a = shine(['doctor', '--json', '--no-checks'], { SHINE_ADAPTER: 'opengl' });
    expect(a.status, a.stderr).toBe(0);
    expect(JSON.parse(a.stdout).name).toBe('opengl');
    const b = shine(['doctor', '--no-checks', '--adapter', 'bogus-gpu']);
    expect(b.status).toBe(1);
    expect(b.stderr).toMatch(/no adapter matches 'bogus-gpu'/);
  });
});

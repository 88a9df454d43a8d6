/**
 * Kernel descriptors (engine/gpu/kernel.ts): the generated WGSL declarations and explicit layout,
 * binding by name with its errors, and a GPU round trip — records packed on the host by the
 * struct table (engine/gpu/struct.ts) are read by a tiny kernel through the generated struct
 * declaration, copied field by field and changed in a known way, and read back and unpacked: any
 * disagreement between the host layout and the WGSL compiler's shows up as wrong fields.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { testDevice } from '../helpers/device.ts';
import { createKernelPipeline, defineKernel, f32, i32, read, readWrite, u32, uniform } from '../../engine/gpu/kernel.ts';
import { defineStruct } from '../../engine/gpu/struct.ts';
import { BufferUsage, MapModeRead } from '../../engine/gpu/usage.ts';
import { pairSetupKernel } from '../../engine/gpu/render/render.wgsl.ts';

// every alignment case the engine's records use, and vec3's (12 bytes, align 16) trap
const REC = defineStruct('Rec', { a: 'u32', b: 'vec2f', c: 'i32', d: 'vec4f', e: 'f32', f: 'vec3f', g: 'u32', h: 'vec2i' });
const PARAMS = defineStruct('Params', { count: 'u32', shift: 'i32', scale: 'f32' });

const copyKernel = (wg: number) =>
  defineKernel({
    name: 'copy-records',
    bindings: {
      input: read({ array: REC }),
      output: readWrite({ array: REC }),
      params: uniform(PARAMS),
      unused: read('array<f32>', 'declared, never read: an explicit layout keeps it'),
    },
    workgroupSize: wg,
    constants: { BIAS: u32(1000), NEG: i32(-3), HALF: f32(0.5) },
    body: /* wgsl */ `
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x;
  if (i >= params.count) { return; }
  var r = input[i];
  r.a = r.a + BIAS + i;
  r.b = r.b * params.scale;
  r.c = r.c + params.shift + NEG;
  r.d = r.d.wzyx;
  r.e = r.e + HALF;
  r.f = r.f * 2.0;
  r.g = r.g * 3u;
  r.h = -r.h;
  output[i] = r;
}
`,
  });

describe('kernel descriptor → WGSL and layout (no device)', () => {
  it('emits WG and the constants, the structs the bindings name, and @group(0) @binding(i) in declaration order', () => {
    const k = copyKernel(64);
    expect(k.bindingNames).toEqual(['input', 'output', 'params', 'unused']);
    const lines = k.code.split('\n');
    expect(lines).toContain('const WG: u32 = 64u;');
    expect(lines).toContain('const BIAS: u32 = 1000u;');
    expect(lines).toContain('const NEG: i32 = -3;');
    expect(lines).toContain('const HALF: f32 = 0.5;');
    expect(k.code).toContain(REC.wgsl);
    expect(k.code).toContain(PARAMS.wgsl);
    expect(lines).toContain('@group(0) @binding(0) var<storage, read> input: array<Rec>;');
    expect(lines).toContain('@group(0) @binding(1) var<storage, read_write> output: array<Rec>;');
    expect(lines).toContain('@group(0) @binding(2) var<uniform> params: Params;');
    expect(k.code).toMatch(/@compute @workgroup_size\(WG\)\nfn main\(/);
    expect(k.layoutEntries.map((e) => [e.binding, e.buffer?.type])).toEqual([
      [0, 'read-only-storage'],
      [1, 'storage'],
      [2, 'uniform'],
      [3, 'read-only-storage'],
    ]);
  });

  it('the render kernels take their constants from TypeScript (M, alias orders, workgroup size)', () => {
    const k = pairSetupKernel({ m: 96, workgroupSize: 128, aliasOrders: 1 });
    const lines = k.code.split('\n');
    expect(lines).toContain('const M: u32 = 96u;');
    expect(lines).toContain('const WG: u32 = 128u;');
    expect(lines).toContain('const NA: i32 = 1;');
    expect(lines).toContain('const O: u32 = 3u;');
    // phase table: 2M entries + 2(2N+1) alias factors
    expect(lines).toContain(`const PH: u32 = ${2 * 96 + 2 * 3}u;`);
    expect(k.bindingNames).toEqual(['pairs', 'src', 'derived', 'phases', 'batch']);
  });

  it('refuses a body that declares its own bindings or has no main, and a u32 constant that is not a non-negative integer', () => {
    const base = { name: 'k', bindings: { x: read('array<f32>') }, workgroupSize: 1 };
    expect(() => defineKernel({ ...base, body: '@group(0) @binding(1) var<uniform> y: u32;\nfn main() {}' })).toThrow(/declares its own/);
    expect(() => defineKernel({ ...base, body: 'fn notmain() {}' })).toThrow(/no 'fn main\('/);
    expect(() => defineKernel({ ...base, constants: { C: u32(-1) }, body: 'fn main() {}' })).toThrow(/non-negative/);
    expect(() => defineKernel({ ...base, constants: { C: u32(1.5) }, body: 'fn main() {}' })).toThrow(/integer/);
  });
});

describe('kernel descriptor on the GPU', () => {
  let device: GPUDevice;
  beforeAll(async () => {
    device = await testDevice();
  });

  it('records packed by the host table round-trip through the generated WGSL struct', async () => {
    const n = 5;
    const recs = Array.from({ length: n }, (_, i) => ({
      a: 10 * i + 1,
      b: [0.25 * i, -1.5],
      c: -7 * i,
      d: [1 + i, 2 + i, 3 + i, 4 + i],
      e: 0.1 * i,
      f: [i, -i, 0.5 + i],
      g: 0xfffff + i,
      h: [i, -2 * i],
    }));
    const kp = await createKernelPipeline(device, copyKernel(64));
    const mk = (data: ArrayBuffer, usage: number) => {
      const b = device.createBuffer({ size: Math.max(16, data.byteLength), usage: usage | BufferUsage.COPY_DST });
      device.queue.writeBuffer(b, 0, data);
      return b;
    };
    const input = mk(REC.packAll(recs), BufferUsage.STORAGE);
    const output = device.createBuffer({ size: n * REC.size, usage: BufferUsage.STORAGE | BufferUsage.COPY_SRC });
    const params = mk(PARAMS.packAll([{ count: n, shift: 4, scale: 2 }]), BufferUsage.UNIFORM);
    const unused = mk(new ArrayBuffer(16), BufferUsage.STORAGE);
    const read = device.createBuffer({ size: n * REC.size, usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST });
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.setPipeline(kp.pipeline);
    pass.setBindGroup(0, kp.bind({ input, output, params, unused }));
    pass.dispatchWorkgroups(1);
    pass.end();
    enc.copyBufferToBuffer(output, 0, read, 0, n * REC.size);
    device.queue.submit([enc.finish()]);
    await read.mapAsync(MapModeRead);
    const out = read.getMappedRange().slice(0);
    read.unmap();
    for (const b of [input, output, params, unused, read]) b.destroy();
    recs.forEach((r, i) => {
      const got = REC.unpack(out, i);
      expect(got.a).toBe(r.a + 1000 + i);
      expect(got.b).toEqual([Math.fround(0.25 * i) * 2, -3]);
      expect(got.c).toBe(-7 * i + 4 - 3);
      expect(got.d).toEqual([...r.d].reverse());
      expect(got.e).toBe(Math.fround(Math.fround(0.1 * i) + 0.5));
      expect(got.f).toEqual(r.f.map((x) => 2 * Math.fround(x)));
      expect(got.g).toBe(((r.g * 3) >>> 0));
      expect(got.h).toEqual([i === 0 ? 0 : -i, 2 * i]);
    });
  });

  it('bind by name: a missing and an unknown name are both reported', async () => {
    const kp = await createKernelPipeline(device, copyKernel(64));
    const b = device.createBuffer({ size: 64, usage: BufferUsage.STORAGE });
    try {
      expect(() => kp.bind({ input: b, output: b, params: b, extra: b } as never)).toThrow(/missing unused; unknown extra \(bindings: input, output, params, unused\)/);
    } finally {
      b.destroy();
    }
  });
});

/**
 * A compute kernel as a descriptor (after tfjs-backend-webgpu's `makeShader`): its name, its
 * bindings by name with their access and WGSL type, its constants, its workgroup size and its
 * WGSL body. From the one descriptor come both sides of the GPU contract:
 *
 *  - the WGSL module: constants (`const M: u32 = 64u;`, `WG` = the workgroup size), the structs
 *    the bindings use, `@group(0) @binding(i) var<…> name: type;` in declaration order, the
 *    body's helpers and `@compute @workgroup_size(WG)` before its `fn main`;
 *  - an explicit GPUBindGroupLayout and pipeline layout (no `layout: 'auto'`: a binding that the
 *    body happens not to use stays in the layout, and the layout does not depend on the compiler);
 *  - `bind({ name: buffer, … })`: a bind group by name, refused with the names missing or unknown.
 *
 * Nothing here needs a device until `createKernelPipeline`, so the WGSL text and the layout
 * entries are plain values tests can inspect.
 */
import type { StructLayout } from './struct.ts';

/** GPUShaderStage.COMPUTE as its spec value (the GPU* globals may not be installed at import). */
const COMPUTE_STAGE = 0x4;

export type BindingAccess = 'read' | 'read_write' | 'uniform';

/** A binding's WGSL type: text (`array<vec4f>`, `vec4u`), a struct, or an array of a struct. */
export type BindingType = string | StructLayout | { array: StructLayout };

export interface BindingDecl {
  access: BindingAccess;
  type: BindingType;
  /** Why the binding is there / what it holds (emitted as a WGSL comment). */
  note?: string;
}

/** `var<storage, read>`. */
export const read = (type: BindingType, note?: string): BindingDecl => ({ access: 'read', type, note });
/** `var<storage, read_write>`. */
export const readWrite = (type: BindingType, note?: string): BindingDecl => ({ access: 'read_write', type, note });
/** `var<uniform>`. */
export const uniform = (type: BindingType, note?: string): BindingDecl => ({ access: 'uniform', type, note });

/** A WGSL module-scope constant injected from TypeScript. */
export interface KernelConstant {
  type: 'u32' | 'i32' | 'f32';
  value: number;
}
export const u32 = (value: number): KernelConstant => ({ type: 'u32', value });
export const i32 = (value: number): KernelConstant => ({ type: 'i32', value });
export const f32 = (value: number): KernelConstant => ({ type: 'f32', value });

export interface KernelDescriptor<B extends Record<string, BindingDecl>> {
  name: string;
  /** Bindings by name; binding index = declaration order. */
  bindings: B;
  /** Invocations per workgroup (x), emitted as the constant WG and `@workgroup_size(WG)`. */
  workgroupSize: number;
  /** Constants (besides WG) in the order given. */
  constants?: Record<string, KernelConstant>;
  /** Structs the body uses beyond those the bindings name. */
  structs?: readonly StructLayout[];
  /** Shared WGSL pieces (helpers written once, e.g. the frequency helpers) placed before `body`. */
  shared?: readonly string[];
  /** The kernel's own WGSL: helper functions and workgroup variables, then `fn main(…) { … }`. */
  body: string;
}

/** A kernel's generated WGSL and layout, before any device is involved. */
export interface Kernel<N extends string = string> {
  readonly name: string;
  readonly code: string;
  readonly bindingNames: readonly N[];
  readonly layoutEntries: readonly GPUBindGroupLayoutEntry[];
  readonly workgroupSize: number;
}

/** What `bind` accepts for one name: a whole buffer or a range of one. */
export type BindingResource = GPUBuffer | GPUBufferBinding;

function constantText(name: string, c: KernelConstant): string {
  if (!Number.isFinite(c.value)) throw new RangeError(`kernel constant ${name} = ${c.value} is not finite`);
  if (c.type === 'f32') {
    const s = String(c.value);
    return `const ${name}: f32 = ${/[.e]/.test(s) ? s : `${s}.0`};`;
  }
  if (!Number.isInteger(c.value)) throw new RangeError(`kernel constant ${name}: ${c.type} needs an integer, got ${c.value}`);
  if (c.type === 'u32') {
    if (c.value < 0) throw new RangeError(`kernel constant ${name}: u32 needs a non-negative value, got ${c.value}`);
    return `const ${name}: u32 = ${c.value}u;`;
  }
  return `const ${name}: i32 = ${c.value};`;
}

function typeText(t: BindingType): { text: string; structs: StructLayout[] } {
  if (typeof t === 'string') return { text: t, structs: [] };
  if ('array' in t) return { text: `array<${t.array.name}>`, structs: [t.array] };
  return { text: t.name, structs: [t] };
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Generates the WGSL module and the bind-group layout entries of a kernel descriptor. */
export function defineKernel<B extends Record<string, BindingDecl>>(d: KernelDescriptor<B>): Kernel<keyof B & string> {
  if (!Number.isInteger(d.workgroupSize) || d.workgroupSize < 1) throw new RangeError(`kernel ${d.name}: workgroup size ${d.workgroupSize}`);
  const mainAt = d.body.search(/\bfn main\s*\(/);
  if (mainAt < 0) throw new Error(`kernel ${d.name}: the body has no 'fn main('`);
  if (/@compute|@workgroup_size|@binding/.test(d.body)) throw new Error(`kernel ${d.name}: the body declares its own @compute/@workgroup_size/@binding (the descriptor emits them)`);
  const names = Object.keys(d.bindings) as (keyof B & string)[];
  const structs: StructLayout[] = [...(d.structs ?? [])];
  const decls: string[] = [];
  const entries: GPUBindGroupLayoutEntry[] = [];
  names.forEach((name, binding) => {
    if (!IDENT.test(name)) throw new Error(`kernel ${d.name}: binding name '${name}' is not a WGSL identifier`);
    const b = d.bindings[name];
    const t = typeText(b.type);
    for (const s of t.structs) if (!structs.includes(s)) structs.push(s);
    const space = b.access === 'uniform' ? 'uniform' : `storage, ${b.access}`;
    decls.push(`@group(0) @binding(${binding}) var<${space}> ${name}: ${t.text};${b.note ? ` // ${b.note}` : ''}`);
    entries.push({
      binding,
      visibility: COMPUTE_STAGE,
      buffer: { type: b.access === 'uniform' ? 'uniform' : b.access === 'read' ? 'read-only-storage' : 'storage' },
    });
  });
  const constants = Object.entries(d.constants ?? {});
  if (constants.some(([n]) => n === 'WG')) throw new Error(`kernel ${d.name}: WG is the workgroup size, not a constant to give`);
  const seen = new Set<string>();
  for (const s of structs) {
    if (seen.has(s.name)) throw new Error(`kernel ${d.name}: two structs named ${s.name}`);
    seen.add(s.name);
  }
  const code = [
    `// kernel ${d.name} (generated by engine/gpu/kernel.ts from its descriptor)`,
    constantText('WG', u32(d.workgroupSize)),
    ...constants.map(([n, c]) => constantText(n, c)),
    ...structs.map((s) => s.wgsl),
    ...decls,
    ...(d.shared ?? []),
    d.body.slice(0, mainAt),
    `@compute @workgroup_size(WG)\n${d.body.slice(mainAt)}`,
  ].join('\n');
  return { name: d.name, code, bindingNames: names, layoutEntries: entries, workgroupSize: d.workgroupSize };
}

/** The bind-group layout of a kernel (kernels with the same bindings may share one). */
export function kernelBindGroupLayout(device: GPUDevice, kernel: Kernel): GPUBindGroupLayout {
  return device.createBindGroupLayout({ label: `${kernel.name}-bgl`, entries: [...kernel.layoutEntries] });
}

/**
 * A bind group for `kernel` from resources by name; a missing or an unknown name is an error
 * that lists both (instead of a validation error about binding indices later).
 */
export function bindKernel<N extends string>(device: GPUDevice, kernel: Kernel<N>, layout: GPUBindGroupLayout, resources: Record<N, BindingResource>, label?: string): GPUBindGroup {
  const given = Object.keys(resources);
  const missing = kernel.bindingNames.filter((n) => !(n in resources) || (resources as Record<string, unknown>)[n] == null);
  const extra = given.filter((n) => !(kernel.bindingNames as readonly string[]).includes(n));
  if (missing.length || extra.length) {
    const parts = [missing.length ? `missing ${missing.join(', ')}` : '', extra.length ? `unknown ${extra.join(', ')}` : ''].filter(Boolean);
    throw new Error(`kernel ${kernel.name}: bind group ${parts.join('; ')} (bindings: ${kernel.bindingNames.join(', ')})`);
  }
  return device.createBindGroup({
    label: label ?? kernel.name,
    layout,
    entries: kernel.bindingNames.map((n, binding) => {
      const r: BindingResource = resources[n];
      const resource: GPUBufferBinding = 'usage' in r ? { buffer: r as GPUBuffer } : (r as GPUBufferBinding);
      return { binding, resource };
    }),
  });
}

/** A compiled kernel: its pipeline, its explicit layout, and `bind` by name. */
export interface KernelPipeline<N extends string = string> {
  readonly kernel: Kernel<N>;
  readonly pipeline: GPUComputePipeline;
  readonly layout: GPUBindGroupLayout;
  bind(resources: Record<N, BindingResource>, label?: string): GPUBindGroup;
}

/**
 * Compiles a kernel with an explicit pipeline layout (createComputePipelineAsync: a compile error
 * rejects, with the compiler's messages and line numbers of the generated text).
 */
export async function createKernelPipeline<N extends string>(device: GPUDevice, kernel: Kernel<N>, layout?: GPUBindGroupLayout): Promise<KernelPipeline<N>> {
  const bgl = layout ?? kernelBindGroupLayout(device, kernel);
  const module = device.createShaderModule({ label: kernel.name, code: kernel.code });
  let pipeline: GPUComputePipeline;
  try {
    pipeline = await device.createComputePipelineAsync({
      label: kernel.name,
      layout: device.createPipelineLayout({ label: `${kernel.name}-layout`, bindGroupLayouts: [bgl] }),
      compute: { module, entryPoint: 'main' },
    });
  } catch (e) {
    const info = await module.getCompilationInfo?.();
    const msgs = info ? info.messages.map((m) => `${m.lineNum}:${m.linePos} ${m.message}`).join('\n') : '';
    throw new Error(`pipeline ${kernel.name} failed: ${(e as Error).message}\n${msgs}`);
  }
  return {
    kernel,
    pipeline,
    layout: bgl,
    bind: (resources, label) => bindKernel(device, kernel, bgl, resources, label),
  };
}

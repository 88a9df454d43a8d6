/**
 * WGSL source of one pass (rows or columns) of the batched 2-D complex FFT.
 *
 * Algorithm: mixed-radix Stockham autosort, one 1-D transform of N points per "line" (a row or a
 * column of one image), `lines` lines per workgroup, N / perThread invocations per line. Each
 * invocation keeps `perThread` complex values in registers; every stage reads the values
 * e = t + p·T (p < perThread, T = N / perThread) — for every stage the same pattern — applies the
 * twiddles of the stage, does its radix-r butterflies in registers and writes the outputs to
 * workgroup memory at the Stockham (autosort) positions. The last stage's outputs land exactly on
 * the pattern e = t + p·T, so they are written straight back to global memory: a pass reads and
 * writes each element of global memory once (in place), with (stages − 1) exchanges through
 * workgroup memory.
 *
 * The twiddles e^{−2πi m/N} (m < N) are computed in float64 on the CPU and read from a storage
 * buffer (the inverse conjugates them): of a butterfly's w^k only those with k a power of two are
 * read, the others are products of those (≤ 3 complex products for radix ≤ 16: a few ulps more
 * error, far fewer memory reads); the constants inside a radix-r butterfly are literals
 * computed in float64 here.
 *
 * Data: `array<vec2<f32>>` (re, im), image b at elements [b·N², (b+1)·N²), row-major [y][x],
 * relative to the start of the binding. Dispatch grid: x = groups of `lines` lines within an image
 * (N / lines, or fewer for a window of rows), y = image index within the binding.
 */
// wgsl-preprocessor's `#if` keeps the pass variants (rows/columns, forward/inverse, swizzle) readable
// as one text; the other kernel families need no conditional text and build theirs with plain template strings.
import { wgsl } from 'wgsl-preprocessor/wgsl-preprocessor.js';
import { defineKernel, read, readWrite } from '../kernel.ts';

export interface FftPassShaderOptions {
  /** Transform length N (the image is N×N): 2^k or 3·2^k. */
  size: number;
  /** Complex values per invocation held in registers (divisible by every radix). */
  perThread: number;
  /** Lines (rows or columns) per workgroup. */
  lines: number;
  /** Radices of the stages, product = size, each dividing perThread. */
  radices: number[];
  /** false: transform the rows (x direction); true: transform the columns (y direction). */
  columns: boolean;
  /** Inverse transform (e^{+2πi kn/N}); the scale is applied separately. */
  inverse: boolean;
  /** Factor applied to the outputs (1, or 1/N² on the last pass of an inverse). Exact if a power of two. */
  scale: number;
  /** Row pass: XOR-swizzle the workgroup-memory index against bank conflicts (default true). */
  swizzle?: boolean;
  /** Kernel name (labels the shader module and pipeline). */
  name?: string;
}

/**
 * The radices of a plan. Power-of-two sizes: the fewest stages with radix ≤ maxRadix (= perThread),
 * as balanced as possible (larger first). Sizes 3·2^k (mixed radix, docs/fft.md "Sizes"): the
 * power-of-two stages first and one last stage of radix 3·2^b dividing perThread, so that every
 * stage but the last has a power-of-two stride (the index arithmetic stays shifts and masks).
 */
export function fftRadices(size: number, maxRadix: number): number[] {
  const three = size % 3 === 0 ? 3 : 1;
  const pow = size / three;
  if (!Number.isInteger(pow) || pow < 1 || (pow & (pow - 1)) !== 0) throw new Error(`fftRadices: size ${size} is not 2^k or 3·2^k`);
  if (three === 1) return pow2Radices(pow, maxRadix);
  // last stage: the largest 3·2^b that divides maxRadix and pow·3 (at least 3)
  let last = 3;
  while (maxRadix % (last * 2) === 0 && pow % ((last * 2) / 3) === 0) last *= 2;
  const rest = (size / last) | 0;
  const pow2Max = maxRadix & -maxRadix; // the power-of-two part of perThread
  return [...(rest > 1 ? pow2Radices(rest, pow2Max) : []), last];
}

function pow2Radices(size: number, maxRadix: number): number[] {
  const bits = Math.round(Math.log2(size));
  const maxBits = Math.round(Math.log2(maxRadix));
  const stages = Math.ceil(bits / maxBits);
  const out: number[] = [];
  let left = bits;
  for (let s = 0; s < stages; s++) {
    const b = Math.ceil(left / (stages - s));
    out.push(1 << b);
    left -= b;
  }
  return out;
}

function f32lit(x: number): string {
  if (x === 0) return '0.0';
  // 17 significant digits: the abstract-float literal is rounded to f32 once, correctly.
  const s = x.toPrecision(17);
  return s.includes('.') || s.includes('e') ? s : `${s}.0`;
}

/**
 * Straight-line WGSL for an r-point DFT of the values named `inputs` (radix-2 decimation in time,
 * unrolled at generation time; an odd length — 3 — as a direct DFT with float64-computed constants).
 * Returns the names of the outputs, in natural order.
 */
function emitSmallDft(inputs: string[], sign: number, code: string[], fresh: () => string): string[] {
  const r = inputs.length;
  if (r === 1) return inputs;
  if (r === 3) {
    // w = e^{sign·2πi/3} = −1/2 + sign·i·√3/2: X0 = a + b + c, X1,2 = a − (b + c)/2 ± sign·i·(√3/2)(b − c)
    const [a, b, c] = inputs;
    const t = fresh();
    const d = fresh();
    const m = fresh();
    const rot = fresh();
    const x0 = fresh();
    const x1 = fresh();
    const x2 = fresh();
    const h = f32lit(Math.sqrt(3) / 2);
    code.push(`let ${t} = ${b} + ${c};`, `let ${d} = ${b} - ${c};`, `let ${m} = ${a} - 0.5 * ${t};`);
    // sign·i·(√3/2)·d
    code.push(sign > 0 ? `let ${rot} = vec2<f32>(-${d}.y, ${d}.x) * ${h};` : `let ${rot} = vec2<f32>(${d}.y, -${d}.x) * ${h};`);
    code.push(`let ${x0} = ${a} + ${t};`, `let ${x1} = ${m} + ${rot};`, `let ${x2} = ${m} - ${rot};`);
    return [x0, x1, x2];
  }
  if (r % 2 !== 0) throw new Error(`emitSmallDft: radix ${r} is not 3 or even`);
  const even = emitSmallDft(inputs.filter((_, i) => i % 2 === 0), sign, code, fresh);
  const odd = emitSmallDft(inputs.filter((_, i) => i % 2 === 1), sign, code, fresh);
  const out = new Array<string>(r);
  for (let k = 0; k < r / 2; k++) {
    let t: string;
    const o = odd[k];
    if (k === 0) {
      t = o;
    } else if (4 * k === r) {
      // multiply by sign·i
      t = fresh();
      code.push(sign > 0 ? `let ${t} = vec2<f32>(-${o}.y, ${o}.x);` : `let ${t} = vec2<f32>(${o}.y, -${o}.x);`);
    } else {
      const ang = (sign * 2 * Math.PI * k) / r;
      t = fresh();
      code.push(`let ${t} = cmul(${o}, vec2<f32>(${f32lit(Math.cos(ang))}, ${f32lit(Math.sin(ang))}));`);
    }
    const a = fresh();
    const b = fresh();
    code.push(`let ${a} = ${even[k]} + ${t};`, `let ${b} = ${even[k]} - ${t};`);
    out[k] = a;
    out[k + r / 2] = b;
  }
  return out;
}

/** Generated body of the transform: loads, stages, exchanges, stores. */
function emitBody(o: FftPassShaderOptions): string {
  const N = o.size;
  const P = o.perThread;
  const T = N / P;
  const sign = o.inverse ? 1 : -1;
  const code: string[] = [];
  let tmpCount = 0;
  const fresh = () => `u${tmpCount++}`;
  const g = (e: string) => (o.columns ? `data[gbase + (${e}) * ${N}u]` : `data[gbase + (${e})]`);
  const load = (e: string) => g(e);
  const store = (e: string, v: string) => `${g(e)} = ${v};`;
  // Row pass: the first stage writes at stride r0 (e = r0·j + k), which would put a whole warp in
  // one shared-memory bank on GPUs; XOR-swizzling the low bits with (e >> log2 r0) spreads them.
  // A bijection within each aligned block of r0, applied to every write and read alike.
  const r0 = o.radices[0];
  const swz = !o.columns && (o.swizzle ?? true) && r0 > 1;
  const sh = Math.log2(r0);
  const s = (e: string) =>
    o.columns
      ? `sm[(${e}) * ${o.lines}u + line]`
      : swz
        ? `sm[sbase + swz(${e})]`
        : `sm[sbase + (${e})]`;
  if (swz) code.push(`// shared-memory swizzle: e ^ ((e >> ${sh}) & ${r0 - 1})`);

  for (let p = 0; p < P; p++) code.push(`var v${p} = ${load(`t + ${p * T}u`)};`);

  let Ns = 1;
  for (let st = 0; st < o.radices.length; st++) {
    const r = o.radices[st];
    const last = st === o.radices.length - 1;
    const Q = P / r;
    code.push(`// stage ${st}: radix ${r}, Ns = ${Ns}`);
    code.push('{');
    for (let q = 0; q < Q; q++) {
      code.push('{');
      code.push(`let j = t + ${q * T}u;`);
      if (Ns > 1) code.push(`let jm = j & ${Ns - 1}u;`);
      const ins: string[] = [];
      const w: string[] = [];
      if (Ns > 1) {
        for (let k = 1; k < r; k++) {
          w[k] = fresh();
          if ((k & (k - 1)) === 0) {
            code.push(`let ${w[k]} = twiddle(jm * ${(k * N) / (Ns * r)}u);`);
          } else {
            const hi = 1 << Math.floor(Math.log2(k));
            code.push(`let ${w[k]} = cmul(${w[hi]}, ${w[k - hi]});`);
          }
        }
      }
      for (let k = 0; k < r; k++) {
        const v = `v${q + k * Q}`;
        if (k === 0 || Ns === 1) {
          ins.push(v);
        } else {
          const n = fresh();
          code.push(`let ${n} = cmul(${v}, ${w[k]});`);
          ins.push(n);
        }
      }
      const outs = emitSmallDft(ins, sign, code, fresh);
      if (last) {
        for (let k = 0; k < r; k++) code.push(`v${q + k * Q} = ${outs[k]};`);
      } else {
        // idxD = (j / Ns)·Ns·r + (j mod Ns)
        code.push(Ns > 1 ? `let d = ((j >> ${Math.log2(Ns)}u) * ${Ns * r}u) + jm;` : `let d = j * ${r}u;`);
        for (let k = 0; k < r; k++) code.push(`${s(`d + ${k * Ns}u`)} = ${outs[k]};`);
      }
      code.push('}');
    }
    code.push('}');
    if (!last) {
      code.push('workgroupBarrier();');
      for (let p = 0; p < P; p++) code.push(`v${p} = ${s(`t + ${p * T}u`)};`);
      // Only needed when another stage writes to workgroup memory after this read.
      if (st + 1 < o.radices.length - 1) code.push('workgroupBarrier();');
    }
    Ns *= r;
  }
  const sc = o.scale === 1 ? '' : ` * ${f32lit(o.scale)}`;
  for (let p = 0; p < P; p++) code.push(store(`t + ${p * T}u`, `v${p}${sc}`));
  return code.map((l) => `  ${l}`).join('\n');
}

/** One pass as a kernel descriptor: `data` (the images, transformed in place) and `tw` (the twiddles); one workgroup = `lines` lines. */
export function fftPassKernel(o: FftPassShaderOptions) {
  const N = o.size;
  const T = N / o.perThread;
  const L = o.lines;
  const prod = o.radices.reduce((a, b) => a * b, 1);
  if (prod !== N || o.radices.some((r) => o.perThread % r !== 0)) {
    throw new Error(`fftPassKernel: radices ${o.radices} do not fit size ${N} / perThread ${o.perThread}`);
  }
  const exchanges = o.radices.length > 1;
  const body = wgsl`
// Batched 2-D FFT, ${o.columns ? 'column' : 'row'} pass, N = ${N}, ${o.inverse ? 'inverse' : 'forward'}, radices ${o.radices.join('x')}
#if ${exchanges}
var<workgroup> sm: array<vec2<f32>, ${L * N}>;
#endif

#if ${!o.columns && (o.swizzle ?? true) && o.radices[0] > 1}
fn swz(e: u32) -> u32 {
  return e ^ ((e >> ${Math.log2(o.radices[0])}u) & ${o.radices[0] - 1}u);
}
#endif

fn cmul(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
  return vec2<f32>(a.x * b.x - a.y * b.y, a.x * b.y + a.y * b.x);
}

fn twiddle(m: u32) -> vec2<f32> {
  let w = tw[m];
#if ${o.inverse}
  return vec2<f32>(w.x, -w.y);
#else
  return w;
#endif
}

fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
#if ${o.columns}
  let line = lid % ${L}u;
  let t = lid / ${L}u;
  let lxy = wid.x * ${L}u + line; // column x
  let gbase = wid.y * ${N * N}u + lxy;
#else
  let line = lid / ${T}u;
  let t = lid % ${T}u;
  let lxy = wid.x * ${L}u + line; // row y
  let gbase = wid.y * ${N * N}u + lxy * ${N}u;
  let sbase = line * ${N}u;
#endif
${emitBody(o)}
}
`;
  return defineKernel({
    name: o.name ?? `fft-${N}-${o.columns ? 'cols' : 'rows'}-${o.inverse ? 'inv' : 'fwd'}`,
    bindings: {
      data: readWrite('array<vec2<f32>>', 'the images, transformed in place'),
      tw: read('array<vec2<f32>>', 'twiddles e^{−2πi m/N}, m < N (float64-computed)'),
    },
    workgroupSize: L * T,
    body,
  });
}

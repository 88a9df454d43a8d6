/**
 * WGSL helpers shared by several kernel families, written once. Each needs the constant M (the
 * FFT grid size) where it says so; the kernel descriptor injects it (engine/gpu/kernel.ts).
 */

/** Signed frequency of FFT index i on an M-point grid: i for i < M/2, i − M above (needs M). */
export const WGSL_SIGNED_FREQ = /* wgsl */ `fn signedFreq(i: u32) -> i32 {
  return select(i32(i), i32(i) - i32(M), i >= M / 2u);
}`;

/** Complex product of (re, im) pairs. */
export const WGSL_CMUL = /* wgsl */ `fn cmul(a: vec2f, b: vec2f) -> vec2f { return vec2f(a.x * b.x - a.y * b.y, a.x * b.y + a.y * b.x); }`;

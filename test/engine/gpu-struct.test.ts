/**
 * Struct layouts generated from a field table (engine/gpu/struct.ts) against the WGSL spec's
 * alignment rules, derived by hand here (WGSL §"Alignment and Size": u32/i32/f32 size 4 align 4,
 * vec2 8/8, vec3 12/16, vec4 16/16; a member at the next multiple of its alignment; struct size
 * = end of the last member rounded up to the largest alignment), and the pack / unpack round trip
 * against plain typed-array writes at those hand-derived offsets.
 */
import { describe, expect, it } from 'vitest';
import { defineStruct } from '../../engine/gpu/struct.ts';
import { BATCH, GRADIENT_RECORDS, PAIR, profileLayout, SOURCE_RECORDS } from '../../engine/gpu/render/render.wgsl.ts';
import { PSF_CHUNK } from '../../engine/gpu/psf/psf.wgsl.ts';

const offsets = (s: { fields: readonly { name: string; offset: number }[] }) => Object.fromEntries(s.fields.map((f) => [f.name, f.offset]));

describe('struct layout: WGSL alignment rules', () => {
  it("the WGSL spec's example struct A { u: f32, v: f32, w: vec2<f32>, x: f32 }: offsets 0, 4, 8, 16; align 8; size 24", () => {
    const a = defineStruct('A', { u: 'f32', v: 'f32', w: 'vec2f', x: 'f32' });
    expect(offsets(a)).toEqual({ u: 0, v: 4, w: 8, x: 16 });
    expect(a.align).toBe(8);
    expect(a.size).toBe(24);
  });

  it('vec3: aligned to 16, size 12, and a scalar after it fills its last 4 bytes', () => {
    const s = defineStruct('S', { a: 'f32', b: 'vec3f', c: 'u32' });
    // a at 0; b at roundUp(16, 4) = 16, ends at 28; c at 28; size roundUp(16, 32) = 32
    expect(offsets(s)).toEqual({ a: 0, b: 16, c: 28 });
    expect(s.size).toBe(32);
    const t = defineStruct('T', { b: 'vec3f', c: 'f32', d: 'vec2u' });
    // b 0..12, c 12..16, d at 16 (align 8) .. 24, size roundUp(16, 24) = 32
    expect(offsets(t)).toEqual({ b: 0, c: 12, d: 16 });
    expect(t.size).toBe(32);
  });

  it('a scalar-only struct: align 4, size the sum (no padding)', () => {
    const s = defineStruct('S', { a: 'u32', b: 'i32', c: 'f32' });
    expect(s.align).toBe(4);
    expect(s.size).toBe(12);
  });

  it('Pair: 12 words then J⁻¹ (vec4f) at byte 32, n, m, psfOffset at 48, 52, 56, size 64 (the record the shaders always read)', () => {
    expect(offsets(PAIR)).toEqual({ source: 0, quadrant: 4, cx: 8, cy: 12, bx: 16, by: 20, fx: 24, fy: 28, jinv: 32, n: 48, m: 52, psfOffset: 56 });
    // the last member ends at 60; align 16 (vec4f) rounds the size, hence the array stride, to 64
    expect(PAIR.align).toBe(16);
    expect(PAIR.size).toBe(64);
  });

  it('Batch: 5 u32 = 20 bytes; Chunk: 2 u32 = 8 bytes', () => {
    expect(BATCH.size).toBe(20);
    expect(PSF_CHUNK.size).toBe(8);
  });

  it('source and gradient records: the words the kernels read (p0 = F, h, e1, e2; p1 = dx, dy, g1, g2; p2 = the profile\'s four)', () => {
    expect(SOURCE_RECORDS.fixed.words).toEqual({ flux: 0, hlr: 1, e1: 2, e2: 3, dx: 4, dy: 5, g1: 6, g2: 7 });
    expect(SOURCE_RECORDS.spergel_free.words).toMatchObject({ nu: 8, invC: 9, dlogC: 10 });
    expect(SOURCE_RECORDS.bulge_disk.words).toMatchObject({ bulgeFrac: 8, bulgeHlr: 9, bulgeE1: 10, bulgeE2: 11 });
    expect(GRADIENT_RECORDS.spergel_free.words).toMatchObject({ g2: 7, nu: 8 });
    // 2 vec4f per source and 8 gradients per pair for fixed profiles, 3 and 12 otherwise
    expect(profileLayout(undefined)).toMatchObject({ srcVecs: 2, grads: 8 });
    expect(profileLayout({ type: 'spergel', nu: 0.5, free: true })).toMatchObject({ srcVecs: 3, grads: 12 });
    expect(profileLayout({ type: 'bulge_disk', bulgeNu: -0.6 })).toMatchObject({ srcVecs: 3, grads: 12 });
  });

  it('the WGSL text lists the fields in order with their types', () => {
    const s = defineStruct('Rec', { a: 'u32', b: 'vec4f' }, { b: 'why b' });
    expect(s.wgsl).toBe('struct Rec {\n  a: u32,\n  b: vec4f, // why b\n};');
  });

  it('refuses unknown types and non-identifier names', () => {
    expect(() => defineStruct('S', { a: 'f64' as never })).toThrow(/unsupported WGSL type 'f64'/);
    expect(() => defineStruct('S', { 'a-b': 'u32' })).toThrow(/not a WGSL identifier/);
    expect(() => defineStruct('S', {})).toThrow(/no fields/);
  });
});

describe('pack / unpack', () => {
  it('Pair records: the bytes equal typed-array writes at the hand-derived word offsets', () => {
    const rec = { source: 7, quadrant: 2, cx: -12, cy: 30, bx: 64, by: -1, fx: 0.1, fy: 0.9999999, jinv: [1.5, -0.25, 1e-3, -2], n: 64, m: 128, psfOffset: 4410 };
    const buf = new ArrayBuffer(3 * PAIR.size);
    PAIR.pack(buf, 1, rec);
    const ref = new ArrayBuffer(3 * 64);
    const u = new Uint32Array(ref);
    const i = new Int32Array(ref);
    const f = new Float32Array(ref);
    const o = 16; // record 1 = 64 bytes = 16 words in
    u[o] = 7;
    u[o + 1] = 2;
    i[o + 2] = -12;
    i[o + 3] = 30;
    i[o + 4] = 64;
    i[o + 5] = -1;
    f[o + 6] = 0.1;
    f[o + 7] = 0.9999999;
    f.set([1.5, -0.25, 1e-3, -2], o + 8);
    u[o + 12] = 64;
    u[o + 13] = 128;
    u[o + 14] = 4410;
    expect(Buffer.from(buf).equals(Buffer.from(ref))).toBe(true);
    const back = PAIR.unpack(buf, 1);
    expect(back).toEqual({ ...rec, fx: Math.fround(0.1), fy: Math.fround(0.9999999), jinv: [1.5, -0.25, Math.fround(1e-3), -2] });
  });

  it('packAll: records one after the other at the struct size, at least one record long', () => {
    const s = defineStruct('S', { a: 'f32', b: 'vec3f', c: 'u32' });
    const vals = [
      { a: 1, b: [2, 3, 4], c: 5 },
      { a: -1, b: [-2, -3, -4], c: 0xffffffff },
    ];
    const buf = s.packAll(vals);
    expect(buf.byteLength).toBe(64);
    expect(s.unpack(buf, 0)).toEqual(vals[0]);
    expect(s.unpack(buf, 1)).toEqual(vals[1]);
    // b of record 1 at 32 + 16 = 48 bytes, c at 32 + 28 = 60
    expect(new Float32Array(buf, 48, 3)).toEqual(new Float32Array([-2, -3, -4]));
    expect(new Uint32Array(buf, 60, 1)[0]).toBe(0xffffffff);
    expect(s.packAll([]).byteLength).toBe(32);
  });

  it('a missing field, a wrong component count or a record past the end is refused', () => {
    const s = defineStruct('S', { a: 'u32', v: 'vec2f' });
    const buf = new ArrayBuffer(16);
    expect(() => s.pack(buf, 0, { a: 1 } as never)).toThrow(/no value for field 'v'/);
    expect(() => s.pack(buf, 0, { a: 1, v: [1, 2, 3] })).toThrow(/needs 2 components/);
    expect(() => s.pack(buf, 2, { a: 1, v: [1, 2] })).toThrow(/does not fit/);
  });
});

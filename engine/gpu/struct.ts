/**
 * Struct records shared by TypeScript and WGSL, from one table of fields (name, WGSL type): the
 * WGSL `struct` text, the byte offsets and size, and pack / unpack functions all come from it, so
 * the host never writes a hand offset (`o + 14`) that the WGSL must agree with.
 *
 * Layout rules (WGSL spec §"Alignment and Size", host-shareable types): a scalar u32/i32/f32 has
 * size 4, align 4; vec2 size 8, align 8; vec3 size 12, align 16; vec4 size 16, align 16. A member
 * starts at the first multiple of its alignment after the previous member; the struct's alignment
 * is its largest member's, its size the end of the last member rounded up to that alignment (so
 * `array<S>` has stride = size). A struct used as a uniform must have a size that is a multiple of
 * 16 only when it is nested in another uniform struct or array — not the case here — so `size`
 * is the same in both address spaces.
 *
 * Packing writes through Uint32/Int32/Float32 views of the same bytes: assignment converts a
 * float64 to f32 with round-to-nearest-even (as DataView.setFloat32) and integers with ToUint32 /
 * ToInt32, exactly what the hand-written packers did.
 */

export type WgslScalarType = 'u32' | 'i32' | 'f32';
export type WgslVecType = `vec${2 | 3 | 4}${'u' | 'i' | 'f'}`;
export type WgslFieldType = WgslScalarType | WgslVecType;

/** The host value of a field: a number for a scalar, a list of components for a vector. */
export type FieldValue<T extends WgslFieldType> = T extends WgslScalarType ? number : ArrayLike<number>;

export type StructFields = Readonly<Record<string, WgslFieldType>>;

/** A record of the struct on the host: one value per field. */
export type StructValue<F extends StructFields> = { [K in keyof F]: FieldValue<F[K]> };

export interface FieldLayout {
  name: string;
  type: WgslFieldType;
  /** Byte offset within the struct. */
  offset: number;
  /** Byte size (4, 8, 12 or 16). */
  size: number;
  align: number;
  /** Components (1 for a scalar). */
  components: number;
  /** Component kind: 'u', 'i' or 'f'. */
  kind: 'u' | 'i' | 'f';
}

export interface StructLayout<F extends StructFields = StructFields> {
  /** The WGSL struct name. */
  readonly name: string;
  readonly fields: readonly FieldLayout[];
  /** Byte size (= the stride of `array<name>`). */
  readonly size: number;
  readonly align: number;
  /** The WGSL `struct name { … };` declaration. */
  readonly wgsl: string;
  /** Byte offset of a field. */
  offsetOf(field: keyof F & string): number;
  /**
   * Offset of each field in 4-byte words: for hot loops that write a Float32Array of records
   * directly (record i at i·size/4 + words.field), without a record object per write.
   */
  readonly words: { readonly [K in keyof F]: number };
  /** Writes record `index` (at byte index·size + byteOffset) of `buffer`. */
  pack(buffer: ArrayBuffer, index: number, value: StructValue<F>, byteOffset?: number): void;
  /** Reads record `index` back (vectors as plain arrays of numbers). */
  unpack(buffer: ArrayBuffer, index: number, byteOffset?: number): StructValue<F>;
  /** A new buffer holding `values` packed one after the other (at least one record long). */
  packAll(values: readonly StructValue<F>[]): ArrayBuffer;
}

/** Size and alignment of a host-shareable scalar or vector type (WGSL spec, "Alignment and Size"). */
export function typeSizeAlign(t: WgslFieldType): { size: number; align: number; components: number; kind: 'u' | 'i' | 'f' } {
  if (t === 'u32' || t === 'i32' || t === 'f32') return { size: 4, align: 4, components: 1, kind: t[0] as 'u' | 'i' | 'f' };
  const m = /^vec([234])([uif])$/.exec(t);
  if (!m) throw new Error(`struct: unsupported WGSL type '${t}'`);
  const n = Number(m[1]);
  return { size: 4 * n, align: n === 2 ? 8 : 16, components: n, kind: m[2] as 'u' | 'i' | 'f' };
}

const roundUp = (k: number, n: number) => Math.ceil(n / k) * k;

/**
 * The layout of a struct from its fields in declaration order (an object literal keeps the
 * order). `comments` annotate fields in the WGSL text (the why, kept beside the declaration).
 */
export function defineStruct<F extends StructFields>(name: string, fields: F, comments: Partial<Record<keyof F, string>> = {}): StructLayout<F> {
  const list: FieldLayout[] = [];
  let end = 0;
  let align = 4;
  for (const [fname, type] of Object.entries(fields)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(fname)) throw new Error(`struct ${name}: field name '${fname}' is not a WGSL identifier`);
    const t = typeSizeAlign(type);
    const offset = roundUp(t.align, end);
    list.push({ name: fname, type, offset, size: t.size, align: t.align, components: t.components, kind: t.kind });
    end = offset + t.size;
    align = Math.max(align, t.align);
  }
  if (!list.length) throw new Error(`struct ${name}: no fields`);
  const size = roundUp(align, end);
  const byName = new Map(list.map((f) => [f.name, f]));
  const wgsl = `struct ${name} {\n${list
    .map((f) => {
      const c = (comments as Record<string, string | undefined>)[f.name];
      return `  ${f.name}: ${f.type},${c ? ` // ${c}` : ''}`;
    })
    .join('\n')}\n};`;

  const views = new WeakMap<ArrayBuffer, { u: Uint32Array; i: Int32Array; f: Float32Array }>();
  const viewsOf = (buffer: ArrayBuffer) => {
    let v = views.get(buffer);
    if (!v) {
      const words = Math.floor(buffer.byteLength / 4);
      v = { u: new Uint32Array(buffer, 0, words), i: new Int32Array(buffer, 0, words), f: new Float32Array(buffer, 0, words) };
      views.set(buffer, v);
    }
    return v;
  };
  const checkRange = (buffer: ArrayBuffer, index: number, byteOffset: number) => {
    const at = byteOffset + index * size;
    if (!Number.isInteger(index) || index < 0 || at % 4 !== 0 || at + size > buffer.byteLength) {
      throw new RangeError(`struct ${name}: record ${index} at byte ${at} does not fit a buffer of ${buffer.byteLength} bytes`);
    }
    return at / 4;
  };

  const words = Object.fromEntries(list.map((f) => [f.name, f.offset / 4])) as { [K in keyof F]: number };
  const layout: StructLayout<F> = {
    name,
    words,
    fields: list,
    size,
    align,
    wgsl,
    offsetOf(field) {
      const f = byName.get(field);
      if (!f) throw new Error(`struct ${name}: no field '${field}'`);
      return f.offset;
    },
    pack(buffer, index, value, byteOffset = 0) {
      const w0 = checkRange(buffer, index, byteOffset);
      const v = viewsOf(buffer);
      for (const f of list) {
        const x = (value as Record<string, number | ArrayLike<number> | undefined>)[f.name];
        if (x === undefined) throw new Error(`struct ${name}: no value for field '${f.name}'`);
        const arr = v[f.kind];
        const w = w0 + f.offset / 4;
        if (f.components === 1) {
          if (typeof x !== 'number') throw new TypeError(`struct ${name}: field '${f.name}' (${f.type}) needs a number`);
          arr[w] = x;
        } else {
          if (typeof x === 'number' || x.length !== f.components) throw new TypeError(`struct ${name}: field '${f.name}' (${f.type}) needs ${f.components} components`);
          for (let c = 0; c < f.components; c++) arr[w + c] = x[c];
        }
      }
    },
    unpack(buffer, index, byteOffset = 0) {
      const w0 = checkRange(buffer, index, byteOffset);
      const v = viewsOf(buffer);
      const out: Record<string, number | number[]> = {};
      for (const f of list) {
        const arr = v[f.kind];
        const w = w0 + f.offset / 4;
        out[f.name] = f.components === 1 ? arr[w] : Array.from(arr.subarray(w, w + f.components));
      }
      return out as StructValue<F>;
    },
    packAll(values) {
      const buf = new ArrayBuffer(Math.max(1, values.length) * size);
      values.forEach((val, i) => layout.pack(buf, i, val));
      return buf;
    },
  };
  return layout;
}

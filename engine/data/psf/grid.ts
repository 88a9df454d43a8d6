/**
 * Euclid VIS PSF grids (docs/architecture.md "Euclid file facts"): one image HDU per quadrant (EXTNAME like the quadrant,
 * e.g. "3-4.F"), holding an nx × ny grid of S × S stamps (Euclid: 9 × 9 stamps of 21 × 21 native
 * 0.1″ pixels → a 189 × 189 image). Stamp (i, j) — i along x (NAXIS1), j along y (NAXIS2) —
 * occupies image pixels [i·S, (i+1)·S) × [j·S, (j+1)·S).
 *
 * Grid positions: stamp (i, j) describes the PSF at the centre of the (i, j)-th cell of an
 * nx × ny partition of the quadrant, i.e. at the fraction ((i + ½)/nx, (j + ½)/ny) of the
 * quadrant's area. In 0-based pixel coordinates (pixel centres at integers, the quadrant covering
 * [−½, W − ½]) that is x_i = (i + ½)·W/nx − ½, y_j = (j + ½)·H/ny − ½.
 *
 * Interpolation (SHINE): bilinear in (x, y) between the 4 nearest stamps, positions outside the
 * outermost grid centres clamped to the edge, result renormalised to unit sum.
 *
 * Oversampled PSF models: a stamp may sample the PSF every 1/q detector pixel (q PSF-model pixels
 * per detector pixel, header key PSFOVERS, default 1 = native sampling), in the quadrant's own
 * pixel frame, its centre index (S − 1)/2 at the grid node, S odd. The grid layout and the
 * interpolation are the same (elementwise between stamps of the same sampling).
 */
import { DataError } from '../../errors.ts';

export interface PsfGridOptions {
  /** Grid cells along x and y (default: from the header keys PSFGRDNX/PSFGRDNY, else image / stampSize). */
  nx?: number;
  ny?: number;
  /** Stamp side (default: header PSFSTAMP, else 21). */
  stampSize?: number;
  /** Quadrant size in pixels (default: header PSFQUADW/PSFQUADH, else 2048 × 2066). */
  quadrantWidth?: number;
  quadrantHeight?: number;
  /**
   * PSF-model pixels per detector pixel, a positive integer (default: header PSFOVERS, else 1 =
   * native sampling). An explicit value overrides the header.
   */
  oversampling?: number;
  /** For error messages. */
  file?: string;
  hdu?: string | number;
}

/** Optional header keys describing a grid (written by the simulator; absent in ESA products). */
export const PSF_GRID_KEYS = {
  nx: 'PSFGRDNX',
  ny: 'PSFGRDNY',
  stampSize: 'PSFSTAMP',
  quadrantWidth: 'PSFQUADW',
  quadrantHeight: 'PSFQUADH',
  oversampling: 'PSFOVERS',
} as const;

export const EUCLID_QUADRANT_WIDTH = 2048;
export const EUCLID_QUADRANT_HEIGHT = 2066;
export const EUCLID_PSF_STAMP = 21;
export const EUCLID_PSF_GRID = 9;

export class PsfGrid {
  readonly nx: number;
  readonly ny: number;
  readonly stampSize: number;
  readonly quadrantWidth: number;
  readonly quadrantHeight: number;
  /**
   * PSF-model pixels per detector pixel (integer ≥ 1; 1 = native sampling): the stamps sample the
   * PSF every 1/oversampling detector pixel, centre index (stampSize − 1)/2 at the grid node.
   */
  readonly oversampling: number;
  /** Stamps, stamp (i, j) at offset (j·nx + i)·S², each row-major S × S. */
  private readonly stamps: Float64Array;

  /**
   * @param image  the grid image, row-major [y][x], `width` × `height` pixels
   */
  /** File and HDU the grid came from (for error messages). */
  readonly context: { file?: string; hdu?: string | number };

  constructor(image: ArrayLike<number>, width: number, height: number, opts: PsfGridOptions = {}) {
    const ctx = { file: opts.file, hdu: opts.hdu };
    this.context = ctx;
    const S = opts.stampSize ?? (opts.nx ? width / opts.nx : EUCLID_PSF_STAMP);
    if (!Number.isInteger(S) || S < 1) throw new DataError(`PSF stamp size must be a positive integer, got ${S}`, ctx);
    const nx = opts.nx ?? width / S;
    const ny = opts.ny ?? height / S;
    if (!Number.isInteger(nx) || !Number.isInteger(ny) || nx < 1 || ny < 1 || nx * S !== width || ny * S !== height) {
      throw new DataError(
        `PSF grid image is ${width}×${height}, not a whole number of ${S}×${S} stamps (expected e.g. ${EUCLID_PSF_GRID * EUCLID_PSF_STAMP}×${EUCLID_PSF_GRID * EUCLID_PSF_STAMP})`,
        { ...ctx, key: 'NAXIS1' },
      );
    }
    if (image.length !== width * height) {
      throw new DataError(`PSF grid data has ${image.length} pixels, expected ${width}×${height}`, ctx);
    }
    this.nx = nx;
    this.ny = ny;
    this.stampSize = S;
    this.quadrantWidth = opts.quadrantWidth ?? EUCLID_QUADRANT_WIDTH;
    this.quadrantHeight = opts.quadrantHeight ?? EUCLID_QUADRANT_HEIGHT;
    if (!(this.quadrantWidth > 0 && this.quadrantHeight > 0)) {
      throw new DataError(`quadrant size must be positive, got ${this.quadrantWidth}×${this.quadrantHeight}`, ctx);
    }
    const q = opts.oversampling ?? 1;
    if (!Number.isInteger(q) || q < 1) {
      throw new DataError(`PSF oversampling (PSF pixels per detector pixel) must be a positive integer, got ${q}`, { ...ctx, key: PSF_GRID_KEYS.oversampling });
    }
    if (q > 1 && S % 2 !== 1) {
      throw new DataError(`an oversampled PSF stamp (${PSF_GRID_KEYS.oversampling} = ${q}) must have an odd side (centre pixel at the node), got ${S}`, { ...ctx, key: PSF_GRID_KEYS.stampSize });
    }
    this.oversampling = q;
    const st = new Float64Array(nx * ny * S * S);
    for (let j = 0; j < ny; j++) {
      for (let i = 0; i < nx; i++) {
        const base = (j * nx + i) * S * S;
        for (let r = 0; r < S; r++) {
          const row = (j * S + r) * width + i * S;
          for (let c = 0; c < S; c++) {
            const v = image[row + c];
            if (!Number.isFinite(v)) {
              throw new DataError(`PSF stamp (${i}, ${j}) has a non-finite pixel at (${c}, ${r})`, ctx);
            }
            st[base + r * S + c] = v;
          }
        }
      }
    }
    this.stamps = st;
  }

  /** Copy of the raw stamp (i, j) (not renormalised), row-major S × S. */
  stampAt(i: number, j: number): Float64Array {
    if (!Number.isInteger(i) || !Number.isInteger(j) || i < 0 || j < 0 || i >= this.nx || j >= this.ny) {
      throw new RangeError(`stamp index (${i}, ${j}) outside the ${this.nx}×${this.ny} grid`);
    }
    const n = this.stampSize * this.stampSize;
    const o = (j * this.nx + i) * n;
    return this.stamps.slice(o, o + n);
  }

  /** 0-based pixel position of grid centre i along x. */
  gridX(i: number): number {
    return ((i + 0.5) * this.quadrantWidth) / this.nx - 0.5;
  }

  /** 0-based pixel position of grid centre j along y. */
  gridY(j: number): number {
    return ((j + 0.5) * this.quadrantHeight) / this.ny - 0.5;
  }

  /** All grid centres, 0-based pixels: entry (j·nx + i) = {i, j, x, y}. */
  gridPositions(): Array<{ i: number; j: number; x: number; y: number }> {
    const out: Array<{ i: number; j: number; x: number; y: number }> = [];
    for (let j = 0; j < this.ny; j++) for (let i = 0; i < this.nx; i++) out.push({ i, j, x: this.gridX(i), y: this.gridY(j) });
    return out;
  }

  /** Continuous grid coordinates of a 0-based pixel position (unclamped). */
  gridCoordinates(x: number, y: number): [number, number] {
    return [((x + 0.5) * this.nx) / this.quadrantWidth - 0.5, ((y + 0.5) * this.ny) / this.quadrantHeight - 0.5];
  }

  /**
   * PSF at 0-based pixel (x, y): bilinear interpolation of the 4 nearest stamps (clamped at the
   * grid edges), renormalised to unit sum. Returns a new S × S row-major Float64Array.
   */
  interpolate(x: number, y: number, out: Float64Array = new Float64Array(this.stampSize * this.stampSize)): Float64Array {
    if (!Number.isFinite(x) || !Number.isFinite(y)) throw new RangeError(`PSF position (${x}, ${y}) is not finite`);
    const [gx, gy] = this.gridCoordinates(x, y);
    const [i0, i1, tx] = axis(gx, this.nx);
    const [j0, j1, ty] = axis(gy, this.ny);
    const n = this.stampSize * this.stampSize;
    const s = this.stamps;
    const o00 = (j0 * this.nx + i0) * n;
    const o10 = (j0 * this.nx + i1) * n;
    const o01 = (j1 * this.nx + i0) * n;
    const o11 = (j1 * this.nx + i1) * n;
    const w00 = (1 - tx) * (1 - ty);
    const w10 = tx * (1 - ty);
    const w01 = (1 - tx) * ty;
    const w11 = tx * ty;
    let sum = 0;
    for (let k = 0; k < n; k++) {
      const v = w00 * s[o00 + k] + w10 * s[o10 + k] + w01 * s[o01 + k] + w11 * s[o11 + k];
      out[k] = v;
      sum += v;
    }
    if (!(sum > 0) || !Number.isFinite(sum)) {
      throw new DataError(
        `the PSF interpolated at pixel (${x}, ${y}) (stamps (${i0}, ${j0})–(${i1}, ${j1}) of the ${this.nx}×${this.ny} grid) has sum ${sum}: cannot normalise`,
        this.context,
      );
    }
    const inv = 1 / sum;
    for (let k = 0; k < n; k++) out[k] *= inv;
    return out;
  }
}

/** Clamped bilinear indices and weight along one axis of n grid points. */
function axis(g: number, n: number): [number, number, number] {
  if (n === 1) return [0, 0, 0];
  const c = Math.min(Math.max(g, 0), n - 1);
  let i0 = Math.floor(c);
  if (i0 >= n - 1) i0 = n - 2;
  return [i0, i0 + 1, c - i0];
}

/** Minimal header access for reading grid parameters. */
export interface PsfHeaderLike {
  get(key: string): unknown;
}

/** Grid options from the optional PSF_GRID_KEYS in a header (explicit options win). */
export function psfGridOptionsFromHeader(h: PsfHeaderLike, opts: PsfGridOptions = {}): PsfGridOptions {
  const out: PsfGridOptions = { ...opts };
  const read = (k: keyof typeof PSF_GRID_KEYS) => {
    if (out[k] !== undefined) return;
    const v = h.get(PSF_GRID_KEYS[k]);
    if (v === undefined || v === null) return;
    const n = typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : Number(String(v).trim());
    if (!Number.isFinite(n) || n <= 0) {
      throw new DataError(`expected a positive number, got ${JSON.stringify(String(v))}`, {
        file: opts.file,
        hdu: opts.hdu,
        key: PSF_GRID_KEYS[k],
      });
    }
    (out as Record<string, unknown>)[k] = n;
  };
  read('nx');
  read('ny');
  read('stampSize');
  read('quadrantWidth');
  read('quadrantHeight');
  if (out.oversampling === undefined) {
    const v = h.get(PSF_GRID_KEYS.oversampling);
    if (v !== undefined && v !== null) {
      const n = typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : typeof v === 'string' && v.trim() !== '' ? Number(v.trim()) : NaN;
      if (!Number.isInteger(n) || n < 1) {
        throw new DataError(`PSF oversampling (PSF pixels per detector pixel) must be a positive integer, got ${JSON.stringify(String(v))}`, {
          file: opts.file,
          hdu: opts.hdu,
          key: PSF_GRID_KEYS.oversampling,
        });
      }
      out.oversampling = n;
    }
  }
  return out;
}

/** Header cards describing a grid (what `psfGridOptionsFromHeader` reads back). */
export function psfGridHeaderCards(g: {
  nx: number;
  ny: number;
  stampSize: number;
  quadrantWidth: number;
  quadrantHeight: number;
  /** PSF-model pixels per detector pixel; the PSFOVERS card is written only when given. */
  oversampling?: number;
}): Array<[string, number, string]> {
  const cards: Array<[string, number, string]> = [
    [PSF_GRID_KEYS.nx, g.nx, 'PSF grid cells along x'],
    [PSF_GRID_KEYS.ny, g.ny, 'PSF grid cells along y'],
    [PSF_GRID_KEYS.stampSize, g.stampSize, 'PSF stamp side (pixels)'],
    [PSF_GRID_KEYS.quadrantWidth, g.quadrantWidth, 'quadrant width (pixels)'],
    [PSF_GRID_KEYS.quadrantHeight, g.quadrantHeight, 'quadrant height (pixels)'],
  ];
  if (g.oversampling !== undefined) cards.push([PSF_GRID_KEYS.oversampling, g.oversampling, 'PSF pixels per detector pixel']);
  return cards;
}

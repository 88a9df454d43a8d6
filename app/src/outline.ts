/**
 * The outline of a quadrant's modelled area (pixels under at least one visible modelled stamp,
 * where χ²/N is summed): the edges between covered and uncovered pixels, merged into straight
 * runs, in pixel-edge coordinates (pixel (x, y) spans [x − ½, x + ½] × [y − ½, y + ½], the
 * views' convention). Drawn over the model and χ views.
 */

/** Segments x0, y0, x1, y1 (4 numbers each) of the boundary of `mask` (1 = inside). */
export function maskOutline(mask: ArrayLike<number>, width: number, height: number): Float32Array {
  const seg: number[] = [];
  const at = (x: number, y: number) => (x >= 0 && y >= 0 && x < width && y < height ? mask[y * width + x] !== 0 : false);
  // horizontal edges: between rows y − 1 and y, runs along x
  for (let y = 0; y <= height; y++) {
    let start = -1;
    for (let x = 0; x <= width; x++) {
      const edge = x < width && at(x, y - 1) !== at(x, y);
      if (edge && start < 0) start = x;
      if (!edge && start >= 0) {
        seg.push(start - 0.5, y - 0.5, x - 0.5, y - 0.5);
        start = -1;
      }
    }
  }
  // vertical edges: between columns x − 1 and x, runs along y
  for (let x = 0; x <= width; x++) {
    let start = -1;
    for (let y = 0; y <= height; y++) {
      const edge = y < height && at(x - 1, y) !== at(x, y);
      if (edge && start < 0) start = y;
      if (!edge && start >= 0) {
        seg.push(x - 0.5, start - 0.5, x - 0.5, y - 0.5);
        start = -1;
      }
    }
  }
  return Float32Array.from(seg);
}

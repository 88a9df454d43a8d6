/**
 * Weighted second moments of a stamp, and the stamp-level shear bias they imply.
 *
 * χ = (Qxx − Qyy, 2Qxy) / (Qxx + Qyy) with a fixed circular Gaussian weight (σ_w pixels) centred
 * on the given point: fixed (not adaptive), so χ is a smooth function of the image and the
 * difference between two renderers of the same galaxy is a model difference, not a weight change.
 */
export function weightedEllipticity(stamp: ArrayLike<number>, n: number, cx: number, cy: number, sigmaW: number): [number, number] {
  let qxx = 0;
  let qyy = 0;
  let qxy = 0;
  const inv = 1 / (2 * sigmaW * sigmaW);
  for (let j = 0; j < n; j++) {
    const dy = j - cy;
    for (let i = 0; i < n; i++) {
      const dx = i - cx;
      const w = Math.exp(-(dx * dx + dy * dy) * inv) * stamp[j * n + i];
      qxx += w * dx * dx;
      qyy += w * dy * dy;
      qxy += w * dx * dy;
    }
  }
  const t = qxx + qyy;
  return [(qxx - qyy) / t, (2 * qxy) / t];
}

/**
 * Stamp-level m and c of a renderer against a reference renderer: with χ(g) measured on each at
 * shears ±g along component i, the responses R = (χ_i(+g) − χ_i(−g)) / 2g give m = R_model / R_ref − 1
 * and c = (mean over ± of χ_model − χ_ref) / R_ref, in shear units.
 */
export function stampBias(chiModel: { plus: number; minus: number }, chiRef: { plus: number; minus: number }, g: number): { m: number; c: number } {
  const rm = (chiModel.plus - chiModel.minus) / (2 * g);
  const rr = (chiRef.plus - chiRef.minus) / (2 * g);
  const c = ((chiModel.plus + chiModel.minus) / 2 - (chiRef.plus + chiRef.minus) / 2) / rr;
  return { m: rm / rr - 1, c };
}

/**
 * The seeded random numbers of inference and of the synthetic test scenes: mulberry32 uniforms
 * and Box–Muller normals (both deviates of a pair used), one implementation for all of them.
 *
 * The simulator has its own generator on purpose (engine/sim/rng.ts: sfc32 streams keyed by
 * (seed, name), so a simulation's noise does not depend on the order things are drawn in).
 */

/** mulberry32: a small, fast, seeded 32-bit generator. Returns uniforms in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Seeded uniforms and standard normals. */
export class Random {
  private readonly u: () => number;
  private spare: number | null = null;
  constructor(seed: number) {
    this.u = mulberry32(seed);
  }
  /** Uniform in [0, 1). */
  uniform(): number {
    return this.u();
  }
  /** Standard normal (Box–Muller; the pair's second deviate is kept for the next call). */
  normal(): number {
    if (this.spare !== null) {
      const s = this.spare;
      this.spare = null;
      return s;
    }
    let u1 = this.u();
    while (u1 <= 0) u1 = this.u();
    const u2 = this.u();
    const r = Math.sqrt(-2 * Math.log(u1));
    this.spare = r * Math.sin(2 * Math.PI * u2);
    return r * Math.cos(2 * Math.PI * u2);
  }
  /** n standard normals. */
  normals(n: number): Float64Array {
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = this.normal();
    return out;
  }
}

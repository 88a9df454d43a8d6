/**
 * The simulation set of a shear calibration (docs/calibrate.md), runtime-agnostic: per seed,
 * 4·R simulations with the identical scene and noise deviates that differ only in the applied
 * shear — (+g, 0), (−g, 0), (0, +g), (0, −g) — and in the orientation of the galaxies' intrinsic
 * ellipticities: rotated by 180°·k/R in position angle, k = 0 … R−1 (shape-noise cancellation;
 * R = 4: 0°, 45°, 90°, 135°, which cancels shape noise to O(e⁴); R = 2: 0°, 90°, to O(e²)).
 * Also the parsers of the command-line lists.
 */
import { ShineError } from '../errors.ts';

export type Component = 1 | 2;
export type Sign = 1 | -1;
/** Orientations of the intrinsic shapes per (component, sign): the ring size R. */
export type Rotations = 2 | 4;
export const ROTATION_CHOICES: readonly Rotations[] = [2, 4];
/** `--rotations` when not given (a folder without the field in its run record means 2). */
export const DEFAULT_ROTATIONS: Rotations = 4;

/** One simulation of a seed's set. */
export interface Member {
  /** The shear component that is non-zero. */
  component: Component;
  sign: Sign;
  /** Rotation index k ∈ {0 … R−1}: intrinsic shapes rotated by 180°·k/R in position angle. */
  rotation: number;
  /** R, the number of rotations of the design this member belongs to. */
  rotations: Rotations;
}

/** `--rotations`: 2 or 4. */
export function checkRotations(r: number, text = String(r)): Rotations {
  if (r !== 2 && r !== 4) throw new ShineError(`--rotations must be 2 or 4, got '${text}'`);
  return r;
}

/**
 * The 4·R members in a fixed order: component, then sign (+ first), then rotation index k
 * (unrotated first).
 */
export function designMembers(rotations: Rotations): Member[] {
  checkRotations(rotations);
  return ([1, 2] as const).flatMap((component) =>
    ([1, -1] as const).flatMap((sign) => Array.from({ length: rotations }, (_, rotation) => ({ component, sign, rotation, rotations }))),
  );
}

/** The member's rotation of the intrinsic shapes in degrees: 180·k/R (0, 45, 90, 135 for R = 4). */
export function memberRotationDeg(m: Pick<Member, 'rotation' | 'rotations'>): number {
  return (180 * m.rotation) / m.rotations;
}

/** Whether the member's intrinsic shapes are rotated at all (k > 0; the ROTATED column). */
export function memberRotated(m: Pick<Member, 'rotation'>): boolean {
  return m.rotation > 0;
}

/**
 * A file-name friendly label: `g1p_r0` = (+g, 0) unrotated, `g2m_r3` = (0, −g) rotation index 3
 * (135° with R = 4). The index is k, so `_r1` is 90° with R = 2 and 45° with R = 4.
 */
export function memberLabel(m: Pick<Member, 'component' | 'sign' | 'rotation'>): string {
  return `g${m.component}${m.sign > 0 ? 'p' : 'm'}_r${m.rotation}`;
}

/** A human label: `+g1`, `-g2 rot 45°`. */
export function memberText(m: Member): string {
  return `${m.sign > 0 ? '+' : '-'}g${m.component}${m.rotation ? ` rot ${memberRotationDeg(m)}°` : ''}`;
}

/** The true reduced shear (g1, g2) of a member for the amplitude g. */
export function memberShear(m: Member, g: number): [number, number] {
  const v = m.sign * g;
  return m.component === 1 ? [v, 0] : [0, v];
}

export function memberKey(m: Pick<Member, 'component' | 'sign' | 'rotation'>): string {
  return `${m.component}${m.sign > 0 ? '+' : '-'}${m.rotation}`;
}

/**
 * Seeds: comma-separated non-negative integers and ranges `a-b` (a ≤ b), e.g. `1-20` or `1,2,5`
 * or `1-3,7`. Sorted; a repeated seed, an empty list or anything else is an error.
 */
export function parseSeeds(text: string, maxCount = 100_000): number[] {
  const s = text.trim();
  if (!s) throw new ShineError("--seeds is empty (expected e.g. '1-20' or '1,2,5')");
  const out = new Set<number>();
  for (const raw of s.split(',')) {
    const tok = raw.trim();
    const m = /^(\d+)(?:-(\d+))?$/.exec(tok);
    if (!m) throw new ShineError(`--seeds: '${tok}' is not a seed or a range a-b of non-negative integers (expected e.g. '1-20' or '1,2,5')`);
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (!Number.isSafeInteger(a) || !Number.isSafeInteger(b)) throw new ShineError(`--seeds: '${tok}' is too large`);
    if (b < a) throw new ShineError(`--seeds: range '${tok}' ends before it starts`);
    if (b - a + 1 + out.size > maxCount) throw new ShineError(`--seeds: more than ${maxCount} seeds`);
    for (let k = a; k <= b; k++) {
      if (out.has(k)) throw new ShineError(`--seeds: seed ${k} is listed twice`);
      out.add(k);
    }
  }
  return [...out].sort((x, y) => x - y);
}

/** Seeds as compact text: `1-3,7`. */
export function formatSeeds(seeds: readonly number[]): string {
  const s = [...seeds].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < s.length; ) {
    let j = i;
    while (j + 1 < s.length && s[j + 1] === s[j] + 1) j++;
    parts.push(j > i ? `${s[i]}-${s[j]}` : `${s[i]}`);
    i = j + 1;
  }
  return parts.join(',');
}

/**
 * Sub-tiles: `all`, or `R,C;R,C;…` (0-based row, column inside the grid). Returns null for all.
 * Sorted row-major; a repeated or out-of-grid sub-tile is an error.
 */
export function parseSubtiles(text: string, grid: readonly [number, number]): Array<[number, number]> | null {
  const s = text.trim();
  if (s === 'all') return null;
  if (!s) throw new ShineError("--sub-tiles is empty (expected 'all' or 'R,C;R,C')");
  const seen = new Set<string>();
  const out: Array<[number, number]> = [];
  for (const raw of s.split(';')) {
    const tok = raw.trim();
    const m = /^(\d+)\s*,\s*(\d+)$/.exec(tok);
    if (!m) throw new ShineError(`--sub-tiles: '${tok}' is not R,C (expected 'all' or e.g. '0,2;1,3')`);
    const r = Number(m[1]);
    const c = Number(m[2]);
    if (r >= grid[0] || c >= grid[1]) throw new ShineError(`--sub-tiles: (${r}, ${c}) is outside the ${grid[0]}×${grid[1]} sub-tile grid`);
    const k = `${r},${c}`;
    if (seen.has(k)) throw new ShineError(`--sub-tiles: (${r}, ${c}) is listed twice`);
    seen.add(k);
    out.push([r, c]);
  }
  return out.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
}

/** The shear amplitude: a finite number with 0 < |g| < 1. */
export function checkShearAmplitude(g: number, text = String(g)): number {
  if (!Number.isFinite(g) || g === 0 || Math.abs(g) >= 1) throw new ShineError(`--g must be a number with 0 < |g| < 1, got '${text}'`);
  return g;
}

/**
 * What a sub-tile's metadata says about the trust its shear deserves, for survey-scale checks
 * (`shine status`). Complete, valid products can still hold a fit that did not converge, a shear
 * without errors, or a MAP that may be off its mode (a Newton step the polish did not take,
 * engine/infer/laplace.ts polishWarning): a run counts them as done, so they are named here rather
 * than found later in the catalog.
 */
import { OFF_MODE_WARNING } from '../infer/laplace.ts';

export interface FitQuality {
  converged: boolean;
  /** The fit's stop reason (metadata inference.reason). */
  reason: string;
  /** G1, G2 finite. */
  shear: boolean;
  /** G1_ERR, G2_ERR finite and positive. */
  errors: boolean;
  /** The sub-tile carries the warning that its MAP's shear may be off its mode. */
  offMode: boolean;
  /** How far off, in σ̂, as the warning says (NaN when there is none or it names no number). */
  offModeSigma: number;
  /** Number of warnings in the metadata (any kind). */
  warnings: number;
  /** The problems above in words (empty when none). */
  problems: string[];
}

const finite = (v: unknown): boolean => typeof v === 'number' && Number.isFinite(v);

/** Reads the parsed metadata YAML of a sub-tile (engine/outputs/metadata.ts). */
export function fitQuality(meta: unknown): FitQuality {
  const m = (meta ?? {}) as { inference?: { converged?: unknown; reason?: unknown }; shear?: Record<string, unknown> | null; warnings?: unknown };
  const converged = m.inference?.converged === true;
  const reason = typeof m.inference?.reason === 'string' ? m.inference.reason : 'unknown';
  const sh = m.shear ?? {};
  const shear = finite(sh.g1) && finite(sh.g2);
  const errors = finite(sh.g1_err) && finite(sh.g2_err) && (sh.g1_err as number) > 0 && (sh.g2_err as number) > 0;
  const warnings = Array.isArray(m.warnings) ? m.warnings.filter((w): w is string => typeof w === 'string') : [];
  const off = warnings.find((w) => w.startsWith(OFF_MODE_WARNING));
  const problems: string[] = [];
  if (!converged) problems.push(`not converged (${reason})`);
  if (!shear) problems.push('no shear (G1/G2 not finite)');
  else if (!errors) problems.push('no shear errors (G1_ERR/G2_ERR not finite)');
  if (off) problems.push(off.split(':')[0]);
  const sigma = off ? Number(/^[^0-9]*([0-9.]+)σ̂/.exec(off.slice(OFF_MODE_WARNING.length))?.[1] ?? NaN) : NaN;
  return { converged, reason, shear, errors, offMode: off !== undefined, offModeSigma: sigma, warnings: warnings.length, problems };
}

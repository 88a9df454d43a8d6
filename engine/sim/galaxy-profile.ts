/**
 * The simulator's galaxy light profiles: each galaxy drawn as one or two sheared components
 * (engine/sim/truth-render.ts renders each exactly), so that `shine calibrate` can measure the
 * model bias of fitting exponentials to galaxies that are not (docs/simulate.md, docs/calibrate.md).
 *
 *   exponential           one exponential of the object's hlr (the default; output unchanged)
 *   spergel, fixed ν      one Spergel profile of index ν, hlr the half-light radius
 *   spergel, ν per galaxy (`free: true`) ν drawn per galaxy, uniform in [−0.6, 1.5] (de
 *                         Vaucouleurs-like to close to Gaussian); the truth table's NU column
 *   bulge + disk          an exponential disk (the object's hlr and e) plus a Spergel bulge of
 *                         index ν_b: B/T uniform in [0.1, 0.5], bulge hlr 0.2–0.6 × the disk's,
 *                         bulge distortion 0–0.5 × the disk's (same direction); truth columns
 *                         BT, HLR_B, E1_B, E2_B
 *
 * The per-galaxy numbers come from a stream per object (`profile/<id>`), so every other draw of
 * the simulation (positions, fluxes, shapes, noise) is the same whatever the profile, and worker
 * threads reproduce them from the seed alone.
 */
import { ShineError } from '../errors.ts';
import { DEFAULT_BULGE_NU } from '../model/bulge-disk.ts';
import { spergelFluxRadius, spergelHlrOverR0, SPERGEL_NU_MAX, SPERGEL_NU_MIN } from '../model/spergel.ts';
import { type GalaxyProfile } from '../model/profile.ts';
import { Rng } from './rng.ts';
import { galaxyMap, HLR_TO_R0, type SkyObject } from './scene.ts';
import { exponentialRadius } from './truth-render.ts';

/** ν range of the per-galaxy Spergel indices. */
export const SIM_NU_RANGE: readonly [number, number] = [-0.6, 1.5];
/** B/T range, bulge/disk hlr ratio range and bulge/disk distortion ratio range of the bulge + disk galaxies. */
export const SIM_BULGE_FRAC_RANGE: readonly [number, number] = [0.1, 0.5];
export const SIM_BULGE_HLR_RATIO: readonly [number, number] = [0.2, 0.6];
export const SIM_BULGE_E_RATIO: readonly [number, number] = [0, 0.5];

/** One sheared component of a simulated galaxy. */
export interface SimComponent {
  flux: number;
  kind: 'exp' | 'spergel';
  /** Spergel index (0.5 for the exponential). */
  nu: number;
  /** Scale radius, arcsec. */
  r0: number;
  /** World map A = S(g)·S(g_e). */
  A: [number, number, number, number];
  /** Radius (in r0) outside which 1e-5 of the component's flux lies. */
  r5: number;
  /** |e| of the component (stamp sizes). */
  e: number;
}

/** The per-galaxy profile parameters (truth columns). */
export interface SimProfileParams {
  nu?: number;
  bulgeFrac?: number;
  bulgeHlr?: number;
  bulgeE1?: number;
  bulgeE2?: number;
}

/** Validated simulator profile: undefined for the exponential (the default). */
export function checkGalaxyProfile(p: GalaxyProfile | undefined): Exclude<GalaxyProfile, { type: 'exponential' }> | undefined {
  if (p === undefined || p.type === 'exponential') return undefined;
  const nuOk = (nu: unknown) => typeof nu === 'number' && Number.isFinite(nu) && nu >= SPERGEL_NU_MIN && nu <= SPERGEL_NU_MAX;
  if (p.type === 'spergel') {
    if (!p.free && !nuOk(p.nu)) throw new ShineError(`--spergel-nu must be a number from ${SPERGEL_NU_MIN} to ${SPERGEL_NU_MAX}, got ${String(p.nu)}`, { field: 'profile.nu' });
    return p.free ? { type: 'spergel', nu: p.nu ?? 0.5, free: true } : p;
  }
  if (p.type === 'bulge_disk') {
    if (!nuOk(p.bulgeNu)) throw new ShineError(`--bulge-nu must be a number from ${SPERGEL_NU_MIN} to ${SPERGEL_NU_MAX}, got ${String(p.bulgeNu)}`, { field: 'profile.bulgeNu' });
    return p;
  }
  throw new ShineError(`--profile must be exponential, spergel, spergel-per-galaxy or bulge-disk, got '${String((p as { type: unknown }).type)}'`, { field: 'profile' });
}

/** The simulator profile named on a command line (shine simulate --profile, shine calibrate --sim-profile). */
export function simProfileFromFlags(name: string, spergelNu: number | undefined, bulgeNu: number | undefined, flag = '--profile'): GalaxyProfile | undefined {
  switch (name) {
    case 'exponential':
      return undefined;
    case 'spergel':
      if (spergelNu === undefined) throw new ShineError(`${flag} spergel needs --spergel-nu NU`, { field: 'profile.nu' });
      return checkGalaxyProfile({ type: 'spergel', nu: spergelNu });
    case 'spergel-per-galaxy':
      return { type: 'spergel', nu: 0.5, free: true };
    case 'bulge-disk':
      return checkGalaxyProfile({ type: 'bulge_disk', bulgeNu: bulgeNu ?? DEFAULT_BULGE_NU });
    default:
      throw new ShineError(`${flag} must be exponential, spergel, spergel-per-galaxy or bulge-disk, got '${name}'`, { field: 'profile' });
  }
}

/** Header cards recording the profile (none for the exponential: its output stays byte-identical). */
export function profileCards(p: GalaxyProfile | undefined): Array<[string, string | number, string]> {
  const sp = checkGalaxyProfile(p);
  if (!sp) return [];
  if (sp.type === 'bulge_disk') return [['GALPROF', 'BULGEDSK', 'galaxy light profile: exponential disk + Spergel bulge'], ['BULGENU', sp.bulgeNu, 'Spergel index of the bulges']];
  if (sp.free) return [['GALPROF', 'SPERGVAR', 'galaxy light profile: Spergel, nu per galaxy'], ['SPERGNU0', SIM_NU_RANGE[0], 'lowest nu'], ['SPERGNU1', SIM_NU_RANGE[1], 'highest nu']];
  return [['GALPROF', 'SPERGEL', 'galaxy light profile'], ['SPERGNU', sp.nu, 'Spergel index nu']];
}

const r5Cache = new Map<number, number>();
function r5Of(nu: number): number {
  let r = r5Cache.get(nu);
  if (r === undefined) {
    r = nu === 0.5 ? exponentialRadius(1e-5) : spergelFluxRadius(nu, 1e-5);
    r5Cache.set(nu, r);
  }
  return r;
}

/** The per-galaxy parameters of object `o` (none for the exponential and a fixed-ν Spergel). */
export function simProfileParams(o: SkyObject, p: GalaxyProfile | undefined, seed: number): SimProfileParams {
  const sp = checkGalaxyProfile(p);
  if (!sp || o.isStar || (sp.type === 'spergel' && !sp.free)) return {};
  const rng = new Rng(seed, `profile/${o.id}`);
  if (sp.type === 'spergel') return { nu: rng.range(SIM_NU_RANGE[0], SIM_NU_RANGE[1]) };
  const bulgeFrac = rng.range(SIM_BULGE_FRAC_RANGE[0], SIM_BULGE_FRAC_RANGE[1]);
  const bulgeHlr = o.hlr * rng.range(SIM_BULGE_HLR_RATIO[0], SIM_BULGE_HLR_RATIO[1]);
  const er = rng.range(SIM_BULGE_E_RATIO[0], SIM_BULGE_E_RATIO[1]);
  return { bulgeFrac, bulgeHlr, bulgeE1: o.e1 * er, bulgeE2: o.e2 * er };
}

/** The components object `o` is drawn as (a galaxy: one or two; a star: none). */
export function simComponents(o: SkyObject, p: GalaxyProfile | undefined, seed: number): SimComponent[] {
  if (o.isStar) return [];
  const sp = checkGalaxyProfile(p);
  const e = Math.hypot(o.e1, o.e2);
  if (!sp) return [{ flux: o.fluxAdu, kind: 'exp', nu: 0.5, r0: o.hlr / HLR_TO_R0, A: galaxyMap(o), r5: r5Of(0.5), e }];
  const pp = simProfileParams(o, sp, seed);
  if (sp.type === 'spergel') {
    const nu = pp.nu ?? sp.nu;
    return [{ flux: o.fluxAdu, kind: 'spergel', nu, r0: o.hlr / spergelHlrOverR0(nu), A: galaxyMap(o), r5: r5Of(nu), e }];
  }
  const fb = pp.bulgeFrac!;
  const bulgeObj: SkyObject = { ...o, e1: pp.bulgeE1!, e2: pp.bulgeE2! };
  return [
    { flux: (1 - fb) * o.fluxAdu, kind: 'exp', nu: 0.5, r0: o.hlr / HLR_TO_R0, A: galaxyMap(o), r5: r5Of(0.5), e },
    {
      flux: fb * o.fluxAdu,
      kind: 'spergel',
      nu: sp.bulgeNu,
      r0: pp.bulgeHlr! / spergelHlrOverR0(sp.bulgeNu),
      A: galaxyMap(bulgeObj),
      r5: r5Of(sp.bulgeNu),
      e: Math.hypot(pp.bulgeE1!, pp.bulgeE2!),
    },
  ];
}

/** Per-axis second moment of a unit-flux component before shearing: 3 r0² (exponential), 2(1 + ν) r0² (Spergel). */
export function componentSecondMoment(c: SimComponent): number {
  return 2 * (1 + c.nu) * c.r0 * c.r0;
}

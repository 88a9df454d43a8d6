/**
 * Kernels of the forward model and its adjoint (docs/forward-model.md), as descriptors
 * (engine/gpu/kernel.ts): bindings by name, constants from TypeScript, the WGSL body.
 *
 * Kernels (one pipeline each, per FFT size M; all under compatibility limits):
 *   pairSetup     per pair: galaxy matrix, r0², flux, per-axis phase tables (and alias factors)
 *   kspaceRender  Ŝ(k) = Σ_n F·Ĝ(Aᵀ J⁻ᵀ k_n)·P̂(k_n)·e^{−ik_n·p}, k_n = k + 2πn  (then inverse FFT);
 *                 the cached PSF spectra P̂(k_n) come from engine/gpu/psf/psf.wgsl.ts
 *   accumulate    gather the cropped stamps of a batch into a quadrant's model blocks (no atomics)
 *   residual      ∂logL/∂model = −w(model − obs) and per-block Σ w(model − obs)²
 *   residScatter  residual on each stamp footprint, zero-padded to the FFT grid (then forward FFT)
 *   adjointReduce per pair: (1/M²) Re Σ_k conj(R̂) ∂Ŝ/∂θ for θ = F, h, e1, e2, dx, dy, g1, g2
 *
 * Numerics: the phase k·p is split into an exact integer part (taken mod M) and a small
 * fractional part so f32 sin/cos never see large arguments; PSF spectra are computed once.
 */
import { defineKernel, f32, i32, read, readWrite, u32, uniform, type KernelConstant } from '../kernel.ts';
import { defineStruct } from '../struct.ts';
import { WGSL_CMUL, WGSL_SIGNED_FREQ } from '../common.wgsl.ts';
import { spergelHlrOverR0 } from '../../model/spergel.ts';
import { profileConstants, type GalaxyProfile } from '../../model/profile.ts';

/** Model-image blocks: 16 × 8 pixels = 128 threads, the compatibility-level workgroup size. */
export const BLOCK_W = 16;
export const BLOCK_H = 8;
export const BLOCK_PIXELS = BLOCK_W * BLOCK_H;

/**
 * One rendered (source, quadrant) pair, static for the engine's life (packed once by
 * ShearEngine.build). The source centre on the FFT grid is (bx + fx, by + fy) + J⁻¹·(dx, dy):
 * the integer part apart so that f32 never holds a large coordinate.
 */
export const PAIR = defineStruct(
  'Pair',
  { source: 'u32', quadrant: 'u32', cx: 'i32', cy: 'i32', bx: 'i32', by: 'i32', fx: 'f32', fy: 'f32', jinv: 'vec4f', n: 'u32', m: 'u32', psfOffset: 'u32' },
  { cx: 'stamp corner in the quadrant', bx: 'centre on the FFT grid: integer part', fx: 'and fraction', jinv: 'row-major J⁻¹: (j00, j01, j10, j11)', n: 'stamp side', m: 'FFT grid side', psfOffset: 'first PSF sample of the pair' },
);
/** The per-batch uniform (20 bytes; the GPU memory estimates count BATCH.size). */
export const BATCH = defineStruct('Batch', { pairBase: 'u32', count: 'u32', width: 'u32', height: 'u32', nbx: 'u32' }, {
  pairBase: 'first pair of the batch in the pair table',
  width: 'quadrant size',
  nbx: 'blocks per row of the quadrant',
});
/** accumulate's uniform: the batch's CSR block lists (touched blocks, starts, entries) in one buffer. */
export const CSR_INFO = defineStruct('CsrInfo', { nTouched: 'u32', startOffset: 'u32', entriesOffset: 'u32' });
/** residual's uniform. */
export const RESID_INFO = defineStruct('ResidInfo', { nActive: 'u32' });
/** Bytes of one Pair record. */
export const PAIR_BYTES = PAIR.size;
/** Bytes of the per-batch uniform. */
export const BATCH_UNIFORM_BYTES = BATCH.size;

const SOURCE_BASE = { flux: 'f32', hlr: 'f32', e1: 'f32', e2: 'f32', dx: 'f32', dy: 'f32', g1: 'f32', g2: 'f32' } as const;
/**
 * Per-source parameters as the kernels read them (`src: array<vec4f>`, SV vec4f per source):
 * p0 = (F, h, e1, e2), p1 = (dx, dy, g1, g2) — the shear per source, so replicas (chains) carry
 * their own — and p2 the profile's own four: (ν, 1/c_ν, (dc/dν)/c_ν, 0) for a free-ν Spergel
 * (c_ν from the CPU table, engine/model/spergel.ts), (B/T, bulge hlr, bulge e1, bulge e2) for
 * bulge + disk. ShearEngine.upload writes them at every evaluation by these field tables.
 */
export const SOURCE_RECORDS = {
  fixed: defineStruct('SourceParams', SOURCE_BASE),
  spergel_free: defineStruct('SourceParams', { ...SOURCE_BASE, nu: 'f32', invC: 'f32', dlogC: 'f32', pad: 'f32' }),
  bulge_disk: defineStruct('SourceParams', { ...SOURCE_BASE, bulgeFrac: 'f32', bulgeHlr: 'f32', bulgeE1: 'f32', bulgeE2: 'f32' }),
} as const;
/**
 * Gradient components adjointReduce writes per pair (`grad: array<f32>`, NG per pair), summed
 * per source in float64 by ShearEngine (g1, g2 over every pair).
 */
export const GRADIENT_RECORDS = {
  fixed: defineStruct('PairGradient', SOURCE_BASE),
  spergel_free: defineStruct('PairGradient', { ...SOURCE_BASE, nu: 'f32', pad0: 'f32', pad1: 'f32', pad2: 'f32' }),
  bulge_disk: defineStruct('PairGradient', { ...SOURCE_BASE, bulgeFrac: 'f32', bulgeHlr: 'f32', bulgeE1: 'f32', bulgeE2: 'f32' }),
} as const;
/** Gradient components written per pair (exponential and fixed-ν Spergel; see profileLayout). */
export const GRAD_PER_PAIR = GRADIENT_RECORDS.fixed.size / 4;

/**
 * How a profile is laid out on the GPU. 'fixed' (exponential, Spergel of one ν): 2 vec4f of
 * parameters per source, 3 vec4f of derived values and 8 gradient components per pair: the
 * original code, unchanged. 'spergel_free' (ν per source) and 'bulge_disk': a third parameter
 * vec4f per source (ν, 1/c_ν, (dc/dν)/c_ν, 0) or (B/T, bulge hlr, bulge e1, bulge e2), and 12
 * gradient components per pair (the last 4: ∂/∂ν, 0, 0, 0 or ∂/∂(B/T, hlr_b, e1_b, e2_b));
 * bulge + disk keeps 5 vec4f of derived values per pair (the bulge's A and r0²).
 */
export interface ProfileLayout {
  kind: 'fixed' | 'spergel_free' | 'bulge_disk';
  srcVecs: number;
  derivedVecs: number;
  grads: number;
}

export function profileLayout(profile: GalaxyProfile | undefined): ProfileLayout {
  const kind = profile?.type === 'spergel' && profile.free ? 'spergel_free' : profile?.type === 'bulge_disk' ? 'bulge_disk' : 'fixed';
  // record sizes from the field tables: vec4f per source, f32 per pair
  const srcVecs = SOURCE_RECORDS[kind].size / 16;
  const grads = GRADIENT_RECORDS[kind].size / 4;
  return { kind, srcVecs, derivedVecs: kind === 'bulge_disk' ? 5 : 3, grads };
}

/** h / r0 of the exponential (the default of RenderShaderOptions.hlrOverR0; r0 = hlr / this). */
export const HLR_TO_R0 = 1.6783469900166605;


/** Signed frequency, e^{2πi t} accurate on every adapter, complex product: shared by every render kernel. */
const CIS = /* wgsl */ `// (cos 2πt, sin 2πt) for |t| ≤ ½ turn, to ~1e-7 whatever the adapter's sin/cos: reduced to
// |x| ≤ π/4 by quadrant, then Taylor series (truncation < 3e-9). SwiftShader's builtin sin/cos
// are not accurate enough for the 1e-5 stamp tolerance.
fn cisTurns(t: f32) -> vec2f {
  let q = round(t * 4.0);
  let x = (t - q * 0.25) * TWO_PI;
  let x2 = x * x;
  let sn = x * (1.0 - x2 / 6.0 * (1.0 - x2 / 20.0 * (1.0 - x2 / 42.0 * (1.0 - x2 / 72.0))));
  let cs = 1.0 - x2 / 2.0 * (1.0 - x2 / 12.0 * (1.0 - x2 / 30.0 * (1.0 - x2 / 56.0 * (1.0 - x2 / 90.0))));
  let k = (i32(q) % 4 + 4) % 4;
  if (k == 0) { return vec2f(cs, sn); }
  if (k == 1) { return vec2f(-sn, cs); }
  if (k == 2) { return vec2f(-cs, -sn); }
  return vec2f(sn, -cs);
}
`;
const FREQ = [WGSL_SIGNED_FREQ, CIS, WGSL_CMUL].join('\n');

/** 2×2 matrices as vec4f (a00, a01, a10, a11), row-major. */
const MAT = /* wgsl */ `
fn mmul(a: vec4f, b: vec4f) -> vec4f {
  return vec4f(a.x * b.x + a.y * b.z, a.x * b.y + a.y * b.w, a.z * b.x + a.w * b.z, a.z * b.y + a.w * b.w);
}
// Aᵀ q
fn mtv(a: vec4f, q: vec2f) -> vec2f { return vec2f(a.x * q.x + a.z * q.y, a.y * q.x + a.w * q.y); }
fn shearMat(g: vec2f) -> vec4f {
  let n = (1.0 / sqrt(1.0 - dot(g, g)));
  return vec4f(1.0 + g.x, g.y, g.y, 1.0 - g.x) * n;
}
// GalSim distortion e → reduced shear g = e / (1 + sqrt(1 − |e|²))
fn distToShear(e: vec2f) -> vec2f { return e / (1.0 + sqrt(max(1.0 - dot(e, e), 0.0))); }
`;

export interface RenderShaderOptions {
  /** FFT grid size. */
  m: number;
  /** Workgroup size (128 under compatibility defaults; 256 where the device allows). */
  workgroupSize: number;
  /**
   * Alias orders N folded into each stamp spectrum (default 0): the PSF spectra hold (2N+1)²
   * M×M images per pair, one per order n ∈ [−N, N]², and the per-pair phase table gains the
   * per-axis factors e^{−2πi n f} (docs/forward-model.md "Aliasing").
   */
  aliasOrders?: number;
  /**
   * Galaxy profile, as shader constants: the exponent E of Ĝ = F (1 + r0²|q|²)^(−E) (default 1.5,
   * the exponential; 1 + ν for a Spergel profile) and h / r0 (default HLR_TO_R0 = 1.678…; c_ν for
   * Spergel, engine/model/spergel.ts). E = 1.5 generates exactly the exponential's code (t·√t).
   */
  profileExponent?: number;
  hlrOverR0?: number;
  /** Or the profile itself (RenderOptions.profile), from which both are derived when not given. */
  profile?: GalaxyProfile;
}

function exponentOf(o: RenderShaderOptions): number {
  return o.profileExponent ?? profileConstants(o.profile).exponent;
}
function hlrOverR0Of(o: RenderShaderOptions): number {
  return o.hlrOverR0 ?? (o.profile ? profileConstants(o.profile).hlrOverR0 : HLR_TO_R0);
}

/** A WGSL f32 literal of a float64 (integers get ".0"). */
function f32Literal(x: number): string {
  if (!Number.isFinite(x)) throw new RangeError(`shader constant ${x} is not finite`);
  const s = String(x);
  return /[.e]/.test(s) ? s : `${s}.0`;
}

/** t^E for t = 1/(1 + r0²|q|²): the unit-flux galaxy transform. */
function galaxyFT(o: RenderShaderOptions): string {
  const e = exponentOf(o);
  return e === 1.5 ? 't * sqrt(t)' : `pow(t, ${f32Literal(e)})`;
}

/** Per-pair entries of the phase table: e^{−i kx px}, e^{−i ky py} (M each), then 2·(2N+1) alias factors when N > 0. */
export function phaseEntries(m: number, aliasOrders = 0): number {
  return 2 * m + (aliasOrders > 0 ? 2 * (2 * aliasOrders + 1) : 0);
}

/** Constants of every render kernel of options `o` (FFT size, alias orders, profile record sizes). */
function constants(o: RenderShaderOptions): Record<string, KernelConstant> {
  const n = o.aliasOrders ?? 0;
  const pl = profileLayout(o.profile);
  const ext: Record<string, KernelConstant> = pl.kind === 'fixed' ? {} : { SV: u32(pl.srcVecs), DV: u32(pl.derivedVecs), NG: u32(pl.grads) };
  return { ...ext, M: u32(o.m), NA: i32(n), O: u32(2 * n + 1), PH: u32(phaseEntries(o.m, n)), TWO_PI: f32(6.28318530717959) };
}
/** Block constants of the kernels that address model blocks. */
const BLOCK_CONSTANTS = { BW: u32(BLOCK_W), BH: u32(BLOCK_H), BP: u32(BLOCK_PIXELS) };

/** k of base frequency index i in alias order slot o (n = o − N), radians per pixel. */
const ALIAS_K = /* wgsl */ `
fn aliasK(i: u32, o: u32) -> f32 {
  return f32(signedFreq(i) + (i32(o) - NA) * i32(M)) * (TWO_PI / f32(M));
}
`;

/**
 * The stamp spectrum's common factors, written once for kspaceRender (which renders it) and
 * adjointReduce (which differentiates it): base frequency, world frequency, the pair's phase.
 */
const SPECTRUM = /* wgsl */ `
// k (radians per pixel) at base frequency index (ix, iy)
fn baseK(ix: u32, iy: u32) -> vec2f {
  return vec2f(f32(signedFreq(ix)), f32(signedFreq(iy))) * (TWO_PI / f32(M));
}
// world frequency J⁻ᵀ k (J⁻¹ row-major)
fn worldQ(jinv: vec4f, k: vec2f) -> vec2f {
  return vec2f(jinv.x * k.x + jinv.z * k.y, jinv.y * k.x + jinv.w * k.y);
}
// e^{−ik·p} of pair l at (ix, iy): the product of its per-axis phase tables (pairSetup)
fn pairPhase(l: u32, ix: u32, iy: u32) -> vec2f {
  return cmul(phases[l * PH + ix], phases[l * PH + M + iy]);
}
`;

/** A = S(g)·S(ge) and its derivatives in (e1, e2, g1, g2): written once for every adjoint. */
const SHAPE_DERIVS = /* wgsl */ `
struct ShapeD { a: vec4f, e1: vec4f, e2: vec4f, g1: vec4f, g2: vec4f };
// A = S(g)·S(ge), ge = e/(1+√(1−|e|²)), and ∂A/∂(e1, e2, g1, g2)
fn shapeDerivs(e: vec2f, g: vec2f) -> ShapeD {
  var d: ShapeD;
  let tt = sqrt(max(1.0 - dot(e, e), 1e-12));
  let dd = 1.0 + tt;
  let ge = e / dd;
  let sg = shearMat(g);
  let sge = shearMat(ge);
  let ng = (1.0 / sqrt(1.0 - dot(g, g)));
  let nge = (1.0 / sqrt(1.0 - dot(ge, ge)));
  let dS1g = vec4f(1.0, 0.0, 0.0, -1.0) * ng + sg * (g.x * ng * ng);
  let dS2g = vec4f(0.0, 1.0, 1.0, 0.0) * ng + sg * (g.y * ng * ng);
  let dS1e = vec4f(1.0, 0.0, 0.0, -1.0) * nge + sge * (ge.x * nge * nge);
  let dS2e = vec4f(0.0, 1.0, 1.0, 0.0) * nge + sge * (ge.y * nge * nge);
  // d ge_i / d e_j = δij/D + e_i e_j/(t D²)
  let c = 1.0 / (tt * dd * dd);
  let dge_de1 = vec2f(1.0 / dd + e.x * e.x * c, e.y * e.x * c);
  let dge_de2 = vec2f(e.x * e.y * c, 1.0 / dd + e.y * e.y * c);
  d.a = mmul(sg, sge);
  d.e1 = mmul(sg, dS1e * dge_de1.x + dS2e * dge_de1.y);
  d.e2 = mmul(sg, dS1e * dge_de2.x + dS2e * dge_de2.y);
  d.g1 = mmul(dS1g, sge);
  d.g2 = mmul(dS2g, sge);
  return d;
}
`;

/** The adjoint's view of the residual spectra: pair l's R̂ from its two-for-one FFT slot. */
const RESIDUAL_SPECTRUM = /* wgsl */ `
// conj(r)·s
fn conjMul(r: vec2f, s: vec2f) -> vec2f { return vec2f(r.x * s.x + r.y * s.y, r.x * s.y - r.y * s.x); }
// slot l/2 holds W = Ra + i·Rb with Ra, Rb the FFTs of real residuals (Hermitian):
// Ra = (W(k) + conj W(−k))/2, Rb = (W(k) − conj W(−k))/(2i)
fn pairResidual(l: u32, ix: u32, iy: u32) -> vec2f {
  let ws = (l >> 1u) * M * M;
  let w0 = work[ws + iy * M + ix];
  let w1 = work[ws + ((M - iy) % M) * M + (M - ix) % M];
  if ((l & 1u) == 0u) { return 0.5 * vec2f(w0.x + w1.x, w0.y - w1.y); }
  return 0.5 * vec2f(w0.y + w1.y, w1.x - w0.x);
}
`;

const pairSetup = (o: RenderShaderOptions) => /* wgsl */ `
struct Setup { a: vec4f, r0: f32, flux: f32, f: vec2f };
fn setup(pr: Pair, p0: vec4f, p1: vec4f, g: vec2f) -> Setup {
  var s: Setup;
  s.flux = p0.x;
  s.r0 = p0.y / ${f32Literal(hlrOverR0Of(o))};
  s.a = mmul(shearMat(g), shearMat(distToShear(p0.zw)));
  let off = vec2f(pr.jinv.x * p1.x + pr.jinv.y * p1.y, pr.jinv.z * p1.x + pr.jinv.w * p1.y);
  s.f = vec2f(pr.fx, pr.fy) + off;
  return s;
}
`;

/** t^E as WGSL, for a shader-constant exponent E (t·√t for the exponential's 3/2). */
function powConst(t: string, e: number): string {
  return e === 1.5 ? `${t} * sqrt(${t})` : `pow(${t}, ${f32Literal(e)})`;
}

/** r0 / h of the bulge of a bulge + disk profile (1 / c(ν_b)). */
function bulgeR0OverHlr(o: RenderShaderOptions): number {
  return 1 / spergelHlrOverR0((o.profile as { bulgeNu: number }).bulgeNu);
}
function bulgeExponent(o: RenderShaderOptions): number {
  return 1 + (o.profile as { bulgeNu: number }).bulgeNu;
}

/**
 * pairSetupKernel's per-pair derived values. Fixed profiles: (J⁻¹ | A | r0², F, h, 0).
 * Free ν: (J⁻¹ | A | r0², F, h, 1 + ν) with r0 = h / c_ν (1/c_ν from the CPU, src[3s+2].y).
 * Bulge + disk: (J⁻¹ | A_disk | r0_d², F, h_d, B/T | A_bulge | r0_b², h_b, 0, 0).
 */
function setupDerived(o: RenderShaderOptions): string {
  const pl = profileLayout(o.profile);
  if (pl.kind === 'fixed') {
    return /* wgsl */ `  let p0 = src[2u * pr.source];
  // per-source shear (src[2s+1].zw): replicas of a scene (chains) carry their own shear
  let p1 = src[2u * pr.source + 1u];
  let s = setup(pr, p0, p1, p1.zw);
  if (li == 0u) {
    derived[3u * l] = pr.jinv;
    derived[3u * l + 1u] = s.a;
    derived[3u * l + 2u] = vec4f(s.r0 * s.r0, s.flux, p0.y, 0.0);
  }
`;
  }
  const common = /* wgsl */ `  let p0 = src[SV * pr.source];
  // per-source shear (src[SV·s+1].zw): replicas of a scene (chains) carry their own shear
  let p1 = src[SV * pr.source + 1u];
  let p2 = src[SV * pr.source + 2u];
  let s = setup(pr, p0, p1, p1.zw);
`;
  if (pl.kind === 'spergel_free') {
    return `${common}  if (li == 0u) {
    let r0 = p0.y * p2.y;
    derived[DV * l] = pr.jinv;
    derived[DV * l + 1u] = s.a;
    derived[DV * l + 2u] = vec4f(r0 * r0, s.flux, p0.y, 1.0 + p2.x);
  }
`;
  }
  return `${common}  if (li == 0u) {
    let rb = p2.y * ${f32Literal(bulgeR0OverHlr(o))};
    derived[DV * l] = pr.jinv;
    derived[DV * l + 1u] = s.a;
    derived[DV * l + 2u] = vec4f(s.r0 * s.r0, s.flux, p0.y, p2.x);
    derived[DV * l + 3u] = mmul(shearMat(p1.zw), shearMat(distToShear(p2.zw)));
    derived[DV * l + 4u] = vec4f(rb * rb, p2.y, 0.0, 0.0);
  }
`;
}

/** Unit-flux galaxy transform Ĝ(q)/F of pair l from its derived values (free-ν and bulge + disk profiles). */
function galaxyExt(o: RenderShaderOptions): string {
  const pl = profileLayout(o.profile);
  if (pl.kind === 'spergel_free') {
    return /* wgsl */ `
fn galaxy(l: u32, q: vec2f) -> f32 {
  let rf = derived[DV * l + 2u];
  let v = mtv(derived[DV * l + 1u], q);
  let t = 1.0 / (1.0 + rf.x * dot(v, v));
  return pow(t, rf.w);
}
`;
  }
  return /* wgsl */ `
fn galaxy(l: u32, q: vec2f) -> f32 {
  let rf = derived[DV * l + 2u];
  let v = mtv(derived[DV * l + 1u], q);
  let t = 1.0 / (1.0 + rf.x * dot(v, v));
  let vb = mtv(derived[DV * l + 3u], q);
  let tb = 1.0 / (1.0 + derived[DV * l + 4u].x * dot(vb, vb));
  return (1.0 - rf.w) * (t * sqrt(t)) + rf.w * (${powConst('tb', bulgeExponent(o))});
}
`;
}

/**
 * One pair's stamp spectrum at base frequency (ix, iy), written once for every profile:
 * F·e^{−ik·p}·P̂(k)·Ĝ(Aᵀ J⁻ᵀ k) without alias orders, and with them (alias-complete)
 * F·e^{−ik·p}·Σ_n P̂(k_n)·Ĝ(Aᵀ J⁻ᵀ k_n)·e^{−2πi n·f}, k_n = k + 2πn, n ∈ [−N, N]², P̂(k_n) stored per
 * order (zero outside the PSF model's band: those terms are skipped). The profile supplies the
 * stride of its derived records, the locals it reads once, the statements that set `g` = Ĝ(q)/F
 * and the flux F.
 */
function spectrumFn(o: RenderShaderOptions, pr: { stride: string; locals: string; galaxyAt: string; flux: string }): string {
  if ((o.aliasOrders ?? 0) === 0) {
    return /* wgsl */ `
fn spectrum(l: u32, ix: u32, iy: u32) -> vec2f {
  let jinv = derived[${pr.stride} * l];
${pr.locals}  let q = worldQ(jinv, baseK(ix, iy));
${pr.galaxyAt}  let e = pairPhase(l, ix, iy);
  return cmul(psfSpec[l * M * M + iy * M + ix], e) * (${pr.flux} * g);
}
`;
  }
  return /* wgsl */ `
fn spectrum(l: u32, ix: u32, iy: u32) -> vec2f {
  let jinv = derived[${pr.stride} * l];
${pr.locals}  let base = l * PH;
  var acc = vec2f(0.0);
  for (var oy = 0u; oy < O; oy = oy + 1u) {
    let ky = aliasK(iy, oy);
    let ay = phases[base + 2u * M + O + oy];
    for (var ox = 0u; ox < O; ox = ox + 1u) {
      let p = psfSpec[((l * O + oy) * O + ox) * M * M + iy * M + ix];
      if (p.x == 0.0 && p.y == 0.0) { continue; }
      let q = worldQ(jinv, vec2f(aliasK(ix, ox), ky));
${pr.galaxyAt}      acc = acc + cmul(p, cmul(phases[base + 2u * M + ox], ay)) * g;
    }
  }
  let e = pairPhase(l, ix, iy);
  return cmul(acc, e) * ${pr.flux};
}
`;
}

/** The stamp spectrum: exponential / fixed-ν Spergel (derived records of 3 vec4f) or free-ν and bulge + disk (DV, Ĝ from galaxyExt). */
function spectrum(o: RenderShaderOptions): string {
  if (profileLayout(o.profile).kind !== 'fixed') {
    return galaxyExt(o) + spectrumFn(o, { stride: 'DV', locals: '', galaxyAt: '  let g = galaxy(l, q);\n', flux: 'derived[DV * l + 2u].y' });
  }
  return spectrumFn(o, {
    stride: '3u',
    locals: '  let a = derived[3u * l + 1u];\n  let rf = derived[3u * l + 2u];\n',
    galaxyAt: `  let v = mtv(a, q);\n  let t = 1.0 / (1.0 + rf.x * dot(v, v));\n  let g = ${galaxyFT(o)};\n`,
    flux: 'rf.y',
  });
}

/**
 * Per pair, once per evaluation: the galaxy matrix A, r0², flux, J⁻¹, and the per-axis phase
 * tables e^{−i kx px}, e^{−i ky py} (exact integer part mod M), so that the per-frequency kernels
 * do no trigonometry and no 2×2 algebra.
 * derived[l] = (J⁻¹ | A | r0², flux, hlr, 0); phases[l·2M + i] = x table, [l·2M + M + i] = y table.
 */
export function pairSetupKernel(o: RenderShaderOptions) {
  return defineKernel({
    name: `setup-${o.m}`,
    bindings: {
      pairs: read({ array: PAIR }),
      src: read('array<vec4f>', 'source parameters, SV vec4f per source'),
      derived: readWrite('array<vec4f>'),
      phases: readWrite('array<vec2f>'),
      batch: uniform(BATCH),
    },
    workgroupSize: o.workgroupSize,
    constants: constants(o),
    shared: [FREQ, MAT],
    body: /* wgsl */ `${pairSetup(o)}
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) li: u32) {
  let l = wid.x;
  if (l >= batch.count) { return; }
  let pr = pairs[batch.pairBase + l];
${setupDerived(o)}  for (var i = li; i < 2u * M; i = i + WG) {
    let axis = i / M;
    let mf = signedFreq(i % M);
    let b = select(pr.bx, pr.by, axis == 1u);
    let f = select(s.f.x, s.f.y, axis == 1u);
    let ip = ((mf * b) % i32(M) + i32(M)) % i32(M);
    var turns = (f32(ip) + f32(mf) * f) / f32(M);
    turns = turns - round(turns);
    phases[l * PH + i] = cisTurns(-turns);
  }
  // alias order n: e^{−2πi n p} = e^{−2πi n f} (the integer part b drops out)
  for (var i = li; i < PH - 2u * M; i = i + WG) {
    let axis = i / O;
    let f = select(s.f.x, s.f.y, axis == 1u);
    var turns = f32(i32(i % O) - NA) * f;
    turns = turns - round(turns);
    phases[l * PH + 2u * M + i] = cisTurns(-turns);
  }
}
`,
  });
}

/**
 * Ŝ(k) = F·Ĝ(Aᵀ J⁻ᵀ k)·P̂(k)·e^{−ik·p} for every frequency of every pair of the batch, two pairs
 * per complex FFT ("two for one"): slot s holds H(Ŝ_2s) + i·H(Ŝ_2s+1), where H(Ŝ)(k) =
 * (Ŝ(k) + conj Ŝ(−k))/2 is the Hermitian part, so the inverse FFT gives stamp 2s in the real part
 * and stamp 2s+1 in the imaginary part (the model is Re ifft Ŝ = ifft H(Ŝ)). Off the Nyquist lines
 * H(Ŝ) = Ŝ analytically; on them Ŝ(−k) is evaluated explicitly.
 */
export function kspaceRenderKernel(o: RenderShaderOptions) {
  return defineKernel({
    name: `render-${o.m}`,
    bindings: {
      derived: read('array<vec4f>'),
      phases: read('array<vec2f>'),
      psfSpec: read('array<vec2f>'),
      work: readWrite('array<vec2f>'),
      batch: uniform(BATCH),
    },
    workgroupSize: o.workgroupSize,
    constants: constants(o),
    shared: [FREQ, MAT, ALIAS_K, SPECTRUM],
    body: /* wgsl */ `${spectrum(o)}
fn hermitian(l: u32, ix: u32, iy: u32) -> vec2f {
  let s = spectrum(l, ix, iy);
  if (ix != M / 2u && iy != M / 2u) { return s; }
  let c = spectrum(l, (M - ix) % M, (M - iy) % M);
  return 0.5 * (s + vec2f(c.x, -c.y));
}
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) li: u32) {
  let idx = wid.x * WG + li;
  let slot = wid.y;
  let l0 = 2u * slot;
  if (idx >= M * M || l0 >= batch.count) { return; }
  let ix = idx % M;
  let iy = idx / M;
  let ha = hermitian(l0, ix, iy);
  var hb = vec2f(0.0);
  if (l0 + 1u < batch.count) { hb = hermitian(l0 + 1u, ix, iy); }
  // ha + i·hb
  work[slot * M * M + idx] = vec2f(ha.x - hb.y, ha.y + hb.x);
}
`,
  });
}

/** One workgroup per active block touched by this batch; one thread per pixel. */
export function accumulateKernel(o: RenderShaderOptions) {
  return defineKernel({
    name: `accumulate-${o.m}`,
    bindings: {
      pairs: read({ array: PAIR }),
      work: read('array<vec2f>'),
      csr: read('array<u32>', '[touched block ids (nTouched)] [start offsets (nTouched+1)] [entries (local pair index)]'),
      blockXY: read('array<vec2u>'),
      model: readWrite('array<f32>'),
      batch: uniform(BATCH),
      csrInfo: uniform(CSR_INFO),
    },
    // one workgroup per block, one invocation per pixel
    workgroupSize: BLOCK_PIXELS,
    constants: { ...constants(o), ...BLOCK_CONSTANTS },
    body: /* wgsl */ `
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) li: u32) {
  let w = wid.x + wid.y * 65535u;
  if (w >= csrInfo.nTouched) { return; }
  let cb = csr[w];
  let b0 = csr[csrInfo.startOffset + w];
  let b1 = csr[csrInfo.startOffset + w + 1u];
  let bxy = blockXY[cb];
  let px = i32(bxy.x * BW + li % BW);
  let py = i32(bxy.y * BH + li / BW);
  // Start from the model so far: each stamp is added one at a time in pair order, whatever the
  // batching, so model images do not depend on how pairs were split into batches.
  let o = cb * BP + li;
  var acc = model[o];
  for (var e = b0; e < b1; e = e + 1u) {
    let l = csr[csrInfo.entriesOffset + e];
    let pr = pairs[batch.pairBase + l];
    let lx = px - pr.cx;
    let ly = py - pr.cy;
    if (lx >= 0 && ly >= 0 && lx < i32(pr.n) && ly < i32(pr.n)) {
      let pad = i32((M - pr.n) / 2u);
      let wv = work[(l >> 1u) * M * M + u32(ly + pad) * M + u32(lx + pad)];
      acc = acc + select(wv.x, wv.y, (l & 1u) == 1u);
    }
  }
  model[o] = acc;
}
`,
  });
}

/**
 * Per active block: resid = −w·(model − obs) (= ∂logL/∂model) and partial[block] = Σ w·(model − obs)²
 * summed serially in pixel order by one invocation per block: deterministic, and no workgroup
 * barriers (which are costly on software adapters); the partials are summed in float64 on the CPU.
 */
export function residualKernel(o: { workgroupSize: number }) {
  return defineKernel({
    name: 'residual',
    bindings: {
      obsW: read('array<vec2f>', '(observed, inverse variance) per pixel of the active blocks'),
      model: read('array<f32>'),
      resid: readWrite('array<f32>'),
      partial: readWrite('array<f32>'),
      info: uniform(RESID_INFO),
    },
    workgroupSize: o.workgroupSize,
    constants: { BP: u32(BLOCK_PIXELS) },
    body: /* wgsl */ `
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) li: u32) {
  let cb = (wid.x + wid.y * 65535u) * WG + li;
  if (cb >= info.nActive) { return; }
  var sq = 0.0;
  for (var t = 0u; t < BP; t = t + 1u) {
    let o = cb * BP + t;
    let ow = obsW[o];
    let d = model[o] - ow.x;
    let r = ow.y * d;
    resid[o] = -r;
    sq = sq + r * d;
  }
  partial[cb] = sq;
}
`,
  });
}

/**
 * Residual gathered on each stamp footprint (inside the image), zero elsewhere on the FFT grid;
 * pair 2s in the real part and pair 2s+1 in the imaginary part of slot s (two for one).
 */
export function residScatterKernel(o: RenderShaderOptions) {
  return defineKernel({
    name: `scatter-${o.m}`,
    bindings: {
      pairs: read({ array: PAIR }),
      blockIndex: read('array<i32>', 'block (bx, by) → compact index, −1 when inactive'),
      resid: read('array<f32>'),
      work: readWrite('array<vec2f>'),
      batch: uniform(BATCH),
    },
    workgroupSize: o.workgroupSize,
    constants: { ...constants(o), ...BLOCK_CONSTANTS },
    body: /* wgsl */ `
fn gather(l: u32, idx: u32) -> f32 {
  let pr = pairs[batch.pairBase + l];
  let pad = i32((M - pr.n) / 2u);
  let lx = i32(idx % M) - pad;
  let ly = i32(idx / M) - pad;
  if (lx < 0 || ly < 0 || lx >= i32(pr.n) || ly >= i32(pr.n)) { return 0.0; }
  let px = pr.cx + lx;
  let py = pr.cy + ly;
  if (px < 0 || py < 0 || px >= i32(batch.width) || py >= i32(batch.height)) { return 0.0; }
  let cb = blockIndex[u32(py) / BH * batch.nbx + u32(px) / BW];
  if (cb < 0) { return 0.0; }
  return resid[u32(cb) * BP + (u32(py) % BH) * BW + u32(px) % BW];
}
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) li: u32) {
  let idx = wid.x * WG + li;
  let slot = wid.y;
  let l0 = 2u * slot;
  if (idx >= M * M || l0 >= batch.count) { return; }
  var b = 0.0;
  if (l0 + 1u < batch.count) { b = gather(l0 + 1u, idx); }
  work[slot * M * M + idx] = vec2f(gather(l0, idx), b);
}
`,
  });
}

/**
 * The adjoint's loop over this invocation's frequencies and, alias-complete, every order of each
 * (∂ of spectrumFn): inside, `q` is the world frequency, `rr` the residual spectrum R̂ at the base
 * frequency and `sp` the order's PSF spectrum times the pair's phase; `term` accumulates from them.
 */
function adjointFrequencies(o: RenderShaderOptions, term: string): string {
  if ((o.aliasOrders ?? 0) === 0) {
    return /* wgsl */ `
  for (var idx = li; idx < M * M; idx = idx + WG) {
    let q = worldQ(pr.jinv, baseK(idx % M, idx / M));
    let rr = pairResidual(l, idx % M, idx / M);
    let sp = cmul(psfSpec[l * M * M + idx], pairPhase(l, idx % M, idx / M));
${term}
  }
`;
  }
  return /* wgsl */ `
  let base = l * PH;
  for (var idx = li; idx < M * M; idx = idx + WG) {
    let ix = idx % M;
    let iy = idx / M;
    let ph = pairPhase(l, ix, iy);
    let rr = pairResidual(l, ix, iy);
    for (var oy = 0u; oy < O; oy = oy + 1u) {
      let ky = aliasK(iy, oy);
      let phy = cmul(ph, phases[base + 2u * M + O + oy]);
      for (var ox = 0u; ox < O; ox = ox + 1u) {
        let p = psfSpec[((l * O + oy) * O + ox) * M * M + idx];
        if (p.x == 0.0 && p.y == 0.0) { continue; }
        let q = worldQ(pr.jinv, vec2f(aliasK(ix, ox), ky));
        let sp = cmul(p, cmul(phy, phases[base + 2u * M + ox]));
${term}
      }
    }
  }
`;
}

/** The adjoint's accumulation for exponential / fixed-ν Spergel profiles (Ĝ/F = t^E inline). */
const fixedAdjointLoop = (o: RenderShaderOptions) => /* wgsl */ `
  var acc0 = vec4f(0.0); // F, h, e1, e2
  var acc1 = vec4f(0.0); // dx, dy, g1, g2
${adjointFrequencies(
  o,
  `    let v = mtv(s.a, q);
    let qq = dot(v, v);
    let t = 1.0 / (1.0 + r02 * qq);
    let z0 = conjMul(rr, sp * (${galaxyFT(o)})); // conj(R̂)·Ŝ0, Ŝ0 the unit-flux spectrum
    let zr = z0.x * s.flux;
    let zi = z0.y * s.flux;
    let cmn = -${f32Literal(exponentOf(o))} * r02 * t; // ∂ log Ĝ / ∂(Q) · r0²… times ∂Q
    acc0 = acc0 + vec4f(
      z0.x,
      zr * cmn * 2.0 * qq / hlr,
      zr * cmn * 2.0 * dot(v, mtv(bE1, q)),
      zr * cmn * 2.0 * dot(v, mtv(bE2, q)));
    acc1 = acc1 + vec4f(
      zi * q.x,
      zi * q.y,
      zr * cmn * 2.0 * dot(v, mtv(bG1, q)),
      zr * cmn * 2.0 * dot(v, mtv(bG2, q)));`,
)}`;

/** The adjoint's bindings (every profile): the same names and types, one layout. */
const ADJOINT_BINDINGS = {
  pairs: read({ array: PAIR }),
  src: read('array<vec4f>'),
  psfSpec: read('array<vec2f>'),
  work: read('array<vec2f>', 'residual spectra, two pairs per slot'),
  grad: readWrite('array<f32>', 'gradient components per pair'),
  batch: uniform(BATCH),
  phases: read('array<vec2f>'),
};

/**
 * One workgroup per pair: gradient of logL w.r.t. (F, h, e1, e2, dx, dy, g1, g2) of this pair,
 * (1/M²) Re Σ_k conj(R̂(k)) ∂Ŝ(k)/∂θ, reduced in a fixed tree order (deterministic).
 */
export function adjointReduceKernel(o: RenderShaderOptions) {
  if (profileLayout(o.profile).kind !== 'fixed') return adjointReduceKernelExt(o);
  return defineKernel({
    name: `adjoint-${o.m}`,
    bindings: ADJOINT_BINDINGS,
    workgroupSize: o.workgroupSize,
    constants: constants(o),
    shared: [FREQ, MAT, ALIAS_K, SPECTRUM, RESIDUAL_SPECTRUM, SHAPE_DERIVS],
    body: /* wgsl */ `${pairSetup(o)}
var<workgroup> red: array<f32, ${8 * o.workgroupSize}>;
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) li: u32) {
  let l = wid.x;
  if (l >= batch.count) { return; }
  let pr = pairs[batch.pairBase + l];
  let p0 = src[2u * pr.source];
  let p1 = src[2u * pr.source + 1u];
  let g = p1.zw;
  let s = setup(pr, p0, p1, g);

  // ∂A/∂θ for θ = e1, e2, g1, g2 (A itself is s.a, from setup)
  let dA = shapeDerivs(p0.zw, g);
  let bE1 = dA.e1;
  let bE2 = dA.e2;
  let bG1 = dA.g1;
  let bG2 = dA.g2;
  let r02 = s.r0 * s.r0;
  let hlr = p0.y;

${fixedAdjointLoop(o)}
  for (var c2 = 0u; c2 < 4u; c2 = c2 + 1u) {
    red[c2 * WG + li] = acc0[c2];
    red[(c2 + 4u) * WG + li] = acc1[c2];
  }
  workgroupBarrier();
  for (var st = WG / 2u; st > 0u; st = st >> 1u) {
    if (li < st) {
      for (var c3 = 0u; c3 < 8u; c3 = c3 + 1u) {
        red[c3 * WG + li] = red[c3 * WG + li] + red[c3 * WG + li + st];
      }
    }
    workgroupBarrier();
  }
  if (li < 8u) {
    grad[(batch.pairBase + l) * 8u + li] = red[li * WG] / f32(M * M);
  }
}
`,
  });
}

/**
 * Per-frequency galaxy derivatives for the free-ν and bulge + disk profiles: Ĝ/F and its
 * derivatives in (h, e1, e2), (g1, g2) and the 4 profile parameters, at world frequency q, from
 * the per-pair constants in K (set once per workgroup invocation in main).
 *
 * Free ν (Ĝ/F = t^E, t = 1/(1 + r0²Q), Q = |Aᵀq|², E = 1 + ν, r0 = h/c_ν):
 *   ∂/∂h = −2E r0² t Q Ĝ / h,   ∂/∂ν = Ĝ (ln t + 2E t r0² Q c'_ν/c_ν)
 * (the second term from dr0/dν = −r0 c'_ν/c_ν). Bulge + disk: the disk's and the bulge's terms
 * weighted by (1 − B/T) and B/T, ∂/∂(B/T) = Ĝ_b − Ĝ_d; the shear acts on both.
 */
function galaxyDerivs(o: RenderShaderOptions): string {
  const pl = profileLayout(o.profile);
  const common = /* wgsl */ `
struct GalD { g: f32, dh: f32, de: vec2f, dg: vec2f, x: vec4f };
struct PairK { d: ShapeD, r02: f32, h: f32, e: f32, dlc: f32, b: ShapeD, r02b: f32, hb: f32, fb: f32 };
var<private> K: PairK;
`;
  if (pl.kind === 'spergel_free') {
    return `${common}
fn galD(q: vec2f) -> GalD {
  var o: GalD;
  let v = mtv(K.d.a, q);
  let qq = dot(v, v);
  let t = 1.0 / (1.0 + K.r02 * qq);
  let g = pow(t, K.e);
  let c = -2.0 * K.e * K.r02 * t * g;
  o.g = g;
  o.dh = c * qq / K.h;
  o.de = vec2f(c * dot(v, mtv(K.d.e1, q)), c * dot(v, mtv(K.d.e2, q)));
  o.dg = vec2f(c * dot(v, mtv(K.d.g1, q)), c * dot(v, mtv(K.d.g2, q)));
  o.x = vec4f(g * log(t) - c * qq * K.dlc, 0.0, 0.0, 0.0);
  return o;
}
`;
  }
  const eb = bulgeExponent(o);
  return `${common}
fn galD(q: vec2f) -> GalD {
  var o: GalD;
  let v = mtv(K.d.a, q);
  let qq = dot(v, v);
  let t = 1.0 / (1.0 + K.r02 * qq);
  let gd = t * sqrt(t);
  let cd = -3.0 * K.r02 * t * gd * (1.0 - K.fb);
  let vb = mtv(K.b.a, q);
  let qb = dot(vb, vb);
  let tb = 1.0 / (1.0 + K.r02b * qb);
  let gb = ${powConst('tb', eb)};
  let cb = ${f32Literal(-2 * eb)} * K.r02b * tb * gb * K.fb;
  o.g = (1.0 - K.fb) * gd + K.fb * gb;
  o.dh = cd * qq / K.h;
  o.de = vec2f(cd * dot(v, mtv(K.d.e1, q)), cd * dot(v, mtv(K.d.e2, q)));
  o.dg = vec2f(cd * dot(v, mtv(K.d.g1, q)) + cb * dot(vb, mtv(K.b.g1, q)), cd * dot(v, mtv(K.d.g2, q)) + cb * dot(vb, mtv(K.b.g2, q)));
  o.x = vec4f(gb - gd, cb * qb / K.hb, cb * dot(vb, mtv(K.b.e1, q)), cb * dot(vb, mtv(K.b.e2, q)));
  return o;
}
`;
}

/** The extended adjoint's accumulation (free ν, bulge + disk): zp = conj(R̂)·P̂·e^{−ik·p}, Ĝ and its derivatives from galD. */
const extAdjointLoop = (o: RenderShaderOptions) => /* wgsl */ `
  var acc0 = vec4f(0.0); // F, h, e1, e2
  var acc1 = vec4f(0.0); // dx, dy, g1, g2
  var acc2 = vec4f(0.0); // ν, 0, 0, 0 or B/T, h_b, e1_b, e2_b
${adjointFrequencies(
  o,
  `    let zp = conjMul(rr, sp); // conj(R̂)·P̂·phase
    let d = galD(q);
    let zr = zp.x * flux;
    acc0 = acc0 + vec4f(zp.x * d.g, zr * d.dh, zr * d.de.x, zr * d.de.y);
    acc1 = acc1 + vec4f(zp.y * flux * d.g * q.x, zp.y * flux * d.g * q.y, zr * d.dg.x, zr * d.dg.y);
    acc2 = acc2 + zr * d.x;`,
)}`;

/** adjointReduceKernel for the free-ν and bulge + disk profiles: NG = 12 components per pair. */
function adjointReduceKernelExt(o: RenderShaderOptions) {
  const pl = profileLayout(o.profile);
  const kSetup =
    pl.kind === 'spergel_free'
      ? `  let r0 = p0.y * p2.y;
  K.r02 = r0 * r0;
  K.e = 1.0 + p2.x;
  K.dlc = p2.z;`
      : `  K.r02 = s.r0 * s.r0;
  K.e = 1.5;
  K.b = shapeDerivs(p2.zw, g);
  let rb = p2.y * ${f32Literal(bulgeR0OverHlr(o))};
  K.r02b = rb * rb;
  K.hb = p2.y;
  K.fb = p2.x;`;
  return defineKernel({
    name: `adjoint-${o.m}`,
    bindings: ADJOINT_BINDINGS,
    workgroupSize: o.workgroupSize,
    constants: constants(o),
    shared: [FREQ, MAT, ALIAS_K, SPECTRUM, RESIDUAL_SPECTRUM, SHAPE_DERIVS],
    body: /* wgsl */ `${pairSetup(o)}
${galaxyDerivs(o)}
var<workgroup> red: array<f32, ${pl.grads * o.workgroupSize}>;
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) li: u32) {
  let l = wid.x;
  if (l >= batch.count) { return; }
  let pr = pairs[batch.pairBase + l];
  let p0 = src[SV * pr.source];
  let p1 = src[SV * pr.source + 1u];
  let p2 = src[SV * pr.source + 2u];
  let g = p1.zw;
  let s = setup(pr, p0, p1, g);
  let flux = s.flux;
  K.d = shapeDerivs(p0.zw, g);
  K.h = p0.y;
${kSetup}
${extAdjointLoop(o)}
  for (var c2 = 0u; c2 < 4u; c2 = c2 + 1u) {
    red[c2 * WG + li] = acc0[c2];
    red[(c2 + 4u) * WG + li] = acc1[c2];
    red[(c2 + 8u) * WG + li] = acc2[c2];
  }
  workgroupBarrier();
  for (var st = WG / 2u; st > 0u; st = st >> 1u) {
    if (li < st) {
      for (var c3 = 0u; c3 < NG; c3 = c3 + 1u) {
        red[c3 * WG + li] = red[c3 * WG + li] + red[c3 * WG + li + st];
      }
    }
    workgroupBarrier();
  }
  if (li < NG) {
    grad[(batch.pairBase + l) * NG + li] = red[li * WG] / f32(M * M);
  }
}
`,
  });
}

/**
 * Stage 2's inputs (docs/subtile.md): the manifest's catalog rows as sources, and its quadrants as
 * an ExposureSet (engine/exposures/exposure-set.ts) with the unmodelled objects masked
 * (engine/exposures/masking.ts). Files are opened through the platform's `openFits`.
 */
import { DataError } from '../errors.ts';
import type { HduInfo } from '../data/fits/index.ts';
import { halfLightRadius, readMerCatalog } from '../data/catalog/index.ts';
import type { ShineConfig } from '../config/index.ts';
import type { Manifest } from '../tiling/manifest.ts';
import { buildExposureSet, type BuiltExposureSet, type OpenFits, type QuadrantRef, type SourceRef } from '../exposures/exposure-set.ts';
import { ensureProfileParams, profileFromConfig } from '../model/profile-params.ts';
import { applyUnmodelledMask } from '../exposures/masking.ts';
import { POINT_SOURCE_HLR } from '../model/geometry.ts';
import type { ExposureSet } from '../scene/types.ts';

type Progress = (stage: string, done: number, total: number, detail?: { note?: string }) => void;

/** The manifest's sources from their MER catalog rows (checked against the OBJECT_IDs), each starting round at its catalog flux and size. */
export async function loadSources(manifest: Manifest, cfg: ShineConfig, io: { openFits: OpenFits }, progress: Progress): Promise<SourceRef[]> {
  progress('catalog', 0, manifest.catalogs.length);
  const srcRefs: SourceRef[] = new Array(manifest.sources.row.length);
  const objectIds = manifest.sources.object_id;
  for (let c = 0; c < manifest.catalogs.length; c++) {
    const entry = manifest.catalogs[c];
    const fits = await io.openFits(entry.file, { needed: [entry.hdu ?? ((h: HduInfo) => h.type === 'bintable')] });
    const cat = await readMerCatalog(fits, { hdu: entry.hdu ?? undefined }).finally(() => fits.close());
    const [lo, hi] = cfg.sources.hlr_clip_arcsec;
    const { hlr } = halfLightRadius(cat.semimajor, { scale: cfg.data.pixel_scale, min: lo, max: hi });
    manifest.sources.row.forEach((row, i) => {
      if (manifest.sources.catalog[i] !== c) return;
      if (row >= cat.nRows) throw new DataError(`manifest row ${row} is beyond the catalog's ${cat.nRows} rows`, { file: entry.file, hdu: entry.hdu ?? undefined });
      if (cat.objectId[row].toString() !== objectIds[i]) {
        throw new DataError(`row ${row} has OBJECT_ID ${cat.objectId[row]}, the manifest says ${objectIds[i]} (catalog changed since prepare?)`, { file: entry.file, key: 'OBJECT_ID' });
      }
      // SHINE starts every source round (e = 0), at the catalog flux and size
      srcRefs[i] = { id: i, ra: cat.ra[row], dec: cat.dec[row], fluxUJy: cat.flux[row], hlr: hlr[row], e1: 0, e2: 0, core: manifest.sources.core[i] };
    });
    progress('catalog', c + 1, manifest.catalogs.length);
  }
  return srcRefs;
}

/**
 * The unmodelled objects that masking.unmodelled: model models as nuisance sources (docs/config.md):
 * galaxies — cut in `masking.model_cuts`, not point-like, with a positive catalog flux and a known
 * size —, and with `masking.point_like: model` point sources — point-like, removed as such or by a
 * cut in `model_cuts`, fainter than `halo_mag_max` (a brighter star keeps its halo mask), with a
 * positive flux. Their SourceRef ids follow the manifest's sources: id n_sources + k for the
 * list's object k (`sourceNames` resolves both). Empty for the other modes.
 */
export function nuisanceCandidates(manifest: Manifest, cfg: ShineConfig): SourceRef[] {
  const u = manifest.unmodelled;
  if (cfg.masking.unmodelled !== 'model' || !u) return [];
  const cuts = new Set<string>(cfg.masking.model_cuts);
  const [lo, hi] = cfg.sources.hlr_clip_arcsec;
  const nSrc = manifest.sources.row.length;
  const haloMag = cfg.masking.halo_mag_max;
  const out: SourceRef[] = [];
  u.ra.forEach((ra, k) => {
    const flux = u.flux[k];
    const a = u.semimajor_arcsec[k];
    if (u.point_like[k]) {
      const mag = u.mag[k];
      const faint = haloMag === null || (Number.isFinite(mag) && mag >= haloMag);
      if (cfg.masking.point_like !== 'model' || !(cuts.has(u.cut[k]) || u.cut[k] === 'point_like') || !faint || !(flux > 0 && Number.isFinite(flux))) return;
      out.push({ id: nSrc + k, ra, dec: u.dec[k], fluxUJy: flux, hlr: POINT_SOURCE_HLR, e1: 0, e2: 0, core: false, nuisance: true, pointSource: true });
      return;
    }
    if (!cuts.has(u.cut[k]) || !(flux > 0 && Number.isFinite(flux)) || !(a > 0 && Number.isFinite(a))) return;
    // the same catalog size → hlr rule as the sources (SEMIMAJOR_AXIS, clipped to sources.hlr_clip_arcsec)
    const hlr = halfLightRadius([a / cfg.data.pixel_scale], { scale: cfg.data.pixel_scale, min: lo, max: hi }).hlr[0];
    out.push({ id: nSrc + k, ra, dec: u.dec[k], fluxUJy: flux, hlr, e1: 0, e2: 0, core: false, nuisance: true });
  });
  return out;
}

/**
 * The warning for stars fitted as point sources with PSF models sampled at the detector pixel, or
 * null: a point is the PSF itself, and placing an undersampled PSF at a sub-pixel position is
 * band-limited — off by up to ~6 % of the peak (test/engine/point-source.test.ts), where an
 * oversampled PSF (alias-complete rendering) gives 5·10⁻⁴.
 */
export function pointSourceWarning(set: Pick<ExposureSet, 'sources' | 'psfOversampling'>): string | null {
  const n = set.sources.filter((s) => s.pointSource).length;
  if (!n || (set.psfOversampling ?? 1) >= 2) return null;
  return `${n} star(s) fitted as point sources (masking.point_like: model) with PSF models sampled at the detector pixel: a point rendered from them is off by up to ~6 % of its peak (docs/inference.md "Point sources"); use oversampled PSF models (PSFOVERS ≥ 2) or masking.point_like: mask`;
}

/** OBJECT_ID of a SourceRef id: a manifest source's, or (nuisance sources) an unmodelled object's. */
export function sourceNames(manifest: Manifest): (id: number) => string {
  const nSrc = manifest.sources.object_id.length;
  return (id) => (id < nSrc ? manifest.sources.object_id[id] : (manifest.unmodelled?.object_id[id - nSrc] ?? `#${id}`));
}

export interface LoadedExposures {
  built: BuiltExposureSet;
  /** The unmodelled-object mask: the FLG bits the engine masks (`engineMask`), its summary and warnings. */
  masked: ReturnType<typeof applyUnmodelledMask>;
}

/**
 * The manifest's quadrants as an ExposureSet of the sources, the profile's own parameters
 * initialised, and the unmodelled objects (removed by the selection, beyond the extended area)
 * masked. `pixels`: keep only the active blocks (docs/plan.md "Host memory") or the whole crops.
 */
export async function loadExposures(
  manifest: Manifest,
  cfg: ShineConfig,
  io: { openFits: OpenFits },
  srcRefs: SourceRef[],
  o: { progress: Progress; pixels: 'active-blocks' | 'crop' },
): Promise<LoadedExposures> {
  const bkgFromFile = cfg.background.method === 'bkg_file';
  const qRefs: QuadrantRef[] = manifest.quadrants.map((q) => {
    if (!q.psf_file || !q.psf_hdu) throw new DataError(`quadrant ${q.id} has no PSF (psf_file/psf_hdu)`, { file: q.file, hdu: q.sci_hdu });
    if (bkgFromFile && (!q.bkg_file || !q.bkg_hdu)) throw new DataError(`quadrant ${q.id} has no BKG map and background.method is bkg_file`, { file: q.file, hdu: q.sci_hdu });
    return {
      id: q.id,
      file: q.file,
      sci: q.sci_hdu,
      rms: q.rms_hdu,
      flg: q.flg_hdu,
      bkg: bkgFromFile ? { file: q.bkg_file!, hdu: q.bkg_hdu! } : undefined,
      psf: { file: q.psf_file, hdu: q.psf_hdu },
    };
  });
  const built = await buildExposureSet(
    qRefs,
    // the nuisance candidates after the sources (masking.unmodelled: model; none otherwise)
    [...srcRefs, ...nuisanceCandidates(manifest, cfg)],
    {
      tiers: cfg.stamps.tiers,
      badPixelMask: cfg.data.bad_pixel_mask,
      pixelScale: cfg.data.pixel_scale,
      compact: o.pixels === 'active-blocks',
      ...(cfg.data.psf_oversampling !== null ? { psfOversampling: cfg.data.psf_oversampling } : {}),
    },
    io.openFits,
    (d, n, what) => o.progress('load', d, n, { note: what }),
  );
  // the profile's own parameters (free ν, bulge) start from the profile: ν as configured, B/T 0.3,
  // the bulge half the disk's catalog size and round like the disk (engine/model/profile-params.ts)
  ensureProfileParams(built.init, profileFromConfig(cfg.gal.profile));
  const name = sourceNames(manifest);
  // the unmodelled objects now modelled as nuisance sources (their list index) are not masked
  const nSrc = manifest.sources.row.length;
  const modelled = new Set(built.sources.filter((s) => s.nuisance).map((s) => s.id - nSrc));
  const masked = applyUnmodelledMask(
    {
      quadrants: built.set.quadrants,
      wcs: built.wcs,
      // the sources whose centre a mask may cover: the ordinary ones (a nuisance source is shear-blind already)
      pairs: built.set.pairs.filter((p) => !built.set.sources[p.source].nuisance),
      sourceName: (k) => name(built.sources[k].id),
      modelled,
    },
    manifest.unmodelled,
    cfg.masking,
    cfg.data.bad_pixel_mask,
  );
  // sources the pixels cannot measure: their light is modelled, their shape informs no shear
  if (cfg.masking.covered_centres === 'shear_blind' && masked.summary.covered_sources.length) {
    for (const k of masked.summary.covered_sources) built.set.sources[k].shearBlind = true;
    masked.summary.shear_blind = masked.summary.covered_sources.map((k) => name(built.sources[k].id));
  }
  return { built, masked };
}

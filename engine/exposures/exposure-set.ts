/**
 * Stage 2 preparation (docs/prepare.md "Building the ExposureSet"): the ExposureSet of a sub-tile from its quadrant files
 * and its source list. Quadrants are loaded unmodified (background subtracted in the likelihood,
 * not in the pixels), whole or — `compact` — only the 16×8 blocks some visible stamp touches
 * (engine/scene/pixels.ts), one quadrant at a time after the geometry; for every source and quadrant: the pixel position through the
 * quadrant's full WCS (sub-pixel kept), the local Jacobian there, the PSF interpolated from the
 * quadrant's PSF grid, and visibility (the stamp overlaps the quadrant). No cap on sources or
 * quadrants; files are opened through an injected `openFits` (platform layer), each once.
 *
 * PSF sampling: every PSF grid's stamps sample the PSF every 1/q detector pixel (q = PSFOVERS in
 * the PSF HDU's header, 1 when absent, or `ExposureSetOptions.psfOversampling` for all); all the
 * grids of one sub-tile must agree on q and on the stamp side, and the ExposureSet carries both
 * (`psfSize`, `psfOversampling`).
 */
import { DataError } from '../errors.ts';
import type { FitsFile, HduRef, OpenOptions } from '../data/fits/index.ts';
import { readWcs, type Wcs } from '../data/wcs/index.ts';
import { readPsfGrid, type PsfGrid } from '../data/psf/index.ts';
import { quadrantBackground } from '../data/background.ts';
import { fluxConversion } from '../data/catalog/index.ts';
import { chooseTier, stampCorner, stampNeed } from '../model/geometry.ts';
import { activeBlocks, compactQuadrant, stampCoverIndex, visibleFootprints, type StampCoverIndex } from '../scene/pixels.ts';
import { allocParams, type ExposureSet, type PairGeometry, type QuadrantData, type SceneParams, type SourceInfo } from '../scene/types.ts';

/** Where one quadrant's data live. */
export interface QuadrantRef {
  /** Unique name, e.g. "3-4.F@exp0". */
  id: string;
  /** DET file and the quadrant's HDUs. */
  file: string;
  sci: string;
  rms: string;
  flg: string;
  /** BKG file and HDU; when absent the background is the sigma-clipped median of SCI. */
  bkg?: { file: string; hdu: string };
  /** PSF product file and the quadrant's HDU. */
  psf: { file: string; hdu: string };
}

/** One catalog source to model. */
export interface SourceRef {
  id: number;
  ra: number;
  dec: number;
  /** Catalog flux, µJy. */
  fluxUJy: number;
  /** Catalog half-light radius, arcsec. */
  hlr: number;
  /** Initial distortion (default 0). */
  e1?: number;
  e2?: number;
  /** In the sub-tile core (results reported) or only in the margin. */
  core: boolean;
  /**
   * A nuisance candidate (masking.unmodelled: model): kept only when its centre pixel lies under
   * some ordinary source's visible stamp in some quadrant; then shear-blind and `nuisance`
   * (SourceInfo), after every ordinary source. Default false.
   */
  nuisance?: boolean;
  /** A point-source nuisance candidate (a star; SourceInfo.pointSource): `hlr` is POINT_SOURCE_HLR. */
  pointSource?: boolean;
}

export interface ExposureSetOptions {
  /** Stamp tiers (pixels), SHINE's rule picks the smallest with 2 (3 h_pix + 10.5) ≤ size. */
  tiers: number[];
  /** FLG bits that mask a pixel (also used for the clipped background). */
  badPixelMask: number;
  /** Pixel scale (″/px) used to turn hlr into pixels for the tier choice (VIS: 0.1). */
  pixelScale: number;
  /**
   * PSF-model pixels per detector pixel of every PSF grid, overriding the PSF headers' PSFOVERS
   * (default: each header's PSFOVERS, else 1).
   */
  psfOversampling?: number;
  /**
   * Keep only the pixels of the 16×8 blocks that some visible stamp touches (engine/scene/pixels.ts;
   * Stage 2 on large sub-tiles). Default false: the whole crops.
   */
  compact?: boolean;
}

export interface QuadrantInfo {
  id: string;
  width: number;
  height: number;
  background: { kind: 'map' } | { kind: 'clipped'; value: number };
  /** ADU per µJy of this exposure. */
  aduPerUJy: number;
  magzerop: number;
  exptime: number;
  visibleSources: number;
  /** The quadrant's PSF grid: stamp side (PSF-model pixels) and PSF-model pixels per detector pixel. */
  psf: { stampSize: number; oversampling: number };
}

export interface BuiltExposureSet {
  set: ExposureSet;
  /** Initial parameters: catalog flux in ADU (reference exposure), hlr, e; offsets and shear 0. */
  init: SceneParams;
  /** The sources kept (visible somewhere), in ExposureSet order. */
  sources: SourceRef[];
  /** Sources dropped because no quadrant sees them. */
  dropped: SourceRef[];
  /** Nuisance candidates not modelled: their centre lies under no ordinary source's stamp. */
  nuisanceOutside: SourceRef[];
  /**
   * Modelled sources whose catalog size needs a stamp larger than the largest tier (stampNeed):
   * rendered in that tier, their light beyond it is not modelled (oversizeWarning names them).
   */
  oversize: Array<{ id: SourceRef['id']; needPixels: number; stampSize: number }>;
  quadrants: QuadrantInfo[];
  /** Each quadrant's WCS (from its SCI header), in ExposureSet order: e.g. to mask unmodelled objects. */
  wcs: Wcs[];
  warnings: string[];
}

/**
 * Opens a FITS file. `options.needed` lists the HDUs that will be read from it (a scan may stop
 * after the last of them: a gzip file is then not inflated beyond it).
 */
export type OpenFits = (path: string, options?: OpenOptions) => Promise<FitsFile>;

/** Pixel scale of a Jacobian (″/px): √|det J|. */
function jacobianScale(j: readonly number[]): number {
  return Math.sqrt(Math.abs(j[0] * j[3] - j[1] * j[2]));
}

/**
 * The warning for `oversize` sources, each named (`name`: e.g. its OBJECT_ID): a truncated bright
 * galaxy's light lands in its neighbours' models (docs/config.md `stamps.tiers`, docs/outputs.md `oversize_stamps`); null when none.
 */
export function oversizeWarning(oversize: BuiltExposureSet['oversize'], tiers: readonly number[], name: (id: number) => string): string | null {
  if (!oversize.length) return null;
  const what = oversize.map((o) => `${name(o.id)} (needs ${o.needPixels} px)`).join(', ');
  return `${oversize.length} source(s) need a stamp larger than the largest tier (stamps.tiers: ${tiers.join(', ')} px) and are rendered in ${Math.max(...tiers)}-px stamps, their light beyond it not modelled: ${what}; add a larger tier (with the sub-tile margin it needs) or mask them`;
}

export async function buildExposureSet(
  quadrantRefs: QuadrantRef[],
  sourceRefs: SourceRef[],
  opts: ExposureSetOptions,
  openFits: OpenFits,
  onProgress?: (done: number, total: number, what: string) => void,
): Promise<BuiltExposureSet> {
  if (quadrantRefs.length === 0) throw new DataError('the sub-tile has no quadrant', { field: 'quadrants' });
  if (sourceRefs.length === 0) throw new DataError('the sub-tile has no source to model (none survived the selection)', { field: 'sources' });
  const names = new Set<string>();
  for (const q of quadrantRefs) {
    if (names.has(q.id)) throw new DataError(`quadrant id "${q.id}" appears twice`, { field: 'quadrants' });
    names.add(q.id);
  }
  // every HDU read from each file (DET: the quadrants' SCI/RMS/FLG; BKG and PSF: their HDUs), so
  // that the scan of a file stops after the last one this sub-tile needs
  const needed = new Map<string, Set<HduRef>>();
  const need = (path: string, ...hdus: HduRef[]) => {
    let s = needed.get(path);
    if (!s) needed.set(path, (s = new Set()));
    for (const h of hdus) s.add(h);
  };
  for (const q of quadrantRefs) {
    need(q.file, q.sci, q.rms, q.flg);
    if (q.bkg) need(q.bkg.file, q.bkg.hdu);
    need(q.psf.file, q.psf.hdu);
  }
  const files = new Map<string, Promise<FitsFile>>();
  const open = (path: string) => {
    let f = files.get(path);
    if (!f) files.set(path, (f = openFits(path, { needed: [...(needed.get(path) ?? [])] })));
    return f;
  };
  try {
    return await build(quadrantRefs, sourceRefs, opts, open, onProgress);
  } finally {
    // every file was read whole into memory: release the handles
    await Promise.all([...files.values()].map((f) => f.then((x) => x.close()).catch(() => {})));
  }
}

async function build(
  quadrantRefs: QuadrantRef[],
  sourceRefs: SourceRef[],
  opts: ExposureSetOptions,
  open: OpenFits,
  onProgress?: (done: number, total: number, what: string) => void,
): Promise<BuiltExposureSet> {
  const warnings: string[] = [];
  const infos: QuadrantInfo[] = [];
  const wcs: Wcs[] = [];
  const psfs: PsfGrid[] = [];
  const nq = quadrantRefs.length;
  // 1. headers, WCS and PSF grids — no pixels yet: where every source lands (and so which pixels
  //    the model touches) is known before a pixel is read
  for (let j = 0; j < nq; j++) {
    const ref = quadrantRefs[j];
    onProgress?.(j, 2 * nq, `quadrant ${ref.id} (WCS, PSF)`);
    const det = await open(ref.file);
    const naxis = (hdu: string) => {
      const a = det.hdu(hdu).naxis;
      if (a.length !== 2) throw new DataError(`expected a 2-D image, NAXIS = ${a.length}`, { file: ref.file, hdu, key: 'NAXIS' });
      return a;
    };
    const [width, height] = naxis(ref.sci);
    for (const hdu of [ref.rms, ref.flg]) {
      const [w, h] = naxis(hdu);
      if (w !== width || h !== height) throw new DataError(`is ${w}×${h} but ${ref.sci} is ${width}×${height}`, { file: ref.file, hdu, key: 'NAXIS1' });
    }
    const header = det.header(ref.sci);
    wcs.push(readWcs(det, ref.sci));
    const conv = fluxConversion(header, { file: ref.file, hdu: ref.sci });
    warnings.push(...conv.warnings);
    const psfFile = await open(ref.psf.file);
    const grid = await readPsfGrid(psfFile, ref.psf.hdu, opts.psfOversampling !== undefined ? { oversampling: opts.psfOversampling } : {});
    psfs.push(grid);
    infos.push({
      id: ref.id,
      width,
      height,
      background: { kind: 'map' },
      aduPerUJy: conv.factor,
      magzerop: conv.magzerop,
      exptime: conv.exptime,
      visibleSources: 0,
      psf: { stampSize: grid.stampSize, oversampling: grid.oversampling },
    });
  }
  // The model has one flux per source (in ADU of the first exposure); an exposure with another
  // zero point or exposure time sees it scaled, which enters through its PSF normalisation.
  const refFactor = infos[0].aduPerUJy;
  const kept: SourceRef[] = [];
  const dropped: SourceRef[] = [];
  const nuisanceOutside: SourceRef[] = [];
  const oversize: BuiltExposureSet['oversize'] = [];
  const sources: SourceInfo[] = [];
  const pairs: PairGeometry[] = [];
  // ordinary sources first, then the nuisance candidates, kept where ordinary stamps cover their centre
  const ordinary = sourceRefs.filter((s) => !s.nuisance);
  const candidates = sourceRefs.filter((s) => s.nuisance);
  let cover: StampCoverIndex[] | null = null;
  for (const s of [...ordinary, ...candidates]) {
    if (s.nuisance && !cover) cover = infos.map((q, j) => stampCoverIndex(q.width, q.height, visibleFootprints(pairs, j, (k) => sources[k].stampSize)));
    if (!(Number.isFinite(s.ra) && Number.isFinite(s.dec) && s.hlr > 0 && Number.isFinite(s.fluxUJy))) {
      throw new DataError(`source ${s.id}: invalid catalog values (ra ${s.ra}, dec ${s.dec}, hlr ${s.hlr}, flux ${s.fluxUJy})`, { field: 'sources' });
    }
    const stampSize = chooseTier(s.hlr / opts.pixelScale, opts.tiers);
    const mine: PairGeometry[] = [];
    for (let j = 0; j < nq; j++) {
      const q = infos[j];
      const [x, y] = wcs[j].skyToPixel(s.ra, s.dec);
      if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
      const cx = stampCorner(x, stampSize);
      const cy = stampCorner(y, stampSize);
      if (cx >= q.width || cx + stampSize <= 0 || cy >= q.height || cy + stampSize <= 0) continue;
      const jac = wcs[j].localJacobian(x, y);
      const psf = psfs[j].interpolate(x, y);
      const scale = infos[j].aduPerUJy / refFactor;
      if (scale !== 1) for (let i = 0; i < psf.length; i++) psf[i] *= scale;
      mine.push({ source: sources.length, quadrant: j, x, y, jacobian: [jac[0], jac[1], jac[2], jac[3]], psf, visible: true });
      infos[j].visibleSources++;
    }
    if (s.nuisance && !mine.some((p) => cover![p.quadrant].covers(p.x, p.y))) {
      nuisanceOutside.push(s);
      for (const p of mine) infos[p.quadrant].visibleSources--;
      continue;
    }
    if (!mine.length) {
      dropped.push(s);
      continue;
    }
    const need = stampNeed(s.hlr / opts.pixelScale);
    if (need > stampSize && !s.pointSource) oversize.push({ id: s.id, needPixels: Math.ceil(need), stampSize });
    sources.push(s.nuisance ? { id: s.id, stampSize, shearBlind: true, nuisance: true, ...(s.pointSource ? { pointSource: true } : {}) } : { id: s.id, stampSize });
    pairs.push(...mine);
    kept.push(s);
  }
  if (!kept.some((s) => !s.nuisance)) throw new DataError(`none of the ${ordinary.length} sources falls on any of the ${nq} quadrants`, { field: 'sources' });
  const psfSize = psfs[0].stampSize;
  const psfOversampling = psfs[0].oversampling;
  const where = (j: number) => `${quadrantRefs[j].psf.file} [${quadrantRefs[j].psf.hdu}]`;
  psfs.forEach((p, j) => {
    if (p.oversampling !== psfOversampling) {
      throw new DataError(
        `PSF grids of different oversampling in one sub-tile: ${psfOversampling} PSF pixel(s) per detector pixel in ${where(0)}, ${p.oversampling} in ${where(j)}`,
        { key: 'PSFOVERS' },
      );
    }
    if (p.stampSize !== psfSize) {
      throw new DataError(`PSF stamps of different sizes (${psfSize}, ${p.stampSize}) in one sub-tile: ${where(0)}, ${where(j)}`, { field: 'psf' });
    }
  });
  if (dropped.length) warnings.push(`${dropped.length} source(s) fall on no quadrant and are not modelled`);
  // the pixel scale of the data, for the tier rule (warn when the configured one is off)
  const scale = jacobianScale(pairs[0].jacobian);
  if (Math.abs(scale / opts.pixelScale - 1) > 0.05) warnings.push(`pixel scale of the data is ${scale.toFixed(4)}″, configured ${opts.pixelScale}″`);

  const init = allocParams(kept.length);
  kept.forEach((s, i) => {
    init.flux[i] = s.fluxUJy * refFactor;
    init.hlr[i] = s.hlr;
    init.e1[i] = s.e1 ?? 0;
    init.e2[i] = s.e2 ?? 0;
  });
  // 3. the pixels, one quadrant at a time: SCI, RMS, FLG and the background; with `compact`, only
  //    the 16×8 blocks some visible stamp touches are kept (engine/scene/pixels.ts), so the host
  //    holds ~40 % of the crops of a realistic sub-tile and never all of them at once
  const quadrants: QuadrantData[] = [];
  // only the ordinary sources' blocks are kept: a nuisance stamp adds no pixel to the likelihood (SourceInfo.nuisance)
  const ordinaryPairs = pairs.filter((p) => !sources[p.source].nuisance);
  for (let j = 0; j < nq; j++) {
    const ref = quadrantRefs[j];
    onProgress?.(nq + j, 2 * nq, `quadrant ${ref.id} (pixels)`);
    const { width, height } = infos[j];
    const det = await open(ref.file);
    const sci = await det.readImageFloat32(ref.sci);
    const rms = await det.readImageFloat32(ref.rms);
    const flg = await det.readImage(ref.flg);
    const flags = flg.data instanceof Int32Array || flg.data instanceof Uint32Array ? flg.data : Int32Array.from(flg.data as ArrayLike<number>);
    const bkgFile = ref.bkg ? await open(ref.bkg.file) : undefined;
    const bkg = await quadrantBackground({
      sci: sci.data,
      width,
      height,
      flags,
      bkgFile,
      bkgHdu: ref.bkg?.hdu,
      badPixelMask: opts.badPixelMask,
      file: ref.file,
      hdu: ref.sci,
    });
    infos[j].background = bkg.kind === 'map' ? { kind: 'map' } : { kind: 'clipped', value: bkg.value };
    const dense: QuadrantData = { name: ref.id, width, height, sci: sci.data, rms: rms.data, flags, background: bkg.kind === 'map' ? bkg.map : bkg.value };
    quadrants.push(opts.compact ? compactQuadrant(dense, activeBlocks(width, height, visibleFootprints(ordinaryPairs, j, (k) => sources[k].stampSize))) : dense);
  }
  onProgress?.(2 * nq, 2 * nq, 'done');
  return { set: { quadrants, sources, pairs, psfSize, psfOversampling }, init, sources: kept, dropped, nuisanceOutside, oversize, quadrants: infos, wcs, warnings };
}

/**
 * Stage 1 (docs/prepare.md): tile id → tile footprint → sub-tile grid → source partition →
 * quadrant discovery → one manifest per sub-tile. Runtime-agnostic: files are opened through
 * `PrepareIO` (the CLI passes Node's), file lists arrive already expanded (globs, archives).
 */
import type { FitsFile, HduInfo, OpenOptions } from '../data/fits/file.ts';
import { readMerCatalog } from '../data/catalog/read.ts';
import { selectSources, validRow, type MerCatalog, type SelectionConfig } from '../data/catalog/mer.ts';
import type { ShineConfig } from '../config/schema.ts';
import { basenameOf } from '../config/paths.ts';
import { DataError, ShineError } from '../errors.ts';
import { TileGeometry } from './geometry.ts';
import { partitionSources, reachingObjects } from './partition.ts';
import { QuadrantIndex, discoverQuadrants, quadrantsOfFile, type QuadrantRecord } from './quadrants.ts';
import { findTile, readTileIndex, type TileEntry } from './tiles.ts';
import { MANIFEST_FORMAT, MANIFEST_VERSION, UNMODELLED_CUTS, type Manifest, type ManifestUnmodelled } from './manifest.ts';
import { abMagnitude, maskRadiusArcsec, radiusRuleOf, type MaskRadiusRule } from '../exposures/masking.ts';

export interface PrepareIO {
  /**
   * Opens a FITS file. `options.headersOnly`: only headers are read (a gzip file's data is inflated
   * to reach the next header but not kept); `options.needed`: the HDUs that will be read (the scan
   * may stop after the last of them).
   */
  openFits(path: string, options?: OpenOptions): Promise<FitsFile>;
  /** Progress and log lines (the CLI prints them to stderr). */
  log(line: string): void;
  /** Optional cache of DET header scans. */
  scanCache?: ScanCache;
}

export interface PrepareInputs {
  exposures: string[];
  backgrounds: string[];
  psf: string[];
  catalogs: string[];
  tileIndex: string | null;
}

export interface PrepareOptions {
  /** Prepare only these sub-tiles ([row, col]); default all. */
  only?: Array<[number, number]>;
  /** Time stamp written into the manifests (default now). */
  now?: Date;
  /** A scan of `inputs.exposures` already made (e.g. shared by several tiles). */
  scan?: { exposures: Exposure[]; records: QuadrantRecord[] };
}

export interface PrepareResult {
  tile: TileEntry;
  geometry: TileGeometry;
  manifests: Manifest[];
  /** Quadrants found in the exposures (all of them, not only the discovered ones). */
  nQuadrantsScanned: number;
}

export interface Exposure {
  key: string;
  file: string;
  obsId: number | null;
  dither: number | null;
  bkg: string | null;
  psf: string | null;
}

/** "obs-dither" of a Euclid VIS file name (…SWL-DET-002701-00-…), or null. */
export function visProductKey(path: string): string | null {
  const m = /SWL-[A-Z]+-(\d+)-(\d+)/i.exec(basenameOf(path));
  return m ? `${Number(m[1])}-${Number(m[2])}` : null;
}

/**
 * The companion file (BKG or PSF) of each exposure: none given → null; one → that one for all;
 * else matched by observation-dither id in the file names; else by position when the lists have
 * the same length.
 */
export function matchCompanions(dets: readonly string[], others: readonly string[], field: string): Array<string | null> {
  if (others.length === 0) return dets.map(() => null);
  if (others.length === 1) return dets.map(() => others[0]);
  const keyed = new Map<string, string[]>();
  for (const o of others) {
    const k = visProductKey(o);
    if (k) keyed.set(k, [...(keyed.get(k) ?? []), o]);
  }
  const byKey = dets.map((d) => {
    const k = visProductKey(d);
    const c = k ? keyed.get(k) : undefined;
    return c && c.length === 1 ? c[0] : null;
  });
  if (byKey.every((x) => x !== null)) return byKey;
  if (dets.length === others.length) return [...others];
  const missing = dets.filter((_, i) => byKey[i] === null);
  throw new ShineError(
    `cannot match the ${others.length} file(s) to the ${dets.length} exposure(s): no file with the observation-dither id of ${missing
      .slice(0, 3)
      .map(basenameOf)
      .join(', ')}${missing.length > 3 ? ', …' : ''} (give one file per exposure, in the same order, or one file for all)`,
    { field },
  );
}

function selectionConfig(cfg: ShineConfig): SelectionConfig {
  const s = cfg.sources;
  return {
    minSnr: s.snr_min,
    requireVisDet: s.vis_det,
    rejectSpurious: s.exclude_spurious,
    rejectPointLike: s.exclude_point_like,
    detQualityMask: s.det_quality_mask === 0 ? null : s.det_quality_mask,
  };
}

type UnmodelledCut = (typeof UNMODELLED_CUTS)[number];

/** Catalog rows, with what masking needs (flux µJy, semi-major axis ″, point-like). */
interface CatalogObjects {
  catalog: number[];
  row: number[];
  objectId: bigint[];
  ra: number[];
  dec: number[];
  flux: number[];
  semimajorArcsec: number[];
  pointLike: boolean[];
}

interface SelectedSources extends CatalogObjects {
  snr: number[];
}

/** Rows the selection removed, with the first cut (in the order applied) each one failed. */
interface RemovedObjects extends CatalogObjects {
  cut: UnmodelledCut[];
}

function emptyObjects(): CatalogObjects {
  return { catalog: [], row: [], objectId: [], ra: [], dec: [], flux: [], semimajorArcsec: [], pointLike: [] };
}

function pushObject(o: CatalogObjects, cat: MerCatalog, k: number, i: number, pixelScale: number): void {
  o.catalog.push(k);
  o.row.push(i);
  o.objectId.push(cat.objectId[i]);
  o.ra.push(cat.ra[i]);
  o.dec.push(cat.dec[i]);
  o.flux.push(cat.flux[i]);
  o.semimajorArcsec.push(cat.semimajor[i] * pixelScale);
  o.pointLike.push(!!cat.pointLike && Number.isFinite(cat.pointLike[i]) && cat.pointLike[i] !== 0);
}

/**
 * Per row, the first of SHINE's cuts (in the order selectSources applies them) that the row fails,
 * or null: each cut evaluated alone by selectSources.
 */
function firstFailedCut(cat: MerCatalog, selection: SelectionConfig): Array<UnmodelledCut | null> {
  const none: SelectionConfig = { minSnr: null, requireVisDet: false, rejectSpurious: false, rejectPointLike: false, detQualityMask: null };
  const single: Array<[UnmodelledCut, Partial<SelectionConfig>]> = [];
  if (selection.minSnr !== null) single.push(['snr', { minSnr: selection.minSnr }]);
  if (selection.requireVisDet) single.push(['vis_det', { requireVisDet: true }]);
  if (selection.rejectSpurious) single.push(['spurious', { rejectSpurious: true }]);
  if (selection.rejectPointLike) single.push(['point_like', { rejectPointLike: true }]);
  if (selection.detQualityMask !== null && selection.detQualityMask !== 0) single.push(['det_quality', { detQualityMask: selection.detQualityMask }]);
  const out: Array<UnmodelledCut | null> = new Array(cat.nRows).fill(null);
  const pass = new Uint8Array(cat.nRows);
  for (const [name, c] of single) {
    pass.fill(0);
    for (const i of selectSources(cat, { ...none, ...c }).indices) pass[i] = 1;
    for (let i = 0; i < cat.nRows; i++) if (!pass[i] && out[i] === null) out[i] = name;
  }
  // rows without a usable position or size are counted by the non_finite cut, never masked
  for (let i = 0; i < cat.nRows; i++) if (!validRow(cat, i)) out[i] = null;
  return out;
}

async function readCatalogs(
  cfg: ShineConfig,
  files: readonly string[],
  io: PrepareIO,
): Promise<{ sel: SelectedSources; removed: RemovedObjects; catalogs: Manifest['catalogs'] }> {
  const sel: SelectedSources = { ...emptyObjects(), snr: [] };
  const removedAll: RemovedObjects = { ...emptyObjects(), cut: [] };
  const catalogs: Manifest['catalogs'] = [];
  const seen = new Set<bigint>();
  const selection = selectionConfig(cfg);
  const scale = cfg.data.pixel_scale;
  for (let k = 0; k < files.length; k++) {
    const file = files[k];
    const hduCfg = cfg.data.mer_catalog_hdu ?? undefined;
    const fits = await io.openFits(file, { needed: [hduCfg ?? ((h: HduInfo) => h.type === 'bintable')] });
    let cat: MerCatalog;
    try {
      cat = await readMerCatalog(fits, {
        hdu: hduCfg,
        selection,
        require: cfg.sources.exclude_deblended ? ['deblended'] : [],
        file,
      });
    } finally {
      await fits.close();
    }
    const res = selectSources(cat, selection);
    const cuts = res.cuts.map((c) => ({ cut: c.cut, failed: c.failed, remaining: c.remaining }));
    let idx = Array.from(res.indices);
    // why each removed row was removed (the unmodelled objects Stage 2 masks)
    const why = firstFailedCut(cat, selection);
    if (cfg.sources.snr_max !== null) {
      const mx = cfg.sources.snr_max;
      const before = idx.length;
      idx = idx.filter((i) => {
        const keep = cat.flux[i] / cat.fluxErr[i] < mx;
        if (!keep) why[i] = 'snr_max';
        return keep;
      });
      cuts.push({ cut: 'snr_max', failed: before - idx.length, remaining: idx.length });
    }
    if (cfg.sources.exclude_deblended) {
      const before = idx.length;
      idx = idx.filter((i) => {
        const keep = !(cat.deblended![i] !== 0);
        if (!keep) why[i] = 'deblended';
        return keep;
      });
      cuts.push({ cut: 'deblended', failed: before - idx.length, remaining: idx.length });
    }
    for (let i = 0; i < cat.nRows; i++) {
      const c = why[i];
      if (c === null) continue;
      pushObject(removedAll, cat, k, i, scale);
      removedAll.cut.push(c);
    }
    let dup = 0;
    for (const i of idx) {
      const id = cat.objectId[i];
      if (seen.has(id)) {
        dup++;
        continue;
      }
      seen.add(id);
      pushObject(sel, cat, k, i, scale);
      sel.snr.push(cat.flux[i] / cat.fluxErr[i]);
    }
    if (dup) cuts.push({ cut: 'duplicate_object_id', failed: dup, remaining: idx.length - dup });
    const hdu = cat.hdu ?? 1;
    catalogs.push({ file, hdu: typeof hdu === 'number' ? hdu : String(hdu), n_rows: cat.nRows, n_selected: idx.length - dup, cuts });
    io.log(`prepare: catalog ${basenameOf(file)}: ${cat.nRows} rows, ${idx.length - dup} selected (${cuts.map((c) => `${c.cut} −${c.failed}`).join(', ')})`);
  }
  // an object removed in one catalog but selected in another (or removed twice) is listed at most once, and never when modelled
  const removed: RemovedObjects = { ...emptyObjects(), cut: [] };
  const listed = new Set<bigint>();
  for (let j = 0; j < removedAll.row.length; j++) {
    const id = removedAll.objectId[j];
    if (seen.has(id) || listed.has(id)) continue;
    listed.add(id);
    for (const key of ['catalog', 'row', 'objectId', 'ra', 'dec', 'flux', 'semimajorArcsec', 'pointLike', 'cut'] as const) {
      (removed[key] as unknown[]).push(removedAll[key][j]);
    }
  }
  return { sel, removed, catalogs };
}

/**
 * How far (arcsec) the modelled stamps can reach beyond a sub-tile's extended box: a stamp of the
 * largest tier N around a source inside the box covers pixel centres up to (N/2 + 1) pixels from it
 * along each quadrant axis, i.e. within √2 (N/2 + 1) pixels whatever the quadrant's orientation;
 * 1 % is added for the variation of the pixel scale.
 */
export function stampReachArcsec(cfg: ShineConfig): number {
  const n = Math.max(...cfg.stamps.tiers);
  return Math.SQRT2 * (n / 2 + 1) * cfg.data.pixel_scale * 1.01;
}

function objectRadius(o: CatalogObjects, j: number, rule: MaskRadiusRule): number {
  return maskRadiusArcsec({ mag: abMagnitude(o.flux[j]), semimajorArcsec: o.semimajorArcsec[j], pointLike: o.pointLike[j] }, rule);
}

/** What scanning one DET file yields (cacheable: independent of the file's position in the list). */
export interface FileScan {
  obsId: number | null;
  dither: number | null;
  quadrants: Array<Omit<QuadrantRecord, 'id' | 'exposure' | 'file'>>;
}

/** Optional cache of DET header scans (the CLI keeps one in scratch_dir, keyed by path, size, mtime). */
export interface ScanCache {
  get(file: string): Promise<FileScan | undefined>;
  set(file: string, scan: FileScan): Promise<void>;
}

/** Scans the headers of one DET file (opened for its headers only: no pixel data is kept). */
export async function scanFile(file: string, io: PrepareIO): Promise<FileScan> {
  const fits = await io.openFits(file, { headersOnly: true });
  try {
    const ph = fits.header(0);
    const int = (name: string): number | null => {
      const v = ph.get(name);
      return typeof v === 'number' && Number.isInteger(v) ? v : null;
    };
    const warnings: string[] = [];
    const recs = quadrantsOfFile(fits, 'exp', file, warnings);
    for (const w of warnings) io.log(`prepare: warning: ${w}`);
    if (recs.length === 0) throw new DataError('no quadrant found (expected HDUs named <ccd>.<quad>.SCI, .RMS, .FLG)', { file });
    return {
      obsId: int('OBS_ID'),
      dither: int('DITHOBS'),
      quadrants: recs.map(({ quadrant, sciHdu, rmsHdu, flgHdu, width, height, outline }) => ({ quadrant, sciHdu, rmsHdu, flgHdu, width, height, outline })),
    };
  } finally {
    await fits.close();
  }
}

/** Files scanned at once (header reads are I/O-bound). */
const SCAN_CONCURRENCY = 8;

/**
 * Scans every DET file (through the cache when given) → exposures (key exp<k>, k = position in
 * `inputs.exposures`) and quadrant records.
 */
export async function scanExposures(inputs: PrepareInputs, io: PrepareIO): Promise<{ exposures: Exposure[]; records: QuadrantRecord[] }> {
  const dets = inputs.exposures;
  const bkg = matchCompanions(dets, inputs.backgrounds, 'data.backgrounds');
  const psf = matchCompanions(dets, inputs.psf, 'data.psf');
  const scans: FileScan[] = new Array(dets.length);
  let next = 0;
  let cached = 0;
  const worker = async () => {
    while (next < dets.length) {
      const k = next++;
      const file = dets[k];
      let scan = io.scanCache ? await io.scanCache.get(file) : undefined;
      if (scan) cached++;
      else {
        scan = await scanFile(file, io);
        if (io.scanCache) await io.scanCache.set(file, scan);
      }
      scans[k] = scan;
    }
  };
  await Promise.all(Array.from({ length: Math.min(SCAN_CONCURRENCY, dets.length) }, worker));
  const exposures: Exposure[] = [];
  const records: QuadrantRecord[] = [];
  for (let k = 0; k < dets.length; k++) {
    const key = `exp${k}`;
    const sc = scans[k];
    exposures.push({ key, file: dets[k], obsId: sc.obsId, dither: sc.dither, bkg: bkg[k], psf: psf[k] });
    for (const q of sc.quadrants) records.push({ ...q, id: `${q.quadrant}@${key}`, exposure: key, file: dets[k] });
    if (dets.length <= 50) io.log(`prepare: exposure ${key} ${basenameOf(dets[k])}: ${sc.quadrants.length} quadrants`);
  }
  io.log(`prepare: ${dets.length} exposure file(s), ${records.length} quadrants${io.scanCache ? ` (${cached} file scan(s) from the cache)` : ''}`);
  return { exposures, records };
}

/** HDU names of a file (opened once, headers only). */
async function hduNames(path: string, io: PrepareIO, cache: Map<string, Set<string>>): Promise<Set<string>> {
  let s = cache.get(path);
  if (!s) {
    const f = await io.openFits(path, { headersOnly: true });
    try {
      s = new Set(f.hdus.map((h) => h.name.trim().toUpperCase()));
    } finally {
      await f.close();
    }
    cache.set(path, s);
  }
  return s;
}

/** Runs Stage 1 for one tile and returns the manifests (not written: the caller writes them). */
export async function prepareTile(cfg: ShineConfig, inputs: PrepareInputs, tileId: number, io: PrepareIO, opts: PrepareOptions = {}): Promise<PrepareResult> {
  // 1. tile centre
  let tile: TileEntry;
  if (cfg.distributed.tile_source === 'custom') {
    const c = cfg.tile.center!;
    tile = { tileId, ra: c[0], dec: c[1] };
  } else {
    if (!inputs.tileIndex) throw new ShineError('no tile index: set data.tile_index (a FITS table TILE_ID, RA, DEC) or distributed.tile_source: custom with tile.center', { field: 'data.tile_index' });
    const f = await io.openFits(inputs.tileIndex, { needed: [(h: HduInfo) => h.type === 'bintable'] });
    try {
      tile = findTile(await readTileIndex(f), tileId, inputs.tileIndex);
    } finally {
      await f.close();
    }
  }
  const geom = new TileGeometry(
    { tileId, ra: tile.ra, dec: tile.dec, coreArcsec: cfg.tile.core_arcmin * 60, extendedArcsec: cfg.tile.extended_arcmin * 60 },
    { rows: cfg.distributed.sub_tile_grid[0], cols: cfg.distributed.sub_tile_grid[1], marginArcsec: cfg.distributed.sub_tile_margin * 60 },
  );
  io.log(`prepare: tile ${tileId} centre RA ${tile.ra.toFixed(6)}°, Dec ${tile.dec.toFixed(6)}°; core ${cfg.tile.core_arcmin}′, ${geom.grid.rows} × ${geom.grid.cols} sub-tiles, margin ${geom.grid.marginArcsec}″`);
  const wanted = new Set((opts.only ?? geom.subTiles().map((s) => [s.row, s.col] as [number, number])).map(([r, c]) => geom.subTile(r, c).index));

  // 2. sources
  if (inputs.catalogs.length === 0) throw new ShineError('no MER catalog: set data.mer_catalog or distributed.catalog_archive', { field: 'data.mer_catalog' });
  const { sel, removed, catalogs } = await readCatalogs(cfg, inputs.catalogs, io);
  const part = partitionSources(geom, sel.ra, sel.dec);
  // unmodelled objects whose mask disc reaches a sub-tile's modelled area (KD-tree queries)
  const rule = radiusRuleOf(cfg.masking);
  const grow = stampReachArcsec(cfg);
  const remXi = new Float64Array(removed.ra.length);
  const remEta = new Float64Array(removed.ra.length);
  removed.ra.forEach((ra, j) => ([remXi[j], remEta[j]] = geom.toPlane(ra, removed.dec[j])));
  const remReach = Float64Array.from(removed.ra, (_, j) => objectRadius(removed, j, rule));
  const selReach = Float64Array.from(sel.ra, (_, j) => objectRadius(sel, j, rule));
  const removedNear = reachingObjects(geom, remXi, remEta, remReach, grow, wanted);
  const selectedNear = reachingObjects(geom, part.xi, part.eta, selReach, grow, wanted);
  if (inputs.catalogs.length === 1 && geom.grid.marginArcsec > 0) {
    io.log('prepare: note: the margins of edge sub-tiles reach beyond the tile core; a MER catalog lists core objects only, so add the neighbouring tiles\' catalogs to data.mer_catalog to model the sources there');
  }

  // 3. quadrants
  if (inputs.exposures.length === 0) throw new ShineError('no exposures: set data.exposures or distributed.exposure_archive', { field: 'data.exposures' });
  const { exposures, records } = opts.scan ?? (await scanExposures(inputs, io));
  const index = new QuadrantIndex(records);
  const found = discoverQuadrants(geom, index);
  const expByKey = new Map(exposures.map((e) => [e.key, e]));

  // 4. companions of the discovered quadrants must exist
  const hduCache = new Map<string, Set<string>>();
  const used = new Set<number>();
  for (const st of geom.subTiles()) if (wanted.has(st.index)) for (const i of found[st.index]) used.add(i);
  for (const i of [...used].sort((a, b) => a - b)) {
    const r = records[i];
    const e = expByKey.get(r.exposure)!;
    if (cfg.background.method === 'bkg_file' && !e.bkg) {
      throw new ShineError(`background.method is bkg_file but exposure ${basenameOf(e.file)} has no BKG file (data.backgrounds)`, { field: 'data.backgrounds' });
    }
    if (!e.psf) throw new ShineError(`exposure ${basenameOf(e.file)} has no PSF file (data.psf)`, { field: 'data.psf' });
    for (const [file, what] of [[e.bkg, 'BKG'], [e.psf, 'PSF']] as const) {
      if (!file) continue;
      const names = await hduNames(file, io, hduCache);
      if (!names.has(r.quadrant.toUpperCase())) throw new DataError(`no ${what} HDU for quadrant ${r.quadrant} (needed by ${r.id})`, { file, hdu: r.quadrant });
    }
  }

  // 5. manifests
  const created = (opts.now ?? new Date()).toISOString();
  const rng = (a: [number, number]): [number, number] => [a[0], a[1]];
  const manifests: Manifest[] = [];
  for (const st of geom.subTiles()) {
    if (!wanted.has(st.index)) continue;
    const ps = part.subTiles[st.index];
    let order = Array.from(ps.extended.keys());
    const cap = cfg.sources.max_per_sub_tile;
    if (cap !== null && order.length > cap) {
      order = order
        .sort((a, b) => sel.snr[ps.extended[b]] - sel.snr[ps.extended[a]])
        .slice(0, cap)
        .sort((a, b) => a - b);
      io.log(`prepare: sub-tile (${st.row}, ${st.col}): kept the ${cap} highest-SNR of ${ps.extended.length} sources (sources.max_per_sub_tile)`);
    }
    const src = order.map((k) => ps.extended[k]);
    const coreFlags = order.map((k) => ps.core[k] === 1);
    // unmodelled: removed by the selection, or selected but not modelled here
    const modelled = new Set(src);
    const inExtended = new Set(ps.extended);
    const um: Array<{ o: CatalogObjects; j: number; cut: UnmodelledCut }> = [];
    for (const j of removedNear[st.index]) um.push({ o: removed, j, cut: removed.cut[j] });
    for (const j of selectedNear[st.index]) {
      if (!modelled.has(j)) um.push({ o: sel, j, cut: inExtended.has(j) ? 'max_per_sub_tile' : 'outside_extended_area' });
    }
    um.sort((a, b) => a.o.catalog[a.j] - b.o.catalog[b.j] || a.o.row[a.j] - b.o.row[b.j]);
    const unmodelled: ManifestUnmodelled = {
      search: { beyond_extended_arcsec: grow, rule: { ...rule } },
      catalog: um.map(({ o, j }) => o.catalog[j]),
      row: um.map(({ o, j }) => o.row[j]),
      object_id: um.map(({ o, j }) => o.objectId[j].toString()),
      ra: um.map(({ o, j }) => o.ra[j]),
      dec: um.map(({ o, j }) => o.dec[j]),
      flux: um.map(({ o, j }) => (Number.isFinite(o.flux[j]) ? o.flux[j] : NaN)),
      mag: um.map(({ o, j }) => abMagnitude(o.flux[j])),
      semimajor_arcsec: um.map(({ o, j }) => (Number.isFinite(o.semimajorArcsec[j]) ? o.semimajorArcsec[j] : NaN)),
      point_like: um.map(({ o, j }) => o.pointLike[j]),
      cut: um.map(({ cut }) => cut),
    };
    const quads = found[st.index]
      .map((i) => records[i])
      .sort((a, b) => Number(a.exposure.slice(3)) - Number(b.exposure.slice(3)) || (a.quadrant < b.quadrant ? -1 : a.quadrant > b.quadrant ? 1 : 0));
    const usedExp = [...new Set(quads.map((q) => q.exposure))];
    const coreSky = geom.skyRange(st.core);
    const extSky = geom.skyRange(st.extended);
    const [cra, cdec] = geom.toSky((st.core.xi[0] + st.core.xi[1]) / 2, (st.core.eta[0] + st.core.eta[1]) / 2);
    const m: Manifest = {
      format: MANIFEST_FORMAT,
      version: MANIFEST_VERSION,
      tile_id: tileId,
      sub_tile_row: st.row,
      sub_tile_col: st.col,
      core_ra_range: coreSky.ra,
      core_dec_range: coreSky.dec,
      extended_ra_range: extSky.ra,
      extended_dec_range: extSky.dec,
      n_sources_extended: src.length,
      n_sources_core: coreFlags.filter(Boolean).length,
      n_quadrants: quads.length,
      quadrant_ids: quads.map((q) => q.id),
      created,
      config: cfg.source.file,
      tile: {
        ra: tile.ra,
        dec: tile.dec,
        core_arcmin: cfg.tile.core_arcmin,
        extended_arcmin: cfg.tile.extended_arcmin,
        sub_tile_grid: [geom.grid.rows, geom.grid.cols],
        margin_arcsec: geom.grid.marginArcsec,
        frame: 'gnomonic tangent plane at (tile.ra, tile.dec); xi = -u towards East, eta = v towards North, arcsec; boxes are half-open [lo, hi)',
      },
      sub_tile: { center: [cra, cdec], core: { xi: rng(st.core.xi), eta: rng(st.core.eta) }, extended: { xi: rng(st.extended.xi), eta: rng(st.extended.eta) } },
      catalogs,
      sources: {
        catalog: src.map((i) => sel.catalog[i]),
        row: src.map((i) => sel.row[i]),
        object_id: src.map((i) => sel.objectId[i].toString()),
        ra: src.map((i) => sel.ra[i]),
        dec: src.map((i) => sel.dec[i]),
        core: coreFlags,
      },
      exposures: usedExp.map((k) => {
        const e = expByKey.get(k)!;
        return { key: e.key, file: e.file, obs_id: e.obsId, dither: e.dither, bkg_file: e.bkg, psf_file: e.psf };
      }),
      quadrants: quads.map((q) => {
        const e = expByKey.get(q.exposure)!;
        return {
          id: q.id,
          exposure: q.exposure,
          quadrant: q.quadrant,
          file: q.file,
          sci_hdu: q.sciHdu,
          rms_hdu: q.rmsHdu,
          flg_hdu: q.flgHdu,
          bkg_file: e.bkg,
          bkg_hdu: e.bkg ? q.quadrant : null,
          psf_file: e.psf,
          psf_hdu: e.psf ? q.quadrant : null,
          width: q.width,
          height: q.height,
          outline: q.outline.map(([a, b]) => [a, b] as [number, number]),
        };
      }),
      unmodelled,
    };
    manifests.push(m);
    io.log(`prepare: sub-tile (${st.row}, ${st.col}): ${m.n_sources_extended} sources (${m.n_sources_core} core), ${m.n_quadrants} quadrants, ${unmodelled.row.length} unmodelled object(s) near it`);
  }
  return { tile, geometry: geom, manifests, nQuadrantsScanned: records.length };
}

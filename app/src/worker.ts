/// <reference lib="webworker" />
/**
 * The engine in a Web Worker (exposed through comlink): loads a sub-tile (built-in simulation, URLs
 * or dropped files), runs Stage 1 when there is no manifest, runs the sub-tile (engine/subtile) on
 * the worker's WebGPU device and returns images, source marks, χ² and the shear. The page cancels
 * by terminating this worker.
 */
import * as Comlink from 'comlink';
import { parse as parseYaml } from 'yaml';
import { parseConfig, defaultConfig, type ShineConfig } from '../../engine/config/index.ts';
import { basenameOf } from '../../engine/config/paths.ts';
import { DataError, ShineError } from '../../engine/errors.ts';
import { FitsFile } from '../../engine/data/fits/file.ts';
import { readWcs } from '../../engine/data/wcs/index.ts';
import { quadrantBackground } from '../../engine/data/background.ts';
import { PRESETS } from '../../engine/sim/presets.ts';
import { simulate } from '../../engine/sim/simulate.ts';
import { prepareTile, type PrepareInputs } from '../../engine/tiling/prepare.ts';
import { parseManifest, type Manifest } from '../../engine/tiling/manifest.ts';
import { runSubtile } from '../../engine/subtile/run.ts';
import type { SubtileResult } from '../../engine/subtile/result.ts';
import { hash64 } from '../../engine/util/hash.ts';
import { pageImages } from './page-images.ts';
import { acquireDevice, type AcquiredDevice } from '../../platform/acquire.ts';
import { blobSource } from '../../platform/browser/files.ts';
import { MemoryStore, DroppedFiles, UrlFiles, fetchText, type OpenFits } from './files.ts';
import { PRIOR_NAMES, type EngineApi, type LoadInfo, type PriorName, type ProgressFn, type QuadrantData, type RunOutput, type RunSettings } from './api.ts';

interface Loaded {
  cfg: ShineConfig;
  /** hash64 of the config text (CFGHASH of the exported params, as the CLI writes it). */
  configHash: string;
  manifest: Manifest;
  open: OpenFits;
  truth: { g1: number; g2: number } | null;
  label: string;
  manifestName: string;
}

let loaded: Loaded | null = null;
let acq: AcquiredDevice | null = null;

async function device(): Promise<AcquiredDevice> {
  if (!acq) {
    const a = await acquireDevice({ log: (s: string) => console.info(s) });
    acq = a;
    // a lost device (driver reset, GPU process crash) is acquired again on the next run
    void a.device.lost.then((info) => {
      if (acq === a) acq = null;
      console.warn(`WebGPU device lost (${info.reason}): ${info.message}`);
    });
  }
  return acq;
}

function inputsOf(cfg: ShineConfig): PrepareInputs {
  const d = cfg.data;
  return { exposures: d.exposures, backgrounds: d.backgrounds, psf: d.psf, catalogs: d.mer_catalog, tileIndex: d.tile_index };
}

/** Stage 1 in the worker: the requested sub-tile, or the one with the most core sources. */
async function prepare(cfg: ShineConfig, open: OpenFits, subTile: [number, number] | null, progress: ProgressFn, log: string[]): Promise<Manifest> {
  const tileId = cfg.distributed.tile_id;
  if (tileId === null || tileId === undefined) throw new ShineError('no tile id: set tile.tile_id (distributed.tile_id) in the config, or open a manifest', { field: 'distributed.tile_id' });
  for (const [k, v] of Object.entries(inputsOf(cfg))) {
    for (const p of Array.isArray(v) ? v : v ? [v] : []) {
      if (/[*?[]/.test(basenameOf(p))) throw new ShineError(`${p}: glob patterns cannot be listed in the browser; list the files, or open a manifest made by shine prepare`, { field: `data.${k}` });
    }
  }
  progress('prepare', 0, 1);
  const res = await prepareTile(cfg, inputsOf(cfg), Number(tileId), { openFits: open, log: (s) => log.push(s) }, subTile ? { only: [subTile] } : {});
  progress('prepare', 1, 1);
  const usable = res.manifests.filter((m) => m.n_sources_core > 0 && m.n_quadrants > 0);
  if (usable.length === 0) throw new ShineError(`no sub-tile of tile ${tileId}${subTile ? ` at (${subTile.join(', ')})` : ''} has core sources and quadrants`, { field: 'data' });
  return usable.reduce((a, b) => (b.n_sources_core > a.n_sources_core ? b : a));
}

/** Truth shear of the sub-tile from the config's `truth.shear` table (SUBTILE_ROW, SUBTILE_COL, G1, G2). */
async function readTruth(cfg: ShineConfig, m: Manifest, open: OpenFits, warnings: string[]): Promise<{ g1: number; g2: number } | null> {
  const file = cfg.truth.shear;
  if (!file) return null;
  let f: FitsFile | null = null;
  try {
    f = await open(file);
    const t = await f.readTable(1);
    const rows = t.column('SUBTILE_ROW').data;
    const cols = t.column('SUBTILE_COL').data;
    const g1 = t.column('G1').data;
    const g2 = t.column('G2').data;
    const tiles = t.names.some((n) => n.toUpperCase() === 'TILE_ID') ? t.column('TILE_ID').data : null;
    for (let i = 0; i < t.nRows; i++) {
      if (Number(rows[i]) === m.sub_tile_row && Number(cols[i]) === m.sub_tile_col && (!tiles || Number(tiles[i]) === m.tile_id)) return { g1: Number(g1[i]), g2: Number(g2[i]) };
    }
    warnings.push(`truth: ${basenameOf(file)} has no row for sub-tile (${m.sub_tile_row}, ${m.sub_tile_col})`);
  } catch (e) {
    warnings.push(`truth: ${(e as Error).message}`);
  } finally {
    await f?.close();
  }
  return null;
}

async function finishLoad(cfg: ShineConfig, configText: string, manifest: Manifest, open: OpenFits, label: string, manifestName: string, t0: number, warnings: string[], progress: ProgressFn): Promise<LoadInfo> {
  const truth = await readTruth(cfg, manifest, open, warnings);
  loaded = { cfg, configHash: hash64(configText), manifest, open, truth, label, manifestName };
  const pri = cfg.gal.priors as unknown as Record<string, { type: string }>;
  const fixed = Object.fromEntries(PRIOR_NAMES.map((n) => [n, pri[n].type === 'fixed'])) as Record<PriorName, boolean>;
  const map = cfg.inference.map;
  const tr = performance.now();
  const quadrants = await readQuadrants(loaded, progress);
  const readMs = performance.now() - tr;
  const info: LoadInfo = {
    label,
    tileId: manifest.tile_id,
    row: manifest.sub_tile_row,
    col: manifest.sub_tile_col,
    nSourcesCore: manifest.n_sources_core,
    nSourcesExtended: manifest.n_sources_extended,
    nQuadrants: manifest.n_quadrants,
    truth,
    fixed,
    defaults: {
      method: cfg.inference.method,
      optimizer: map.optimizer,
      mapIterations: map.max_iterations,
      lr: map.lr,
      viSteps: cfg.inference.vi.steps,
      viLr: cfg.inference.vi.lr,
      viGuide: cfg.inference.vi.guide,
      nutsWarmup: cfg.inference.nuts.warmup,
      nutsSamples: cfg.inference.nuts.samples,
      nutsChains: cfg.inference.nuts.chains,
    },
    warnings,
    loadMs: performance.now() - t0,
    readMs,
    manifest,
    configFile: cfg.source.file ?? 'config',
    configHash: loaded.configHash,
    manifestName,
    pixelScale: cfg.data.pixel_scale,
    quadrants,
  };
  const buffers = new Set<ArrayBuffer>();
  for (const q of quadrants) for (const a of [q.sci, q.observed, q.rms, q.flags, q.mask]) if (a.buffer instanceof ArrayBuffer) buffers.add(a.buffer);
  return Comlink.transfer(info, [...buffers]);
}

/** A config or a manifest, told apart by the manifest's `format` key. */
function yamlKind(text: string, name: string): 'manifest' | 'config' {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new DataError(`not valid YAML: ${(e as Error).message.split('\n')[0]}`, { file: name });
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new DataError('expected a YAML mapping (a SHINE config or a sub-tile manifest)', { file: name });
  return (doc as { format?: unknown }).format === 'shine-subtile-manifest' ? 'manifest' : 'config';
}

function withFixed(cfg: ShineConfig, free: Record<PriorName, boolean>): ShineConfig {
  const c = structuredClone(cfg);
  const pri = c.gal.priors as unknown as Record<string, Record<string, unknown>>;
  const defaults = defaultConfig().gal.priors as unknown as Record<string, Record<string, unknown>>;
  for (const n of PRIOR_NAMES) {
    const p = pri[n];
    if (free[n]) {
      if (p.type === 'fixed') pri[n] = structuredClone(defaults[n]); // freed: the default prior
      continue;
    }
    if (p.type === 'fixed') continue;
    if (n === 'flux' || n === 'hlr') pri[n] = { type: 'fixed', value: typeof p.center === 'number' ? p.center : 'catalog' };
    else if (p.type === 'normal') pri[n] = { type: 'fixed', value: p.mean as number };
    else if (p.type === 'uniform') pri[n] = { type: 'fixed', value: ((p.low as number) + (p.high as number)) / 2 };
    else pri[n] = { type: 'fixed', value: 0 };
  }
  return c;
}

/**
 * The observed quadrants straight from the files (data first: drawn before any fit): SCI, RMS, FLG
 * and the background exactly as Stage 2 takes them (engine/data/background.ts), with each
 * quadrant's WCS. The mask here is the data's (flags & data.bad_pixel_mask, NaN, rms <= 0); a fit
 * adds the unmodelled-object mask.
 */
async function readQuadrants(l: Loaded, progress: ProgressFn): Promise<QuadrantData[]> {
  const out: QuadrantData[] = [];
  const badPixelMask = l.cfg.data.bad_pixel_mask >>> 0;
  const bkgFromFile = l.cfg.background.method === 'bkg_file';
  const qs = l.manifest.quadrants;
  for (let j = 0; j < qs.length; j++) {
    const q = qs[j];
    progress('read', j, qs.length);
    const det = await l.open(q.file, { needed: [q.sci_hdu, q.rms_hdu, q.flg_hdu] });
    try {
      const sci = await det.readImageFloat32(q.sci_hdu);
      const rms = await det.readImageFloat32(q.rms_hdu);
      const flg = await det.readImage(q.flg_hdu);
      const { width, height } = sci;
      const flags = flg.data instanceof Int32Array ? flg.data : Int32Array.from(flg.data as ArrayLike<number>);
      const wcs = readWcs(det, q.sci_hdu).toParams();
      const bkgFile = bkgFromFile && q.bkg_file && q.bkg_hdu ? await l.open(q.bkg_file, { needed: [q.bkg_hdu] }) : undefined;
      let bkg;
      try {
        bkg = await quadrantBackground({ sci: sci.data, width, height, flags, bkgFile, bkgHdu: q.bkg_hdu ?? undefined, badPixelMask, file: q.file, hdu: q.sci_hdu });
      } finally {
        await bkgFile?.close();
      }
      const background = bkg.kind === 'map' ? bkg.map : bkg.value;
      const observed = new Float32Array(width * height);
      const mask = new Uint8Array(width * height);
      for (let i = 0; i < observed.length; i++) {
        const b = typeof background === 'number' ? background : background[i];
        observed[i] = sci.data[i] - b;
        mask[i] = Number.isFinite(observed[i]) && rms.data[i] > 0 && Number.isFinite(rms.data[i]) && ((flags[i] >>> 0) & badPixelMask) === 0 ? 1 : 0;
      }
      out.push({
        name: q.id,
        width,
        height,
        sci: sci.data,
        observed,
        rms: rms.data,
        flags,
        mask,
        background,
        wcs,
        file: q.file,
        sciHdu: q.sci_hdu,
        flgHdu: q.flg_hdu,
        bkgFile: bkgFromFile ? (q.bkg_file ?? null) : null,
        bkgHdu: bkgFromFile ? (q.bkg_hdu ?? null) : null,
      });
    } finally {
      await det.close();
    }
  }
  progress('read', qs.length, qs.length);
  return out;
}

function adapterOf(a: AcquiredDevice): RunOutput['adapter'] {
  return { label: a.label, backend: a.backend, featureLevel: a.featureLevel, software: a.software };
}

function transferables(imgs: Array<{ model: Float32Array; mask: Uint8Array; modelled: Uint8Array }>): ArrayBuffer[] {
  const buffers = new Set<ArrayBuffer>();
  for (const q of imgs) for (const x of [q.model, q.mask, q.modelled]) if (x.buffer instanceof ArrayBuffer) buffers.add(x.buffer);
  return [...buffers];
}

const api: EngineApi = {
  async loadSimulated({ seed, small }, progress) {
    const t0 = performance.now();
    const store = new MemoryStore();
    // 'small': the ci preset with galaxies to mag 24 (fewer sources: a quick run on software WebGPU)
    const preset = small ? { ...PRESETS.ci, magMax: 24 } : PRESETS.ci;
    await simulate(store.simOutput('/sim'), { preset, seed, onProgress: (d, n) => progress('simulate', d, n) });
    const text = await store.get('/sim/config.yaml')!.text();
    const cfg = parseConfig(text, { file: '/sim/config.yaml', baseDir: '/sim' });
    const log: string[] = [];
    const manifest = await prepare(cfg, store.open, preset.subTile, progress, log);
    return finishLoad(cfg, text, manifest, store.open, `simulated ci sub-tile (seed ${seed}${small ? ', galaxies to mag 24' : ''})`, 'simulated', t0, [], progress);
  },

  async loadUrls(configUrl, manifestUrl, subTile, progress) {
    const t0 = performance.now();
    const cUrl = new URL(configUrl, self.location.href).href;
    const text = await fetchText(cUrl, 'config');
    if (yamlKind(text, cUrl) === 'manifest') throw new DataError('this is a sub-tile manifest; put it in the manifest field and the config in the config field', { file: cUrl });
    const dir = new URL('.', cUrl).href.replace(/\/$/, '');
    const cfg = parseConfig(text, { file: cUrl, baseDir: dir });
    const files = new UrlFiles(cUrl, null);
    const warnings: string[] = [];
    let manifest: Manifest;
    let name = 'prepared in the browser';
    if (manifestUrl) {
      const mUrl = new URL(manifestUrl, self.location.href).href;
      const mt = await fetchText(mUrl, 'manifest');
      if (yamlKind(mt, mUrl) !== 'manifest') throw new DataError("not a sub-tile manifest (no 'format: shine-subtile-manifest'); it looks like a config", { file: mUrl });
      manifest = parseManifest(mt, mUrl);
      files.setClusterConfig(manifest.config ?? null);
      name = mUrl;
    } else {
      manifest = await prepare(cfg, files.open, subTile, progress, []);
    }
    return finishLoad(cfg, text, manifest, files.open, `${basenameOf(cUrl)} · sub-tile (${manifest.sub_tile_row}, ${manifest.sub_tile_col})`, name, t0, warnings, progress);
  },

  async loadFiles(list, subTile, progress) {
    const t0 = performance.now();
    if (list.length === 0) throw new ShineError('no file given');
    const warnings: string[] = [];
    let cfgText: { text: string; name: string } | null = null;
    let manText: { text: string; name: string } | null = null;
    const fits: File[] = [];
    for (const f of list) {
      const n = f.name;
      if (/\.ya?ml$/i.test(n)) {
        const text = await f.text();
        const kind = yamlKind(text, n);
        if (kind === 'manifest') {
          if (manText) throw new DataError(`two manifests opened (${manText.name} and ${n}); open one sub-tile at a time`, { file: n });
          manText = { text, name: n };
        } else {
          if (cfgText) throw new DataError(`two configs opened (${cfgText.name} and ${n})`, { file: n });
          cfgText = { text, name: n };
        }
      } else if (/\.(fits|fit|fts)(\.gz)?$/i.test(n)) {
        // check it now, so a broken file is named at once (FitsFile detects gzip from the magic bytes)
        const ff = await FitsFile.open(blobSource(f, n));
        await ff.close();
        fits.push(f);
      } else {
        throw new DataError('unsupported file type: expected FITS (.fits, .fits.gz), a sub-tile manifest or a config (.yaml)', { file: n });
      }
    }
    const dropped = new DroppedFiles(fits);
    let cfg: ShineConfig;
    if (cfgText) cfg = parseConfig(cfgText.text, { file: cfgText.name, baseDir: '/dropped' });
    else {
      if (!manText) throw new ShineError('open a config (.yaml) or a sub-tile manifest together with the FITS files');
      cfg = defaultConfig();
      warnings.push('no config opened: using the default configuration (priors, stamps, background)');
    }
    let manifest: Manifest;
    if (manText) {
      manifest = parseManifest(manText.text, manText.name);
      // every file the manifest names is checked now, so a missing one (e.g. the MER catalog) is
      // named at load, not when the run reaches it
      const named = new Map<string, string>();
      for (const q of manifest.quadrants) {
        named.set(q.file, `DET file of quadrant ${q.id}`);
        if (q.psf_file) named.set(q.psf_file, `PSF file of quadrant ${q.id}`);
        if (q.bkg_file && cfg.background.method === 'bkg_file') named.set(q.bkg_file, `BKG file of quadrant ${q.id}`);
      }
      for (const c of manifest.catalogs) named.set(c.file, 'MER catalog');
      const missing = [...named].filter(([path]) => !dropped.byName.has(basenameOf(path)));
      if (missing.length) {
        throw new DataError(
          `${missing.length} file(s) the manifest names are not among the files you opened: ${missing.map(([path, what]) => `${basenameOf(path)} (${what}, named as ${path})`).join('; ')}; add them (drop the whole folder's files together)`,
          { file: manText.name },
        );
      }
    } else manifest = await prepare(cfg, dropped.open, subTile, progress, []);
    if (fits.length === 0) throw new ShineError('no FITS file opened: add the exposures (DET), PSF, BKG and MER catalog files');
    return finishLoad(cfg, cfgText?.text ?? '', manifest, dropped.open, `${manText?.name ?? cfgText?.name ?? 'files'} · sub-tile (${manifest.sub_tile_row}, ${manifest.sub_tile_col})`, manText?.name ?? 'prepared in the browser', t0, warnings, progress);
  },

  async run(settings, progress) {
    const l = loaded;
    if (!l) throw new ShineError('load a sub-tile first');
    const t0 = performance.now();
    const a = await device();
    const cfg = withFixed(l.cfg, settings.free);
    cfg.inference.method = settings.method;
    // each method's own count: "MAP iterations" caps the MAP (also VI's and NUTS's warm start),
    // VI steps and NUTS warm-up / draws are separate fields (none caps another silently)
    Object.assign(cfg.inference.map, { optimizer: settings.optimizer, max_iterations: settings.mapIterations, lr: settings.lr });
    Object.assign(cfg.inference.vi, { steps: settings.viSteps, lr: settings.viLr, guide: settings.viGuide });
    Object.assign(cfg.inference.nuts, { warmup: settings.nutsWarmup, samples: settings.nutsSamples, chains: settings.nutsChains });
    const manifest = structuredClone(l.manifest);
    const io = { openFits: l.open };

    // the model at the starting parameters (catalog fluxes and sizes, round, no offsets): zero
    // Adam steps, no Laplace
    let start: RunOutput['start'] = null;
    if (settings.startOnly || (settings.initialChi2 ?? true)) {
      const c0 = structuredClone(cfg);
      Object.assign(c0.inference.map, { optimizer: 'adam', max_iterations: 0, laplace: false });
      const ti = performance.now();
      const r0 = await runSubtile(a.device, structuredClone(manifest), c0, io, { method: 'map', onProgress: (s, d, n) => progress(`start: ${s}`, d, n) });
      if (r0.status === 'ok') {
        const p0 = pageImages(r0);
        start = { chi2: p0.chi2, ms: performance.now() - ti, images: p0.images, quadrantChi2: r0.quadrantChi2 ?? [] };
      }
      else throw new ShineError(`empty sub-tile: ${r0.emptyReason ?? ''}`);
    }
    if (settings.startOnly) {
      const out: RunOutput = { result: null, start, chi2Final: NaN, nPixels: 0, adapter: adapterOf(a), totalMs: performance.now() - t0 };
      return Comlink.transfer(out, transferables(start!.images));
    }
    const result = await runSubtile(a.device, manifest, cfg, io, {
      method: settings.method,
      onProgress: (s, d, n, detail) => progress(s, d, n, detail?.loss),
      log: (s) => console.info(s),
    });
    // the page draws these; observed and rms it already has from the load
    const { images: fitImages, chi2: chi2Final, n } = pageImages(result);
    // (not a spread of the engine's images: their getters would make every full-size array again)
    const slim: SubtileResult = { ...result, images: result.images.map((q) => ({ name: q.name, width: q.width, height: q.height, observed: new Float32Array(0), rms: new Float32Array(0), model: new Float32Array(0), mask: new Uint8Array(0), modelled: new Uint8Array(0) })) };
    const out: RunOutput = { result: slim, fitImages, start, chi2Final, nPixels: n, adapter: adapterOf(a), totalMs: performance.now() - t0 };
    return Comlink.transfer(out, transferables([...fitImages, ...(start?.images ?? [])]));
  },

  async adapter() {
    return adapterOf(await device());
  },
};

Comlink.expose(api);

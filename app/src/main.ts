/**
 * The page: controls, views and exports. The engine runs in ./worker.ts, colour limits and bitmaps
 * in ./render-worker.ts (both through comlink); the page only draws. The observed quadrants are
 * drawn as soon as a sub-tile is read; model and χ when a fit (or the model at the start) exists.
 * Cancel terminates the engine worker and starts a fresh one (the sub-tile is loaded again on the
 * next run). `window.__shineApp` mirrors the state for the Playwright tests (test/app).
 */
import * as Comlink from 'comlink';
import { maskOutline } from './outline.ts';
import type { EngineApi, LoadInfo, Method, ModelImage, Optimizer, PriorName, QuadrantData, RunOutput, RunSettings, ViGuide } from './api.ts';
import { MASK_NOT_HELD, PRIOR_NAMES } from './api.ts';
import type { RenderApi } from './render-worker.ts';
import { PANELS, renderRgba, type ChiCmap, type ImageCmap, type Limits, type Panel } from './render.ts';
import type { StretchName } from './stretch.ts';
import { applyAffine, drawCanvas, drawLoss, drawStamp, invertAffine, quadrantAffine, screenToUv, uvToScreen, type Affine, type Bitmap, type Mark, type ViewState } from './views.ts';
import { Wcs, tangentPlane, type TangentPlane } from '../../engine/data/wcs/index.ts';
import { subtileProducts } from '../../engine/subtile/products.ts';
import { diagnosticsTitle } from '../../engine/outputs/diagnostics.ts';
import type { SubtileResult } from '../../engine/subtile/result.ts';
import { SHINE_VERSION } from '../../engine/version.ts';
import { chiHistogram, drawChiHistogram, drawCorner, drawTrace, type ChiHistogram } from './diagnostics.ts';

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

/** The shear shown, and the error a user should quote. */
interface Shown {
  chi2Init: number | null;
  chi2Final: number | null;
  g1: number;
  g1Err: number;
  g2: number;
  g2Err: number;
  /** What g1Err/g2Err are: 'laplace' (marginal, MAP or mean-field VI), 'posterior' (NUTS, low-rank VI), 'vi-width' (mean-field without Laplace). */
  errKind: string;
  viWidth: { g1: number; g2: number } | null;
  truth: { g1: number; g2: number } | null;
}

interface AppState {
  phase: 'idle' | 'loading' | 'loaded' | 'running' | 'done' | 'error' | 'cancelled';
  info: PageInfo | null;
  out: RunOutput | null;
  /** The result the exports use (the last complete one), and whether a later run was cancelled. */
  result: SubtileResult | null;
  stale: boolean;
  error: string | null;
  shown: Shown | null;
  pngBytes: number;
  /** ms from the click on a load button to the first observed image drawn, and to the last MAP result shown. */
  timing: { loadClick: number; firstImage: number | null; dataRead: number | null; runClick: number; result: number | null };
  /** Render generation (bumped by stretch / limits / colormap / data changes). */
  gen: number;
  limits: Limits | null;
  /** χ histogram of each quadrant (by name) as drawn. */
  chiHists: Record<string, ChiHistogram>;
}
const state: AppState = {
  phase: 'idle',
  info: null,
  out: null,
  result: null,
  stale: false,
  error: null,
  shown: null,
  pngBytes: 0,
  timing: { loadClick: 0, firstImage: null, dataRead: null, runClick: 0, result: null },
  gen: 0,
  limits: null,
  chiHists: {},
};
(window as unknown as { __shineApp: AppState }).__shineApp = state;

// ------------------------------------------------------------------------------------------------
// workers

let worker: Worker;
let engine: Comlink.Remote<EngineApi>;
/** Loads the current sub-tile again (after the worker was replaced). */
let reload: (() => Promise<LoadInfo>) | null = null;
let workerHasData = false;
const renderer = Comlink.wrap<RenderApi>(new Worker(new URL('./render-worker.ts', import.meta.url), { type: 'module' }));

function startWorker(): void {
  worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' });
  engine = Comlink.wrap<EngineApi>(worker);
  worker.addEventListener('error', (e) => showError(`the engine worker failed: ${e.message || 'could not start it (see the browser console)'}`));
  workerHasData = false;
  engine
    .adapter()
    .then((a) => {
      $('adapter').textContent = `adapter: ${a.label} (${a.featureLevel}${a.software ? ', software' : ''})`;
    })
    .catch((e) => {
      $('adapter').textContent = 'adapter: none';
      showError(`WebGPU is not available in this browser's workers: ${messageOf(e)}`);
    });
}
startWorker();

function messageOf(e: unknown): string {
  return String((e as Error)?.message ?? e);
}

// ------------------------------------------------------------------------------------------------
// progress, errors, busy state

let lastProgress = 0;
let stageStart = { stage: '', t: 0 };
let ticker: number | null = null;
let lastText = '';
/** Progress: the stage, its count (for MAP: iterations so far and the cap; L-BFGS usually stops well before it), the loss, and the time in the stage. */
const progress = Comlink.proxy((stage: string, done: number, total: number, loss?: number) => {
  const now = performance.now();
  if (stage !== stageStart.stage) stageStart = { stage, t: now };
  if (now - lastProgress < 100 && done < total) return;
  lastProgress = now;
  const bar = $<HTMLProgressElement>('progress');
  bar.max = Math.max(1, total);
  bar.value = Math.min(done, total);
  const what = /(^|: )map$/.test(stage) ? `${stage} iteration ${done} (cap ${total}; stops when converged)` : /laplace$/.test(stage) ? `${stage}: Hessian and marginal shear errors${done >= total ? ' done' : ''}` : `${stage} ${done}/${total}`;
  lastText = `${what}${loss !== undefined ? `  loss ${loss.toFixed(2)}` : ''}`;
  showProgressText();
});

function showProgressText(): void {
  const el = (performance.now() - stageStart.t) / 1000;
  $('progress-text').textContent = `${lastText}  · ${el.toFixed(0)} s`;
}

function showError(msg: string | null): void {
  const el = $('error');
  el.hidden = !msg;
  el.textContent = msg ?? '';
  state.error = msg;
}

const EXPORTS = ['export-shear', 'export-fits', 'export-csv', 'export-reg', 'export-png'];

function setBusy(busy: boolean): void {
  for (const id of ['load-sim', 'load-url', 'run', 'start-model']) $<HTMLButtonElement>(id).disabled = busy;
  $<HTMLButtonElement>('cancel').disabled = !busy;
  if (busy && ticker === null) ticker = window.setInterval(showProgressText, 1000);
  if (!busy) {
    if (ticker !== null) window.clearInterval(ticker);
    ticker = null;
    $<HTMLButtonElement>('run').disabled = !state.info;
    $<HTMLButtonElement>('start-model').disabled = !state.info;
  }
  for (const id of EXPORTS) $<HTMLButtonElement>(id).disabled = !state.result && !(id === 'export-reg' || id === 'export-png' ? state.info : false);
}

$('cancel').addEventListener('click', () => {
  worker.terminate();
  startWorker();
  state.phase = 'cancelled';
  $('progress-text').textContent = 'cancelled';
  $<HTMLProgressElement>('progress').value = 0;
  if (state.result) {
    state.stale = true;
    $('export-note').textContent = 'the run was cancelled: exports use the last complete result (marked so in the PNG title)';
  } else $('export-note').textContent = 'the run was cancelled before any result: there is no fit to export (regions and the PNG of the data still are)';
  setBusy(false);
});

// ------------------------------------------------------------------------------------------------
// loading

async function load(how: () => Promise<LoadInfo>, url: URLSearchParams | null): Promise<void> {
  showError(null);
  setBusy(true);
  state.phase = 'loading';
  state.timing = { loadClick: performance.now(), firstImage: null, dataRead: null, runClick: 0, result: null };
  try {
    const { info, observed } = handOver(await how());
    state.timing.dataRead = performance.now();
    // bitmaps of the previous sub-tile that arrive while this one loads do not count
    state.timing.firstImage = null;
    reload = how;
    workerHasData = true;
    state.info = info;
    clearResult();
    state.phase = 'loaded';
    $('subtile-label').textContent = `${info.label} · tile ${info.tileId} (${info.row}, ${info.col}) · ${info.nSourcesCore} core / ${info.nSourcesExtended} sources · ${info.nQuadrants} quadrants`;
    $('warnings').textContent = info.warnings.join('\n');
    $('truth').textContent = info.truth ? `g₁ ${info.truth.g1.toFixed(4)}, g₂ ${info.truth.g2.toFixed(4)}` : 'unknown';
    const d = info.defaults;
    $<HTMLSelectElement>('method').value = d.method;
    $<HTMLSelectElement>('optimizer').value = d.optimizer;
    $<HTMLInputElement>('map-iters').value = String(d.mapIterations);
    $<HTMLInputElement>('lr').value = String(d.lr);
    $<HTMLInputElement>('vi-steps').value = String(d.viSteps);
    $<HTMLInputElement>('vi-lr').value = String(d.viLr);
    $<HTMLSelectElement>('vi-guide').value = d.viGuide;
    $<HTMLInputElement>('nuts-warmup').value = String(d.nutsWarmup);
    $<HTMLInputElement>('nuts-samples').value = String(d.nutsSamples);
    $<HTMLInputElement>('nuts-chains').value = String(d.nutsChains);
    showMethodFields();
    for (const el of document.querySelectorAll<HTMLInputElement>('#free input[data-prior]')) el.checked = !info.fixed[el.dataset.prior as PriorName];
    buildViews(info, observed, url);
    $('progress-text').textContent = `loaded in ${(info.loadMs / 1000).toFixed(1)} s (images read in ${(info.readMs / 1000).toFixed(1)} s) — press Run or Model at start`;
  } catch (e) {
    state.phase = 'error';
    showError(messageOf(e));
    $('progress-text').textContent = 'load failed';
  } finally {
    setBusy(false);
  }
}

/** Forgets the previous sub-tile's result (numbers, views, loss, selected source). */
function clearResult(): void {
  lastStart = null;
  state.out = null;
  state.result = null;
  state.stale = false;
  state.shown = null;
  for (const id of ['g1', 'g2', 'err-kind', 'chi2', 'iters', 'nsrc', 'timings']) {
    $(id).textContent = '–';
    for (const k of Object.keys($(id).dataset)) delete $(id).dataset[k];
  }
  $('export-note').textContent = '';
  $('diagnostics').hidden = true;
  $('posterior-box').hidden = true;
  state.chiHists = {};
  selected = null;
  $('source-panel').innerHTML = '<em>click a source marker</em>';
  const loss = $<HTMLCanvasElement>('loss');
  loss.getContext('2d')!.clearRect(0, 0, loss.width, loss.height);
}

function subTileField(): [number, number] | null {
  const s = $<HTMLInputElement>('subtile').value.trim();
  if (!s) return null;
  const m = /^(\d+)\s*,\s*(\d+)$/.exec(s);
  if (!m) throw new Error(`sub-tile must be ROW,COL (e.g. 1,2), got '${s}'`);
  return [Number(m[1]), Number(m[2])];
}

/** The page URL: what is loaded and the view (a link to share); `view` only updates the view part. */
let urlBase: URLSearchParams = new URLSearchParams();
function setUrl(base: URLSearchParams | null): void {
  if (base) urlBase = base;
  const p = new URLSearchParams(urlBase);
  if (state.info && quads.length) {
    const [ra, dec] = tp!.toSky(view.u, view.v);
    p.set('ra', ra.toFixed(7));
    p.set('dec', dec.toFixed(7));
    p.set('zoom', view.zoom.toPrecision(4));
  }
  const q = p.toString();
  history.replaceState(null, '', `${location.pathname}${q ? `?${q}` : ''}`);
}

$('load-sim').addEventListener('click', () => {
  const seed = Number($<HTMLInputElement>('sim-seed').value);
  const small = $<HTMLInputElement>('sim-small').checked;
  if (!Number.isSafeInteger(seed) || seed < 0) return showError('seed must be a non-negative integer');
  void load(() => engine.loadSimulated({ seed, small }, progress), new URLSearchParams({ sim: '1', seed: String(seed), small: small ? '1' : '0' }));
});

$('load-url').addEventListener('click', () => {
  const c = $<HTMLInputElement>('config-url').value.trim();
  const m = $<HTMLInputElement>('manifest-url').value.trim();
  if (!c) return showError('give the config URL (the manifest alone does not say the priors and stamps)');
  let st: [number, number] | null;
  try {
    st = subTileField();
  } catch (e) {
    return showError(messageOf(e));
  }
  // relative URLs are relative to the page (the worker's own URL differs)
  let cu: string;
  let mu: string | null;
  try {
    cu = new URL(c, location.href).href;
    mu = m ? new URL(m, location.href).href : null;
  } catch (e) {
    return showError(`not a URL: ${messageOf(e)}`);
  }
  const p = new URLSearchParams({ config: c });
  if (m) p.set('manifest', m);
  if (st) p.set('subtile', st.join(','));
  void load(() => engine.loadUrls(cu, mu, st, progress), p);
});

function loadFileList(files: File[]): void {
  let st: [number, number] | null;
  try {
    st = subTileField();
  } catch (e) {
    return showError(messageOf(e));
  }
  // dropped files cannot be named in a link: the URL loses the previous sub-tile
  void load(() => engine.loadFiles(files, st, progress), new URLSearchParams());
}
$<HTMLInputElement>('file-input').addEventListener('change', (ev) => {
  const input = ev.target as HTMLInputElement;
  loadFileList([...(input.files ?? [])]);
  input.value = '';
});
// the drop box opens the file picker from the keyboard (Enter / Space)
$('drop').addEventListener('keydown', (e) => {
  if (e.key === 'Enter' || e.key === ' ') {
    e.preventDefault();
    $<HTMLInputElement>('file-input').click();
  }
});
// drops anywhere on the page (a file dropped elsewhere would otherwise replace the page)
const drop = $('drop');
document.addEventListener('dragover', (e) => {
  e.preventDefault();
  drop.classList.add('over');
});
document.addEventListener('dragleave', (e) => {
  if (!e.relatedTarget) drop.classList.remove('over');
});
document.addEventListener('drop', (e) => {
  e.preventDefault();
  drop.classList.remove('over');
  const files = [...(e.dataTransfer?.files ?? [])];
  if (files.length) loadFileList(files);
});

// ------------------------------------------------------------------------------------------------
// running

function intField(id: string, min: number, what: string): number {
  const raw = $<HTMLInputElement>(id).value;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < min) throw new Error(`${what} must be an integer ≥ ${min}, got '${raw}'`);
  return v;
}
function posField(id: string, what: string): number {
  const raw = $<HTMLInputElement>(id).value;
  const v = Number(raw);
  if (!(v > 0)) throw new Error(`${what} must be > 0, got '${raw}'`);
  return v;
}

function settings(): RunSettings {
  const free = {} as Record<PriorName, boolean>;
  for (const n of PRIOR_NAMES) free[n] = document.querySelector<HTMLInputElement>(`#free input[data-prior="${n}"]`)!.checked;
  return {
    method: $<HTMLSelectElement>('method').value as Method,
    optimizer: $<HTMLSelectElement>('optimizer').value as Optimizer,
    mapIterations: intField('map-iters', 0, 'MAP iterations'),
    lr: posField('lr', 'learning rate'),
    viSteps: intField('vi-steps', 1, 'VI steps'),
    viLr: posField('vi-lr', 'VI learning rate'),
    viGuide: $<HTMLSelectElement>('vi-guide').value as ViGuide,
    nutsWarmup: intField('nuts-warmup', 0, 'NUTS warm-up'),
    nutsSamples: intField('nuts-samples', 1, 'NUTS draws'),
    nutsChains: intField('nuts-chains', 1, 'NUTS chains'),
    free,
  };
}

function showMethodFields(): void {
  const m = $<HTMLSelectElement>('method').value;
  for (const el of document.querySelectorAll<HTMLElement>('[data-for]')) el.hidden = el.dataset.for !== m;
}
$('method').addEventListener('change', showMethodFields);

/** χ² of the last model at the start, and the free-parameter set it was computed for. */
let lastStart: { key: string; chi2: number; ms: number } | null = null;

async function runWith(startOnly: boolean): Promise<void> {
  let s: RunSettings;
  let key: string;
  try {
    const base = settings();
    key = JSON.stringify({ free: base.free });
    // the model at the start depends only on which parameters are free: a fit after "Model at
    // start" reuses its χ² instead of rendering it again
    s = { ...base, startOnly, initialChi2: startOnly || lastStart?.key !== key };
  } catch (e) {
    return showError(messageOf(e));
  }
  showError(null);
  setBusy(true);
  state.phase = 'running';
  state.timing.runClick = performance.now();
  state.timing.result = null;
  try {
    if (!workerHasData && reload) {
      await reload();
      workerHasData = true;
    }
    const out = await engine.run(s, progress);
    if (out.start) lastStart = { key, chi2: out.start.chi2, ms: out.start.ms };
    else if (lastStart?.key === key) out.start = { chi2: lastStart.chi2, ms: 0, images: [], quadrantChi2: [] };
    // the exports need the run's record, not its images (the views hold the ones shown)
    state.out = { ...out, fitImages: [], start: out.start && { ...out.start, images: [] } };
    if (out.result) {
      state.result = out.result;
      state.stale = false;
      $('export-note').textContent = '';
    }
    showResult(out);
    state.timing.result = performance.now();
    state.phase = 'done';
    $('progress-text').textContent = `done in ${(out.totalMs / 1000).toFixed(1)} s`;
  } catch (e) {
    if ((state.phase as AppState['phase']) !== 'cancelled') {
      state.phase = 'error';
      showError(messageOf(e));
      $('progress-text').textContent = 'run failed';
    }
  } finally {
    if ((state.phase as AppState['phase']) !== 'cancelled') setBusy(false);
  }
}
$('run').addEventListener('click', () => void runWith(false));
$('start-model').addEventListener('click', () => void runWith(true));

// ------------------------------------------------------------------------------------------------
// results

const fmtMs = (ms: number | undefined) => (ms === undefined ? '–' : ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${ms.toFixed(0)} ms`);

/**
 * The error to quote: the Laplace marginal error for MAP and for mean-field VI (whose widths are
 * conditional on the other parameters and far too small for the shear: docs/inference.md), the
 * posterior standard deviation for NUTS and low-rank VI.
 */
function quotedErrors(r: SubtileResult, guide: ViGuide): Pick<Shown, 'g1Err' | 'g2Err' | 'errKind' | 'viWidth'> {
  if (r.method === 'vi' && guide === 'mean_field') {
    const viWidth = { g1: r.g1Err, g2: r.g2Err };
    if (r.mapEstimate && Number.isFinite(r.mapEstimate.g1Err) && Number.isFinite(r.mapEstimate.g2Err)) return { g1Err: r.mapEstimate.g1Err, g2Err: r.mapEstimate.g2Err, errKind: 'laplace', viWidth };
    return { g1Err: r.g1Err, g2Err: r.g2Err, errKind: 'vi-width', viWidth };
  }
  if (r.method === 'map') return { g1Err: r.g1Err, g2Err: r.g2Err, errKind: 'laplace', viWidth: null };
  return { g1Err: r.g1Err, g2Err: r.g2Err, errKind: 'posterior', viWidth: null };
}

const ERR_LABEL: Record<string, string> = {
  laplace: 'Laplace marginal error (all source parameters marginalised): quote this',
  posterior: 'posterior standard deviation: quote this',
  'vi-width': 'mean-field VI width only (no Laplace computed): conditional, an underestimate — do not quote; run MAP or NUTS',
};

let lastGuide: ViGuide = 'mean_field';
function showResult(out: RunOutput): void {
  const truth = state.info?.truth ?? null;
  if (out.start?.images.length) applyModels(out.start.images, 'start');
  if (!out.result) {
    showQuadrantDiagnostics(out.start!.quadrantChi2);
    $('chi2').textContent = `${out.start!.chi2.toFixed(1)} at the start (no fit yet)`;
    $('chi2').dataset.init = String(out.start!.chi2);
    $('iters').textContent = 'model at the catalog values (no fit)';
    return;
  }
  const r = out.result;
  if (out.fitImages) applyModels(out.fitImages, 'fit');
  showQuadrantDiagnostics(r.quadrantChi2 ?? []);
  lastGuide = $<HTMLSelectElement>('vi-guide').value as ViGuide;
  const q = quotedErrors(r, lastGuide);
  const pm = (v: number, e: number) => `${v.toFixed(4)} ± ${Number.isFinite(e) ? e.toFixed(4) : '?'}`;
  const pull = (v: number, e: number, t: number | undefined) => (t === undefined || !(e > 0) ? '' : `  (${((v - t) / e).toFixed(2)}σ from truth)`);
  const vw = (w: number) => (q.viWidth ? `  · VI width ${w.toFixed(4)} (mean-field, conditional)` : '');
  if (r.status !== 'ok') {
    $('g1').textContent = $('g2').textContent = '–';
    showError(`empty sub-tile: ${r.emptyReason ?? ''}`);
  } else {
    $('g1').textContent = pm(r.g1, q.g1Err) + pull(r.g1, q.g1Err, truth?.g1) + vw(q.viWidth?.g1 ?? NaN);
    $('g2').textContent = pm(r.g2, q.g2Err) + pull(r.g2, q.g2Err, truth?.g2) + vw(q.viWidth?.g2 ?? NaN);
  }
  $('err-kind').textContent = ERR_LABEL[q.errKind];
  $('err-kind').dataset.kind = q.errKind;
  $('g1').dataset.value = String(r.g1);
  $('g1').dataset.err = String(q.g1Err);
  $('g2').dataset.value = String(r.g2);
  $('g2').dataset.err = String(q.g2Err);
  const c0 = out.start?.chi2 ?? null;
  $('chi2').textContent = `${c0 === null ? '–' : c0.toFixed(1)} → ${out.chi2Final.toFixed(1)}  (${out.nPixels} pixels of the blocks the fit holds; χ²/N ${(out.chi2Final / Math.max(1, out.nPixels)).toFixed(3)})`;
  $('chi2').dataset.init = String(c0);
  $('chi2').dataset.final = String(out.chi2Final);
  $('iters').textContent = `${r.method} · ${r.iterations} iterations, ${r.evaluations} evaluations · ${r.converged ? 'converged' : 'not converged'} (${r.reason})${r.laplaceOk ? '' : ` · Laplace: ${r.laplaceMessage}`}`;
  $('nsrc').textContent = `${r.nSourcesCore} core, ${r.nSourcesModelled} modelled, ${r.nQuadrants} quadrants, ${r.pairs} source-quadrant pairs`;
  const t = r.timings;
  $('timings').textContent = `load ${fmtMs((t.catalogMs ?? 0) + (t.loadMs ?? 0))}, build ${fmtMs(t.buildMs)}, inference ${fmtMs(t.inferenceMs)}, Laplace ${fmtMs(t.laplaceMs)}, render ${fmtMs(t.renderMs)}, χ² at start ${fmtMs(out.start?.ms)}, total ${fmtMs(out.totalMs)}`;
  $('adapter').textContent = `adapter: ${out.adapter.label} (${out.adapter.featureLevel}${out.adapter.software ? ', software' : ''})`;
  $('warnings').textContent = [...(state.info?.warnings ?? []), ...r.warnings].join('\n');
  state.shown = { chi2Init: c0, chi2Final: out.chi2Final, g1: r.g1, g2: r.g2, ...q, truth };
  drawLoss($<HTMLCanvasElement>('loss'), r.lossHistory, r.method);
  showPosterior(r);
  if (selected !== null) selectSource(selected);
}

/** NUTS / VI: R̂, ESS, divergences in a table, per-chain traces and the g1–g2 corner plot. */
function showPosterior(r: SubtileResult): void {
  const box = $('posterior-box');
  const p = r.posterior;
  const smp = r.samples;
  box.hidden = !p || !smp;
  if (!p || !smp) return;
  const f = (v: number, d = 3) => (Number.isFinite(v) ? v.toFixed(d) : '–');
  const rows: Array<[string, string]> = [
    ['chains × draws', `${p.chains} × ${p.draws}`],
    ['R̂ g₁, g₂ (max, parameter)', `${f(p.rhatG1)}, ${f(p.rhatG2)} (${f(p.maxRhat)}, ${p.maxRhatParam})`],
    ['ESS bulk g₁, g₂', `${f(p.essBulkG1, 0)}, ${f(p.essBulkG2, 0)}`],
    ['ESS tail g₁, g₂', `${f(p.essTailG1, 0)}, ${f(p.essTailG2, 0)}`],
    ['divergences', String(p.divergences)],
    ['step sizes, mean tree depth, max-depth hits', `${p.stepSizes.map((x) => x.toPrecision(3)).join(', ')}; ${f(p.meanTreeDepth, 2)}; ${p.maxDepthHits}`],
  ];
  const t = $<HTMLTableElement>('posterior-table');
  t.textContent = '';
  for (const [k, v] of rows) {
    const tr = t.insertRow();
    const th = document.createElement('th');
    th.textContent = k;
    tr.append(th);
    tr.insertCell().textContent = v;
  }
  const truth = state.info?.truth ?? null;
  drawTrace($<HTMLCanvasElement>('trace-g1'), smp, 'g1', truth?.g1 ?? null);
  drawTrace($<HTMLCanvasElement>('trace-g2'), smp, 'g2', truth?.g2 ?? null);
  drawCorner($<HTMLCanvasElement>('corner'), smp, truth, r.mapEstimate ? { g1: r.mapEstimate.g1, g2: r.mapEstimate.g2 } : null);
}

/** χ histograms per quadrant, and χ²/N over the modelled area (the engine's quadrant_chi2) in each quadrant's title. */
function showQuadrantDiagnostics(chi2: Array<{ name: string; n_pixels: number; chi2: number; chi2_per_pixel: number }>): void {
  $('diagnostics').hidden = false;
  const root = $('chi-hists');
  root.textContent = '';
  const hists: Record<string, ChiHistogram> = {};
  for (const q of quads) {
    const title = q.captions.observed.closest('.quad')!.querySelector<HTMLElement>('.qname')!;
    const c = chi2.find((x) => x.name === q.d.name);
    title.textContent = `${q.d.name} · ${q.d.width}×${q.d.height}${c ? ` · χ²/N ${c.chi2_per_pixel.toFixed(3)} over the modelled area (${c.n_pixels} px, ${q.modelKind === 'fit' ? 'fit' : 'start'})` : ''}`;
    if (c) {
      title.dataset.chi2n = String(c.chi2_per_pixel);
      title.dataset.npix = String(c.n_pixels);
    }
    const chi = chiImage(q);
    if (!chi) continue;
    const h = chiHistogram(chi, q.mask);
    hists[q.d.name] = h;
    const cv = document.createElement('canvas');
    cv.width = 220;
    cv.height = 130;
    cv.dataset.quadrant = q.d.name;
    drawChiHistogram(cv, h, `${q.d.name} (${q.modelKind})`);
    root.append(cv);
  }
  state.chiHists = hists;
}

// ------------------------------------------------------------------------------------------------
// views

/**
 * A quadrant as the page holds it: the files' values without `observed` (SCI − background), which
 * goes to the render worker (transferred, not copied: docs/app.md "Memory"); the page computes it
 * at a pixel with observedAt.
 */
type PageQuadrant = Omit<QuadrantData, 'observed'>;

/** The sub-tile as the page holds it: the load's record with its quadrants stripped of `observed`. */
type PageInfo = Omit<LoadInfo, 'quadrants'> & { quadrants: PageQuadrant[] };

/** Splits each quadrant's observed image (for the render worker, transferred) from what the page keeps. */
function handOver(loaded: LoadInfo): { info: PageInfo; observed: Float32Array[] } {
  const observed: Float32Array[] = [];
  const quadrants = loaded.quadrants.map(({ observed: o, ...rest }) => {
    observed.push(o);
    return rest;
  });
  return { info: { ...loaded, quadrants }, observed };
}

/** SCI − background at pixel i, rounded to float32 exactly as the engine worker computed it (worker.ts readQuadrants). */
function observedAt(d: PageQuadrant, i: number): number {
  return Math.fround(d.sci[i] - (typeof d.background === 'number' ? d.background : d.background[i]));
}

/** Residual χ at pixel i with the mask shown (NaN where masked or without a model), as the render worker's residualChi. */
function chiAt(q: QState, i: number): number {
  return q.model && q.mask[i] ? Math.fround((observedAt(q.d, i) - q.model[i]) / q.d.rms[i]) : NaN;
}

/** χ of a whole quadrant, made when needed (the histogram) and dropped after. */
function chiImage(q: QState): Float32Array | null {
  if (!q.model) return null;
  const out = new Float32Array(q.d.width * q.d.height);
  for (let i = 0; i < out.length; i++) out[i] = chiAt(q, i);
  return out;
}

interface QState {
  d: PageQuadrant;
  wcs: Wcs;
  model: Float32Array | null;
  /** The likelihood mask: the data's, then the fit's (with the unmodelled-object mask). */
  mask: Uint8Array;
  /** Outline of the modelled area (where χ²/N is summed) of the model shown: outline.ts. */
  outline: Float32Array | null;
  modelKind: 'fit' | 'start' | null;
  modelVersion: number;
  bitmaps: Partial<Record<Panel, Bitmap>>;
  pending: Partial<Record<Panel, string>>;
  canvases: Record<Panel, HTMLCanvasElement>;
  captions: Record<Panel, HTMLElement>;
  marks: Mark[];
  affine: Affine;
}

let quads: QState[] = [];
let tp: TangentPlane | null = null;
let pixelScale = 0.1;
const view: ViewState = { u: 0, v: 0, zoom: 1 };
let selected: number | null = null;
let crosshair: [number, number] | null = null;
let CANVAS = 220;
let blinkIndex = 0;
let blinkTimer: number | null = null;

/** Canvas side from the viewer's width: three per quadrant, two quadrants per row when wide. */
function canvasSide(): number {
  const w = $('viewer').clientWidth - 16;
  const perRow = w >= 900 ? 2 : 1;
  const panels = $<HTMLInputElement>('blink').checked ? 1 : 3;
  return Math.max(120, Math.min(300, Math.floor((w - perRow * (panels * 3 + 14)) / (panels * perRow)) - 4));
}

function stretch(): StretchName {
  return $<HTMLSelectElement>('stretch').value as StretchName;
}

function fitZoom(): void {
  if (!quads.length || !tp) return;
  // the modelled sources (the extended area) fill the canvas; without sources, the largest quadrant
  const s = state.info!.manifest.sources;
  let [u0, u1, v0, v1] = [Infinity, -Infinity, Infinity, -Infinity];
  for (let i = 0; i < s.ra.length; i++) {
    const [u, v] = tp.toUV(s.ra[i], s.dec[i]);
    if (!Number.isFinite(u) || !Number.isFinite(v)) continue;
    [u0, u1, v0, v1] = [Math.min(u0, u), Math.max(u1, u), Math.min(v0, v), Math.max(v1, v)];
  }
  if (u1 > u0 || v1 > v0) {
    const side = Math.max(u1 - u0, v1 - v0) + 8; // arcsec, a margin for the outer sources' light
    view.zoom = CANVAS / (side / pixelScale);
    view.u = (u0 + u1) / 2;
    view.v = (v0 + v1) / 2;
  } else {
    view.zoom = CANVAS / Math.max(1, ...quads.map((q) => Math.max(q.d.width, q.d.height)));
    view.u = 0;
    view.v = 0;
  }
}

function buildViews(info: PageInfo, observed: Float32Array[], url: URLSearchParams | null): void {
  const root = $('quadrants');
  root.textContent = '';
  const m = info.manifest;
  pixelScale = info.pixelScale;
  tp = tangentPlane(m.sub_tile.center[0], m.sub_tile.center[1]);
  CANVAS = canvasSide();
  const src = m.sources;
  const un = m.unmodelled;
  // each quadrant's observed image goes to the render worker (handOver); the page keeps the rest
  quads = info.quadrants.map((d, j) => {
    const box = document.createElement('div');
    box.className = 'quad';
    const name = document.createElement('div');
    name.className = 'qname';
    name.textContent = `${d.name} · ${d.width}×${d.height}`;
    const panels = document.createElement('div');
    panels.className = 'panels';
    box.append(name, panels);
    const canvases = {} as Record<Panel, HTMLCanvasElement>;
    const captions = {} as Record<Panel, HTMLElement>;
    for (const p of PANELS) {
      const fig = document.createElement('figure');
      fig.dataset.panel = p;
      const c = document.createElement('canvas');
      c.width = CANVAS;
      c.height = CANVAS;
      c.tabIndex = 0;
      c.dataset.quadrant = String(j);
      c.dataset.panel = p;
      c.setAttribute('aria-label', `${d.name} ${p}`);
      attachPointer(c, j);
      const cap = document.createElement('figcaption');
      cap.textContent = p === 'residual' ? 'residual χ' : p;
      fig.append(c, cap);
      panels.append(fig);
      canvases[p] = c;
      captions[p] = cap;
    }
    root.append(box);
    const wcs = new Wcs(d.wcs);
    const marks: Mark[] = [];
    const pad = 16;
    const add = (kind: Mark['kind'], index: number, ra: number, dec: number, core: boolean, objectId: string) => {
      const [x, y] = wcs.skyToPixel(ra, dec);
      if (!(x > -pad && y > -pad && x < d.width + pad && y < d.height + pad)) return;
      const ix = Math.round(x);
      const iy = Math.round(y);
      const inside = ix >= 0 && iy >= 0 && ix < d.width && iy < d.height;
      marks.push({ index, kind, core, objectId, x, y, inside, visible: inside && d.mask[iy * d.width + ix] === 1 });
    };
    for (let i = 0; i < src.ra.length; i++) add('source', i, src.ra[i], src.dec[i], src.core[i], src.object_id[i]);
    if (un) for (let i = 0; i < un.ra.length; i++) add('unmodelled', i, un.ra[i], un.dec[i], false, `${un.object_id[i]} (${un.cut[i]})`);
    return { d, wcs, model: null, mask: d.mask, outline: null, modelKind: null, modelVersion: 0, bitmaps: {}, pending: {}, canvases, captions, marks, affine: [1, 0, 0, 1, 0, 0] as Affine };
  });
  fitZoom();
  // a shared link's view
  const ra = Number(url?.get('ra'));
  const dec = Number(url?.get('dec'));
  const zoom = Number(url?.get('zoom'));
  if (url?.get('ra') && Number.isFinite(ra) && Number.isFinite(dec)) [view.u, view.v] = tp.toUV(ra, dec);
  if (url?.get('zoom') && zoom > 0) view.zoom = zoom;
  setUrl(url);
  const forRenderer = quads.map((q, j) => ({ width: q.d.width, height: q.d.height, observed: observed[j], mask: q.mask }));
  void renderer.setData(Comlink.transfer(forRenderer, observed.map((o) => o.buffer as ArrayBuffer))).then(() => refreshLimits());
  redraw();
}

/** New model images (a fit or the model at the start): χ with the fit's mask, new bitmaps. */
function applyModels(imgs: ModelImage[], kind: 'fit' | 'start'): void {
  imgs.forEach((im) => {
    const q = quads.find((x) => x.d.name === im.name);
    if (!q) return;
    q.model = im.model;
    // the fit's mask on the blocks it holds, the data's elsewhere (in place: the page keeps one)
    const mask = im.mask;
    for (let i = 0; i < mask.length; i++) if (mask[i] === MASK_NOT_HELD) mask[i] = q.d.mask[i];
    q.mask = mask;
    q.outline = maskOutline(im.modelled, q.d.width, q.d.height);
    q.modelKind = kind;
    q.modelVersion++;
    q.captions.model.textContent = kind === 'fit' ? 'model (fit)' : 'model (start)';
    q.captions.residual.textContent = kind === 'fit' ? 'residual χ (fit)' : 'residual χ (start)';
    void renderer.setModel(quads.indexOf(q), im.model, q.d.rms, im.mask);
  });
  void refreshLimits();
}

/** Manual limits from the toolbar (empty: from the stretch). */
function manualLimits(): { image: [number, number] | null; chi: number | null } {
  const lo = $<HTMLInputElement>('lim-lo').value.trim();
  const hi = $<HTMLInputElement>('lim-hi').value.trim();
  const c = $<HTMLInputElement>('lim-chi').value.trim();
  let image: [number, number] | null = null;
  if (lo !== '' && hi !== '') {
    const a = Number(lo);
    const b = Number(hi);
    if (!(Number.isFinite(a) && Number.isFinite(b) && b > a)) throw new Error(`image limits: max must be above min, got ${lo} … ${hi}`);
    image = [a, b];
  }
  let chi: number | null = null;
  if (c !== '') {
    chi = Number(c);
    if (!(chi > 0)) throw new Error(`χ limit must be > 0, got '${c}'`);
  }
  return { image, chi };
}

let limitsSeq = 0;
/** The message of a bad manual limit, while it is shown. */
let limitsError: string | null = null;
async function refreshLimits(): Promise<void> {
  let manual;
  try {
    manual = manualLimits();
    // clear only the limits' own message: this also runs when an earlier load's images reach the
    // render worker, which may be after a newer load failed, and that message must stay
    if (limitsError !== null && state.error === limitsError) showError(null);
    limitsError = null;
  } catch (e) {
    limitsError = messageOf(e);
    return showError(limitsError);
  }
  const seq = ++limitsSeq;
  const lim = await renderer.limits(stretch(), manual);
  if (seq !== limitsSeq) return;
  state.limits = lim;
  state.gen++;
  for (const q of quads) q.pending = {};
  const tag = (m: boolean) => (m ? ' (manual)' : '');
  $('limits').textContent = `limits: image ${lim.image[0].toPrecision(4)} … ${lim.image[1].toPrecision(4)} ADU${tag(lim.manual.image)} · χ ${lim.chi[0].toFixed(2)} … ${lim.chi[1].toFixed(2)}${tag(lim.manual.chi)} · stretch ${stretch()}`;
  $('limits').dataset.image = JSON.stringify(lim.image);
  $('limits').dataset.chi = JSON.stringify(lim.chi);
  redraw();
  if (selected !== null) selectSource(selected);
}

/** Block size for the zoom: zoomed out, k × k pixel means (every pixel counts, faint residuals stay). */
function blockSize(): number {
  return Math.max(1, Math.floor(1 / view.zoom + 1e-9));
}

/** Requests the bitmaps the current view needs (off the main thread) and redraws when they come. */
function ensureBitmaps(): void {
  const lim = state.limits;
  if (!lim) return;
  const k = blockSize();
  const gen = state.gen;
  const req = { k, stretch: stretch(), imageCmap: $<HTMLSelectElement>('cmap').value as ImageCmap, chiCmap: $<HTMLSelectElement>('chi-cmap').value as ChiCmap, limits: lim };
  quads.forEach((q, j) => {
    for (const p of PANELS) {
      if (p !== 'observed' && !q.model) continue;
      const key = `${gen}:${k}:${p === 'observed' ? 0 : q.modelVersion}`;
      if (q.bitmaps[p]?.key === key || q.pending[p] === key) continue;
      q.pending[p] = key;
      void renderer.render(j, { ...req, panel: p }).then((r) => {
        if (!r || q.pending[p] !== key || !quads.includes(q)) return;
        const c = document.createElement('canvas');
        c.width = r.width;
        c.height = r.height;
        c.getContext('2d')!.putImageData(new ImageData(r.rgba as Uint8ClampedArray<ArrayBuffer>, r.width, r.height), 0, 0);
        q.bitmaps[p] = { image: c, k: r.k, gen, key, values: r.values, width: r.width, height: r.height };
        delete q.pending[p];
        if (state.timing.firstImage === null && p === 'observed') state.timing.firstImage = performance.now();
        redraw();
      });
    }
  });
}

let pending = false;
function redraw(): void {
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => {
    pending = false;
    drawAll();
  });
}

function blinkPanel(): Panel {
  return PANELS[blinkIndex % PANELS.length];
}

/** What a drawn canvas shows: the view and the overlay switches (tests wait for it after a change). */
function drawKey(): string {
  const on = (id: string) => ($<HTMLInputElement>(id).checked ? 1 : 0);
  return `${view.u}|${view.v}|${view.zoom}|${on('show-sources')}${on('show-ids')}${on('blink')}`;
}

function drawAll(): void {
  if (!tp) return;
  ensureBitmaps();
  const opts = { showSources: $<HTMLInputElement>('show-sources').checked, showIds: $<HTMLInputElement>('show-ids').checked, selected, crosshair };
  const blink = $<HTMLInputElement>('blink').checked;
  const k = blockSize();
  for (const q of quads) {
    const c0 = q.canvases.observed;
    q.affine = quadrantAffine(q.wcs, tp, pixelScale, view, c0.width, c0.height, [q.d.width / 2, q.d.height / 2]);
    for (const p of PANELS) {
      const c = q.canvases[p];
      const shown: Panel = blink ? (p === 'observed' ? blinkPanel() : p) : p;
      if (blink && p !== 'observed') continue;
      const bm = q.bitmaps[shown] ?? null;
      // a stale bitmap (other block size) is drawn until the new one comes; one for another model is not
      const usable = bm && (shown === 'observed' || q.model) ? bm : null;
      const outline = shown === 'observed' ? null : q.outline;
      drawCanvas(c, q.affine, usable, q.marks, view.zoom, { ...opts, outline, placeholder: shown === 'observed' ? 'reading…' : 'no model yet:\nRun, or Model at start' });
      c.dataset.outline = String(usable && outline ? outline.length / 4 : 0);
      c.dataset.affine = JSON.stringify(q.affine);
      c.dataset.showing = shown;
      c.dataset.k = String(usable?.k ?? 0);
      c.dataset.wantK = String(k);
      c.dataset.drawn = drawKey();
      if (blink && p === 'observed') q.captions.observed.textContent = `${shown === 'residual' ? 'residual χ' : shown} (blink: b)`;
      else if (p === 'observed') q.captions.observed.textContent = 'observed';
    }
  }
  scheduleUrl();
}

let urlTimer: number | null = null;
function scheduleUrl(): void {
  if (urlTimer !== null) return;
  urlTimer = window.setTimeout(() => {
    urlTimer = null;
    if (state.info) setUrl(null);
  }, 400);
}

function zoomAbout(sx: number, sy: number, f: number, cw: number, ch: number): void {
  const [u, v] = screenToUv(view, pixelScale, cw, ch, sx, sy);
  view.zoom = Math.min(64, Math.max(0.02, view.zoom * f));
  // keep the sky point under the cursor fixed
  const s = view.zoom / pixelScale;
  view.u = u - (sx - cw / 2) / s;
  view.v = v + (sy - ch / 2) / s;
  redraw();
}

function pan(dsx: number, dsy: number): void {
  const s = view.zoom / pixelScale;
  view.u -= dsx / s;
  view.v += dsy / s;
  redraw();
}

/** The readout under screen point (sx, sy) of quadrant j: pixel, sky, values. */
function readout(j: number, sx: number, sy: number): void {
  const q = quads[j];
  const [fx, fy] = invertAffine(q.affine, sx, sy);
  const x = Math.round(fx);
  const y = Math.round(fy);
  const el = $('readout');
  if (x < 0 || y < 0 || x >= q.d.width || y >= q.d.height) {
    el.textContent = `${q.d.name}: off the quadrant`;
    el.dataset.quadrant = q.d.name;
    delete el.dataset.x;
    return;
  }
  const i = y * q.d.width + x;
  const [ra, dec] = q.wcs.pixelToSky(x, y);
  const bg = typeof q.d.background === 'number' ? q.d.background : q.d.background[i];
  const f = (v: number | null | undefined, p = 5) => (v === null || v === undefined ? '–' : Number.isFinite(v) ? v.toPrecision(p) : String(v));
  const k = blockSize();
  const bm = q.bitmaps.observed;
  let block = '';
  if (bm && bm.k > 1) {
    const b = Math.floor(y / bm.k) * bm.width + Math.floor(x / bm.k);
    block = ` · ${bm.k}×${bm.k} mean shown ${f(bm.values[b])}`;
  }
  el.textContent =
    `${q.d.name}  x ${x + 1}, y ${y + 1} (FITS)  RA ${ra.toFixed(6)}°, Dec ${dec.toFixed(6)}°  ·  SCI ${f(q.d.sci[i])}  bkg ${f(bg)}  observed ${f(observedAt(q.d, i))}${block}  ·  ` +
    `model ${f(q.model?.[i])}  χ ${f(chiAt(q, i), 4)}  rms ${f(q.d.rms[i])}  flag ${q.d.flags[i]}${q.mask[i] ? '' : ' (masked)'}${q.modelKind === 'start' ? '  (model at start)' : ''}`;
  Object.assign(el.dataset, {
    quadrant: q.d.name,
    x: String(x + 1),
    y: String(y + 1),
    ra: String(ra),
    dec: String(dec),
    sci: String(q.d.sci[i]),
    bkg: String(bg),
    observed: String(observedAt(q.d, i)),
    model: String(q.model?.[i] ?? NaN),
    chi: String(chiAt(q, i)),
    flag: String(q.d.flags[i]),
    k: String(k),
  });
}

function attachPointer(c: HTMLCanvasElement, j: number): void {
  let drag: { x: number; y: number; moved: boolean } | null = null;
  c.addEventListener('wheel', (e) => {
    e.preventDefault();
    const rect = c.getBoundingClientRect();
    zoomAbout(e.clientX - rect.left, e.clientY - rect.top, Math.exp(-e.deltaY * 0.0015), c.width, c.height);
  }, { passive: false });
  c.addEventListener('pointerdown', (e) => {
    drag = { x: e.clientX, y: e.clientY, moved: false };
    c.setPointerCapture(e.pointerId);
  });
  c.addEventListener('pointermove', (e) => {
    const rect = c.getBoundingClientRect();
    const sx = e.clientX - rect.left;
    const sy = e.clientY - rect.top;
    crosshair = [sx, sy];
    readout(j, sx, sy);
    if (drag) {
      const ddx = e.clientX - drag.x;
      const ddy = e.clientY - drag.y;
      if (Math.abs(ddx) + Math.abs(ddy) > 2) drag.moved = true;
      if (drag.moved) {
        pan(ddx, ddy);
        drag.x = e.clientX;
        drag.y = e.clientY;
      }
    }
    redraw();
  });
  c.addEventListener('pointerleave', () => {
    crosshair = null;
    redraw();
  });
  c.addEventListener('pointerup', (e) => {
    const d = drag;
    drag = null;
    if (!d || d.moved) return;
    // a click: the nearest source marker within 10 screen pixels
    const q = quads[j];
    const rect = c.getBoundingClientRect();
    const sx = e.clientX - rect.left;
    const sy = e.clientY - rect.top;
    let best: { i: number; d: number } | null = null;
    for (const m of q.marks) {
      if (m.kind !== 'source') continue;
      const [px, py] = applyAffine(q.affine, m.x, m.y);
      const dd = Math.hypot(px - sx, py - sy);
      if (dd < 10 && (!best || dd < best.d)) best = { i: m.index, d: dd };
    }
    selectSource(best ? best.i : null);
  });
  // keyboard: + / − zoom about the centre, arrows pan, 0 resets, b steps the blink
  c.addEventListener('keydown', (e) => {
    const step = 0.1 * c.width;
    const keys: Record<string, () => void> = {
      '+': () => zoomAbout(c.width / 2, c.height / 2, 1.25, c.width, c.height),
      '=': () => zoomAbout(c.width / 2, c.height / 2, 1.25, c.width, c.height),
      '-': () => zoomAbout(c.width / 2, c.height / 2, 0.8, c.width, c.height),
      ArrowLeft: () => pan(step, 0),
      ArrowRight: () => pan(-step, 0),
      ArrowUp: () => pan(0, step),
      ArrowDown: () => pan(0, -step),
      '0': () => {
        fitZoom();
        redraw();
      },
      b: () => {
        if (!$<HTMLInputElement>('blink').checked) {
          $<HTMLInputElement>('blink').checked = true;
          setBlink();
        } else {
          // stepping by hand stops the automatic cycling (the checkbox starts it again)
          if (blinkTimer !== null) window.clearInterval(blinkTimer);
          blinkTimer = null;
          blinkIndex++;
        }
        redraw();
      },
    };
    const f = keys[e.key];
    if (f) {
      e.preventDefault();
      f();
    }
  });
}

function setBlink(): void {
  const on = $<HTMLInputElement>('blink').checked;
  for (const q of quads) for (const p of PANELS) if (p !== 'observed') (q.canvases[p].parentElement as HTMLElement).hidden = on;
  if (blinkTimer !== null) window.clearInterval(blinkTimer);
  blinkTimer = null;
  if (on) {
    blinkTimer = window.setInterval(() => {
      blinkIndex++;
      // only panels that exist: without a model, blink stays on the observed image
      if (!quads.some((q) => q.model)) blinkIndex = 0;
      redraw();
    }, 900);
  }
  relayout();
}
$('blink').addEventListener('change', setBlink);

/** Canvas sizes follow the viewer's width (window resize, narrow screens). */
function relayout(): void {
  const side = canvasSide();
  if (side === CANVAS || !quads.length) return;
  CANVAS = side;
  for (const q of quads) for (const p of PANELS) q.canvases[p].width = q.canvases[p].height = side;
  redraw();
}
new ResizeObserver(() => relayout()).observe($('viewer'));

function selectSource(i: number | null): void {
  selected = i;
  redraw();
  const panel = $('source-panel');
  const info = state.info;
  if (i === null || !info) {
    panel.innerHTML = '<em>click a source marker</em>';
    return;
  }
  const s = info.manifest.sources;
  const id = s.object_id[i];
  const f = state.result?.core.find((c) => c.objectId === id) ?? null;
  panel.textContent = '';
  const h = document.createElement('div');
  const rows: Array<[string, string]> = [
    ['object', `${id} (${s.core[i] ? 'core' : 'margin: modelled, not reported'})`],
    ['RA, Dec', `${s.ra[i].toFixed(6)}°, ${s.dec[i].toFixed(6)}°`],
  ];
  if (f) {
    rows.push(
      ['flux', `${f.flux.toPrecision(5)} ADU (start ${f.initFlux.toPrecision(5)})`],
      ['hlr', `${f.hlr.toFixed(4)}″ (start ${f.initHlr.toFixed(4)}″)`],
      ['e₁, e₂', `${f.e1.toFixed(4)}, ${f.e2.toFixed(4)}`],
      ['dx, dy', `${f.dx.toFixed(4)}″, ${f.dy.toFixed(4)}″`],
    );
  }
  const tbl = document.createElement('table');
  tbl.className = 'kv';
  tbl.id = 'source-params';
  for (const [k, v] of rows) {
    const tr = tbl.insertRow();
    const th = document.createElement('th');
    th.textContent = k;
    tr.append(th);
    tr.insertCell().textContent = v;
  }
  h.append(tbl);
  const stamps = document.createElement('div');
  stamps.className = 'stamps';
  const lim = state.limits;
  quads.forEach((q) => {
    const m = q.marks.find((mm) => mm.kind === 'source' && mm.index === i);
    if (!m || !lim) return;
    const set = document.createElement('div');
    set.className = 'stamp-set';
    set.textContent = `${q.d.name}${m.visible ? '' : ' (centre masked / off the quadrant)'}`;
    const line = document.createElement('div');
    for (const p of PANELS) {
      if (p !== 'observed' && !q.model) continue;
      const v = (i: number) => (p === 'observed' ? observedAt(q.d, i) : p === 'model' ? q.model![i] : chiAt(q, i));
      const c = document.createElement('canvas');
      c.width = 72;
      c.height = 72;
      c.title = p;
      drawStamp(c, cutout(q, v, p, Math.round(m.x), Math.round(m.y), 24, lim));
      line.append(c);
    }
    set.append(line);
    stamps.append(set);
  });
  h.append(stamps);
  panel.append(h);
}

/** A size × size native-resolution cutout centred on pixel (x, y), drawn with the current limits. */
function cutout(q: QState, v: (i: number) => number, p: Panel, x: number, y: number, size: number, lim: Limits): HTMLCanvasElement {
  const vals = new Float32Array(size * size).fill(NaN);
  const msk = new Uint8Array(size * size);
  for (let b = 0; b < size; b++) {
    for (let a = 0; a < size; a++) {
      const xx = x - size / 2 + a;
      const yy = y - size / 2 + b;
      if (xx < 0 || yy < 0 || xx >= q.d.width || yy >= q.d.height) continue;
      vals[b * size + a] = v(yy * q.d.width + xx);
      msk[b * size + a] = q.mask[yy * q.d.width + xx];
    }
  }
  const r = renderRgba(vals, msk, size, size, { panel: p, k: 1, stretch: stretch(), imageCmap: $<HTMLSelectElement>('cmap').value as ImageCmap, chiCmap: $<HTMLSelectElement>('chi-cmap').value as ChiCmap, limits: lim });
  const c = document.createElement('canvas');
  c.width = size;
  c.height = size;
  c.getContext('2d')!.putImageData(new ImageData(r.rgba as Uint8ClampedArray<ArrayBuffer>, size, size), 0, 0);
  return c;
}

for (const id of ['stretch', 'lim-lo', 'lim-hi', 'lim-chi']) $(id).addEventListener('change', () => void refreshLimits());
for (const id of ['cmap', 'chi-cmap']) {
  $(id).addEventListener('change', () => {
    state.gen++;
    for (const q of quads) q.pending = {};
    redraw();
    if (selected !== null) selectSource(selected);
  });
}
for (const id of ['show-sources', 'show-ids']) $(id).addEventListener('change', redraw);
$('reset-view').addEventListener('click', () => {
  fitZoom();
  redraw();
});

// ------------------------------------------------------------------------------------------------
// exports

function download(blob: Blob, name: string): void {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

function baseName(): string {
  const i = state.info;
  return i ? `${i.tileId}_${i.row}_${i.col}` : 'subtile';
}

/** The products cli/subtile.ts writes (engine/subtile/products.ts), from the last complete result. */
function products() {
  const r = state.result;
  const info = state.info;
  if (!r || !info || !state.out) throw new Error('run the sub-tile first: there is no complete result to export');
  const a = state.out.adapter;
  return subtileProducts(r, info.manifest, {
    manifestFile: info.manifestName,
    configFile: info.configFile,
    configHash: info.configHash,
    created: new Date().toISOString(),
    softwareVersion: SHINE_VERSION,
    adapter: { label: a.label, backend: a.backend, featureLevel: a.featureLevel },
    runtime: { name: 'browser', version: navigator.userAgent },
    saveDiagnostics: false,
    totalMs: state.out.totalMs,
  });
}

function exportBytes(bytes: Uint8Array, name: string, type: string): void {
  download(new Blob([bytes as Uint8Array<ArrayBuffer>], { type }), name);
}

$('export-shear').addEventListener('click', () => {
  try {
    exportBytes(products().shear, `shear_${baseName()}.fits`, 'application/fits');
  } catch (e) {
    showError(messageOf(e));
  }
});
$('export-fits').addEventListener('click', () => {
  try {
    exportBytes(products().params, `params_${baseName()}.fits`, 'application/fits');
  } catch (e) {
    showError(messageOf(e));
  }
});

/** The fitted parameters of the core sources as CSV (one row per source). */
export function paramsCsv(r: SubtileResult): string {
  const lines = ['object_id,ra_deg,dec_deg,flux_adu,hlr_arcsec,e1,e2,dx_arcsec,dy_arcsec,init_flux_adu,init_hlr_arcsec'];
  for (const c of r.core) lines.push([c.objectId, c.ra, c.dec, c.flux, c.hlr, c.e1, c.e2, c.dx, c.dy, c.initFlux, c.initHlr].map(String).join(','));
  return `${lines.join('\n')}\n`;
}

$('export-csv').addEventListener('click', () => {
  if (state.result) download(new Blob([paramsCsv(state.result)], { type: 'text/csv' }), `params_${baseName()}.csv`);
});

/**
 * The sources as a DS9 region file (fk5, degrees): core sources as green circles, margin sources as
 * orange boxes, unmodelled catalog objects as red X points; each tagged with its OBJECT_ID.
 */
export function ds9Regions(info: Pick<LoadInfo, 'tileId' | 'row' | 'col' | 'manifest'>): string {
  const s = info.manifest.sources;
  const lines = ['# Region file format: DS9 version 4.1', `# SHINE sub-tile ${info.tileId} (${info.row}, ${info.col}): ○ core, □ margin, X unmodelled`, 'global font="helvetica 9 normal" width=1', 'fk5'];
  const r = 0.6; // arcsec
  for (let i = 0; i < s.ra.length; i++) {
    const at = `${s.ra[i].toFixed(8)},${s.dec[i].toFixed(8)}`;
    lines.push(s.core[i] ? `circle(${at},${r}") # color=green text={${s.object_id[i]}} tag={core}` : `box(${at},${2 * r}",${2 * r}",0) # color=orange text={${s.object_id[i]}} tag={margin}`);
  }
  const u = info.manifest.unmodelled;
  if (u) for (let i = 0; i < u.ra.length; i++) lines.push(`point(${u.ra[i].toFixed(8)},${u.dec[i].toFixed(8)}) # point=x color=red text={${u.object_id[i]} ${u.cut[i]}} tag={unmodelled}`);
  return `${lines.join('\n')}\n`;
}

$('export-reg').addEventListener('click', () => {
  if (state.info) download(new Blob([ds9Regions(state.info)], { type: 'text/plain' }), `sources_${baseName()}.reg`);
});

/** The title lines of the PNG: the sub-tile, the shear line of the diagnostics PNG, the display. */
function pngTitle(): string[] {
  const lines = [`${$('subtile-label').textContent ?? ''}`];
  const r = state.result;
  if (r && state.shown) {
    const shear = { tileId: r.tileId, row: r.row, col: r.col, ra: r.center[0], dec: r.center[1], g1: r.g1, g2: r.g2, g1Err: state.shown.g1Err, g2Err: state.shown.g2Err, nSources: r.nSourcesCore, method: r.method, convergence: r.convergence, converged: r.converged, nQuadrants: r.nQuadrants, iterations: r.iterations };
    lines.push(...diagnosticsTitle(shear));
    lines.push(`error: ${ERR_LABEL[state.shown.errKind]}${state.shown.truth ? ` · truth g1 ${state.shown.truth.g1.toFixed(4)}, g2 ${state.shown.truth.g2.toFixed(4)}` : ''}`);
    if (state.stale) lines.push('LAST COMPLETE RESULT: a later run was cancelled');
  } else lines.push(quads.some((q) => q.modelKind === 'start') ? 'model at the catalog values (no fit)' : 'data only (no fit)');
  lines.push(($('limits').textContent ?? '') + ` · colormap ${$<HTMLSelectElement>('cmap').value} · χ ${$<HTMLSelectElement>('chi-cmap').value} · ${blockSize() > 1 ? `${blockSize()}×${blockSize()} block means` : 'native pixels'}`);
  return lines;
}

/** The quadrant grid as drawn now (every canvas with its caption) under the full title. */
function composeView(): HTMLCanvasElement {
  const gap = 6;
  const labelH = 14;
  const blink = $<HTMLInputElement>('blink').checked;
  const panels: Panel[] = blink ? ['observed'] : PANELS;
  const title = pngTitle();
  const titleH = 15 * title.length + 6;
  const W = Math.max(panels.length * (CANVAS + gap) + gap, 760);
  const H = quads.length * (CANVAS + labelH + gap) + gap + titleH;
  const c = document.createElement('canvas');
  c.width = W;
  c.height = H;
  const ctx = c.getContext('2d')!;
  ctx.fillStyle = '#101215';
  ctx.fillRect(0, 0, W, H);
  ctx.fillStyle = '#dde';
  ctx.font = '12px sans-serif';
  title.forEach((t, k) => ctx.fillText(t, gap, 14 + 15 * k));
  quads.forEach((q, j) => {
    const y = titleH + gap + j * (CANVAS + labelH + gap);
    panels.forEach((p, k) => {
      const x = gap + k * (CANVAS + gap);
      ctx.fillStyle = '#99a';
      ctx.fillText(`${q.d.name} ${q.captions[p].textContent}`, x, y + 11);
      ctx.drawImage(q.canvases[p], x, y + labelH);
    });
  });
  return c;
}

$('export-png').addEventListener('click', () => {
  $('png-title').textContent = pngTitle().join('\n');
  composeView().toBlob((b) => {
    if (!b) return showError('the browser could not encode the PNG');
    state.pngBytes = b.size;
    download(b, `view_${baseName()}${state.stale ? '_last-complete' : ''}.png`);
  }, 'image/png');
});

/** For tests: screen position (in quadrant j's canvases) of manifest source `index` (null when not near the quadrant). */
(window as unknown as { __shineScreen: (quadrant: number, index: number) => [number, number] | null }).__shineScreen = (quadrant, index) => {
  const q = quads[quadrant];
  const m = q?.marks.find((mm) => mm.kind === 'source' && mm.index === index);
  return q && m ? applyAffine(q.affine, m.x, m.y) : null;
};
/** For tests: the block values shown by quadrant j's panel (block size k, NaN: masked). */
(window as unknown as { __shineBlock: (quadrant: number, panel: Panel) => { k: number; width: number; height: number; values: number[] } | null }).__shineBlock = (quadrant, panel) => {
  const b = quads[quadrant]?.bitmaps[panel];
  return b ? { k: b.k, width: b.width, height: b.height, values: Array.from(b.values) } : null;
};
/** For tests: quadrant j's model and likelihood mask (plain arrays). */
(window as unknown as { __shineQuadrant: (j: number) => { model: number[]; mask: number[]; outline: number[] } | null }).__shineQuadrant = (j) => {
  const q = quads[j];
  return q?.model ? { model: Array.from(q.model), mask: Array.from(q.mask), outline: Array.from(q.outline ?? []) } : null;
};
/** For tests: the sky point at the canvas centre and the zoom; with an argument, sets them first
 * (as a shared link's ra, dec, zoom do, without a reload: wheel events may be coalesced). */
(window as unknown as { __shineView: (set?: { ra: number; dec: number; zoom: number; at?: [number, number] }) => { ra: number; dec: number; zoom: number; canvas: number } }).__shineView = (set) => {
  if (set && tp) {
    // the sky point at canvas point `at` (default: the centre)
    const [u, v] = tp.toUV(set.ra, set.dec);
    const [sx, sy] = set.at ?? [CANVAS / 2, CANVAS / 2];
    view.zoom = Math.min(64, Math.max(0.02, set.zoom));
    const s = view.zoom / pixelScale;
    view.u = u - (sx - CANVAS / 2) / s;
    view.v = v + (sy - CANVAS / 2) / s;
    setUrl(null);
    redraw();
  }
  const [ra, dec] = tp!.toSky(view.u, view.v);
  return { ra, dec, zoom: view.zoom, canvas: CANVAS };
};
/** For tests: the key a canvas's data-drawn takes once the current view and overlays are drawn. */
(window as unknown as { __shineDrawKey: () => string }).__shineDrawKey = drawKey;
void uvToScreen;

// ------------------------------------------------------------------------------------------------
// URL parameters: ?config=…&manifest=…&subtile=R,C loads at once; ?sim=1[&seed=&small=] loads the
// simulation; ra, dec, zoom restore the view.

const params = new URLSearchParams(location.search);
if (params.get('config')) {
  $<HTMLInputElement>('config-url').value = params.get('config')!;
  $<HTMLInputElement>('manifest-url').value = params.get('manifest') ?? '';
  $<HTMLInputElement>('subtile').value = params.get('subtile') ?? '';
  const c = new URL(params.get('config')!, location.href).href;
  const m = params.get('manifest') ? new URL(params.get('manifest')!, location.href).href : null;
  let st: [number, number] | null = null;
  try {
    st = subTileField();
  } catch (e) {
    showError(messageOf(e));
  }
  void load(() => engine.loadUrls(c, m, st, progress), params);
} else if (params.get('sim') === '1') {
  if (params.get('seed')) $<HTMLInputElement>('sim-seed').value = params.get('seed')!;
  if (params.get('small')) $<HTMLInputElement>('sim-small').checked = params.get('small') !== '0';
  const seed = Number($<HTMLInputElement>('sim-seed').value);
  const small = $<HTMLInputElement>('sim-small').checked;
  void load(() => engine.loadSimulated({ seed, small }, progress), params);
}
showMethodFields();

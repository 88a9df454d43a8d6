/**
 * The page: controls, views and exports. The engine runs in ./worker.ts (comlink); the page only
 * draws. Cancel terminates the worker and starts a fresh one (the sub-tile is loaded again on the
 * next run). `window.__shineApp` mirrors the state for the Playwright tests (test/app).
 */
import * as Comlink from 'comlink';
import type { EngineApi, LoadInfo, Method, Optimizer, PriorName, RunOutput, RunSettings } from './api.ts';
import { PRIOR_NAMES } from './api.ts';
import type { StretchName } from './stretch.ts';
import { PANELS, drawLoss, drawQuadrant, drawStamp, renderBitmap, residualChi, sharedLimits, toImage, toScreen, type Panel, type QuadrantView, type ViewState } from './views.ts';

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

interface AppState {
  phase: 'idle' | 'loading' | 'loaded' | 'running' | 'done' | 'error' | 'cancelled';
  info: LoadInfo | null;
  out: RunOutput | null;
  error: string | null;
  /** Numbers shown in the page, for the tests. */
  shown: { chi2Init: number | null; chi2Final: number | null; g1: number; g1Err: number; g2: number; g2Err: number; truth: { g1: number; g2: number } | null } | null;
  pngBytes: number;
}
const state: AppState = { phase: 'idle', info: null, out: null, error: null, shown: null, pngBytes: 0 };
(window as unknown as { __shineApp: AppState }).__shineApp = state;

// ------------------------------------------------------------------------------------------------
// worker

let worker: Worker;
let engine: Comlink.Remote<EngineApi>;
/** Loads the current sub-tile again (after the worker was replaced). */
let reload: (() => Promise<LoadInfo>) | null = null;
let workerHasData = false;

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
const progress = Comlink.proxy((stage: string, done: number, total: number, loss?: number) => {
  const now = performance.now();
  if (now - lastProgress < 100 && done < total) return;
  lastProgress = now;
  const bar = $<HTMLProgressElement>('progress');
  bar.max = Math.max(1, total);
  bar.value = Math.min(done, total);
  $('progress-text').textContent = `${stage} ${done}/${total}${loss !== undefined ? `  loss ${loss.toFixed(2)}` : ''}`;
});

function showError(msg: string | null): void {
  const el = $('error');
  el.hidden = !msg;
  el.textContent = msg ?? '';
  state.error = msg;
}

function setBusy(busy: boolean): void {
  for (const id of ['load-sim', 'load-url', 'run', 'export-fits', 'export-csv', 'export-png']) $<HTMLButtonElement>(id).disabled = busy;
  $<HTMLButtonElement>('cancel').disabled = !busy;
  if (!busy) {
    $<HTMLButtonElement>('run').disabled = !state.info;
    for (const id of ['export-fits', 'export-csv', 'export-png']) $<HTMLButtonElement>(id).disabled = !state.out;
  }
}

$('cancel').addEventListener('click', () => {
  worker.terminate();
  startWorker();
  state.phase = 'cancelled';
  $('progress-text').textContent = 'cancelled';
  $<HTMLProgressElement>('progress').value = 0;
  setBusy(false);
});

// ------------------------------------------------------------------------------------------------
// loading

async function load(how: () => Promise<LoadInfo>): Promise<void> {
  showError(null);
  setBusy(true);
  state.phase = 'loading';
  try {
    const info = await how();
    reload = how;
    workerHasData = true;
    state.info = info;
    clearResult();
    state.phase = 'loaded';
    $('subtile-label').textContent = `${info.label} · tile ${info.tileId} (${info.row}, ${info.col}) · ${info.nSourcesCore} core / ${info.nSourcesExtended} sources · ${info.nQuadrants} quadrants`;
    $('warnings').textContent = info.warnings.join('\n');
    $('truth').textContent = info.truth ? `g₁ ${info.truth.g1.toFixed(4)}, g₂ ${info.truth.g2.toFixed(4)}` : 'unknown';
    $<HTMLSelectElement>('method').value = info.defaults.method;
    $<HTMLSelectElement>('optimizer').value = info.defaults.optimizer;
    $<HTMLInputElement>('steps').value = String(info.defaults.steps);
    $<HTMLInputElement>('lr').value = String(info.defaults.lr);
    for (const el of document.querySelectorAll<HTMLInputElement>('#free input[data-prior]')) el.checked = !info.fixed[el.dataset.prior as PriorName];
    $('progress-text').textContent = `loaded in ${(info.loadMs / 1000).toFixed(1)} s — press Run`;
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
  state.out = null;
  state.shown = null;
  for (const id of ['g1', 'g2', 'chi2', 'iters', 'nsrc', 'timings']) {
    $(id).textContent = '–';
    for (const k of Object.keys($(id).dataset)) delete $(id).dataset[k];
  }
  views = [];
  chis = [];
  selected = null;
  $('quadrants').textContent = '';
  $('limits').textContent = '';
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

$('load-sim').addEventListener('click', () => {
  const seed = Number($<HTMLInputElement>('sim-seed').value);
  const small = $<HTMLInputElement>('sim-small').checked;
  if (!Number.isSafeInteger(seed) || seed < 0) return showError('seed must be a non-negative integer');
  void load(() => engine.loadSimulated({ seed, small }, progress));
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
  void load(() => engine.loadUrls(cu, mu, st, progress));
});

function loadFileList(files: File[]): void {
  let st: [number, number] | null;
  try {
    st = subTileField();
  } catch (e) {
    return showError(messageOf(e));
  }
  void load(() => engine.loadFiles(files, st, progress));
}
$<HTMLInputElement>('file-input').addEventListener('change', (ev) => {
  const input = ev.target as HTMLInputElement;
  loadFileList([...(input.files ?? [])]);
  input.value = '';
});
const drop = $('drop');
drop.addEventListener('dragover', (e) => {
  e.preventDefault();
  drop.classList.add('over');
});
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => {
  e.preventDefault();
  drop.classList.remove('over');
  loadFileList([...(e.dataTransfer?.files ?? [])]);
});

// ------------------------------------------------------------------------------------------------
// running

function settings(): RunSettings {
  const free = {} as Record<PriorName, boolean>;
  for (const n of PRIOR_NAMES) free[n] = document.querySelector<HTMLInputElement>(`#free input[data-prior="${n}"]`)!.checked;
  const steps = Number($<HTMLInputElement>('steps').value);
  const lr = Number($<HTMLInputElement>('lr').value);
  if (!Number.isInteger(steps) || steps < 1) throw new Error(`steps must be a positive integer, got '${$<HTMLInputElement>('steps').value}'`);
  if (!(lr > 0)) throw new Error(`learning rate must be > 0, got '${$<HTMLInputElement>('lr').value}'`);
  return { method: $<HTMLSelectElement>('method').value as Method, optimizer: $<HTMLSelectElement>('optimizer').value as Optimizer, steps, lr, free };
}

$('run').addEventListener('click', async () => {
  let s: RunSettings;
  try {
    s = settings();
  } catch (e) {
    return showError(messageOf(e));
  }
  showError(null);
  setBusy(true);
  state.phase = 'running';
  try {
    if (!workerHasData && reload) {
      await reload();
      workerHasData = true;
    }
    const out = await engine.run(s, progress);
    state.out = out;
    showResult(out);
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
});

// ------------------------------------------------------------------------------------------------
// results

const fmtMs = (ms: number | undefined) => (ms === undefined ? '–' : ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${ms.toFixed(0)} ms`);

function showResult(out: RunOutput): void {
  const r = out.result;
  const truth = state.info?.truth ?? null;
  const pm = (v: number, e: number) => `${v.toFixed(4)} ± ${Number.isFinite(e) ? e.toFixed(4) : '?'}`;
  const pull = (v: number, e: number, t: number | undefined) => (t === undefined || !(e > 0) ? '' : `  (${((v - t) / e).toFixed(2)}σ from truth)`);
  if (r.status !== 'ok') {
    $('g1').textContent = $('g2').textContent = '–';
    showError(`empty sub-tile: ${r.emptyReason ?? ''}`);
  } else {
    $('g1').textContent = pm(r.g1, r.g1Err) + pull(r.g1, r.g1Err, truth?.g1);
    $('g2').textContent = pm(r.g2, r.g2Err) + pull(r.g2, r.g2Err, truth?.g2);
  }
  $('g1').dataset.value = String(r.g1);
  $('g1').dataset.err = String(r.g1Err);
  $('g2').dataset.value = String(r.g2);
  $('g2').dataset.err = String(r.g2Err);
  const c0 = out.chi2Init;
  $('chi2').textContent = `${c0 === null ? '–' : c0.toFixed(1)} → ${out.chi2Final.toFixed(1)}  (${out.nPixels} pixels; χ²/N ${(out.chi2Final / Math.max(1, out.nPixels)).toFixed(3)})`;
  $('chi2').dataset.init = String(c0);
  $('chi2').dataset.final = String(out.chi2Final);
  $('iters').textContent = `${r.method} · ${r.iterations} iterations, ${r.evaluations} evaluations · ${r.converged ? 'converged' : 'not converged'} (${r.reason})${r.laplaceOk ? '' : ` · Laplace: ${r.laplaceMessage}`}`;
  $('nsrc').textContent = `${r.nSourcesCore} core, ${r.nSourcesModelled} modelled, ${r.nQuadrants} quadrants, ${r.pairs} source-quadrant pairs`;
  const t = r.timings;
  $('timings').textContent = `load ${fmtMs((t.catalogMs ?? 0) + (t.loadMs ?? 0))}, build ${fmtMs(t.buildMs)}, inference ${fmtMs(t.inferenceMs)}, Laplace ${fmtMs(t.laplaceMs)}, render ${fmtMs(t.renderMs)}, χ² at start ${fmtMs(out.initMs)}, total ${fmtMs(out.totalMs)}`;
  $('adapter').textContent = `adapter: ${out.adapter.label} (${out.adapter.featureLevel}${out.adapter.software ? ', software' : ''})`;
  $('warnings').textContent = [...(state.info?.warnings ?? []), ...r.warnings].join('\n');
  state.shown = { chi2Init: c0, chi2Final: out.chi2Final, g1: r.g1, g1Err: r.g1Err, g2: r.g2, g2Err: r.g2Err, truth };
  drawLoss($<HTMLCanvasElement>('loss'), r.lossHistory, r.method);
  buildViews(out);
}

// ------------------------------------------------------------------------------------------------
// views

let views: QuadrantView[] = [];
let chis: Float32Array[] = [];
const view: ViewState = { zoom: 1, dx: 0, dy: 0 };
let selected: number | null = null;
/** Canvas side (px): two quadrants (six canvases) per row when the viewer is wide enough. */
let CANVAS = 220;
function canvasSide(): number {
  const w = $('viewer').clientWidth - 16;
  const perRow = w >= 900 ? 2 : 1;
  return Math.max(140, Math.min(300, Math.floor((w - perRow * 22) / (3 * perRow)) - 4));
}

function stretch(): StretchName {
  return $<HTMLSelectElement>('stretch').value as StretchName;
}

function fitZoom(): void {
  const maxSide = Math.max(1, ...views.map((q) => Math.max(q.width, q.height)));
  view.zoom = CANVAS / maxSide;
  view.dx = 0;
  view.dy = 0;
}

function buildViews(out: RunOutput): void {
  const root = $('quadrants');
  root.textContent = '';
  const imgs = out.result.images;
  CANVAS = canvasSide();
  chis = imgs.map(residualChi);
  views = imgs.map((q, j) => {
    const box = document.createElement('div');
    box.className = 'quad';
    const name = document.createElement('div');
    name.className = 'qname';
    name.textContent = `${q.name} · ${q.width}×${q.height}`;
    const panels = document.createElement('div');
    panels.className = 'panels';
    box.append(name, panels);
    const canvases = {} as Record<Panel, HTMLCanvasElement>;
    for (const p of PANELS) {
      const fig = document.createElement('figure');
      const c = document.createElement('canvas');
      c.width = CANVAS;
      c.height = CANVAS;
      c.dataset.quadrant = String(j);
      c.dataset.panel = p;
      attachPanZoom(c, j);
      const cap = document.createElement('figcaption');
      cap.textContent = p === 'residual' ? 'residual χ' : p;
      fig.append(c, cap);
      panels.append(fig);
      canvases[p] = c;
    }
    root.append(box);
    return { name: q.name, width: q.width, height: q.height, bitmaps: {} as Record<Panel, HTMLCanvasElement>, canvases, marks: out.marks[j] ?? [] };
  });
  fitZoom();
  renderBitmaps();
  selectSource(null);
}

function renderBitmaps(): void {
  const out = state.out;
  if (!out) return;
  const imgs = out.result.images;
  const s = stretch();
  const lim = sharedLimits(imgs, chis, s);
  $('limits').textContent = `limits: image ${lim.image[0].toPrecision(4)} … ${lim.image[1].toPrecision(4)} ADU · χ ${lim.chi[0].toFixed(2)} … ${lim.chi[1].toFixed(2)}`;
  imgs.forEach((q, j) => {
    views[j].bitmaps = {
      observed: renderBitmap(q.observed, q.mask, q.width, q.height, 'observed', s, lim),
      model: renderBitmap(q.model, q.mask, q.width, q.height, 'model', s, lim),
      residual: renderBitmap(chis[j], q.mask, q.width, q.height, 'residual', s, lim),
    };
  });
  redraw();
}

let pending = false;
function redraw(): void {
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => {
    pending = false;
    const showSources = $<HTMLInputElement>('show-sources').checked;
    const src = state.out?.sources ?? [];
    for (const q of views) drawQuadrant(q, view, { showSources, core: (i) => src[i]?.core ?? false, selected });
  });
}

function attachPanZoom(c: HTMLCanvasElement, j: number): void {
  let drag: { x: number; y: number; moved: boolean } | null = null;
  c.addEventListener('wheel', (e) => {
    e.preventDefault();
    const q = views[j];
    const rect = c.getBoundingClientRect();
    const sx = e.clientX - rect.left;
    const sy = e.clientY - rect.top;
    const [ix, iy] = toImage(q, view, c.width, c.height, sx, sy);
    const f = Math.exp(-e.deltaY * 0.0015);
    view.zoom = Math.min(64, Math.max(0.05, view.zoom * f));
    // keep the image point under the cursor fixed
    const [nx, ny] = toScreen(q, view, c.width, c.height, ix, iy);
    view.dx += (nx - sx) / view.zoom;
    view.dy -= (ny - sy) / view.zoom;
    redraw();
  }, { passive: false });
  c.addEventListener('pointerdown', (e) => {
    drag = { x: e.clientX, y: e.clientY, moved: false };
    c.setPointerCapture(e.pointerId);
  });
  c.addEventListener('pointermove', (e) => {
    if (!drag) return;
    const ddx = e.clientX - drag.x;
    const ddy = e.clientY - drag.y;
    if (Math.abs(ddx) + Math.abs(ddy) > 2) drag.moved = true;
    if (!drag.moved) return;
    view.dx -= ddx / view.zoom;
    view.dy += ddy / view.zoom;
    drag.x = e.clientX;
    drag.y = e.clientY;
    redraw();
  });
  c.addEventListener('pointerup', (e) => {
    const d = drag;
    drag = null;
    if (!d || d.moved) return;
    // a click: the nearest source marker within 10 screen pixels
    const q = views[j];
    const rect = c.getBoundingClientRect();
    const sx = e.clientX - rect.left;
    const sy = e.clientY - rect.top;
    let best: { i: number; d: number } | null = null;
    for (const m of q.marks) {
      const [px, py] = toScreen(q, view, c.width, c.height, m.x, m.y);
      const dd = Math.hypot(px - sx, py - sy);
      if (dd < 10 && (!best || dd < best.d)) best = { i: m.index, d: dd };
    }
    selectSource(best ? best.i : null);
  });
}

function selectSource(i: number | null): void {
  selected = i;
  redraw();
  const panel = $('source-panel');
  const out = state.out;
  if (i === null || !out) {
    panel.innerHTML = '<em>click a source marker</em>';
    return;
  }
  const s = out.sources[i];
  panel.textContent = '';
  const h = document.createElement('div');
  const f = s.fit;
  const rows: Array<[string, string]> = [
    ['object', `${s.objectId} (${s.core ? 'core' : 'margin: modelled, not reported'})`],
    ['RA, Dec', `${s.ra.toFixed(6)}°, ${s.dec.toFixed(6)}°`],
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
  views.forEach((q) => {
    const m = q.marks.find((mm) => mm.index === i);
    if (!m) return;
    const set = document.createElement('div');
    set.className = 'stamp-set';
    set.textContent = `${q.name}${m.visible ? '' : ' (centre masked / off the quadrant)'}`;
    const line = document.createElement('div');
    for (const p of PANELS) {
      const c = document.createElement('canvas');
      c.width = 72;
      c.height = 72;
      c.title = p;
      drawStamp(c, q.bitmaps[p], m.x, m.y, 24);
      line.append(c);
    }
    set.append(line);
    stamps.append(set);
  });
  h.append(stamps);
  panel.append(h);
}

$('stretch').addEventListener('change', () => {
  renderBitmaps();
  selectSource(selected);
});
$('show-sources').addEventListener('change', redraw);
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
  const r = state.out?.result;
  return r ? `${r.tileId}_${r.row}_${r.col}` : 'subtile';
}

$('export-fits').addEventListener('click', async () => {
  try {
    const bytes = await engine.paramsFits();
    download(new Blob([bytes as Uint8Array<ArrayBuffer>], { type: 'application/fits' }), `params_${baseName()}.fits`);
  } catch (e) {
    showError(messageOf(e));
  }
});

/** The fitted parameters of the core sources as CSV (one row per source). */
export function paramsCsv(out: RunOutput): string {
  const lines = ['object_id,ra_deg,dec_deg,flux_adu,hlr_arcsec,e1,e2,dx_arcsec,dy_arcsec,init_flux_adu,init_hlr_arcsec'];
  for (const c of out.result.core) {
    lines.push([c.objectId, c.ra, c.dec, c.flux, c.hlr, c.e1, c.e2, c.dx, c.dy, c.initFlux, c.initHlr].map(String).join(','));
  }
  return `${lines.join('\n')}\n`;
}

$('export-csv').addEventListener('click', () => {
  if (state.out) download(new Blob([paramsCsv(state.out)], { type: 'text/csv' }), `params_${baseName()}.csv`);
});

/** The quadrant grid as drawn now (every canvas with its caption) on one canvas. */
function composeView(): HTMLCanvasElement {
  const gap = 6;
  const labelH = 14;
  const cols = 3;
  const W = cols * (CANVAS + gap) + gap;
  const H = views.length * (CANVAS + labelH + gap) + gap + 18;
  const c = document.createElement('canvas');
  c.width = W;
  c.height = H;
  const ctx = c.getContext('2d')!;
  ctx.fillStyle = '#101215';
  ctx.fillRect(0, 0, W, H);
  ctx.fillStyle = '#dde';
  ctx.font = '12px sans-serif';
  ctx.fillText(`${$('subtile-label').textContent ?? ''} · ${stretch()}`, gap, 13);
  views.forEach((q, j) => {
    const y = 18 + gap + j * (CANVAS + labelH + gap);
    PANELS.forEach((p, k) => {
      const x = gap + k * (CANVAS + gap);
      ctx.fillStyle = '#99a';
      ctx.fillText(`${q.name} ${p === 'residual' ? 'χ' : p}`, x, y + 11);
      ctx.drawImage(q.canvases[p], x, y + labelH);
    });
  });
  return c;
}

$('export-png').addEventListener('click', () => {
  composeView().toBlob((b) => {
    if (!b) return showError('the browser could not encode the PNG');
    state.pngBytes = b.size;
    download(b, `view_${baseName()}.png`);
  }, 'image/png');
});

/** For tests: where source `index` is drawn (first quadrant whose pixels hold its centre). */
(window as unknown as { __shineLocate: (index: number) => { quadrant: number; x: number; y: number } | null }).__shineLocate = (index) => {
  for (let j = 0; j < views.length; j++) {
    const q = views[j];
    const m = q.marks.find((mm) => mm.index === index && mm.inside);
    if (!m) continue;
    const c = q.canvases.observed;
    const [x, y] = toScreen(q, view, c.width, c.height, m.x, m.y);
    if (x >= 0 && y >= 0 && x < c.width && y < c.height) return { quadrant: j, x, y };
  }
  return null;
};

/** For tests: screen position (in the quadrant's canvases) of source `index` on quadrant `quadrant`, drawn or not. */
(window as unknown as { __shineScreen: (quadrant: number, index: number) => [number, number] | null }).__shineScreen = (quadrant, index) => {
  const q = views[quadrant];
  const m = q?.marks.find((mm) => mm.index === index);
  if (!q || !m) return null;
  return toScreen(q, view, q.canvases.observed.width, q.canvases.observed.height, m.x, m.y);
};

// ------------------------------------------------------------------------------------------------
// URL parameters: ?config=…&manifest=…&subtile=R,C loads at once; ?sim=1 loads the simulation.

const params = new URLSearchParams(location.search);
if (params.get('config')) {
  $<HTMLInputElement>('config-url').value = params.get('config')!;
  $<HTMLInputElement>('manifest-url').value = params.get('manifest') ?? '';
  $<HTMLInputElement>('subtile').value = params.get('subtile') ?? '';
  $('load-url').click();
} else if (params.get('sim') === '1') {
  $('load-sim').click();
}

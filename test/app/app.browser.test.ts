/**
 * The browser app in real Chromium (software WebGPU, flags from test/browser/harness.ts): the app is
 * built with `vite build` into a temporary folder and served by a plain node:http static server
 * (so the static bundle itself is what is tested). Loads the built-in simulated sub-tile, runs MAP,
 * and checks against independent references: the χ² at the fit is below the χ² at the starting
 * parameters (both recomputed here from the images the page received), the shear shown is within
 * 3σ of the simulation's truth (read here from the page's displayed text), a source click shows its
 * parameters, the PNG export works, an invalid file gives a clear message, and no console errors.
 * Screenshots go to test-results/app/.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createServer, type Server } from 'node:http';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { extname, join, normalize, resolve } from 'node:path';
import type { AddressInfo } from 'node:net';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { build } from 'vite';
import { chromiumFlags, findChromium, REPO_ROOT } from '../browser/harness.ts';
import { astropyPython } from '../wcs/python.ts';
import { nodeSimOutput } from '../../cli/commands/simulate.ts';
import prepareCommand from '../../cli/commands/prepare.ts';
import { simulate } from '../../engine/sim/simulate.ts';
import { PRESETS } from '../../engine/sim/presets.ts';
import { parseManifest } from '../../engine/tiling/manifest.ts';
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';

const OUT = join(REPO_ROOT, 'test-results', 'app');
/** MAP iterations in the test (software WebGPU on 2 cores is slow; L-BFGS converges well before). */
const STEPS = Number(process.env.SHINE_APP_TEST_STEPS ?? 60);

const TYPES: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.wasm': 'application/wasm', '.json': 'application/json' };

/** A plain static server (GET, HEAD, single byte ranges) over `root`, plus `mounts` (URL prefix → folder). */
function staticServer(root: string, mounts: Record<string, string> = {}): Promise<{ server: Server; origin: string }> {
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    let base = root;
    let rel = path;
    for (const [prefix, dir] of Object.entries(mounts)) {
      if (path.startsWith(`${prefix}/`)) {
        base = dir;
        rel = path.slice(prefix.length);
      }
    }
    const file = normalize(join(base, rel));
    if (!file.startsWith(base)) {
      res.writeHead(403).end();
      return;
    }
    try {
      const st = statSync(file);
      const f = st.isDirectory() ? join(file, 'index.html') : file;
      const body = readFileSync(f);
      const type = TYPES[extname(f)] ?? 'application/octet-stream';
      const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
      if (m) {
        const a = Number(m[1]);
        const b = Math.min(body.length - 1, m[2] ? Number(m[2]) : body.length - 1);
        if (a >= body.length) {
          res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
          return;
        }
        res.writeHead(206, { 'content-type': type, 'content-length': b - a + 1, 'content-range': `bytes ${a}-${b}/${body.length}`, 'accept-ranges': 'bytes' });
        res.end(req.method === 'HEAD' ? undefined : body.subarray(a, b + 1));
        return;
      }
      res.writeHead(200, { 'content-type': type, 'content-length': body.length, 'accept-ranges': 'bytes' });
      res.end(req.method === 'HEAD' ? undefined : body);
    } catch {
      res.writeHead(404).end('not found');
    }
  });
  return new Promise((ok) => server.listen(0, '127.0.0.1', () => ok({ server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` })));
}

interface Shown {
  chi2Init: number | null;
  chi2Final: number | null;
  g1: number;
  g1Err: number;
  g2: number;
  g2Err: number;
  truth: { g1: number; g2: number } | null;
}

let dist: string;
/** A simulated observation written by the engine in Node, and its Stage-1 manifest (`shine prepare`). */
let simDir: string;
let manifestFile: string;
let server: Server;
let origin: string;
let context: BrowserContext;
let page: Page;
let userDataDir: string;
const consoleErrors: string[] = [];

async function phase(p: Page): Promise<string> {
  return p.evaluate(() => (window as unknown as { __shineApp: { phase: string } }).__shineApp.phase);
}

async function waitPhase(p: Page, want: string[], timeoutMs: number): Promise<string> {
  await p.waitForFunction((w) => w.includes((window as unknown as { __shineApp: { phase: string } }).__shineApp.phase), want, { timeout: timeoutMs, polling: 500 });
  return phase(p);
}

describe('browser app (Chromium, software WebGPU)', () => {
  beforeAll(async () => {
    const exe = findChromium();
    if (!exe) throw new Error('chromium not found: install it with `sudo apt-get install -y chromium` (or set SHINE_CHROMIUM)');
    mkdirSync(OUT, { recursive: true });
    dist = mkdtempSync(join(tmpdir(), 'shine-app-dist-'));
    await build({ configFile: resolve(REPO_ROOT, 'vite.config.ts'), root: REPO_ROOT, logLevel: 'warn', build: { outDir: dist, emptyOutDir: true } });
    simDir = mkdtempSync(join(tmpdir(), 'shine-app-sim-'));
    await simulate(nodeSimOutput(simDir), { preset: { ...PRESETS.ci, magMax: 24 }, seed: 7 });
    const rc = await prepareCommand.run(['--config', join(simDir, 'config.yaml'), '--out', join(simDir, 'manifests'), '--sub-tile', '1,1', '--quiet']);
    if (rc !== 0) throw new Error(`shine prepare exited ${rc}`);
    manifestFile = join(simDir, 'manifests', readdirSync(join(simDir, 'manifests')).find((f) => f.startsWith('manifest_'))!);
    ({ server, origin } = await staticServer(dist, { '/data': simDir }));
    process.env.EGL_PLATFORM ??= 'surfaceless';
    userDataDir = mkdtempSync(join(tmpdir(), 'shine-chromium-app-'));
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: exe,
      headless: true,
      args: chromiumFlags(),
      ignoreDefaultArgs: ['--headless'],
      viewport: { width: 1400, height: 1000 },
      acceptDownloads: true,
      timeout: 60_000,
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => consoleErrors.push(`pageerror: ${e.message}`));
    context.on('weberror', (e) => consoleErrors.push(`weberror: ${e.error().message}`));
    await page.goto(`${origin}/app/index.html`, { waitUntil: 'load', timeout: 60_000 });
  });

  afterAll(async () => {
    await context?.close().catch(() => {});
    await new Promise((ok) => (server ? server.close(ok) : ok(undefined)));
    if (dist) rmSync(dist, { recursive: true, force: true });
    if (simDir) rmSync(simDir, { recursive: true, force: true });
    if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
  });

  it('loads the simulated sub-tile, runs MAP, the residual χ² falls and the shear is within 3σ of the truth', async () => {
    await page.click('#load-sim');
    expect(await waitPhase(page, ['loaded', 'error'], 180_000), (await page.textContent('#error')) ?? '').toBe('loaded');
    const truthText = (await page.textContent('#truth')) ?? '';
    expect(truthText).toMatch(/g₁ -?\d/);
    await page.fill('#steps', String(STEPS));
    await page.selectOption('#method', 'map');
    await page.click('#run');
    // progress is shown while it runs
    await page.waitForFunction(() => /\d+\/\d+/.test(document.getElementById('progress-text')?.textContent ?? ''), null, { timeout: 120_000 });
    const end = await waitPhase(page, ['done', 'error'], 480_000);
    await page.screenshot({ path: join(OUT, 'run.png'), fullPage: true });
    expect(end, (await page.textContent('#error')) ?? '').toBe('done');

    // χ² recomputed here from the images the page holds (observed, model, rms, mask) — and the
    // value at the start, computed by the app from a separate render at the starting parameters
    const chk = await page.evaluate(() => {
      const app = (window as unknown as { __shineApp: { out: { result: { images: Array<{ observed: Float32Array; model: Float32Array; rms: Float32Array; mask: Uint8Array }> } }; shown: unknown } }).__shineApp;
      let s = 0;
      for (const q of app.out.result.images) for (let i = 0; i < q.observed.length; i++) if (q.mask[i]) s += ((q.observed[i] - q.model[i]) / q.rms[i]) ** 2;
      return { chi2: s, shown: app.shown, text: document.getElementById('chi2')?.textContent ?? '', g1Text: document.getElementById('g1')?.textContent ?? '', g2Text: document.getElementById('g2')?.textContent ?? '' };
    });
    const shown = chk.shown as Shown;
    expect(shown.chi2Init).not.toBeNull();
    expect(Math.abs(shown.chi2Final! - chk.chi2) / chk.chi2).toBeLessThan(1e-9);
    expect(shown.chi2Final!).toBeLessThan(shown.chi2Init!);
    // the page shows both numbers
    expect(chk.text).toContain(shown.chi2Init!.toFixed(1));
    expect(chk.text).toContain(shown.chi2Final!.toFixed(1));

    // the shear as displayed ("g ± σ"), against the truth written by the simulation
    const parse = (t: string) => {
      const m = /(-?\d+\.\d+) ± (\d+\.\d+)/.exec(t);
      if (!m) throw new Error(`no 'value ± error' in '${t}'`);
      return { v: Number(m[1]), e: Number(m[2]) };
    };
    const tm = /g₁ (-?\d+\.\d+), g₂ (-?\d+\.\d+)/.exec(truthText)!;
    const truth = { g1: Number(tm[1]), g2: Number(tm[2]) };
    const g1 = parse(chk.g1Text);
    const g2 = parse(chk.g2Text);
    console.log(`app: χ² ${shown.chi2Init!.toFixed(1)} → ${shown.chi2Final!.toFixed(1)}; g1 ${g1.v} ± ${g1.e} (truth ${truth.g1}); g2 ${g2.v} ± ${g2.e} (truth ${truth.g2})`);
    for (const [g, t] of [[g1, truth.g1], [g2, truth.g2]] as const) {
      expect(g.e).toBeGreaterThan(0);
      expect(g.e).toBeLessThan(0.5);
      expect(Math.abs(g.v - t)).toBeLessThan(3 * g.e);
    }
  });

  it('shows a clicked source with its parameters and stamps, and exports a PNG of the view', async () => {
    const target = await page.evaluate(() => {
      const app = (window as unknown as { __shineApp: { out: { sources: Array<{ index: number; core: boolean; objectId: string }> } } }).__shineApp;
      const locate = (window as unknown as { __shineLocate: (i: number) => { quadrant: number; x: number; y: number } | null }).__shineLocate;
      for (const s of app.out.sources) {
        if (!s.core) continue;
        const at = locate(s.index);
        if (at) return { ...at, objectId: s.objectId };
      }
      return null;
    });
    expect(target).not.toBeNull();
    const canvas = page.locator(`canvas[data-quadrant="${target!.quadrant}"][data-panel="observed"]`);
    await canvas.click({ position: { x: target!.x, y: target!.y } });
    await page.waitForSelector('#source-params', { timeout: 10_000 });
    const params = (await page.textContent('#source-params')) ?? '';
    expect(params).toContain(target!.objectId);
    expect(params).toMatch(/flux/);
    expect(await page.locator('#source-panel canvas').count()).toBeGreaterThanOrEqual(3);
    await page.selectOption('#stretch', 'asinh');
    await page.screenshot({ path: join(OUT, 'source.png'), fullPage: true });

    const dl = page.waitForEvent('download', { timeout: 30_000 });
    await page.click('#export-png');
    const d = await dl;
    expect(d.suggestedFilename()).toMatch(/^view_.*\.png$/);
    const png = join(OUT, 'view-export.png');
    await d.saveAs(png);
    const bytes = readFileSync(png);
    expect([...bytes.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

    const dlc = page.waitForEvent('download', { timeout: 30_000 });
    await page.click('#export-csv');
    const csvPath = join(OUT, 'params.csv');
    await (await dlc).saveAs(csvPath);
    const csv = readFileSync(csvPath, 'utf8').trim().split('\n');
    expect(csv[0]).toMatch(/^object_id,ra_deg,dec_deg,flux_adu/);
    expect(csv.length - 1).toBe(await page.evaluate(() => (window as unknown as { __shineApp: { out: { result: { core: unknown[] } } } }).__shineApp.out.result.core.length));

    // the params FITS, read back with astropy: the same sources and values as the CSV
    const dlf = page.waitForEvent('download', { timeout: 30_000 });
    await page.click('#export-fits');
    const fitsPath = join(OUT, 'params.fits');
    await (await dlf).saveAs(fitsPath);
    const py = astropyPython();
    if (!py) throw new Error('python3 with astropy not found (set SHINE_PYTHON)');
    const t = JSON.parse(execFileSync(py, [join(REPO_ROOT, 'test/app/fixtures/read_params.py'), fitsPath], { encoding: 'utf8' })) as { extname: string; nrows: number; object_id: string[]; flux: number[]; e1: number[] };
    expect(t.extname).toBe('PARAMS');
    const rows = csv.slice(1).map((l) => l.split(','));
    expect(t.nrows).toBe(rows.length);
    expect(t.object_id).toEqual(rows.map((r) => r[0]));
    rows.forEach((r, i) => {
      expect(t.flux[i]).toBeCloseTo(Number(r[3]), 6);
      expect(t.e1[i]).toBeCloseTo(Number(r[5]), 9);
    });
  });

  it('pans and zooms every canvas together', async () => {
    type W = { __shineApp: { out: { marks: Array<Array<{ index: number; inside: boolean }>> } }; __shineScreen: (q: number, i: number) => [number, number] | null };
    // two quadrants with at least two sources on their pixels each
    const pick = await page.evaluate(() => {
      const marks = (window as unknown as W).__shineApp.out.marks;
      const qs = marks.map((m, j) => ({ j, ids: m.filter((x) => x.inside).map((x) => x.index) })).filter((x) => x.ids.length >= 2).sort((a, b) => b.ids.length - a.ids.length);
      return qs.slice(0, 2).map((x) => ({ q: x.j, a: x.ids[0], b: x.ids[1] }));
    });
    expect(pick.length).toBe(2);
    const positions = () =>
      page.evaluate((p) => p.map((x) => ({ a: (window as unknown as W).__shineScreen(x.q, x.a)!, b: (window as unknown as W).__shineScreen(x.q, x.b)! })), pick);
    const dist = (u: [number, number], v: [number, number]) => Math.hypot(u[0] - v[0], u[1] - v[1]);
    const p0 = await positions();
    // zoom with the wheel over source a of the first quadrant: it stays under the cursor, and the
    // scale changes by the same factor in the other quadrant
    const c0 = page.locator(`canvas[data-quadrant="${pick[0].q}"][data-panel="residual"]`);
    const box = (await c0.boundingBox())!;
    await page.mouse.move(box.x + p0[0].a[0], box.y + p0[0].a[1]);
    await page.mouse.wheel(0, -500);
    await page.waitForTimeout(300);
    const p1 = await positions();
    expect(dist(p1[0].a, p0[0].a)).toBeLessThan(2); // the cursor sits on whole pixels, the source need not
    const f0 = dist(p1[0].a, p1[0].b) / dist(p0[0].a, p0[0].b);
    const f1 = dist(p1[1].a, p1[1].b) / dist(p0[1].a, p0[1].b);
    expect(f0).toBeGreaterThan(1.5);
    expect(Math.abs(f1 / f0 - 1)).toBeLessThan(1e-6);
    // drag the model panel of the second quadrant: every source in every quadrant moves with it
    const c1 = page.locator(`canvas[data-quadrant="${pick[1].q}"][data-panel="model"]`);
    const b1 = (await c1.boundingBox())!;
    await page.mouse.move(b1.x + 60, b1.y + 60);
    await page.mouse.down();
    await page.mouse.move(b1.x + 75, b1.y + 70, { steps: 3 });
    await page.mouse.move(b1.x + 90, b1.y + 80, { steps: 3 });
    await page.mouse.up();
    await page.waitForTimeout(300);
    const p2 = await positions();
    for (let k = 0; k < 2; k++) {
      for (const s of ['a', 'b'] as const) {
        expect(p2[k][s][0] - p1[k][s][0]).toBeCloseTo(30, 6);
        expect(p2[k][s][1] - p1[k][s][1]).toBeCloseTo(20, 6);
      }
    }
    await page.screenshot({ path: join(OUT, 'zoomed.png'), fullPage: true });
  });

  it('opens a sub-tile produced elsewhere by URL (config + manifest served over HTTP)', async () => {
    const m = parseManifest(readFileSync(manifestFile, 'utf8'), manifestFile);
    await page.fill('#config-url', '../data/config.yaml'); // relative to the page (/app/index.html)
    await page.fill('#manifest-url', `/data/manifests/${manifestFile.split('/').pop()}`);
    await page.click('#load-url');
    expect(await waitPhase(page, ['loaded', 'error'], 120_000), (await page.textContent('#error')) ?? '').toBe('loaded');
    const label = (await page.textContent('#subtile-label')) ?? '';
    expect(label).toContain(`${m.n_sources_core} core / ${m.n_sources_extended} sources`);
    expect(label).toContain(`${m.n_quadrants} quadrants`);
    // the truth of the Node simulation (seed 7) is found through the config's truth section
    expect((await page.textContent('#truth')) ?? '').toMatch(/g₁ -?\d/);
  });

  it('opens dropped files (FITS, manifest, config), and a run can be cancelled', async () => {
    const files: string[] = [join(simDir, 'config.yaml'), manifestFile, join(simDir, 'tiles.fits'), join(simDir, 'truth', 'shear.fits')];
    for (const d of ['VIS', 'MER']) for (const f of readdirSync(join(simDir, d))) files.push(join(simDir, d, f));
    await page.setInputFiles('#file-input', files);
    expect(await waitPhase(page, ['loaded', 'error'], 120_000), (await page.textContent('#error')) ?? '').toBe('loaded');
    await page.fill('#steps', '500');
    await page.click('#run');
    await waitPhase(page, ['running'], 10_000);
    await page.waitForFunction(() => /start: |map /.test(document.getElementById('progress-text')?.textContent ?? ''), null, { timeout: 120_000 });
    await page.click('#cancel');
    expect(await phase(page)).toBe('cancelled');
    expect(await page.textContent('#progress-text')).toBe('cancelled');
    // the page is usable again at once: Run is enabled, Cancel is not
    expect(await page.isEnabled('#run')).toBe(true);
    expect(await page.isEnabled('#cancel')).toBe(false);
  });

  it('an invalid file gives a clear message in the page', async () => {
    await page.setInputFiles('#file-input', { name: 'broken.fits', mimeType: 'application/fits', buffer: Buffer.from('this is not a FITS file at all\n'.repeat(20)) });
    await page.waitForSelector('#error:not([hidden])', { timeout: 30_000 });
    const msg = (await page.textContent('#error')) ?? '';
    await page.screenshot({ path: join(OUT, 'invalid-file.png') });
    expect(msg).toContain('broken.fits');
    expect(msg.length).toBeGreaterThan('broken.fits'.length + 10);
  });

  it('fixing a parameter reaches the engine: shear unchecked stays at its prior mean', async () => {
    // the sub-tile opened from dropped files (the worker replaced by Cancel loads it again); the
    // simulation's config has shear: { type: normal, mean: 0.0 }
    await page.uncheck('#free input[data-prior="shear"]');
    await page.fill('#steps', '3');
    await page.click('#run');
    const end = await waitPhase(page, ['done', 'error'], 240_000);
    expect(end, (await page.textContent('#error')) ?? '').toBe('done');
    const g = await page.evaluate(() => (window as unknown as { __shineApp: { shown: { g1: number; g2: number } } }).__shineApp.shown);
    expect(g.g1).toBe(0);
    expect(g.g2).toBe(0);
    expect((await page.textContent('#iters')) ?? '').toMatch(/map · [1-3] iterations/);
    await page.check('#free input[data-prior="shear"]');
  });

  it('logs no console errors', () => {
    expect(consoleErrors).toEqual([]);
  });
});

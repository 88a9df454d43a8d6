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

const OUT = join(REPO_ROOT, 'test-results', 'app');
/** MAP iterations in the test (software WebGPU on 2 cores is slow; L-BFGS converges well before). */
const STEPS = Number(process.env.SHINE_APP_TEST_STEPS ?? 60);

const TYPES: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.wasm': 'application/wasm', '.json': 'application/json' };

function staticServer(root: string): Promise<{ server: Server; origin: string }> {
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const file = normalize(join(root, path));
    if (!file.startsWith(root)) {
      res.writeHead(403).end();
      return;
    }
    try {
      const st = statSync(file);
      const f = st.isDirectory() ? join(file, 'index.html') : file;
      const body = readFileSync(f);
      res.writeHead(200, { 'content-type': TYPES[extname(f)] ?? 'application/octet-stream', 'content-length': body.length });
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
    ({ server, origin } = await staticServer(dist));
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
  });

  it('an invalid file gives a clear message in the page', async () => {
    await page.setInputFiles('#file-input', { name: 'broken.fits', mimeType: 'application/fits', buffer: Buffer.from('this is not a FITS file at all\n'.repeat(20)) });
    await page.waitForSelector('#error:not([hidden])', { timeout: 30_000 });
    const msg = (await page.textContent('#error')) ?? '';
    await page.screenshot({ path: join(OUT, 'invalid-file.png') });
    expect(msg).toContain('broken.fits');
    expect(msg.length).toBeGreaterThan('broken.fits'.length + 10);
  });

  it('logs no console errors', () => {
    expect(consoleErrors).toEqual([]);
  });
});

/**
 * The browser app on a large sub-tile (issue 13 item 5; a benchmark-style run, not a test: prints
 * numbers, asserts nothing). Opens a simulation that is already prepared (e.g. the `subtile`
 * preset, scripts/scale-run.sh) by URL in the built app in Chromium (software WebGPU unless the
 * flags of test/browser/harness.ts select a GPU), waits until every quadrant is drawn, then clicks
 * "Model at start" — the worker builds the engine within the browser adapter's limits through the
 * same plan as Stage 2 and renders the model at the catalog values — and reports the times, the
 * plan the page shows, the JS heap, the peak resident memory of each Chromium process type
 * (renderer: the page and its workers; gpu-process: the adapter's buffers) and what the page said.
 *
 *   npx tsx test/app/realistic.ts --dir SIM_DIR --manifest scratch/tile_T/manifest_T_R_C.yaml [--config config.yaml] [--no-model]
 *
 * Prints one JSON line.
 */
import { join } from 'node:path';
import { buildApp, openBrowser, staticServer, waitPhase } from './server.ts';
import { rssSampler } from './rss.ts';

const args = process.argv.slice(2);
const arg = (name: string, dflt?: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : dflt);
const dir = arg('--dir');
const manifest = arg('--manifest');
const config = arg('--config', 'config.yaml')!;
if (!dir || !manifest) {
  console.error('usage: npx tsx test/app/realistic.ts --dir SIM_DIR --manifest REL_PATH [--config config.yaml] [--no-model]');
  process.exit(2);
}

const { dist, cleanup } = await buildApp();
const { server, origin, stats } = await staticServer(dist, { '/data': dir });
const b = await openBrowser();
const rss = rssSampler();
const out: Record<string, unknown> = { dir, manifest };
const cdp = await b.context.newCDPSession(b.page);
await cdp.send('Performance.enable');
/** The page's JS heap in MiB (typed-array pixel buffers live outside it: see the renderer's RSS). */
const heap = async () => {
  const { metrics } = (await cdp.send('Performance.getMetrics')) as { metrics: Array<{ name: string; value: number }> };
  return +((metrics.find((m) => m.name === 'JSHeapUsedSize')?.value ?? NaN) / 2 ** 20).toFixed(0);
};
// a page busy with 50 quadrants can take long to answer
const text = (sel: string) => b.page.textContent(sel, { timeout: 600_000 });
try {
  await b.page.goto(`${origin}/app/index.html`);
  const t0 = Date.now();
  await b.page.fill('#config-url', `/data/${config}`);
  await b.page.fill('#manifest-url', `/data/${manifest}`);
  await b.page.click('#load-url');
  const ph = await waitPhase(b.page, ['loaded', 'error'], 1_800_000);
  out.load_phase = ph;
  out.load_s = +((Date.now() - t0) / 1000).toFixed(1);
  if (ph === 'error') out.error = await text('#error');
  else {
    await b.page.waitForFunction(() => [...document.querySelectorAll<HTMLCanvasElement>('canvas[data-panel="observed"]')].every((c) => Number(c.dataset.k) > 0), null, { timeout: 1_800_000, polling: 1000 });
    out.all_quadrants_drawn_s = +((Date.now() - t0) / 1000).toFixed(1);
    out.quadrants = await b.page.evaluate(() => document.querySelectorAll('canvas[data-panel="observed"]').length);
    out.label = await text('#subtile-label');
    out.js_heap_mib_loaded = await heap();
    out.bytes_fetched_mib = +(stats.bytesServed / 2 ** 20).toFixed(1);
    out.peak_rss_gib_loaded = rss.peaks();
    if (!args.includes('--no-model')) {
      const t1 = Date.now();
      await b.page.click('#start-model');
      const end = await waitPhase(b.page, ['done', 'error'], 3_600_000);
      out.model_phase = end;
      out.model_s = +((Date.now() - t1) / 1000).toFixed(1);
      if (end === 'error') out.error = await text('#error');
      out.progress = await text('#progress-text');
      out.warnings = (await text('#warnings'))?.slice(0, 2000);
      out.timings = await text('#timings');
      out.js_heap_mib_model = await heap();
      out.peak_rss_gib_model = rss.peaks();
      await b.page.screenshot({ path: join(dir, 'app-realistic.png') });
    }
  }
  out.adapter = await text('#adapter');
  out.console_errors = b.consoleErrors.slice(0, 5);
} catch (e) {
  out.failure = String((e as Error).message ?? e).split('\n')[0];
} finally {
  rss.stop();
  console.log(JSON.stringify(out));
  await b.close();
  server.close();
  cleanup();
}

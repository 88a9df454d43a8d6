/**
 * Benchmark of the browser app (not a test: prints numbers, asserts nothing): time to the first
 * image and to a MAP result, for the built-in simulated sub-tile and for a `ci` sub-tile simulated
 * and prepared in Node and opened by URL, on the built bundle in Chromium (software WebGPU unless
 * the flags of test/browser/harness.ts select a GPU).
 *
 *   npx tsx test/app/bench.ts [--steps N] [--full] [--screenshot] [--only builtin|url]
 *     --full: the ci preset to magnitude 25.5, not 24; --screenshot: also write docs/app-data-first.png
 *
 * Prints one JSON line per case: the read time (click → data in the page), first image (data →
 * first observed image drawn), every quadrant drawn, and the MAP (click → result shown).
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { nodeSimOutput } from '../../cli/commands/simulate.ts';
import prepareCommand from '../../cli/commands/prepare.ts';
import { simulate } from '../../engine/sim/simulate.ts';
import { PRESETS } from '../../engine/sim/presets.ts';
import { buildApp, openBrowser, staticServer, waitPhase } from './server.ts';
import { REPO_ROOT } from '../browser/harness.ts';

const args = process.argv.slice(2);
const steps = args.includes('--steps') ? Number(args[args.indexOf('--steps') + 1]) : 500;
const full = args.includes('--full');
/** --screenshot: write docs/app-data-first.png (the built-in sub-tile before any fit). */
const screenshot = args.includes('--screenshot');
/** --only builtin|url: one case. */
const only = args.includes('--only') ? args[args.indexOf('--only') + 1] : null;

type Timing = { loadClick: number; firstImage: number | null; dataRead: number | null; runClick: number; result: number | null };

async function measure(page: Page, label: string, load: () => Promise<void>): Promise<void> {
  await load();
  const ph = await waitPhase(page, ['loaded', 'error'], 600_000);
  if (ph !== 'loaded') throw new Error(`${label}: ${await page.textContent('#error')}`);
  await page.waitForFunction(() => [...document.querySelectorAll<HTMLCanvasElement>('canvas[data-panel="observed"]')].every((c) => Number(c.dataset.k) > 0), null, { timeout: 60_000 });
  const allDrawn = await page.evaluate(() => performance.now());
  if (screenshot && label.startsWith('built-in')) await page.screenshot({ path: join(REPO_ROOT, 'docs', 'app-data-first.png') });
  const t1 = (await page.evaluate(() => (window as unknown as { __shineApp: { timing: Timing } }).__shineApp.timing)) as Timing;
  await page.fill('#map-iters', String(steps));
  await page.selectOption('#method', 'map');
  await page.click('#run');
  const end = await waitPhase(page, ['done', 'error'], 1_800_000);
  if (end !== 'done') throw new Error(`${label}: ${await page.textContent('#error')}`);
  const t2 = (await page.evaluate(() => (window as unknown as { __shineApp: { timing: Timing } }).__shineApp.timing)) as Timing;
  const info = await page.evaluate(() => ({ label: document.getElementById('subtile-label')?.textContent, adapter: document.getElementById('adapter')?.textContent, iters: document.getElementById('iters')?.textContent }));
  console.log(
    JSON.stringify({
      case: label,
      read_s: +((t1.dataRead! - t1.loadClick) / 1000).toFixed(2),
      first_image_after_read_s: +((t1.firstImage! - t1.dataRead!) / 1000).toFixed(2),
      all_quadrants_after_read_s: +((allDrawn - t1.dataRead!) / 1000).toFixed(2),
      map_result_after_run_s: +((t2.result! - t2.runClick) / 1000).toFixed(1),
      ...info,
    }),
  );
}

const { dist, cleanup } = await buildApp();
const simDir = mkdtempSync(join(tmpdir(), 'shine-app-bench-'));
await simulate(nodeSimOutput(simDir), { preset: full ? PRESETS.ci : { ...PRESETS.ci, magMax: 24 }, seed: 3 });
if ((await prepareCommand.run(['--config', join(simDir, 'config.yaml'), '--out', join(simDir, 'manifests'), '--sub-tile', '1,1', '--quiet'])) !== 0) throw new Error('shine prepare failed');
const manifest = readdirSync(join(simDir, 'manifests')).find((f) => f.startsWith('manifest_'))!;
const { server, origin } = await staticServer(dist, { '/data': simDir });
const b = await openBrowser();
try {
  await b.page.emulateMedia({ colorScheme: 'dark' });
  await b.page.goto(`${origin}/app/index.html`);
  if (only !== 'url') {
    await measure(b.page, 'built-in simulated sub-tile (small)', async () => {
      await b.page.click('#load-sim');
    });
  }
  if (only !== 'builtin') {
    await measure(b.page, `ci sub-tile by URL${full ? '' : ' (to mag 24)'}`, async () => {
      await b.page.fill('#config-url', '/data/config.yaml');
      await b.page.fill('#manifest-url', `/data/manifests/${manifest}`);
      await b.page.click('#load-url');
    });
  }
} finally {
  await b.close();
  server.close();
  cleanup();
  rmSync(simDir, { recursive: true, force: true });
}

/**
 * Playwright harness for the in-browser kernel checks: serves test/browser/index.html with Vite on
 * 127.0.0.1 (a secure context, so navigator.gpu exists), launches Debian's chromium headless with
 * WebGPU on SwiftShader (no GPU needed), waits for window.__shine.done and returns the report and
 * every console error. Used by kernels.browser.test.ts and runnable directly:
 *   npx tsx test/browser/harness.ts [--adapter X] [--limits adapter|default] [--no-worker]
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import { chromium, type BrowserContext } from 'playwright-core';
import { createServer, type ViteDevServer } from 'vite';
import type { PageReport } from './protocol.ts';

export const REPO_ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));

/** Chromium binaries, in order: SHINE_CHROMIUM, Debian's real binary (skips the wrapper script), the wrapper. */
export function findChromium(): string | null {
  const cands = [process.env.SHINE_CHROMIUM, '/usr/lib/chromium/chromium', '/usr/bin/chromium', '/usr/bin/chromium-browser'];
  return cands.find((p): p is string => !!p && existsSync(p)) ?? null;
}

const COMMON_FLAGS = [
  '--headless=new',
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--enable-webgpu-developer-features', // adapter info (vendor, description) visible to the page
  '--disable-gpu-sandbox',
  '--disable-dev-shm-usage',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--no-default-browser-check',
];

/**
 * WebGPU without a GPU in headless Chromium (docs/devices.md), chosen by SHINE_CHROMIUM_WEBGPU:
 *   gl           Dawn's OpenGL ES backend (compatibility feature level) on ANGLE on Mesa llvmpipe
 *                through surfaceless EGL — the faster one here (default);
 *   swiftshader  Dawn's Vulkan backend on Chromium's bundled SwiftShader (core feature level);
 *   gpu          no adapter flags: whatever GPU Chromium finds.
 */
export const WEBGPU_PROFILES: Record<string, string[]> = {
  gl: ['--ignore-gpu-blocklist', '--use-webgpu-adapter=opengles', '--use-gl=angle', '--use-angle=gl-egl', '--ozone-platform=headless'],
  swiftshader: ['--enable-unsafe-swiftshader', '--use-webgpu-adapter=swiftshader'],
  gpu: ['--ignore-gpu-blocklist'],
};

export function chromiumFlags(profile = process.env.SHINE_CHROMIUM_WEBGPU || 'gl'): string[] {
  const p = WEBGPU_PROFILES[profile];
  if (!p) throw new Error(`SHINE_CHROMIUM_WEBGPU must be one of ${Object.keys(WEBGPU_PROFILES).join(', ')}, got '${profile}'`);
  return [...COMMON_FLAGS, ...p];
}

export interface BrowserRunOptions {
  adapter?: string;
  limits?: 'adapter' | 'default';
  worker?: boolean;
  /** false: only a tiny compute check (probe a configuration quickly). */
  checks?: boolean;
  /** Extra Chromium flags (also from SHINE_CHROMIUM_FLAGS, space-separated). */
  extraFlags?: string[];
  /** Replace the default WebGPU flags entirely. */
  flags?: string[];
  timeoutMs?: number;
  onLog?: (line: string) => void;
}

export interface BrowserRunResult {
  report: PageReport | null;
  consoleErrors: string[];
  chromium: string;
  flags: string[];
  url: string;
}

async function startVite(): Promise<{ server: ViteDevServer; origin: string }> {
  const server = await createServer({
    configFile: false,
    root: REPO_ROOT,
    logLevel: 'warn',
    clearScreen: false,
    server: { host: '127.0.0.1', port: 0, strictPort: false, hmr: false, watch: null },
    worker: { format: 'es' },
    optimizeDeps: { entries: ['test/browser/index.html'] },
  });
  await server.listen();
  const addr = server.httpServer?.address() as AddressInfo | null;
  if (!addr) throw new Error('vite did not start');
  return { server, origin: `http://127.0.0.1:${addr.port}` };
}

export async function runBrowserChecks(opts: BrowserRunOptions = {}): Promise<BrowserRunResult> {
  const exe = findChromium();
  if (!exe) {
    throw new Error('chromium not found: install it with `sudo apt-get install -y chromium` (or set SHINE_CHROMIUM to its path)');
  }
  const log = opts.onLog ?? (() => {});
  const flags = [...(opts.flags ?? chromiumFlags()), ...(opts.extraFlags ?? []), ...(process.env.SHINE_CHROMIUM_FLAGS?.split(/\s+/).filter(Boolean) ?? [])];
  const q = new URLSearchParams({ adapter: opts.adapter ?? 'auto', limits: opts.limits ?? 'adapter', worker: opts.worker === false ? '0' : '1', checks: opts.checks === false ? '0' : '1' });
  process.env.EGL_PLATFORM ??= 'surfaceless'; // inherited by Chromium's GPU process (ANGLE on Mesa EGL)
  const { server, origin } = await startVite();
  const userDataDir = mkdtempSync(join(tmpdir(), 'shine-chromium-'));
  let context: BrowserContext | null = null;
  const consoleErrors: string[] = [];
  const url = `${origin}/test/browser/index.html?${q}`;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: exe,
      headless: true,
      args: flags,
      ignoreDefaultArgs: ['--headless'],
      timeout: 60_000,
    });
    const page = context.pages()[0] ?? (await context.newPage());
    page.on('console', (m) => {
      const line = `[page ${m.type()}] ${m.text()}`;
      log(line);
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => {
      consoleErrors.push(`pageerror: ${e.message}`);
      log(`[pageerror] ${e.message}`);
    });
    context.on('weberror', (e) => {
      consoleErrors.push(`weberror: ${e.error().message}`);
    });
    await page.goto(url, { waitUntil: 'load', timeout: 120_000 });
    await page.waitForFunction(() => (window as unknown as { __shine?: PageReport }).__shine?.done === true, null, {
      timeout: opts.timeoutMs ?? 15 * 60_000,
      polling: 500,
    });
    const report = await page.evaluate(() => (window as unknown as { __shine: PageReport }).__shine);
    return { report, consoleErrors, chromium: exe, flags, url };
  } finally {
    await context?.close().catch(() => {});
    await server.close().catch(() => {});
    rmSync(userDataDir, { recursive: true, force: true });
  }
}

// Direct use: print the report.
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const get = (k: string) => {
    const i = args.indexOf(k);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const t0 = Date.now();
  const r = await runBrowserChecks({
    adapter: get('--adapter'),
    limits: get('--limits') as 'adapter' | 'default' | undefined,
    worker: !args.includes('--no-worker'),
    checks: !args.includes('--no-checks'),
    flags: get('--flags')?.split(/\s+/).filter(Boolean),
    onLog: (l) => console.log(l),
  });
  console.log(JSON.stringify({ flags: r.flags, device: r.report?.device, results: r.report?.results.map((x) => `${x.pass ? 'PASS' : 'FAIL'} ${x.name} ${x.maxError}`), worker: r.report?.worker, error: r.report?.error, consoleErrors: r.consoleErrors, seconds: (Date.now() - t0) / 1000 }, null, 1));
  process.exit(r.report && !r.report.error && r.report.results.every((x) => x.pass) && r.consoleErrors.length === 0 ? 0 : 1);
}

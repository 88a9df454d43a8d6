/**
 * Shared by the app's browser test and benchmark: build the app with `vite build` into a temporary
 * folder, serve it with a plain node:http static server (GET, HEAD, single byte ranges; so the
 * static bundle itself is what runs), and open Chromium with software WebGPU (the flags of
 * test/browser/harness.ts).
 */
import { createServer, type Server } from 'node:http';
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { extname, join, normalize, resolve } from 'node:path';
import type { AddressInfo } from 'node:net';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { build } from 'vite';
import { chromiumFlags, findChromium, REPO_ROOT } from '../browser/harness.ts';

const TYPES: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.wasm': 'application/wasm', '.json': 'application/json' };

/** A plain static server over `root`, plus `mounts` (URL prefix → folder). `bytesServed` counts the body bytes sent. */
export function staticServer(root: string, mounts: Record<string, string> = {}): Promise<{ server: Server; origin: string; stats: { bytesServed: number; byPath: Map<string, number> } }> {
  const stats = { bytesServed: 0, byPath: new Map<string, number>() };
  const count = (path: string, n: number) => {
    stats.bytesServed += n;
    stats.byPath.set(path, (stats.byPath.get(path) ?? 0) + n);
  };
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
      const size = statSync(f).size;
      const type = TYPES[extname(f)] ?? 'application/octet-stream';
      const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
      if (m) {
        const a = Number(m[1]);
        const b = Math.min(size - 1, m[2] ? Number(m[2]) : size - 1);
        if (a >= size) {
          res.writeHead(416, { 'content-range': `bytes */${size}` }).end();
          return;
        }
        res.writeHead(206, { 'content-type': type, 'content-length': b - a + 1, 'content-range': `bytes ${a}-${b}/${size}`, 'accept-ranges': 'bytes' });
        if (req.method === 'HEAD') {
          res.end();
          return;
        }
        // only the requested bytes are read (large simulations: a range of a 100 MB file)
        const part = Buffer.alloc(b - a + 1);
        const fd = openSync(f, 'r');
        try {
          readSync(fd, part, 0, part.length, a);
        } finally {
          closeSync(fd);
        }
        count(path, part.length);
        res.end(part);
        return;
      }
      const body = readFileSync(f);
      res.writeHead(200, { 'content-type': type, 'content-length': body.length, 'accept-ranges': 'bytes' });
      if (req.method !== 'HEAD') count(path, body.length);
      res.end(req.method === 'HEAD' ? undefined : body);
    } catch {
      res.writeHead(404).end('not found');
    }
  });
  return new Promise((ok) => server.listen(0, '127.0.0.1', () => ok({ server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, stats })));
}

/** The app built into a temporary folder (removed by the returned cleanup). */
export async function buildApp(): Promise<{ dist: string; cleanup: () => void }> {
  const dist = mkdtempSync(join(tmpdir(), 'shine-app-dist-'));
  await build({ configFile: resolve(REPO_ROOT, 'vite.config.ts'), root: REPO_ROOT, logLevel: 'warn', build: { outDir: dist, emptyOutDir: true } });
  return { dist, cleanup: () => rmSync(dist, { recursive: true, force: true }) };
}

/** Chromium with software WebGPU, one page, console errors collected. */
export async function openBrowser(viewport = { width: 1400, height: 1000 }): Promise<{ context: BrowserContext; page: Page; consoleErrors: string[]; close: () => Promise<void> }> {
  const exe = findChromium();
  if (!exe) throw new Error('chromium not found: install it with `sudo apt-get install -y chromium` (or set SHINE_CHROMIUM)');
  process.env.EGL_PLATFORM ??= 'surfaceless';
  const userDataDir = mkdtempSync(join(tmpdir(), 'shine-chromium-app-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: exe,
    headless: true,
    args: chromiumFlags(),
    ignoreDefaultArgs: ['--headless'],
    viewport,
    acceptDownloads: true,
    timeout: 60_000,
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const consoleErrors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => consoleErrors.push(`pageerror: ${e.message}`));
  context.on('weberror', (e) => consoleErrors.push(`weberror: ${e.error().message}`));
  return {
    context,
    page,
    consoleErrors,
    close: async () => {
      await context.close().catch(() => {});
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

export async function appPhase(p: Page): Promise<string> {
  return p.evaluate(() => (window as unknown as { __shineApp: { phase: string } }).__shineApp.phase);
}

export async function waitPhase(p: Page, want: string[], timeoutMs: number): Promise<string> {
  await p.waitForFunction((w) => w.includes((window as unknown as { __shineApp: { phase: string } }).__shineApp.phase), want, { timeout: timeoutMs, polling: 250 });
  return appPhase(p);
}

/**
 * Stage 1 over HTTP: `shine prepare` on the `ci` simulation with every data.* path an http URL
 * (served by ./server.ts) writes the same manifests as from the local files (the oracle), with
 * the URLs kept as given; URL glob patterns and URL archives are refused with a clear error.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parse } from 'yaml';
import prepare from '../../cli/commands/prepare.ts';
import { basenameOf, hasGlob, urlPatternProblem } from '../../engine/config/paths.ts';
import { startServer, type TestServer } from './server.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const TILE = 102018211;

let dir = '';
let sim = '';
let server: TestServer;

function run(args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile('npx', ['--no-install', 'tsx', ...args], { cwd: ROOT, timeout: 300_000, maxBuffer: 1 << 24 }, (err, _o, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stderr }),
    );
  });
}

async function listFiles(d: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(d, { withFileTypes: true })) {
    if (e.isDirectory()) out.push(...(await listFiles(join(d, e.name))));
    else out.push(join(d, e.name));
  }
  return out;
}

/** The simulation's config with every data path turned into a URL of the test server. */
async function urlConfig(extra: string, edit: (text: string) => string = (t) => t): Promise<string> {
  let text = await readFile(join(sim, 'config.yaml'), 'utf8');
  text = text.replace(/^(\s*(?:-\s+|tile_index:\s+|mer_catalog:\s+))((?:VIS|MER)\/\S+|tiles\.fits)/gm, (_m, pre: string, p: string) => `${pre}${server.base}/f/${p}`);
  text = edit(text) + extra;
  const path = join(dir, `config-${Math.random().toString(36).slice(2)}.yaml`);
  await writeFile(path, text);
  return path;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'shine-remote-prepare-'));
  sim = join(dir, 'sim');
  const r = await run(['cli/shine.ts', 'simulate', '--preset', 'ci', '--seed', '2', '--out', sim]);
  expect(r.code, r.stderr).toBe(0);
  const files = new Map<string, Uint8Array>();
  for (const f of await listFiles(sim)) if (f.endsWith('.fits')) files.set(relative(sim, f), new Uint8Array(await readFile(f)));
  server = await startServer(files);
}, 300_000);

afterAll(async () => {
  await server?.close();
});

describe('shine prepare with http(s) data', () => {
  it('writes the same manifests from URLs as from the local files, reading a fraction of the bytes', async () => {
    const local = join(dir, 'm-local');
    const remote = join(dir, 'm-remote');
    expect(await prepare.run(['--config', join(sim, 'config.yaml'), '--out', local, '--quiet', '--no-cache'])).toBe(0);
    const cfg = await urlConfig(`remote:\n  cache_dir: ${join(dir, 'cache')}\n  concurrency: 3\n  backoff_ms: 1\ndistributed:\n  scratch_dir: ${join(dir, 'scratch')}\n`);
    expect(await readFile(cfg, 'utf8')).toContain(`${server.base}/f/VIS/EUC_VIS_SWL-DET-002701-00`);
    server.reset();
    expect(await prepare.run(['--config', cfg, '--out', remote, '--quiet'])).toBe(0);
    const total = [...server.files.values()].reduce((a, b) => a + b.length, 0);
    expect(server.bytesSent).toBeGreaterThan(0);
    expect(server.bytesSent).toBeLessThan(total / 2); // headers and catalogs, not the pixels
    expect(server.maxInFlight).toBeLessThanOrEqual(3);

    const names = (await readdir(local)).sort();
    expect((await readdir(remote)).sort()).toEqual(names);
    expect(names).toContain(`prepare_${TILE}.yaml`);
    let withUrls = 0;
    for (const n of names) {
      const a = parse(await readFile(join(local, n), 'utf8'));
      const text = await readFile(join(remote, n), 'utf8');
      if (text.includes(`${server.base}/f/VIS/`)) withUrls++;
      const b = parse(text.split(`${server.base}/f/`).join(`${sim}/`));
      for (const k of ['config', 'created']) {
        delete a[k];
        delete b[k];
      }
      expect(b, n).toEqual(a);
    }
    expect(withUrls).toBeGreaterThan(0); // the manifests name the URLs, as given

    // a second run is served by the block cache and the scan cache: no pixel or header bytes again
    server.reset();
    expect(await prepare.run(['--config', cfg, '--out', join(dir, 'm-remote2'), '--quiet'])).toBe(0);
    expect(server.bytesSent).toBe(0);
  }, 120_000);

  it('refuses URL glob patterns and URL archives with a clear error', async () => {
    const glob = await urlConfig('', (t) => t.replace(/EUC_VIS_SWL-DET-002701-00-\S+\.fits/, 'EUC_VIS_SWL-DET-*.fits'));
    await expect(prepare.run(['--config', glob, '--quiet'])).rejects.toThrow(
      /field data\.exposures: '.*\/f\/VIS\/EUC_VIS_SWL-DET-\*\.fits' looks like a glob pattern, but a URL folder cannot be listed: give each file's URL explicitly/,
    );
    const arch = await urlConfig('', (t) => t.replace(/^tile:/m, `distributed:\n  exposure_archive: ${server.base}/f/VIS/\ntile:`).replace(/^  exposures:\n(    - .*\n)+/m, ''));
    await expect(prepare.run(['--config', arch, '--quiet'])).rejects.toThrow(/field distributed\.exposure_archive: '.*' is a URL, but an archive must be a local folder/);
  });

  it('path helpers: URLs are never globs; a URL basename has no query', () => {
    expect(hasGlob('https://host/a/b.fits?X-Amz-Signature=abc')).toBe(false);
    expect(hasGlob('/data/*.fits')).toBe(true);
    expect(basenameOf('https://host/a/EUC_VIS_SWL-DET-002701-00-1.fits?sig=1#x')).toBe('EUC_VIS_SWL-DET-002701-00-1.fits');
    expect(urlPatternProblem('https://host/a/b.fits?X-Amz-Signature=abc')).toBeNull();
    expect(urlPatternProblem('http://[::1]:8080/a.fits')).toBeNull();
    expect(urlPatternProblem('https://host/a/*.fits')).toMatch(/cannot be listed/);
    expect(urlPatternProblem('s3://bucket/a.fits')).toMatch(/only http:\/\/ and https:\/\//);
    expect(urlPatternProblem('/local/*.fits')).toBeNull();
  });
});

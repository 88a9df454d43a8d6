/**
 * Gzipped inputs are inflated only as far as a reader needs (issue 17 item 2): Stage 2 reads a
 * quadrant's SCI/RMS/FLG, its PSF HDU and its BKG HDU and never inflates a `.fits.gz` beyond the
 * last of them (`OpenOptions.needed`); prepare's DET header scan opens files for their headers only
 * and keeps no pixel data; `shine prepare` on gzipped DET, BKG, PSF and MER files writes the same
 * manifest as on the plain files. Measured with the gzip source's counters: bytes inflated
 * (`produced()`) and bytes kept in memory (`retained()`) when the file is closed.
 */
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { gzipSync } from 'fflate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simulate } from '../../engine/sim/simulate.ts';
import { nodeSimOutput } from '../../cli/commands/simulate.ts';
import { PRESETS, type Preset } from '../../engine/sim/presets.ts';
import prepare from '../../cli/commands/prepare.ts';
import { manifestFileName, parseManifest, type Manifest } from '../../engine/tiling/manifest.ts';
import { buildExposureSet, type QuadrantRef, type SourceRef } from '../../engine/exposures/exposure-set.ts';
import { scanFile, type PrepareIO } from '../../engine/tiling/prepare.ts';
import { FitsFile, memorySource, type OpenOptions } from '../../engine/data/fits/index.ts';
import { isGunzipSource } from '../../engine/data/fits/source.ts';
import { openFits } from '../../platform/node/files.ts';
import { asCli, record } from './harness.ts';

const G = 'gzip-needed';
const tiny: Preset = { ...PRESETS.ci, tileCore: 200, margin: 6, pad: 2, stampTiers: [64] };
const TILE = tiny.tileId;
const OPTS = { tiers: [64], badPixelMask: 0x1, pixelScale: 0.1 };
let root = '';
let sim = '';
let base: Manifest;

const padded = (n: number) => Math.ceil(n / 2880) * 2880;

interface Opened {
  path: string;
  options: OpenOptions | undefined;
  /** Decompressed size of the whole file (plain length). */
  produced: number;
  retained: number;
  gzip: boolean;
}

/** Node's openFits, recording for each file the options asked and the gzip counters when it is closed. */
function recordingOpen(log: Opened[]) {
  return async (path: string, options?: OpenOptions): Promise<FitsFile> => {
    const f = await openFits(path, options);
    const src = f.source;
    const close = f.close.bind(f);
    f.close = async () => {
      const gz = isGunzipSource(src);
      log.push({ path, options, produced: gz ? src.produced() : -1, retained: gz ? src.retained() : -1, gzip: gz });
      await close();
    };
    return f;
  };
}

async function runPrepare(id: string, cfgText: string): Promise<{ code: number; stderr: string; manifest?: Manifest }> {
  const cfg = join(sim, `c-${id}.yaml`);
  writeFileSync(cfg, cfgText);
  const out = join(root, 'man', id);
  const r = await asCli(() => prepare.run(['--config', cfg, '--sub-tile', '1,1', '--out', out, '--no-cache']));
  let manifest: Manifest | undefined;
  try {
    manifest = parseManifest(readFileSync(join(out, manifestFileName(TILE, 1, 1)), 'utf8'));
  } catch {
    /* none written */
  }
  return { code: r.code, stderr: r.stderr, manifest };
}

/** A gzipped copy of `path` (HDUs listed in `first` moved right after the primary HDU). */
async function gzCopy(path: string, first: string[] = []): Promise<string> {
  const bytes = new Uint8Array(readFileSync(path));
  const f = await FitsFile.open(memorySource(bytes, path));
  const slice = (i: number) => {
    const h = f.hdus[i];
    return bytes.subarray(h.headerOffset, h.dataOffset + padded(h.dataSize));
  };
  const order = [0, ...first.map((n) => f.hdu(n).index), ...f.hdus.map((h) => h.index).filter((i) => i > 0 && !first.some((n) => f.hdu(n).index === i))];
  const parts = order.map(slice);
  const all = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    all.set(p, o);
    o += p.length;
  }
  await f.close();
  const out = join(root, 'gz', `${first.length ? 'first-' : ''}${basename(path)}.gz`);
  writeFileSync(out, gzipSync(all));
  return out;
}

/** End of the last of `names` in the decompressed file (padded), and the decompressed size. */
async function extent(gzPath: string, names: string[]): Promise<{ end: number; total: number; headers: number }> {
  const f = await openFits(gzPath);
  const end = Math.max(...names.map((n) => f.hdu(n)).map((h) => h.dataOffset + padded(h.dataSize)));
  const last = f.hdus[f.hdus.length - 1];
  const total = last.dataOffset + padded(last.dataSize);
  const headers = f.hdus.reduce((a, h) => a + h.headerSize, 0);
  await f.close();
  return { end, total, headers };
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'shine-hostile-gzneeded-'));
  sim = join(root, 'sim');
  mkdirSync(join(root, 'gz'), { recursive: true });
  await simulate(nodeSimOutput(sim), { preset: tiny, seed: 5, shear: [0.02, 0] });
  const r = await runPrepare('base', readFileSync(join(sim, 'config.yaml'), 'utf8'));
  expect(r.code, r.stderr).toBe(0);
  base = r.manifest!;
}, 180_000);

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('gzip: inflated only as far as the reader needs', () => {
  it('gz-stage2-one-quadrant: Stage 2 inflates a gzipped DET, PSF and BKG file up to the last HDU it reads', async () => {
    record(G, 'gz-stage2-one-quadrant', 'Stage 2 loading one quadrant whose HDUs come first in a gzipped multi-quadrant DET file (and its gzipped PSF and BKG files)', 'handled');
    // the quadrant of the sub-tile (seeing some source) whose DET file holds the most other data
    const sources: SourceRef[] = base.sources.ra.map((ra, i) => ({ id: i, ra, dec: base.sources.dec[i], fluxUJy: 10, hlr: 0.2, core: base.sources.core[i] }));
    const plainRef = (x: Manifest['quadrants'][number]): QuadrantRef => ({ id: x.id, file: x.file, sci: x.sci_hdu, rms: x.rms_hdu, flg: x.flg_hdu, psf: { file: x.psf_file!, hdu: x.psf_hdu! }, bkg: { file: x.bkg_file!, hdu: x.bkg_hdu! } });
    const others = await Promise.all(base.quadrants.map(async (x) => {
      const f = await openFits(x.file);
      const own = [x.sci_hdu, x.rms_hdu, x.flg_hdu].reduce((a, n) => a + f.hdu(n).headerSize + padded(f.hdu(n).dataSize), 0);
      const last = f.hdus[f.hdus.length - 1];
      await f.close();
      return last.dataOffset + padded(last.dataSize) - own;
    }));
    let q: Manifest['quadrants'][number] | undefined;
    for (const k of base.quadrants.map((_, k) => k).sort((a, b) => others[b] - others[a])) {
      const ok = await buildExposureSet([plainRef(base.quadrants[k])], sources, OPTS, openFits).then(() => true, () => false);
      if (ok) {
        q = base.quadrants[k];
        break;
      }
    }
    expect(q).toBeDefined();
    if (!q) return;
    expect(others[base.quadrants.indexOf(q)]).toBeGreaterThan(500_000); // more than 0.5 MB of other quadrants in the file
    const det = await gzCopy(q.file, [q.sci_hdu, q.rms_hdu, q.flg_hdu]);
    const psf = await gzCopy(q.psf_file!);
    const bkg = await gzCopy(q.bkg_file!);
    const ref: QuadrantRef = { id: q.id, file: det, sci: q.sci_hdu, rms: q.rms_hdu, flg: q.flg_hdu, psf: { file: psf, hdu: q.psf_hdu! }, bkg: { file: bkg, hdu: q.bkg_hdu! } };
    const log: Opened[] = [];
    const built = await asCli(async () => {
      const b = await buildExposureSet([ref], sources, OPTS, recordingOpen(log));
      expect(b.set.quadrants.length).toBe(1);
      expect(b.set.pairs.length).toBeGreaterThan(0);
    });
    expect(built.code, built.stderr).toBe(0);
    // the same pixels as from the plain file
    const plain = await buildExposureSet([plainRef(q)], sources, OPTS, openFits);
    const again = await buildExposureSet([ref], sources, OPTS, openFits);
    expect(again.set.quadrants[0].sci).toEqual(plain.set.quadrants[0].sci);
    expect(again.set.quadrants[0].flags).toEqual(plain.set.quadrants[0].flags);
    // each file opened once, with the HDUs it needs
    expect(log.map((o) => o.path).sort()).toEqual([bkg, det, psf].sort());
    for (const [path, names] of [[det, [q.sci_hdu, q.rms_hdu, q.flg_hdu]], [psf, [q.psf_hdu!]], [bkg, [q.bkg_hdu!]]] as const) {
      const o = log.find((x) => x.path === path)!;
      expect(o.gzip).toBe(true);
      expect([...(o.options?.needed ?? [])].sort()).toEqual([...names].sort());
      const { end, total } = await extent(path, [...names]);
      // inflated: the needed HDUs, plus what one inflate step (16 KiB of compressed input) yields beyond them
      expect(o.produced, `${basename(path)}: ${o.produced} of ${total} bytes inflated, needed up to ${end}`).toBeGreaterThanOrEqual(end);
      expect(o.produced - end, basename(path)).toBeLessThan(65536);
      if (path === det) {
        expect(total - end).toBeGreaterThan(500_000); // the other quadrants: more than 0.5 MB never inflated
        expect(o.produced).toBeLessThan(total - 400_000);
      }
    }
    // without `needed` the whole DET file is inflated (what every open did before)
    const whole = await openFits(det);
    const src = whole.source;
    expect(isGunzipSource(src) && src.produced()).toBe((await extent(det, [q.sci_hdu])).total);
    await whole.close();
  }, 60_000);

  it('gz-prepare-scan: the DET header scan keeps no pixel data', async () => {
    record(G, 'gz-prepare-scan', "prepare's header scan of a gzipped multi-quadrant DET file (opened for its headers only)", 'handled');
    const q = base.quadrants[0];
    const det = await gzCopy(q.file);
    const log: Opened[] = [];
    const io: PrepareIO = { openFits: recordingOpen(log), log: () => {} };
    const scan = await scanFile(det, io);
    const plainScan = await scanFile(q.file, { openFits: (p, o) => openFits(p, o), log: () => {} });
    expect(scan).toEqual(plainScan);
    expect(log.length).toBe(1);
    expect(log[0].options?.headersOnly).toBe(true);
    const { total, headers } = await extent(det, [q.sci_hdu]);
    // the whole file was inflated (to reach every header) but only header bytes (and the odd
    // partial chunk) were kept, not the total bytes a full open keeps
    expect(log[0].produced).toBe(total);
    expect(log[0].retained, `${log[0].retained} bytes kept of ${total}`).toBeLessThan(headers + 2 * 65536);
    expect(log[0].retained).toBeLessThan(total / 4);
    const full = await openFits(det);
    expect(isGunzipSource(full.source) && full.source.retained()).toBe(total);
    await full.close();
  }, 60_000);

  it('gz-prepare-all: shine prepare on gzipped DET, BKG, PSF and MER files writes the same manifest', async () => {
    record(G, 'gz-prepare-all', 'shine prepare with every DET, BKG, PSF and MER file gzipped (.fits.gz)', 'handled');
    let text = readFileSync(join(sim, 'config.yaml'), 'utf8');
    const dirs = ['VIS', 'MER'];
    for (const d of dirs) {
      for (const name of readdirSync(join(sim, d))) {
        const gz = join(sim, d, `${name}.gz`);
        writeFileSync(gz, gzipSync(new Uint8Array(readFileSync(join(sim, d, name)))));
        text = text.replaceAll(`${d}/${name}`, `${d}/${name}.gz`);
      }
    }
    expect(text).toMatch(/DET-.*\.fits\.gz/);
    const r = await runPrepare('gz', text);
    expect(r.code, r.stderr).toBe(0);
    const m = r.manifest!;
    expect(m.quadrants.map((x) => [x.id, x.sci_hdu, basename(x.file)])).toEqual(base.quadrants.map((x) => [x.id, x.sci_hdu, `${basename(x.file)}.gz`]));
    expect(m.sources.object_id).toEqual(base.sources.object_id);
    expect(m.catalogs[0].cuts).toEqual(base.catalogs[0].cuts);
  }, 120_000);
});

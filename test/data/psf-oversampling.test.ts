/**
 * Oversampled PSF grids in the data chain (issue 12, part 2):
 *  - the reader: PSFOVERS from the header (absent → 1), an explicit override, validation (a
 *    positive integer, else a DataError naming the file, the HDU and the key), odd stamps,
 *    elementwise interpolation between nodes as for native stamps;
 *  - prepare end to end: `shine simulate --psf-oversampling 2` on a small preset, `shine prepare`
 *    for its sub-tile, the ExposureSet built from the manifest has psfOversampling = 2 and
 *    psfSize = 43, pairs carry 43 × 43 unit-sum PSFs, each quadrant's record its PSF sampling;
 *    PSF files of different sampling in one sub-tile are an error naming both files.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PsfGrid, psfGridHeaderCards, readPsfGrid } from '../../engine/data/psf/index.ts';
import { FitsFile, memorySource, writeFits, type CardInput, type HeaderValue } from '../../engine/data/fits/index.ts';
import { DataError } from '../../engine/errors.ts';
import { simulate, psfFileName, psfStampSide } from '../../engine/sim/simulate.ts';
import { nodeSimOutput } from '../../cli/commands/simulate.ts';
import { PRESETS, type Preset } from '../../engine/sim/presets.ts';
import prepareCommand from '../../cli/commands/prepare.ts';
import { commandExitCode } from '../../cli/command.ts';
import { manifestFileName, parseManifest, type Manifest } from '../../engine/tiling/manifest.ts';
import { buildExposureSet, oversizeWarning, type QuadrantRef, type SourceRef } from '../../engine/exposures/exposure-set.ts';
import { openFits } from '../../platform/node/files.ts';
import { validateExposureSet } from '../../engine/model/validate.ts';

/** A 3 × 3 grid of S × S stamps whose stamp (i, j) is a centred Gaussian of width 1 + 0.1(i + j) samples. */
function gridImage(S: number, n = 3): { img: Float32Array; side: number } {
  const side = S * n;
  const img = new Float32Array(side * side);
  const c = (S - 1) / 2;
  for (let j = 0; j < n; j++) for (let i = 0; i < n; i++) {
    const s = 1 + 0.1 * (i + j);
    for (let b = 0; b < S; b++) for (let a = 0; a < S; a++) img[(j * S + b) * side + i * S + a] = Math.exp(-((a - c) ** 2 + (b - c) ** 2) / (2 * s * s));
  }
  return { img, side };
}

async function psfFits(hdus: Array<{ name: string; S: number; cards: CardInput[] }>): Promise<FitsFile> {
  const bytes = writeFits([{ kind: 'empty' }, ...hdus.map(({ name, S, cards }) => {
    const { img, side } = gridImage(S);
    return { name, data: img, shape: [side, side], cards };
  })]);
  return FitsFile.open(memorySource(bytes, 'psf-over.fits'));
}

const gridCards = (S: number, extra: CardInput[] = []): CardInput[] => [
  ...psfGridHeaderCards({ nx: 3, ny: 3, stampSize: S, quadrantWidth: 300, quadrantHeight: 330 }),
  ...extra,
];

describe('the PSF grid reader and PSFOVERS', () => {
  it('reads PSFOVERS (absent → 1), lets an explicit option override it, interpolates elementwise', async () => {
    const fits = await psfFits([
      { name: 'NATIVE', S: 21, cards: gridCards(21) },
      { name: 'Q2', S: 43, cards: psfGridHeaderCards({ nx: 3, ny: 3, stampSize: 43, quadrantWidth: 300, quadrantHeight: 330, oversampling: 2 }) },
      { name: 'Q3', S: 63, cards: gridCards(63, [['PSFOVERS', 3, 'PSF pixels per detector pixel']]) },
    ]);
    expect(fits.header('Q2').getNumber('PSFOVERS')).toBe(2);
    expect(fits.header('NATIVE').get('PSFOVERS')).toBeUndefined();
    const n = await readPsfGrid(fits, 'NATIVE');
    const g2 = await readPsfGrid(fits, 'Q2');
    const g3 = await readPsfGrid(fits, 'Q3');
    expect([n.oversampling, n.stampSize]).toEqual([1, 21]);
    expect([g2.oversampling, g2.stampSize]).toEqual([2, 43]);
    expect([g3.oversampling, g3.stampSize]).toEqual([3, 63]);
    expect((await readPsfGrid(fits, 'Q3', { oversampling: 5 })).oversampling).toBe(5);
    expect((await readPsfGrid(fits, 'NATIVE', { oversampling: 2 })).oversampling).toBe(2);
    // interpolation: elementwise bilinear between nodes, unit sum, the stamp's own sampling
    const x = 0.5 * (g3.gridX(0) + g3.gridX(1)), y = g3.gridY(2);
    const p = g3.interpolate(x, y);
    expect(p.length).toBe(63 * 63);
    const a = g3.stampAt(0, 2), b = g3.stampAt(1, 2);
    let sa = 0;
    for (let k = 0; k < a.length; k++) sa += 0.5 * (a[k] + b[k]);
    let sum = 0;
    for (let k = 0; k < p.length; k++) {
      sum += p[k];
      expect(Math.abs(p[k] - (0.5 * (a[k] + b[k])) / sa)).toBeLessThan(1e-12);
    }
    expect(Math.abs(sum - 1)).toBeLessThan(1e-12);
  });

  it('rejects a PSFOVERS that is not a positive integer, naming the file, the HDU and the key', async () => {
    const bad: Array<[string, HeaderValue]> = [['ZERO', 0], ['NEG', -2], ['HALF', 1.5], ['WORD', 'two'], ['BOOL', true]];
    const fits = await psfFits(bad.map(([name, v]) => ({ name, S: 21, cards: gridCards(21, [['PSFOVERS', v, '']]) })));
    for (const [name] of bad) {
      const e = await readPsfGrid(fits, name).then(() => null, (x: unknown) => x);
      expect(e, name).toBeInstanceOf(DataError);
      expect((e as Error).message).toMatch(new RegExp(`file psf-over\\.fits, HDU ${name}, key PSFOVERS: PSF oversampling .* must be a positive integer`));
    }
    // an override is validated too
    const ok = await psfFits([{ name: 'Q', S: 21, cards: gridCards(21) }]);
    await expect(readPsfGrid(ok, 'Q', { oversampling: 0 })).rejects.toThrow(/file psf-over\.fits, HDU Q, key PSFOVERS: .*positive integer, got 0/);
    await expect(readPsfGrid(ok, 'Q', { oversampling: 2.5 })).rejects.toThrow(/positive integer, got 2\.5/);
    // an oversampled stamp must be odd (its centre sample sits on the node)
    const even = gridImage(42);
    expect(() => new PsfGrid(even.img, even.side, even.side, { stampSize: 42, oversampling: 2, file: 'e.fits', hdu: 'E' })).toThrow(/file e\.fits, HDU E, key PSFSTAMP: .*odd side/);
    expect(new PsfGrid(even.img, even.side, even.side, { stampSize: 42 }).oversampling).toBe(1);
  });
});

// ----------------------------------------------------------------------------------------------
// prepare end to end

// a 50″ sub-tile of a 200″ tile: small, yet every dither sees it (a 30″ one falls in a CCD gap
// in the first dither, which prepare rejects); one stamp tier, so its 6″ margin is valid
const tiny: Preset = { ...PRESETS.ci, tileCore: 200, margin: 6, pad: 2, stampTiers: [64] };
const TILE = tiny.tileId;
let root = '';
const dir: Record<number, string> = {};
let man: Manifest;

async function runPrepare(args: string[]): Promise<{ code: number; err: string }> {
  const errs: string[] = [];
  const e = vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void errs.push(a.join(' ')));
  const l = vi.spyOn(console, 'log').mockImplementation(() => {});
  try {
    return { code: await commandExitCode(() => prepareCommand.run(args)), err: errs.join('\n') };
  } finally {
    e.mockRestore();
    l.mockRestore();
  }
}

function refsOf(m: Manifest, psfDir?: (q: Manifest['quadrants'][number]) => string | undefined): QuadrantRef[] {
  return m.quadrants.map((q) => ({
    id: q.id, file: q.file, sci: q.sci_hdu, rms: q.rms_hdu, flg: q.flg_hdu,
    bkg: { file: q.bkg_file!, hdu: q.bkg_hdu! },
    psf: { file: psfDir?.(q) ?? q.psf_file!, hdu: q.psf_hdu! },
  }));
}

function sourcesOf(m: Manifest): SourceRef[] {
  return m.sources.ra.map((ra, i) => ({ id: i, ra, dec: m.sources.dec[i], fluxUJy: 10, hlr: 0.2, core: m.sources.core[i] }));
}

const OPTS = { tiers: [64], badPixelMask: 0x9b, pixelScale: 0.1 };

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'shine-psfover-prep-'));
  for (const q of [1, 2]) {
    dir[q] = join(root, `q${q}`);
    await simulate(nodeSimOutput(dir[q]), { preset: tiny, seed: 5, shear: [0.02, 0], psfOversampling: q });
  }
  const r = await runPrepare(['--config', join(dir[2], 'config.yaml'), '--sub-tile', '1,1', '--out', join(dir[2], 'man'), '--no-cache', '--quiet']);
  expect(r.code, r.err).toBe(0);
  man = parseManifest(readFileSync(join(dir[2], 'man', manifestFileName(TILE, 1, 1)), 'utf8'));
}, 120_000);

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('prepare → ExposureSet with oversampled PSF grids', () => {
  it('carries psfOversampling = 2 and psfSize = 43 from the simulated PSF headers', async () => {
    expect(man.quadrants.length).toBeGreaterThan(1);
    const built = await buildExposureSet(refsOf(man), sourcesOf(man), OPTS, openFits);
    const { set } = built;
    expect(set.psfOversampling).toBe(2);
    expect(set.psfSize).toBe(psfStampSide(2));
    expect(set.psfSize).toBe(43);
    expect(set.pairs.length).toBeGreaterThan(0);
    for (const p of set.pairs) {
      const psf = p.psf!;
      expect(psf.length).toBe(43 * 43);
      let s = 0, peak = 0, kp = -1;
      psf.forEach((v, k) => { s += v; if (v > peak) { peak = v; kp = k; } });
      // unit sum, up to the exposure's flux scale (the same zero point and exposure time here)
      expect(Math.abs(s - 1)).toBeLessThan(1e-9);
      expect(kp).toBe(21 * 43 + 21);
    }
    for (const q of built.quadrants) expect(q.psf).toEqual({ stampSize: 43, oversampling: 2 });
    expect(() => validateExposureSet(set)).not.toThrow();
    console.log(`prepare → ExposureSet: ${set.sources.length} sources, ${set.quadrants.length} quadrants, ${set.pairs.length} pairs, psfSize ${set.psfSize}, psfOversampling ${set.psfOversampling}`);
  });

  it('native PSF grids give psfOversampling = 1; an explicit option overrides the headers', async () => {
    const native = refsOf(man, (q) => q.psf_file!.replace(dir[2], dir[1]));
    expect(native[0].psf.file).not.toBe(man.quadrants[0].psf_file);
    const n = await buildExposureSet(native, sourcesOf(man), OPTS, openFits);
    expect([n.set.psfOversampling, n.set.psfSize]).toEqual([1, 21]);
    const o = await buildExposureSet(native, sourcesOf(man), { ...OPTS, psfOversampling: 3 }, openFits);
    expect(o.set.psfOversampling).toBe(3);
    expect(o.quadrants.every((q) => q.psf.oversampling === 3)).toBe(true);
  });

  it('a source whose catalog size needs a stamp beyond the largest tier is reported, not silently truncated', async () => {
    const refs = sourcesOf(man);
    expect((await buildExposureSet(refsOf(man), refs, OPTS, openFits)).oversize).toEqual([]);
    // hlr 1.5″ = 15 px needs 2 (3 · 15 + 10.5) = 111 px: over the 64 tier, within 128
    const big = refs.map((r, i) => (i === 0 ? { ...r, hlr: 1.5 } : r));
    const b = await buildExposureSet(refsOf(man), big, OPTS, openFits);
    expect(b.oversize).toEqual([{ id: 0, needPixels: 111, stampSize: 64 }]);
    expect(b.set.sources[b.sources.findIndex((s) => s.id === 0)].stampSize).toBe(64);
    const w = oversizeWarning(b.oversize, OPTS.tiers, (id) => `OBJ${id}`)!;
    expect(w).toContain('OBJ0 (needs 111 px)');
    expect(w).toContain('stamps.tiers: 64 px');
    expect(oversizeWarning([], OPTS.tiers, String)).toBeNull();
    const b2 = await buildExposureSet(refsOf(man), big, { ...OPTS, tiers: [64, 128] }, openFits);
    expect(b2.oversize).toEqual([]);
    expect(b2.set.sources[b2.sources.findIndex((s) => s.id === 0)].stampSize).toBe(128);
  });

  it('PSF grids of different sampling in one sub-tile are an error naming both files', async () => {
    // the first exposure's PSFs from the native simulation, the others oversampled
    const firstExp = man.quadrants[0].exposure;
    const mixed = refsOf(man, (q) => (q.exposure === firstExp ? q.psf_file!.replace(dir[2], dir[1]) : undefined));
    expect(new Set(man.quadrants.map((q) => q.exposure)).size).toBeGreaterThan(1);
    const e = await buildExposureSet(mixed, sourcesOf(man), OPTS, openFits).then(() => null, (x: unknown) => x);
    expect(e).toBeInstanceOf(DataError);
    const msg = (e as Error).message;
    console.log(`mixed PSF sampling: ${msg}`);
    const other = mixed.find((q) => q.psf.file.startsWith(dir[2]))!;
    expect(msg).toMatch(/PSF grids of different oversampling in one sub-tile: 1 PSF pixel\(s\) per detector pixel in .*, 2 in /);
    expect(msg).toContain(`${mixed[0].psf.file} [${mixed[0].psf.hdu}]`);
    expect(msg).toContain(`${other.psf.file} [${other.psf.hdu}]`);
    expect(msg).toContain(psfFileName(tiny.obsId, Number(/-(\d\d)-1-/.exec(other.psf.file)![1])));
  });
});

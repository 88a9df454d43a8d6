/**
 * Hostile data through the real Stage 1 (`shine prepare`, in process) and the Stage-2 loader, on a
 * tiny simulated sky (the project's simulator): catalog rows with NaN/Inf/impossible values, empty
 * catalogs, duplicate OBJECT_IDs, bad flag values, missing columns; NaN/Inf pixels, zero or
 * negative RMS, an all-flagged quadrant; missing WCS keys, a CD matrix with keys missing, a PSF
 * that interpolates to sum 0.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simulate } from '../../engine/sim/simulate.ts';
import { nodeSimOutput } from '../../cli/commands/simulate.ts';
import { PRESETS, type Preset } from '../../engine/sim/presets.ts';
import prepare from '../../cli/commands/prepare.ts';
import { manifestFileName, parseManifest, type Manifest } from '../../engine/tiling/manifest.ts';
import { buildExposureSet, type QuadrantRef, type SourceRef } from '../../engine/exposures/exposure-set.ts';
import { quadrantChi2 } from '../../engine/subtile/quadrant-chi2.ts';
import { coverageMasks } from '../../engine/model/geometry.ts';
import { openFits } from '../../platform/node/files.ts';
import { writeFits, type ColumnSpec } from '../../engine/data/fits/index.ts';
import { asCli, errorCase, record } from './harness.ts';

const tiny: Preset = { ...PRESETS.ci, tileCore: 200, margin: 6, pad: 2, stampTiers: [64] };
const TILE = tiny.tileId;
let root = '';
let sim = '';
let catFile = '';
let cols: ColumnSpec[] = [];
let base: Manifest;

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

const configText = () => readFileSync(join(sim, 'config.yaml'), 'utf8');

/** A configuration whose MER catalog is `cols` after `mutate`. */
function catalogConfig(id: string, mutate: (c: Map<string, ColumnSpec>) => number | void): string {
  const m = new Map(cols.map((c) => [c.name, { ...c, data: (c.data as Float64Array).slice() } as ColumnSpec]));
  const nRows = mutate(m);
  const p = join(root, 'cats', `${id}.fits`);
  writeFileSync(p, writeFits([{ kind: 'empty' }, { kind: 'bintable', name: 'CATALOG', columns: [...m.values()], ...(nRows !== undefined ? { nRows } : {}) }]));
  return configText().replace(/mer_catalog: .*/, `mer_catalog: ${p}`);
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'shine-hostile-data-'));
  sim = join(root, 'sim');
  mkdirSync(join(root, 'cats'), { recursive: true });
  await simulate(nodeSimOutput(sim), { preset: tiny, seed: 5, shear: [0.02, 0] });
  catFile = join(sim, 'MER', readdirSync(join(sim, 'MER'))[0]);
  const f = await openFits(catFile);
  const t = await f.readTable(1);
  cols = t.names.map((n) => ({ name: n, format: t.column(n).format, data: t.column(n).data as Float64Array }));
  await f.close();
  const r = await runPrepare('base', configText());
  expect(r.code, r.stderr).toBe(0);
  base = r.manifest!;
}, 180_000);

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

/** Rows of the base manifest's sources (catalog rows, by OBJECT_ID). */
const ids = () => cols.find((c) => c.name === 'OBJECT_ID')!.data as BigInt64Array;
/** A catalog row that is a selected core source of sub-tile (1, 1). */
function selectedRow(k: number): number {
  const id = BigInt(base.sources.object_id[k]);
  return ids().findIndex((v) => v === id);
}

describe('catalog rows: non-finite or impossible values are a counted cut (non_finite), in the manifest', () => {
  const G = 'catalog';
  const bad: Array<[id: string, what: string, col: string, v: number]> = [
    ['nan-ra', 'RIGHT_ASCENSION = NaN', 'RIGHT_ASCENSION', NaN],
    ['inf-ra', 'RIGHT_ASCENSION = +Inf', 'RIGHT_ASCENSION', Infinity],
    ['nan-dec', 'DECLINATION = NaN', 'DECLINATION', NaN],
    ['dec-100', 'DECLINATION = 100 (beyond the pole)', 'DECLINATION', 100],
    ['nan-flux', 'FLUX_DETECTION_TOTAL = NaN', 'FLUX_DETECTION_TOTAL', NaN],
    ['inf-flux', 'FLUX_DETECTION_TOTAL = −Inf', 'FLUX_DETECTION_TOTAL', -Infinity],
    ['inf-size', 'SEMIMAJOR_AXIS = +Inf (was clipped to 0.05″)', 'SEMIMAJOR_AXIS', Infinity],
    ['nan-size', 'SEMIMAJOR_AXIS = NaN', 'SEMIMAJOR_AXIS', NaN],
    ['negative-size', 'SEMIMAJOR_AXIS = −3', 'SEMIMAJOR_AXIS', -3],
  ];
  let res: Awaited<ReturnType<typeof runPrepare>>;
  const rows: number[] = [];
  beforeAll(async () => {
    const text = catalogConfig('non-finite', (m) => {
      bad.forEach(([, , col], k) => {
        const r = selectedRow(k);
        rows.push(r);
        (m.get(col)!.data as Float64Array | Float32Array)[r] = bad[k][3];
      });
    });
    res = await runPrepare('non-finite', text);
  }, 120_000);
  for (const [k, [id, what]] of bad.entries()) {
    it(`${id}: ${what} → cut 'non_finite', counted in the manifest and the log`, () => {
      record(G, id, `a selected catalog row with ${what}`, 'cut');
      expect(res.code, res.stderr).toBe(0);
      const cuts = res.manifest!.catalogs[0].cuts;
      expect(cuts[0]).toEqual({ cut: 'non_finite', failed: bad.length, remaining: base.catalogs[0].n_rows - bad.length });
      expect(res.stderr).toMatch(new RegExp(`non_finite −${bad.length}`));
      const gone = String(ids()[rows[k]]);
      expect(res.manifest!.sources.object_id.map(String)).not.toContain(gone);
    });
  }

  it('duplicate-object-id: a row repeated → cut duplicate_object_id', async () => {
    record(G, 'duplicate-object-id', 'two catalog rows with the same OBJECT_ID', 'cut');
    const n = base.catalogs[0].n_rows;
    const r = await runPrepare('dup', catalogConfig('dup', (m) => {
      for (const c of m.values()) {
        const d = c.data as Float64Array;
        const out = new (d.constructor as Float64ArrayConstructor)(n + 1);
        out.set(d);
        out[n] = d[selectedRow(0)];
        c.data = out;
      }
      return n + 1;
    }));
    expect(r.code, r.stderr).toBe(0);
    expect(r.manifest!.catalogs[0].cuts.find((c) => c.cut === 'duplicate_object_id')).toMatchObject({ failed: 1 });
  }, 60_000);

  it('bad-flag-values: VIS_DET = 7, SPURIOUS_FLAG = −1, DET_QUALITY_FLAG all bits → counted by their cuts', async () => {
    record(G, 'bad-flag-values', 'flag columns holding values outside their meaning (VIS_DET 7, SPURIOUS −1, DET_QUALITY all bits)', 'cut');
    const r = await runPrepare('flags', catalogConfig('flags', (m) => {
      (m.get('VIS_DET')!.data as Int16Array)[selectedRow(0)] = 7;
      (m.get('SPURIOUS_FLAG')!.data as Int16Array)[selectedRow(1)] = -1;
      (m.get('DET_QUALITY_FLAG')!.data as Int32Array)[selectedRow(2)] = -1;
    }));
    expect(r.code, r.stderr).toBe(0);
    const cuts = Object.fromEntries(r.manifest!.catalogs[0].cuts.map((c) => [c.cut, c.failed]));
    const b = Object.fromEntries(base.catalogs[0].cuts.map((c) => [c.cut, c.failed]));
    expect(cuts.vis_det).toBe(b.vis_det + 1);
    expect(cuts.spurious).toBe(b.spurious + 1);
    expect(cuts.det_quality).toBe(b.det_quality + 1);
    expect(r.manifest!.catalogs[0].n_selected).toBe(base.catalogs[0].n_selected - 3);
  }, 60_000);

  it('empty-catalog: a MER catalog with 0 rows → 0 rows, 0 sources, reported (Stage 2 then records the sub-tile as empty)', async () => {
    record(G, 'empty-catalog', 'a MER catalog with no row', 'cut');
    const r = await runPrepare('empty', catalogConfig('empty', (m) => {
      for (const c of m.values()) c.data = (c.data as Float64Array).slice(0, 0);
      return 0;
    }));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/prepare: catalog empty\.fits: 0 rows, 0 selected/);
    expect(r.stderr).toMatch(/prepare: sub-tile \(1, 1\): 0 sources \(0 core\)/);
    expect(r.manifest!.sources.ra).toEqual([]);
  }, 60_000);

  it('missing-column: a MER catalog without SEMIMAJOR_AXIS', async () => {
    const text = catalogConfig('nocol', (m) => void m.delete('SEMIMAJOR_AXIS'));
    const cfg = join(sim, 'c-nocol.yaml');
    writeFileSync(cfg, text);
    await errorCase(G, 'missing-column', 'a MER catalog without its SEMIMAJOR_AXIS column', () => prepare.run(['--config', cfg, '--sub-tile', '1,1', '--out', join(root, 'man', 'nocol'), '--no-cache', '--quiet']), /nocol\.fits.*key SEMIMAJOR_AXIS: missing catalog column SEMIMAJOR_AXIS/);
  }, 60_000);

  it('missing-catalog-file: a data.mer_catalog path that does not exist', async () => {
    const cfg = join(sim, 'c-nocat.yaml');
    writeFileSync(cfg, configText().replace(/mer_catalog: .*/, 'mer_catalog: MER/none.fits'));
    await errorCase(G, 'missing-catalog-file', 'a data.mer_catalog file that does not exist', () => prepare.run(['--config', cfg, '--sub-tile', '1,1', '--out', join(root, 'man', 'nocat'), '--no-cache', '--quiet']), /none\.fits/);
  }, 60_000);
});

// ---------------------------------------------------------------------------------------------
// pixels: through the Stage-2 loader and the per-quadrant pixel counts of the metadata

const OPTS = { tiers: [64], badPixelMask: 0x1, pixelScale: 0.1 };

function refsOf(m: Manifest, file?: (q: Manifest['quadrants'][number]) => string): QuadrantRef[] {
  return m.quadrants.map((q) => ({
    id: q.id, file: file?.(q) ?? q.file, sci: q.sci_hdu, rms: q.rms_hdu, flg: q.flg_hdu,
    bkg: { file: q.bkg_file!, hdu: q.bkg_hdu! },
    psf: { file: q.psf_file!, hdu: q.psf_hdu! },
  }));
}
function sourcesOf(m: Manifest): SourceRef[] {
  return m.sources.ra.map((ra, i) => ({ id: i, ra, dec: m.sources.dec[i], fluxUJy: 10, hlr: 0.2, core: m.sources.core[i] }));
}

/** The quadrant (index in the base manifest) with the most modelled pixels. */
let QI = 0;

/** A copy of quadrant QI's DET file with `fn` applied to the big-endian data bytes of one of its HDUs. */
async function mutateDet(id: string, which: 'sci' | 'rms' | 'flg', fn: (view: DataView, n: number, bytesPer: number) => void): Promise<string> {
  const q = base.quadrants[QI];
  const f = await openFits(q.file);
  const hdu = f.hdu(which === 'sci' ? q.sci_hdu : which === 'rms' ? q.rms_hdu : q.flg_hdu);
  await f.close();
  const bytes = new Uint8Array(readFileSync(q.file));
  const per = Math.abs(hdu.bitpix) / 8;
  fn(new DataView(bytes.buffer, hdu.dataOffset, hdu.dataSize), hdu.dataSize / per, per);
  const p = join(root, `det-${id}.fits`);
  writeFileSync(p, bytes);
  return p;
}

async function pixelCounts(file?: string): Promise<{ n: number[]; covered: number }> {
  const built = await buildExposureSet(refsOf(base, (q) => (q === base.quadrants[QI] && file ? file : q.file)), sourcesOf(base), OPTS, openFits);
  const zeros = built.set.quadrants.map((q) => new Float64Array(q.width * q.height));
  const chi = quadrantChi2(built.set, zeros, OPTS.badPixelMask);
  const cov = coverageMasks(built.set)[QI];
  let covered = 0;
  for (let i = 0; i < cov.length; i++) covered += cov[i];
  return { n: chi.map((c) => c.n_pixels), covered };
}

describe('pixels: NaN/Inf, RMS ≤ 0, flags → left out of the likelihood and counted (metadata quadrant_chi2.n_pixels)', () => {
  const G = 'pixels';
  let ref: { n: number[]; covered: number };
  beforeAll(async () => {
    ref = await pixelCounts();
    QI = ref.n.indexOf(Math.max(...ref.n));
    ref = await pixelCounts();
  }, 120_000);
  const cases: Array<[id: string, what: string, which: 'sci' | 'rms' | 'flg', value: (v: DataView, o: number) => void]> = [
    ['nan-pixels', 'SCI pixels = NaN', 'sci', (v, o) => v.setFloat32(o, NaN)],
    ['inf-pixels', 'SCI pixels = +Inf', 'sci', (v, o) => v.setFloat32(o, Infinity)],
    ['zero-rms', 'RMS = 0', 'rms', (v, o) => v.setFloat32(o, 0)],
    ['negative-rms', 'RMS = −1', 'rms', (v, o) => v.setFloat32(o, -1)],
    ['nan-rms', 'RMS = NaN', 'rms', (v, o) => v.setFloat32(o, NaN)],
  ];
  for (const [id, what, which, set] of cases) {
    it(`${id}: every other ${what} in a quadrant → those pixels are not counted`, async () => {
      record(G, id, `${what} in part of a quadrant`, 'cut');
      let changed = 0;
      const p = await mutateDet(id, which, (v, n, per) => {
        for (let k = 0; k < n; k += 2) {
          set(v, k * per);
          changed++;
        }
      });
      const got = await pixelCounts(p);
      expect(changed).toBeGreaterThan(0);
      expect(ref.n[QI]).toBeGreaterThan(100);
      expect(got.n[QI]).toBeLessThan(ref.n[QI]);
      expect(got.n[QI]).toBeGreaterThan(0);
      expect(got.n.filter((_, j) => j !== QI)).toEqual(ref.n.filter((_, j) => j !== QI));
    }, 60_000);
  }
  it('all-flagged: every FLG pixel of a quadrant set → n_pixels 0 (Stage 2 warns "constrains nothing")', async () => {
    record(G, 'all-flagged', 'a quadrant whose every pixel is flagged', 'cut');
    const p = await mutateDet('flagged', 'flg', (v, n, per) => {
      for (let k = 0; k < n; k++) {
        if (per === 4) v.setInt32(k * per, 0x7fffffff);
        else if (per === 2) v.setInt16(k * per, 0x7fff);
        else v.setUint8(k, 0xff);
      }
    });
    const got = await pixelCounts(p);
    expect(ref.n[QI]).toBeGreaterThan(100);
    expect(got.n[QI]).toBe(0);
    expect(got.n.filter((_, j) => j !== QI)).toEqual(ref.n.filter((_, j) => j !== QI));
  }, 60_000);
});

describe('WCS and PSF headers', () => {
  const G = 'wcs-psf';
  /** A copy of quadrant QI's DET file with cards of its SCI header replaced. */
  async function detWithCards(id: string, repl: Array<[key: string, card: string]>): Promise<string> {
    const q = base.quadrants[QI];
    const f = await openFits(q.file);
    const h = f.hdu(q.sci_hdu);
    await f.close();
    const bytes = new Uint8Array(readFileSync(q.file));
    const text = new TextDecoder('latin1').decode(bytes.subarray(h.headerOffset, h.dataOffset));
    for (const [key, card] of repl) {
      let o = -1;
      for (let c = 0; c < text.length; c += 80) if (text.slice(c, c + 8).trimEnd() === key) o = c;
      if (o < 0) throw new Error(`no ${key}`);
      const s = card.padEnd(80);
      for (let k = 0; k < 80; k++) bytes[h.headerOffset + o + k] = s.charCodeAt(k);
    }
    const p = join(root, `det-${id}.fits`);
    writeFileSync(p, bytes);
    return p;
  }
  const detWithCard = (id: string, key: string, card: string) => detWithCards(id, [[key, card]]);
  const load = (p: string) => () => buildExposureSet(refsOf(base, (q) => (q === base.quadrants[QI] ? p : q.file)), sourcesOf(base), OPTS, openFits).then(() => 0);
  const gone = 'COMMENT removed';
  const cases: Array<[id: string, what: string, key: string, card: string, re: RegExp]> = [
    ['no-ctype1', 'CTYPE1 missing', 'CTYPE1', gone, /key CTYPE1: missing WCS keyword/],
    ['no-crval2', 'CRVAL2 missing', 'CRVAL2', gone, /key CRVAL2: /],
    ['no-crpix1', 'CRPIX1 missing', 'CRPIX1', gone, /key CRPIX1: /],
    ['ctype-sin', "CTYPE1 = 'RA---SIN'", 'CTYPE1', "CTYPE1  = 'RA---SIN'", /key CTYPE1: unsupported CTYPE pair|key CTYPE2: .*disagree/],
    ['crval-text', "CRVAL1 = 'abc'", 'CRVAL1', "CRVAL1  = 'abc'", /key CRVAL1/],
    ['cd-text', "CD1_1 = 'x'", 'CD1_1', "CD1_1   = 'x'", /key CD1_1/],
  ];
  for (const [id, what, key, card, re] of cases) {
    it(`${id}: ${what} → one line naming file, HDU and key`, async () => {
      const p = await detWithCard(id, key, card);
      await errorCase(G, id, `a quadrant SCI header with ${what}`, load(p), new RegExp(`det-${id}\\.fits, HDU ${base.quadrants[QI].sci_hdu.replace(/\./g, '\\.')}, (${re.source})`));
    }, 60_000);
  }
  it('cd-singular: CD1_1 and CD2_1 missing → an error naming the missing key', async () => {
    const p = await detWithCards('cd-singular', [['CD1_1', gone], ['CD2_1', gone]]);
    await errorCase(G, 'cd-singular', 'a CD matrix made singular by missing keys (CD1_1, CD2_1)', load(p), /key CD1_1: CD matrix is singular: CD1_1, CD2_1 missing \(taken as 0/);
  }, 60_000);
  it('cd-partial: CD1_2 missing → prepare warns naming file, HDU and key, and goes on', async () => {
    record(G, 'cd-partial', 'a CD matrix with CD1_2 missing (taken as 0 by the standard)', 'cut');
    const p = await detWithCard('cd-partial', 'CD1_2', gone);
    const q0 = base.quadrants[QI];
    const d = join(root, 'vis-partial');
    mkdirSync(d, { recursive: true });
    const dets = readdirSync(join(sim, 'VIS')).filter((f) => f.includes('-DET-'));
    const text = configText().replace(/mer_catalog: .*/, `mer_catalog: ${catFile}`);
    // the damaged DET file replaces quadrant 0's own
    for (const f of dets) copyFileSync(join(sim, 'VIS', f), join(d, f));
    copyFileSync(p, join(d, q0.file.split('/').pop()!));
    const cfg = join(sim, 'c-cd-partial.yaml');
    writeFileSync(cfg, text.replace(/exposures:.*\n((\s+- .*\n)*)/, `exposures: ${d}/*-DET-*.fits\n`));
    const r = await asCli(() => prepare.run(['--config', cfg, '--sub-tile', '1,1', '--out', join(root, 'man', 'cd-partial'), '--no-cache']));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(new RegExp(`prepare: warning: file .*, HDU ${q0.sci_hdu.replace(/\./g, '\\.')}, key CD1_2: CD1_2 missing, taken as 0 \\(FITS standard\\)`.replace('HDU', `HDU`)));
  }, 120_000);
  it('psf-sum-zero: a PSF grid of zeros → one line naming file, HDU and position', async () => {
    const q = base.quadrants[QI];
    const f = await openFits(q.psf_file!);
    const h = f.hdu(q.psf_hdu!);
    await f.close();
    const bytes = new Uint8Array(readFileSync(q.psf_file!));
    bytes.fill(0, h.dataOffset, h.dataOffset + h.dataSize);
    const p = join(root, 'psf-zero.fits');
    writeFileSync(p, bytes);
    const refs = refsOf(base).map((r, j) => (j === QI ? { ...r, psf: { file: p, hdu: q.psf_hdu! } } : r));
    await errorCase(G, 'psf-sum-zero', 'a PSF grid that interpolates to sum 0', () => buildExposureSet(refs, sourcesOf(base), OPTS, openFits).then(() => 0), new RegExp(`file .*psf-zero\\.fits, HDU ${q.psf_hdu!.replace(/\./g, '\\.')}: the PSF interpolated at pixel \\(.*\\) .* has sum 0`));
  }, 60_000);
  it('psf-nan: a NaN in a PSF stamp → one line naming file, HDU and stamp', async () => {
    const q = base.quadrants[QI];
    const f = await openFits(q.psf_file!);
    const h = f.hdu(q.psf_hdu!);
    await f.close();
    const bytes = new Uint8Array(readFileSync(q.psf_file!));
    new DataView(bytes.buffer, h.dataOffset).setFloat32(400, NaN);
    const p = join(root, 'psf-nan.fits');
    writeFileSync(p, bytes);
    const refs = refsOf(base).map((r, j) => (j === QI ? { ...r, psf: { file: p, hdu: q.psf_hdu! } } : r));
    await errorCase(G, 'psf-nan', 'a NaN pixel in a PSF stamp', () => buildExposureSet(refs, sourcesOf(base), OPTS, openFits).then(() => 0), /psf-nan\.fits, HDU .*: PSF stamp \(\d+, \d+\) has a non-finite pixel/);
  }, 60_000);
  it('missing-rms-hdu: a quadrant reference whose RMS HDU does not exist', async () => {
    const refs = refsOf(base).map((r, j) => (j === QI ? { ...r, rms: 'NOPE.RMS' } : r));
    await errorCase(G, 'missing-rms-hdu', 'a quadrant whose RMS HDU is missing', () => buildExposureSet(refs, sourcesOf(base), OPTS, openFits).then(() => 0), /HDU NOPE\.RMS, key EXTNAME: no HDU with EXTNAME 'NOPE\.RMS'/);
  }, 60_000);
});

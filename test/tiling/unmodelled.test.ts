/**
 * Unmodelled objects (issue 11 item 4): `shine prepare` lists, per sub-tile, the catalog objects
 * the selection removed (and selected ones beyond the extended area) whose mask disc reaches the
 * modelled area — checked against a brute-force scan of the simulator's MER catalog read and cut
 * by astropy/numpy (test/fixtures/tiling/catalog_cuts.py); Stage 2's disc mask on a real quadrant
 * against a brute-force per-pixel computation through the full WCS and spherical distances;
 * version-1 manifests still parse; several catalogs (a neighbour's) give the same sub-tile.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { simulate } from '../../engine/sim/simulate.ts';
import { nodeSimOutput } from '../../cli/commands/simulate.ts';
import prepareCommand from '../../cli/commands/prepare.ts';
import { commandExitCode } from '../../cli/command.ts';
import { openFits } from '../../platform/node/files.ts';
import { manifestFileName, manifestToYaml, parseManifest, type Manifest } from '../../engine/tiling/manifest.ts';
import { boxDistance, reachingObjects } from '../../engine/tiling/partition.ts';
import { TileGeometry } from '../../engine/tiling/geometry.ts';
import { tangentPlane, skyToVec } from '../../engine/data/wcs/sphere.ts';
import { readWcs } from '../../engine/data/wcs/index.ts';
import { writeFits, type HduSpec } from '../../engine/data/fits/index.ts';
import { applyUnmodelledMask, maskUnmodelled, UNMODELLED_FLAG_BIT } from '../../engine/exposures/masking.ts';
import { defaultConfig } from '../../engine/config/index.ts';
import { runPython, astropyPython } from '../wcs/python.ts';

const TILE = 102018211;
const TILE_RA = 57.9990741;
const TILE_DEC = -51.5;
const FIXTURE = new URL('../fixtures/tiling/catalog_cuts.py', import.meta.url).pathname;

let dir = '';
let man: Manifest;
let merFile = '';

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

/**
 * The default mask radius, written out independently of engine/exposures/masking.ts; with `wingMag`
 * a galaxy's disc reaches where its exponential (hlr a) leaves that magnitude's flux outside, the
 * root of (1 + x) e^(−x) = 10^(−0.4 (wingMag − mag)) found by bisection.
 */
function radiusOf(o: { flux: number; semimajorArcsec: number; pointLike: boolean }, wingMag: number | null = null): number {
  const a = Number.isFinite(o.semimajorArcsec) && o.semimajorArcsec > 0 ? o.semimajorArcsec : 0;
  let r = Math.max(3 * a, 0.7);
  const mag = o.flux > 0 ? 23.9 - 2.5 * Math.log10(o.flux) : NaN;
  if (o.pointLike && mag < 22) r = Math.max(r, Math.min(6, 1.5 * 10 ** (-0.2 * (mag - 20))));
  if (!o.pointLike && wingMag !== null && mag < wingMag && a > 0) {
    const q = 10 ** (-0.4 * (wingMag - mag));
    let lo = 0;
    let hi = 200;
    for (let i = 0; i < 200; i++) {
      const mid = (lo + hi) / 2;
      if ((1 + mid) * Math.exp(-mid) > q) lo = mid;
      else hi = mid;
    }
    r = Math.max(r, (lo * a) / 1.6783469900166605);
  }
  return r;
}

type CatalogRow = { id: string; ra: number; dec: number; flux: number; semimajor: number; point_like: boolean; cut: string | null };

/** Brute force: every catalog row against the extended box grown by the stamps' reach and its own radius; ties (|d − lim| < 1 µas) counted apart. */
function bruteForceListing(rows: CatalogRow[], m: Manifest, wingMag: number | null): { expected: Map<string, string>; ties: number } {
  const tp = tangentPlane(TILE_RA, TILE_DEC);
  const ext = m.sub_tile.extended;
  const R = m.unmodelled!.search.beyond_extended_arcsec;
  const expected = new Map<string, string>();
  let ties = 0;
  for (const o of rows) {
    const [u, v] = tp.toUV(o.ra, o.dec);
    const xi = -u;
    const inExt = xi >= ext.xi[0] && xi < ext.xi[1] && v >= ext.eta[0] && v < ext.eta[1];
    if (o.cut === null && inExt) continue; // modelled
    const d = Math.hypot(Math.max(ext.xi[0] - xi, 0, xi - ext.xi[1]), Math.max(ext.eta[0] - v, 0, v - ext.eta[1]));
    const lim = R + radiusOf({ flux: o.flux, semimajorArcsec: o.semimajor * 0.1, pointLike: o.point_like }, wingMag);
    if (Math.abs(d - lim) < 1e-6) {
      ties++;
      continue;
    }
    if (d <= lim) expected.set(o.id, o.cut ?? 'outside_extended_area');
  }
  return { expected, ties };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'shine-unmodelled-'));
  await simulate(nodeSimOutput(dir), { preset: 'ci', seed: 777, shear: [-0.02, 0] });
  const r = await runPrepare(['--config', join(dir, 'config.yaml'), '--sub-tile', '1,1', '--out', join(dir, 'man'), '--no-cache']);
  expect(r.code, r.err).toBe(0);
  expect(r.err).toMatch(/sub-tile \(1, 1\): \d+ sources \(\d+ core\), 8 quadrants, \d+ unmodelled object\(s\) near it/);
  man = parseManifest(readFileSync(join(dir, 'man', manifestFileName(TILE, 1, 1)), 'utf8'));
  merFile = join(dir, 'MER', readFileSync(join(dir, 'config.yaml'), 'utf8').match(/mer_catalog: MER\/(\S+)/)![1]);
}, 300_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('prepare lists the unmodelled objects of a sub-tile', () => {
  it('equals a brute-force scan of the catalog (astropy + numpy cuts, every row against the grown extended box)', () => {
    if (!astropyPython()) throw new Error('python3 with astropy not found (set SHINE_PYTHON)');
    const rows = JSON.parse(runPython(FIXTURE, [merFile])) as CatalogRow[];
    // stamps of the largest tier (128 px) reach √2·65 px beyond the extended box, +1 % pixel scale
    const R = Math.SQRT2 * 65 * 0.1 * 1.01;
    expect(man.unmodelled!.search.beyond_extended_arcsec).toBeCloseTo(R, 12);
    const { expected, ties } = bruteForceListing(rows, man, null);
    const got = new Map(man.unmodelled!.object_id.map((id, k) => [id, man.unmodelled!.cut[k]]));
    expect(ties).toBe(0);
    expect([...got.entries()].sort()).toEqual([...expected.entries()].sort());
    const byCut: Record<string, number> = {};
    for (const c of got.values()) byCut[c] = (byCut[c] ?? 0) + 1;
    console.log(`ci seed 777 sub-tile (1, 1): ${got.size} unmodelled objects listed`, byCut);
    expect(got.size).toBeGreaterThan(20);
    // catalog values copied through
    man.unmodelled!.object_id.forEach((id, k) => {
      const o = rows.find((r) => r.id === id)!;
      expect(man.unmodelled!.point_like[k]).toBe(o.point_like);
      expect(man.unmodelled!.semimajor_arcsec[k]).toBeCloseTo(o.semimajor * 0.1, 10);
      expect(man.unmodelled!.mag[k]).toBeCloseTo(23.9 - 2.5 * Math.log10(o.flux), 6);
    });
  });

  it('with masking.wing_flux_mag the listing follows the widened discs (brute force with a bisection radius)', async () => {
    if (!astropyPython()) throw new Error('python3 with astropy not found (set SHINE_PYTHON)');
    const cfgText = readFileSync(join(dir, 'config.yaml'), 'utf8');
    expect(cfgText).not.toMatch(/^masking:/m);
    writeFileSync(join(dir, 'config-wings.yaml'), `${cfgText}\nmasking:\n  wing_flux_mag: 33\n`);
    const r = await runPrepare(['--config', join(dir, 'config-wings.yaml'), '--sub-tile', '1,1', '--out', join(dir, 'man-wings'), '--no-cache']);
    expect(r.code, r.err).toBe(0);
    const mw = parseManifest(readFileSync(join(dir, 'man-wings', manifestFileName(TILE, 1, 1)), 'utf8'));
    expect(mw.unmodelled!.search.rule.wing_flux_mag).toBe(33);
    const rows = JSON.parse(runPython(FIXTURE, [merFile])) as CatalogRow[];
    const { expected, ties } = bruteForceListing(rows, mw, 33);
    const got = new Map(mw.unmodelled!.object_id.map((id, k) => [id, mw.unmodelled!.cut[k]]));
    expect(ties).toBe(0);
    expect([...got.entries()].sort()).toEqual([...expected.entries()].sort());
    const plain = new Set(man.unmodelled!.object_id);
    const added = [...got.keys()].filter((id) => !plain.has(id));
    expect([...plain].every((id) => got.has(id))).toBe(true);
    // Stage 2's radii of the listed objects under the rule, against the bisection
    const u = mw.unmodelled!;
    const objects = u.ra.map((ra, k) => ({ ra, dec: u.dec[k], mag: u.mag[k], semimajorArcsec: u.semimajor_arcsec[k], pointLike: u.point_like[k] }));
    const q = mw.quadrants[0];
    const res = maskUnmodelled([{ name: q.id, width: 1, height: 1, flags: new Int32Array(1), wcs: { skyToPixel: () => [-1e6, -1e6], localJacobian: () => [0.1, 0, 0, 0.1] } }], objects, { ...defaultConfig().masking, wing_flux_mag: 33 });
    let widened = 0;
    objects.forEach((o, k) => {
      const flux = 10 ** ((23.9 - o.mag) / 2.5);
      expect(res.radius[k]).toBeCloseTo(radiusOf({ flux, semimajorArcsec: o.semimajorArcsec, pointLike: o.pointLike }, 33), 9);
      if (res.radius[k] > radiusOf({ flux, semimajorArcsec: o.semimajorArcsec, pointLike: o.pointLike }) + 1e-9) widened++;
    });
    console.log(`wing_flux_mag 33: ${got.size} unmodelled objects listed (${added.length} more than the footprint rule alone), ${widened} discs widened`);
    expect(widened).toBeGreaterThan(20);
  });

  it('lists the magnitude-20.4 star next to the margin galaxy, as point-like, removed by the point_like cut', async () => {
    const f = await openFits(join(dir, 'truth', 'sources.fits'));
    const t = await f.readTable(1);
    await f.close();
    const isStar = t.column('IS_STAR').data as ArrayLike<unknown>;
    const mag = t.column('MAG').data as ArrayLike<number>;
    const ids = t.column('OBJECT_ID').data as BigInt64Array;
    const ra = t.column('RA').data as Float64Array;
    const dec = t.column('DEC').data as Float64Array;
    const tp = tangentPlane(TILE_RA, TILE_DEC);
    const ext = man.sub_tile.extended;
    const stars: string[] = [];
    for (let i = 0; i < t.nRows; i++) {
      if (!isStar[i] || !(mag[i] > 20.3 && mag[i] < 20.5)) continue;
      const [u, v] = tp.toUV(ra[i], dec[i]);
      if (boxDistance(ext, -u, v) === 0) stars.push(ids[i].toString());
    }
    expect(stars.length).toBeGreaterThanOrEqual(1);
    const u = man.unmodelled!;
    for (const id of stars) {
      const k = u.object_id.indexOf(id);
      expect(k, `star ${id}`).toBeGreaterThanOrEqual(0);
      expect(u.point_like[k]).toBe(true);
      expect(u.cut[k]).toBe('point_like');
      expect(u.mag[k]).toBeGreaterThan(20.2);
      expect(u.mag[k]).toBeLessThan(20.6);
    }
  });

  it('the KD-tree query equals a brute-force distance scan (random points and radii, several sub-tiles)', () => {
    const geom = new TileGeometry({ tileId: 1, ra: 10, dec: 80, coreArcsec: 240, extendedArcsec: 360 }, { rows: 4, cols: 4, marginArcsec: 12 });
    let seed = 5;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const n = 3000;
    const xi = Float64Array.from({ length: n }, () => (rnd() - 0.5) * 300);
    const eta = Float64Array.from({ length: n }, () => (rnd() - 0.5) * 300);
    const reach = Float64Array.from({ length: n }, () => (rnd() < 0.1 ? 6 * rnd() : 0.7));
    xi[7] = NaN;
    const fast = reachingObjects(geom, xi, eta, reach, 9.28);
    geom.subTiles().forEach((st) => {
      const slow: number[] = [];
      for (let i = 0; i < n; i++) if (Number.isFinite(xi[i]) && boxDistance(st.extended, xi[i], eta[i]) <= 9.28 + reach[i]) slow.push(i);
      expect(Array.from(fast[st.index])).toEqual(slow);
    });
  });
});

describe('Stage 2 masks the discs', () => {
  it('the masked pixel set of a quadrant equals a brute-force per-pixel disc test (full WCS, spherical distance)', async () => {
    const q = man.quadrants[0];
    const f = await openFits(q.file);
    const wcs = readWcs(f, q.sci_hdu);
    await f.close();
    const u = man.unmodelled!;
    const cfg = defaultConfig().masking;
    const objects = u.ra.map((ra, k) => ({ ra, dec: u.dec[k], mag: u.mag[k], semimajorArcsec: u.semimajor_arcsec[k], pointLike: u.point_like[k] }));
    const flags = new Int32Array(q.width * q.height);
    flags[5] = 0x4; // an unrelated flag is kept
    const res = maskUnmodelled([{ name: q.id, width: q.width, height: q.height, flags, wcs }], objects, cfg);
    // brute force: every pixel centre through the full WCS, great-circle distance to every object
    const radius = objects.map((o) => radiusOf({ flux: 10 ** ((23.9 - o.mag) / 2.5), semimajorArcsec: o.semimajorArcsec, pointLike: o.pointLike }));
    objects.forEach((_, k) => expect(res.radius[k]).toBeCloseTo(radius[k], 12));
    const vecs = objects.map((o) => skyToVec(o.ra, o.dec));
    const RAD = 180 / Math.PI * 3600;
    let masked = 0;
    let mismatched = 0;
    let ties = 0;
    for (let y = 0; y < q.height; y++) {
      for (let x = 0; x < q.width; x++) {
        const [ra, dec] = wcs.pixelToSky(x, y);
        const p = skyToVec(ra, dec);
        let inside = false;
        let tie = false;
        for (let k = 0; k < vecs.length; k++) {
          const a = vecs[k];
          const dx = p[0] - a[0], dy = p[1] - a[1], dz = p[2] - a[2];
          const d = 2 * Math.asin(Math.hypot(dx, dy, dz) / 2) * RAD;
          if (Math.abs(d - radius[k]) < 1e-5) tie = true; // 10 µas: the local-Jacobian distance is exact to ≪ 1 µas here
          else if (d < radius[k]) inside = true;
        }
        const i = y * q.width + x;
        const got = (flags[i] & UNMODELLED_FLAG_BIT) !== 0;
        if (got) masked++;
        if (got !== inside) {
          if (tie && !inside) ties++;
          else mismatched++;
        }
      }
    }
    console.log(`quadrant ${q.id}: ${masked} pixels masked by ${res.touched.reduce((a, b) => a + b, 0)} objects, ${mismatched} differ from the brute force (${ties} within 10 µas of a disc edge)`);
    expect(masked).toBeGreaterThan(100);
    expect(mismatched).toBe(0);
    expect(ties).toBeLessThanOrEqual(2);
    expect(res.maskedPerQuadrant[0]).toBe(masked);
    expect(flags[5] & 0x4).toBe(0x4);
  }, 120_000);
});

describe('manifest versions and several catalogs', () => {
  it('a version-1 manifest without the unmodelled list parses (none), and Stage 2 warns', () => {
    const v1 = { ...man, version: 1 as const };
    delete (v1 as Partial<Manifest>).unmodelled;
    const back = parseManifest(manifestToYaml(v1), 'old.yaml');
    expect(back.unmodelled).toBeUndefined();
    const flags = new Int32Array(4);
    const r = applyUnmodelledMask(
      { quadrants: [{ name: 'q', width: 2, height: 2, flags }], wcs: [{ skyToPixel: () => [0, 0], localJacobian: () => [0.1, 0, 0, 0.1] }], pairs: [], sourceName: String },
      back.unmodelled,
      defaultConfig().masking,
      0x1,
    );
    expect(r.summary.listed).toBeNull();
    expect(r.warnings.join('\n')).toMatch(/no unmodelled objects.*older shine prepare.*re-run shine prepare/);
    // version 2 round trip, NaN values included
    const m2 = structuredClone(man);
    m2.unmodelled!.mag[0] = NaN;
    m2.unmodelled!.flux[0] = NaN;
    const again = parseManifest(manifestToYaml(m2), 'v2.yaml');
    expect(again).toEqual(m2);
    expect(Number.isNaN(again.unmodelled!.mag[0])).toBe(true);
    // inconsistent lists are refused, naming the field
    const bad = structuredClone(man);
    bad.unmodelled!.cut.pop();
    expect(() => parseManifest(manifestToYaml(bad), 'bad.yaml')).toThrow(/bad\.yaml: unmodelled\.cut: has \d+ entries/);
  });

  it("the sub-tile is the same when the catalog is split in two files (a neighbour's catalog listed after the tile's)", async () => {
    const f = await openFits(merFile);
    const tab = await f.readTable(1);
    const hdr = f.hdus[1];
    await f.close();
    const ra = tab.column('RIGHT_ASCENSION').data as Float64Array;
    const dec = tab.column('DECLINATION').data as Float64Array;
    const tp = tangentPlane(TILE_RA, TILE_DEC);
    const core = man.sub_tile.core;
    const inCore = Array.from({ length: tab.nRows }, (_, i) => {
      const [u, v] = tp.toUV(ra[i], dec[i]);
      return boxDistance(core, -u, v) === 0;
    });
    const part = (keep: boolean): HduSpec => {
      const idx = inCore.flatMap((c, i) => (c === keep ? [i] : []));
      return {
        kind: 'bintable',
        name: hdr.name,
        nRows: idx.length,
        columns: tab.names.map((name) => {
          const src = tab.column(name).data as unknown as { constructor: new (n: number) => Record<number, unknown> } & Record<number, unknown>;
          const out = new src.constructor(idx.length);
          idx.forEach((i, k) => (out[k] = src[i]));
          return { name, data: out as never };
        }),
      };
    };
    writeFileSync(join(dir, 'MER', 'tile.fits'), writeFits([{ kind: 'empty' }, part(true)]));
    writeFileSync(join(dir, 'MER', 'neighbour.fits'), writeFits([{ kind: 'empty' }, part(false)]));
    const cfgText = readFileSync(join(dir, 'config.yaml'), 'utf8').replace(/mer_catalog: .*\n/, 'mer_catalog: [MER/tile.fits, MER/neighbour.fits]\n');
    writeFileSync(join(dir, 'config-split.yaml'), cfgText);
    const r = await runPrepare(['--config', join(dir, 'config-split.yaml'), '--sub-tile', '1,1', '--out', join(dir, 'man-split'), '--no-cache']);
    expect(r.code, r.err).toBe(0);
    const m = parseManifest(readFileSync(join(dir, 'man-split', manifestFileName(TILE, 1, 1)), 'utf8'));
    expect(m.catalogs).toHaveLength(2);
    expect([...m.sources.object_id].sort()).toEqual([...man.sources.object_id].sort());
    expect([...m.unmodelled!.object_id].sort()).toEqual([...man.unmodelled!.object_id].sort());
    // the margin sources come from the second catalog, the core ones from the first
    m.sources.core.forEach((c, k) => expect(m.sources.catalog[k]).toBe(c ? 0 : 1));
    expect(m.sources.catalog.filter((c) => c === 1).length).toBeGreaterThan(5);
  }, 120_000);
});

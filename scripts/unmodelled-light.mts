/**
 * Where the light that no model holds lands (a diagnostic for noise-free calibrations,
 * docs/calibrate.md "What the light outside the masks is"): for one simulated sub-tile
 * (a `shine calibrate` member folder, which records in simulation.json how it was simulated), the
 * truth objects that Stage 2 does not model (stars, galaxies the selection drops, objects the
 * catalog never detected) are rendered alone by the simulator's float64 truth renderer, without
 * noise, and their χ² = Σ (light / rms)² is summed over the likelihood's own pixels — the sub-tile
 * loaded as Stage 2 loads it (engine/subtile/load.ts), masks applied, the modelled area of
 * engine/subtile/quadrant-chi2.ts. A noise-free fit's χ² cannot fall below what this leaves in
 * its pixels (less what the model's sources absorb), and the objects it ranks are what a mask
 * rule must cover.
 *
 *   npx tsx scripts/unmodelled-light.mts --member DIR [--row 1 --col 1] [--masking '{"wing_flux_mag": 30}'] [--top 12] [--json FILE]
 *
 * `--masking`: fields merged into the configuration's `masking` section (a mask rule to try; the
 * manifest's list is re-used, so a wider rule should not bring new objects within reach —
 * Stage 2's warning says so when it does).
 */
import { readFileSync, writeFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../platform/node/config.ts';
import { openFits } from '../platform/node/files.ts';
import { parseManifest, manifestFileName } from '../engine/tiling/manifest.ts';
import { loadExposures, loadSources } from '../engine/subtile/load.ts';
import { planSimulation, renderJob, type QuadrantJob } from '../engine/sim/simulate.ts';
import { PRESETS, type PresetName } from '../engine/sim/presets.ts';
import { quadrantChi2 } from '../engine/subtile/quadrant-chi2.ts';
import { UNMODELLED_FLAG_BIT } from '../engine/exposures/masking.ts';

const { values: opt } = parseArgs({
  options: {
    member: { type: 'string' },
    row: { type: 'string', default: '1' },
    col: { type: 'string', default: '1' },
    masking: { type: 'string' },
    top: { type: 'string', default: '12' },
    json: { type: 'string' },
  },
});
if (!opt.member) throw new Error('--member DIR (a shine calibrate member folder) is required');
const dir = opt.member;
const row = Number(opt.row);
const col = Number(opt.col);
const sim = JSON.parse(readFileSync(join(dir, 'simulation.json'), 'utf8')) as {
  preset: PresetName; seed: number; shear: [number, number]; ellipticity_rotation_deg: number; psf_oversampling: number; spergel_nu: number | null; position_angle?: number; omit_undetected?: boolean;
};
// the preset as the calibration simulated it (its position angle)
const preset = sim.position_angle === undefined || sim.position_angle === PRESETS[sim.preset].pa ? PRESETS[sim.preset] : { ...PRESETS[sim.preset], pa: sim.position_angle };
if (sim.spergel_nu !== null) throw new Error('Spergel simulations are not supported by this diagnostic');
const cfg = await loadConfig(join(dir, 'config.calibrate.yaml'));
if (opt.masking) Object.assign(cfg.masking, JSON.parse(opt.masking));
const scratch = join(dir, 'scratch');
const tileDir = readdirSync(scratch).find((d) => d.startsWith('tile_'))!;
const tileId = Number(tileDir.slice(5));
const manifest = parseManifest(readFileSync(join(scratch, tileDir, manifestFileName(tileId, row, col)), 'utf8'));
const io = { openFits };
const noop = () => {};
const srcRefs = await loadSources(manifest, cfg, io, noop);
const { built, masked } = await loadExposures(manifest, cfg, io, srcRefs, { progress: noop, pixels: 'crop' });
const set = built.set;
const mask = masked.engineMask;

// the truth: which objects the model holds
const tf = await openFits(join(dir, 'truth', 'sources.fits'));
const t = await tf.readTable(1);
await tf.close();
const tid = t.column('ID').data as BigInt64Array;
const toid = t.column('OBJECT_ID').data as BigInt64Array;
const tmag = t.column('MAG').data as Float64Array;
const thlr = t.column('HLR').data as Float64Array;
const tstar = t.column('IS_STAR').data as ArrayLike<unknown>;
const modelled = new Set(manifest.sources.object_id);
const listed = new Map((manifest.unmodelled?.object_id ?? []).map((id, k) => [id, k]));
type Obj = { id: number; objectId: string; mag: number; hlr: number; kind: string; nearest: { arcsec: number; hlrs: number } };
// how far each object lies from the nearest modelled galaxy, in arcsec and in that galaxy's (truth)
// half-light radii: light on a modelled profile can trade against its shape and the shear, light
// beside it cannot (docs/calibrate.md, "What the light outside the masks is")
const tra = t.column('RA').data as Float64Array;
const tdec = t.column('DEC').data as Float64Array;
const truthRow = new Map<string, number>();
for (let i = 0; i < t.nRows; i++) truthRow.set(toid[i].toString(), i);
const modelledRows = manifest.sources.object_id.map((o) => truthRow.get(o)).filter((i): i is number => i !== undefined);
function nearestModelled(i: number): { arcsec: number; hlrs: number } {
  let best = { arcsec: Infinity, hlrs: Infinity };
  const cosd = Math.cos((tdec[i] * Math.PI) / 180);
  for (const k of modelledRows) {
    const d = 3600 * Math.hypot((tra[k] - tra[i]) * cosd, tdec[k] - tdec[i]);
    if (d < best.arcsec) best = { arcsec: d, hlrs: d / thlr[k] };
  }
  return best;
}
const objs: Obj[] = [];
let omitted = 0;
for (let i = 0; i < t.nRows; i++) {
  const oid = toid[i].toString();
  if (modelled.has(oid)) continue;
  // simulated with --omit-undetected: the objects no catalog lists are not in these pixels
  if (sim.omit_undetected === true && oid === '-1') { omitted++; continue; }
  const kind = tstar[i] ? 'star' : oid === '-1' ? 'galaxy, not in the catalog' : listed.has(oid) ? `galaxy, masked (${manifest.unmodelled!.cut[listed.get(oid)!]})` : 'galaxy, in the catalog, beyond reach';
  objs.push({ id: Number(tid[i]), objectId: oid, mag: tmag[i], hlr: thlr[i], kind, nearest: nearestModelled(i) });
}

// quadrant j of the set ↔ (dither, crop) of the simulation
const plan = planSimulation(preset, sim.seed);
const where = manifest.quadrants.map((q) => {
  const m = /SWL-DET-\d+-(\d+)-/.exec(q.file);
  if (!m) throw new Error(`cannot read the dither from ${q.file}`);
  const dither = Number(m[1]);
  const crop = plan.exposures[dither].findIndex((c) => c.name === q.sci_hdu.replace(/\.SCI$/, ''));
  if (crop < 0) throw new Error(`no crop ${q.sci_hdu} in dither ${dither}`);
  return { dither, crop };
});

/** χ² of the given objects' light over the likelihood's pixels, per quadrant and in all. */
function chi2Of(ids: number[]): { total: number; perQuadrant: number[]; pixels: number } {
  const models: Float32Array[] = [];
  const saved = set.quadrants.map((q) => ({ sci: q.sci, background: q.background }));
  set.quadrants.forEach((q, j) => {
    const job: QuadrantJob = {
      preset, seed: sim.seed, shear: sim.shear, flipShear: false, rotateEllipticities: false,
      ellipticityRotationDeg: sim.ellipticity_rotation_deg, noise: false, defects: false, dither: where[j].dither, crop: where[j].crop,
      ...(sim.psf_oversampling !== 1 ? { psfOversampling: sim.psf_oversampling } : {}), renderOnly: ids,
    };
    const r = renderJob(job);
    const light = new Float32Array(r.sci.length);
    for (let i = 0; i < light.length; i++) light[i] = r.sci[i] - r.bkg[i];
    q.sci = light;
    q.background = 0;
    models.push(new Float32Array(light.length));
  });
  const res = quadrantChi2(set, models, mask, UNMODELLED_FLAG_BIT);
  set.quadrants.forEach((q, j) => Object.assign(q, saved[j]));
  return { total: res.reduce((a, r) => a + r.chi2, 0), perQuadrant: res.map((r) => r.chi2), pixels: res.reduce((a, r) => a + r.n_pixels, 0) };
}

const all = chi2Of(objs.map((o) => o.id));
console.log(`${dir}: sub-tile (${row}, ${col}), ${set.sources.length} modelled sources, ${objs.length} unmodelled truth objects${omitted ? ` (${omitted} not in the catalog left out: simulated without them)` : ''}; masking ${JSON.stringify(cfg.masking)}`);
console.log(`likelihood pixels ${all.pixels}; χ² of the unmodelled light in them: ${all.total.toFixed(2)}`);
const kinds = [...new Set(objs.map((o) => o.kind))].sort();
const byKind = kinds.map((k) => ({ kind: k, n: objs.filter((o) => o.kind === k).length, chi2: chi2Of(objs.filter((o) => o.kind === k).map((o) => o.id)).total }));
for (const k of byKind) console.log(`  ${k.kind.padEnd(44)} ${String(k.n).padStart(4)} objects  χ² ${k.chi2.toFixed(2)}`);
const top = Number(opt.top);
// each object alone (one render of every quadrant per object: the slow part; --top 0 skips it)
const each = top > 0 ? objs.map((o) => ({ ...o, chi2: chi2Of([o.id]).total })).sort((a, b) => b.chi2 - a.chi2) : [];
if (top > 0) console.log(`the ${top} largest (each alone):`);
for (const o of each.slice(0, top)) console.log(`  ${o.objectId.padEnd(16)} ${o.kind.padEnd(44)} mag ${o.mag.toFixed(2)}  hlr ${o.hlr.toFixed(3)}″  χ² ${o.chi2.toFixed(2)}  nearest modelled ${o.nearest.arcsec.toFixed(2)}″ (${o.nearest.hlrs.toFixed(1)} of its hlr)`);
if (opt.json) writeFileSync(opt.json, JSON.stringify({ member: dir, row, col, masking: cfg.masking, pixels: all.pixels, chi2: all.total, perQuadrant: all.perQuadrant, byKind, objects: each }, null, 1));

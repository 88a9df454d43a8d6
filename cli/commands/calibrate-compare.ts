/**
 * `shine calibrate-compare A B [--bootstrap N] [--bootstrap-seed S] [--json] [--out FILE]`: two
 * calibrations of the same simulations (calibration.json of two `shine calibrate` folders, the
 * same preset, seeds and simulation options, fitted with other settings) compared set by set —
 * the change of m and c from A to B with paired bootstrap errors, and B's shear errors relative
 * to A's (engine/calibrate/compare.ts, docs/calibrate.md "Comparing two configurations").
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { UserError, type Command } from '../command.ts';
import { parseOptions } from '../args.ts';
import { parseReport, type ParsedReport } from '../../engine/calibrate/include.ts';
import { compareReports, QUANTITIES, type Comparison } from '../../engine/calibrate/index.ts';
import { writeFileAtomic } from '../../platform/node/files.ts';

const USAGE = `usage: shine calibrate-compare A B [--bootstrap N] [--bootstrap-seed S] [--json] [--out FILE]
  A, B              two calibration.json (or their folders) of the same simulations: same preset,
                    shear, rotations, noise and simulation options; the fits may differ in
                    anything (masks, priors, estimator, method: --config-overrides, --priors …)
  --bootstrap N     bootstrap replicates over seeds (default 2000)
  --bootstrap-seed S  seed of the bootstrap RNG (default 1)
  --json            print the comparison as JSON
  --out FILE        also write it as JSON to FILE (atomically)`;

async function readReport(arg: string): Promise<ParsedReport> {
  const file = resolve(arg.endsWith('.json') ? arg : `${arg}/calibration.json`);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new UserError(`cannot read ${file} (${(e as Error).message})`);
  }
  return parseReport(text, file); // its ShineErrors name the file and reach the user as one line
}

const f = (v: number, d = 5) => (Number.isFinite(v) ? `${v >= 0 ? '+' : ''}${v.toFixed(d)}` : 'n/a');
/** An error or a spread (non-negative): no sign; n/a when not finite (fewer than 2 seeds). */
const u = (v: number, d = 5) => (Number.isFinite(v) ? Math.abs(v).toFixed(d) : 'n/a');

function describe(r: ParsedReport): string {
  const s = r.settings;
  return `${r.file}: ${r.fits.length} fits, seeds ${r.seeds.join(',')}; fit settings ${r.fitSettingsHash ?? 'not recorded'}, overrides ${s.overrides_hash ?? 'none'}, method ${s.method}, priors ${s.priors}`;
}

function text(c: Comparison, a: ParsedReport, b: ParsedReport): string {
  const lines = [`A ${describe(a)}`, `B ${describe(b)}`];
  const s = (r: ParsedReport) => JSON.stringify([r.fitSettingsHash, r.settings.method, r.settings.priors, r.settings.overrides_hash]);
  const omit = (r: ParsedReport) => (r.settings.sim_omit_undetected ? 'omitted' : 'in the pixels');
  const omitDiffers = omit(a) !== omit(b);
  if (omitDiffers) lines.push(`note: the objects no catalog lists are ${omit(a)} in A and ${omit(b)} in B (--sim-omit-undetected): a difference is their share of m and c, with the software's if it changed too`);
  else if (a.fitSettingsHash !== null && s(a) === s(b)) lines.push('note: A and B were fitted with the same settings: a difference comes from the software between them, not from the configuration');
  lines.push(`paired: ${c.pairedSets} set(s) complete in both (seeds ${c.seeds.join(',')}); complete in A only ${c.onlyA}, in B only ${c.onlyB}, incomplete in either ${c.incomplete}`);
  lines.push(`fits usable / with errors: A ${c.fits.a.usable}/${c.fits.a.withErrors} of ${c.fits.a.attempted}, B ${c.fits.b.usable}/${c.fits.b.withErrors} of ${c.fits.b.attempted}`);
  lines.push('quantity   A (paired sets)          B (paired sets)          B − A (paired)           sd per set: A, B, B − A');
  for (const q of QUANTITIES) {
    const v = c.quantities[q];
    lines.push(`${q.padEnd(9)}  ${f(v.a)} ± ${u(v.aErr)}   ${f(v.b)} ± ${u(v.bErr)}   ${f(v.delta)} ± ${u(v.deltaErr)}   ${u(v.aSdPerSet)}, ${u(v.bSdPerSet)}, ${u(v.deltaSdPerSet)}`);
  }
  const r = c.errorRatio;
  lines.push(`shear errors σ̂_B/σ̂_A (median over fits in both): g1 ${r.g1.median.toFixed(4)} (${r.g1.n}), g2 ${r.g2.median.toFixed(4)} (${r.g2.n}); B needs ${c.setsFactor.toFixed(3)}× the sets of A for the same σ(m)`);
  return lines.join('\n');
}

const command: Command = {
  summary: 'two calibrations of the same simulations compared: Δm, Δc with paired errors, and the shear-error ratio',
  async run(argv) {
    const { opts, positional } = parseOptions(argv, { bootstrap: 'integer', 'bootstrap-seed': 'integer', json: 'boolean', out: 'string', help: 'boolean' }, USAGE);
    if (opts.help) {
      console.log(USAGE);
      return 0;
    }
    if (positional.length !== 2) throw new UserError(`expected two calibration reports (A B), got ${positional.length}\n${USAGE}`);
    const bootstrap = opts.bootstrap === undefined ? 2000 : Number(opts.bootstrap);
    if (bootstrap < 1) throw new UserError(`--bootstrap must be at least 1, got ${bootstrap}`);
    const [a, b] = await Promise.all(positional.map(readReport));
    const c = compareReports(a, b, { bootstrap, bootstrapSeed: opts['bootstrap-seed'] === undefined ? 1 : Number(opts['bootstrap-seed']) });
    const doc = { format: 'shine-calibration-comparison', version: 1, a: { file: a.file, fit_settings_hash: a.fitSettingsHash, settings: a.settings }, b: { file: b.file, fit_settings_hash: b.fitSettingsHash, settings: b.settings }, bootstrap, comparison: c };
    const json = JSON.stringify(doc, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 1);
    if (opts.out !== undefined) await writeFileAtomic(resolve(String(opts.out)), new TextEncoder().encode(`${json}\n`));
    console.log(opts.json ? json : text(c, a, b));
    return 0;
  },
};

export default command;

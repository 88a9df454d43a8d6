/**
 * Hostile configurations, manifests and command lines: wrong YAML types, unknown keys, alias bombs,
 * limits the outputs cannot store, missing files, numeric flags that are empty or not numbers,
 * folder names with glob characters and back-slashes.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, expandPaths } from '../../platform/node/config.ts';
import { parseManifest } from '../../engine/tiling/manifest.ts';
import { parseConfig } from '../../engine/config/parse.ts';
import subtile from '../../cli/subtile.ts';
import prepare from '../../cli/commands/prepare.ts';
import crossmatch from '../../cli/commands/crossmatch.ts';
import demo from '../../cli/commands/demo.ts';
import fitsInfo from '../../cli/commands/fits-info.ts';
import { int } from '../../cli/survey-options.ts';
import { parseNumberOption } from '../../cli/args.ts';
import { asCli, errorCase, record } from './harness.ts';

let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'shine-hostile-cfg-'));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function cfgFile(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

const BOMB = ['a: &a [x, x, x, x, x, x, x, x, x]', 'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]', 'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]', 'd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]', 'e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]', 'f: [*e, *e, *e, *e, *e, *e, *e, *e, *e]'].join('\n');

describe('configurations → one line naming the file and the field', () => {
  const G = 'config';
  const cases: Array<[id: string, what: string, yaml: string, re: RegExp]> = [
    ['alias-bomb', 'a YAML alias bomb (9^6 expansions)', BOMB, /YAML cannot be expanded: too many alias expansions/],
    ['syntax-error', 'a YAML syntax error', 'data: [unclosed\n', /YAML syntax error at line \d+/],
    ['duplicate-key', 'the same key twice', 'data:\n  pixel_scale: 0.1\n  pixel_scale: 0.2\n', /YAML syntax error.*(unique|duplicate)/i],
    ['top-level-list', 'a list at the top level', '- a\n- b\n', /expected a mapping of sections at the top level, got a list of 2/],
    ['top-level-scalar', 'a scalar at the top level', '42\n', /expected a mapping of sections at the top level/],
    ['unknown-section', 'an unknown top-level section', 'dta:\n  pixel_scale: 0.1\n', /dta: unknown field \(expected one of: /],
    ['unknown-key', 'an unknown key in a section', 'data:\n  pixel_scal: 0.1\n', /data\.pixel_scal: unknown field \(expected one of: /],
    ['unknown-nested', 'an unknown key in a nested prior', 'gal:\n  priors:\n    shear: {type: normal, mean: 0, sigma: 0.3, sd: 2}\n', /gal\.priors\.shear/],
    ['type-string-for-number', 'a string where a number is expected', "data:\n  pixel_scale: 'zero point one'\n", /data\.pixel_scale: expected number, got the string "zero point one"/],
    ['type-list-for-number', 'a list where a number is expected', 'data:\n  pixel_scale: [0.1]\n', /data\.pixel_scale: expected number, got a list of 1/],
    ['type-mapping-for-list', 'a mapping where a list is expected', 'stamps:\n  tiers: {a: 1}\n', /stamps\.tiers: expected a list, got a mapping/],
    ['type-number-for-bool', 'a number where true/false is expected', 'output:\n  overwrite: 1\n', /output\.overwrite: expected true or false, got number 1/],
    ['type-section-scalar', 'a scalar where a section is expected', 'data: 5\n', /data: expected a mapping, got number 5/],
    ['type-null-section', 'null where a number is expected', 'data:\n  pixel_scale: null\n', /data\.pixel_scale: expected number, got null/],
    ['grid-too-big', 'sub_tile_grid [200, 4] (rows stored as int8)', 'distributed:\n  sub_tile_grid: [200, 4]\n', /distributed\.sub_tile_grid\.0: expected at most 128 \(sub-tile rows and columns are stored as int8, 0\.\.127\), got number 200/],
    ['grid-too-big-alias', 'tile.sub_tile_grid [4, 129] (the simulate spelling)', 'tile:\n  sub_tile_grid: [4, 129]\n', /tile\.sub_tile_grid\.1: expected at most 128/],
    ['grid-zero', 'sub_tile_grid [0, 4]', 'distributed:\n  sub_tile_grid: [0, 4]\n', /distributed\.sub_tile_grid\.0: expected number > 0/],
    ['grid-fraction', 'sub_tile_grid [1.5, 4]', 'distributed:\n  sub_tile_grid: [1.5, 4]\n', /distributed\.sub_tile_grid\.0: expected an integer/],
    ['grid-three', 'sub_tile_grid with three numbers', 'distributed:\n  sub_tile_grid: [4, 4, 4]\n', /distributed\.sub_tile_grid/],
    ['margin-negative', 'a negative sub-tile margin', 'distributed:\n  sub_tile_margin: -1\n', /distributed\.sub_tile_margin: expected number ≥ 0/],
    ['margin-too-small', 'a margin smaller than half the largest stamp', 'distributed:\n  sub_tile_margin: 0.01\n', /distributed\.sub_tile_margin: expected number ≥ .* arcmin \(half the largest stamp/],
    ['tiers-empty', 'an empty list of stamp tiers', 'stamps:\n  tiers: []\n', /stamps\.tiers: expected at least 1 item/],
    ['alias-conflict', 'both spellings of a field with different values', 'distributed:\n  sub_tile_grid: [4, 4]\ntile:\n  sub_tile_grid: [2, 2]\n', /tile\.sub_tile_grid: conflicts with distributed\.sub_tile_grid/],
    ['snr-max-below-min', 'sources.snr_max ≤ snr_min', 'sources:\n  snr_min: 10\n  snr_max: 5\n', /sources\.snr_max: expected number > sources\.snr_min/],
    ['output-format-hdf5', 'output_format hdf5', 'distributed:\n  output_format: hdf5\n', /distributed\.output_format: expected "fits"/],
    ['tile-id-negative', 'a negative tile id', 'distributed:\n  tile_id: -3\n', /distributed\.tile_id/],
    ['custom-without-center', "tile_source 'custom' without tile.center", 'distributed:\n  tile_source: custom\n', /tile\.center: missing \(expected \[ra, dec\]/],
    ['binary-junk', 'binary junk instead of YAML', '\u0000\u0001\u0002\u00ff\u00fe', /c-binary-junk\.yaml: /],
  ];
  for (const [id, what, yaml, re] of cases) {
    it(`${id}: ${what}`, async () => {
      const p = cfgFile(`c-${id}.yaml`, yaml);
      await errorCase(G, id, what, async () => void (await loadConfig(p)), new RegExp(`c-${id}\\.yaml: .*(${re.source})|(${re.source})`));
    });
  }
  it('missing-config: a configuration path that does not exist', async () => {
    await errorCase(G, 'missing-config', 'a --config path that does not exist', async () => void (await loadConfig(join(dir, 'none.yaml'))), /file .*none\.yaml: cannot read the configuration: no such file/);
  });
  it('config-is-dir: a folder given as the configuration', async () => {
    mkdirSync(join(dir, 'cdir.yaml'));
    await errorCase(G, 'config-is-dir', 'a folder given as --config', async () => void (await loadConfig(join(dir, 'cdir.yaml'))), /cdir\.yaml: cannot read the configuration: is a directory/);
  });
  it('glob-no-match: a data pattern that matches nothing', async () => {
    const p = cfgFile('c-glob.yaml', 'data:\n  exposures: nothing/*.fits\n');
    await errorCase(G, 'glob-no-match', 'a data.exposures pattern matching no file', async () => {
      const c = await loadConfig(p);
      await expandPaths(c.data.exposures, 'data.exposures');
    }, /field data\.exposures: the pattern '.*nothing\/\*\.fits' matches no file/);
  });
  it('url-ftp: an ftp:// input', async () => {
    const p = cfgFile('c-ftp.yaml', 'data:\n  exposures: ftp://host/a.fits\n');
    await errorCase(G, 'url-ftp', 'an ftp:// URL as input', async () => {
      const c = await loadConfig(p);
      const { urlPatternProblem } = await import('../../engine/config/paths.ts');
      const why = urlPatternProblem(c.data.exposures[0]);
      if (why) throw new (await import('../../engine/errors.ts')).ShineError(why, { field: 'data.exposures' });
    }, /field data\.exposures: unsupported URL scheme/);
  });
});

describe('manifests → one line naming the file and the field', () => {
  const G = 'manifest';
  const cases: Array<[id: string, what: string, yaml: string, re: RegExp]> = [
    ['manifest-alias-bomb', 'a manifest holding an alias bomb', BOMB, /m\.yaml: YAML cannot be expanded: too many alias expansions/],
    ['manifest-syntax', 'a manifest with a YAML syntax error', 'tile_id: [1\n', /m\.yaml: YAML syntax error/],
    ['manifest-not-mapping', 'a manifest that is a list', '- 1\n- 2\n', /invalid sub-tile manifest/],
    ['manifest-wrong-type', 'a manifest with a string tile id', "tile_id: 'abc'\n", /invalid sub-tile manifest/],
    ['manifest-empty', 'an empty manifest', '', /invalid sub-tile manifest/],
  ];
  for (const [id, what, yaml, re] of cases) {
    it(`${id}: ${what}`, async () => {
      record(G, id, what, 'error');
      const r = await asCli(async () => void parseManifest(yaml, 'm.yaml'));
      // a manifest problem is one line per field (at most 10 + a count): here the first line names it
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^shine: /);
      expect(r.stderr).not.toMatch(/internal error|ReferenceError|TypeError|\n\s+at /);
      expect(r.stderr.split('\n')[0]).toMatch(re);
    });
  }
});

describe('numeric flags: empty, non-numeric or non-integer values are errors', () => {
  const G = 'cli';
  const sub = (row: string) => () => subtile.run(['--tile-id', '1', '--sub-tile-row', row, '--sub-tile-col', '0', '--config', join(dir, 'none.yaml')]);
  const cases: Array<[id: string, what: string, fn: () => Promise<number>, re: RegExp]> = [
    ['row-empty', "--sub-tile-row '' (Number('') was row 0)", sub(''), /--sub-tile-row must be an integer, got ''/],
    ['row-blank', "--sub-tile-row ' '", sub(' '), /--sub-tile-row must be an integer, got ' '/],
    ['row-text', '--sub-tile-row abc', sub('abc'), /--sub-tile-row must be an integer, got 'abc'/],
    ['row-fraction', '--sub-tile-row 1.5', sub('1.5'), /--sub-tile-row must be an integer, got '1\.5'/],
    ['row-hex', '--sub-tile-row 0x1', sub('0x1'), /--sub-tile-row must be an integer, got '0x1'/],
    ['row-infinity', '--sub-tile-row Infinity', sub('Infinity'), /--sub-tile-row must be an integer, got 'Infinity'/],
    ['row-huge', '--sub-tile-row 1e400', sub('1e400'), /--sub-tile-row must be an integer, got '1e400'/],
    ['row-negative', '--sub-tile-row -1', sub('-1'), /non-negative integers/],
    ['row-missing-value', '--sub-tile-row with no value', () => subtile.run(['--tile-id', '1', '--sub-tile-col', '0', '--config', 'x', '--sub-tile-row']), /--sub-tile-row needs a value/],
    ['tile-id-empty', "--tile-id ''", () => subtile.run(['--tile-id', '', '--sub-tile-row', '0', '--sub-tile-col', '0', '--config', 'x']), /--tile-id must be an integer, got ''/],
    ['tile-id-unsafe', '--tile-id 2^60', () => subtile.run(['--tile-id', '1152921504606846976', '--sub-tile-row', '0', '--sub-tile-col', '0', '--config', 'x']), /--tile-id must be an integer/],
    ['unknown-option', 'an unknown option', () => subtile.run(['--tile', '1']), /unknown option --tile/],
    ['radius-empty', "crossmatch --radius ''", () => crossmatch.run(['a.fits', 'b.fits', '--radius', '']), /--radius must be a number, got ''/],
    ['radius-zero', 'crossmatch --radius 0', () => crossmatch.run(['a.fits', 'b.fits', '--radius', '0']), /--radius must be in \(0, 648000\]/],
    ['seed-fraction', 'demo --seed 1.5', () => demo.run(['--seed', '1.5']), /--seed must be an integer, got '1\.5'/],
    ['prepare-sub-tile', "prepare --sub-tile 'a,b'", () => prepare.run(['--config', cfgFile('ok.yaml', ''), '--tile-id', '1', '--sub-tile', 'a,b']), /--sub-tile must be ROW,COL/],
    ['prepare-tile-id', 'prepare --tile-id 1.5', () => prepare.run(['--config', cfgFile('ok2.yaml', ''), '--tile-id', '1.5']), /--tile-id must be a non-negative integer or 'all', got '1\.5'/],
    ['run-jobs-empty', "run --jobs '' (was 0)", async () => int('', 'jobs', 1, 1), /--jobs must be an integer ≥ 1, got ''/],
    ['run-retries-text', 'run --retries two', async () => int('two', 'retries', 2, 0), /--retries must be an integer ≥ 0, got 'two'/],
    ['number-exponent-junk', "a numeric flag '1e'", async () => parseNumberOption('g1', '1e'), /--g1 must be a number, got '1e'/],
    ['fits-info-option', 'fits-info --bogus', () => fitsInfo.run(['--bogus', 'x.fits']), /fits-info: unknown option --bogus/],
  ];
  for (const [id, what, fn, re] of cases) {
    it(`${id}: ${what}`, async () => {
      await errorCase(G, id, what, fn, re);
    });
  }
});

describe('hostile folder names work (glob characters and back-slashes are literal)', () => {
  const G = 'folders';
  for (const name of ['bs\\dir', 'run[1]', 'a*b', 'q?x', 'sp ace', 'ünï', "it's", 'a]b']) {
    it(`folder '${name}': relative data patterns and the output folder resolve inside it`, async () => {
      record(G, `folder-${name}`, `a configuration in a folder named '${name}'`, 'handled');
      const d = join(dir, 'folders', name);
      mkdirSync(join(d, 'data'), { recursive: true });
      for (const f of ['x1.fits', 'x2.fits']) writeFileSync(join(d, 'data', f), '');
      writeFileSync(join(d, 'c.yaml'), 'data:\n  exposures: data/*.fits\n  mer_catalog: data/x1.fits\noutput:\n  dir: out\n');
      const c = await loadConfig(join(d, 'c.yaml'));
      expect(c.output.dir).toBe(join(d, 'out'));
      expect(await expandPaths(c.data.exposures, 'data.exposures')).toEqual([join(d, 'data', 'x1.fits'), join(d, 'data', 'x2.fits')]);
      expect(await expandPaths(c.data.mer_catalog, 'data.mer_catalog')).toEqual([join(d, 'data', 'x1.fits')]);
    });
  }
  it('a Windows path keeps back-slashes as separators', () => {
    const c = parseConfig('data:\n  exposures: data\\x.fits\n', { baseDir: 'C:\\run' });
    expect(c.data.exposures).toEqual(['C:/run/data/x.fits']);
  });
});

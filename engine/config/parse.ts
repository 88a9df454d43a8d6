/**
 * Parsing and validation of a SHINE configuration (runtime-agnostic): YAML text → ShineConfig.
 * Errors name the file and the field path, one line per problem:
 *   config.yaml: distributed.sub_tile_margin: expected number ≥ 0.2133 (…)
 */
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { ShineError } from '../errors.ts';
import { ConfigSchema, type ShineConfig } from './schema.ts';
import { resolvePath } from './paths.ts';

export interface ConfigIssue {
  /** Dotted field path ('' for the whole document). */
  path: string;
  message: string;
}

/** A configuration that cannot be used: `issues` lists every problem found. */
export class ConfigError extends ShineError {
  override name = 'ConfigError';
  readonly file: string;
  readonly issues: ConfigIssue[];
  constructor(file: string, issues: ConfigIssue[]) {
    const label = file || 'config';
    super(issues.map((i) => `${label}: ${i.path ? `${i.path}: ` : ''}${i.message}`).join('\n'));
    this.file = file;
    this.issues = issues;
  }
}

export interface ParseOptions {
  /** Name used in messages (and whose folder resolves relative paths unless baseDir is given). */
  file?: string;
  /** Folder against which relative paths are resolved (default: the folder of `file`, else as given). */
  baseDir?: string;
}

/**
 * Fields accepted under a second name (the layout `shine simulate` writes). Giving both names
 * with different values is an error; messages about the value name the spelling used.
 */
export const CONFIG_ALIASES: ReadonlyArray<readonly [from: string, to: string]> = [
  ['data.psf_includes_pixel', 'stamps.psf_includes_pixel'],
  ['tile.tile_id', 'distributed.tile_id'],
  ['tile.sub_tile_grid', 'distributed.sub_tile_grid'],
  ['tile.margin_arcmin', 'distributed.sub_tile_margin'],
  ['inference.methods.map', 'inference.map'],
  ['inference.methods.vi', 'inference.vi'],
  ['inference.methods.nuts', 'inference.nuts'],
];

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => !!v && typeof v === 'object' && !Array.isArray(v);

function getAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let cur = root;
  for (const k of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[k];
  }
  return cur;
}

function deepEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Applies CONFIG_ALIASES in place; returns canonical path → spelling used, and conflicts. */
function applyAliases(raw: Obj): { renamed: Map<string, string>; issues: ConfigIssue[] } {
  const renamed = new Map<string, string>();
  const issues: ConfigIssue[] = [];
  for (const [from, to] of CONFIG_ALIASES) {
    const fp = from.split('.');
    const parent = getAt(raw, fp.slice(0, -1));
    if (!isObj(parent) || !(fp[fp.length - 1] in parent)) continue;
    const value = parent[fp[fp.length - 1]];
    delete parent[fp[fp.length - 1]];
    // drop a container left empty (inference.methods)
    if (fp.length > 2 && Object.keys(parent).length === 0) {
      const gp = getAt(raw, fp.slice(0, -2));
      if (isObj(gp)) delete gp[fp[fp.length - 2]];
    }
    const tp = to.split('.');
    let cur: Obj = raw;
    let blocked = false;
    for (const k of tp.slice(0, -1)) {
      if (cur[k] === undefined || cur[k] === null) cur[k] = {};
      if (!isObj(cur[k])) {
        blocked = true;
        break;
      }
      cur = cur[k] as Obj;
    }
    if (blocked) continue; // the section itself has the wrong type: zod reports it
    const last = tp[tp.length - 1];
    if (last in cur && !deepEqual(cur[last], value)) {
      issues.push({ path: from, message: `conflicts with ${to} (${JSON.stringify(value)} vs ${JSON.stringify(cur[last])}); give one of them` });
      continue;
    }
    cur[last] = value;
    renamed.set(to, from);
  }
  return { renamed, issues };
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return `a list of ${v.length}`;
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  return `${typeof v} ${String(v)}`;
}

const fmtNum = (x: unknown) => (typeof x === 'bigint' ? x.toString() : Number(x).toPrecision(6).replace(/\.?0+(e|$)/, '$1'));

/** Allowed keys of the object schema at a path (best effort, for 'unknown field' messages). */
function allowedKeys(path: readonly PropertyKey[]): string[] | undefined {
  let s: unknown = ConfigSchema;
  const unwrap = (x: unknown): unknown => {
    for (let i = 0; i < 10; i++) {
      const def = (x as { _zod?: { def?: Record<string, unknown> } })?._zod?.def;
      if (!def) return x;
      if (def.type === 'object' || def.type === 'union') return x;
      if (def.innerType) x = def.innerType;
      else if (def.type === 'pipe') x = def.out;
      else return x;
    }
    return x;
  };
  for (const k of path) {
    s = unwrap(s);
    const def = (s as { _zod: { def: { type: string; shape?: Record<string, unknown> } } })._zod.def;
    if (def.type !== 'object' || !def.shape) return undefined;
    s = def.shape[String(k)];
    if (!s) return undefined;
  }
  s = unwrap(s);
  const def = (s as { _zod?: { def?: { type: string; shape?: Record<string, unknown> } } })?._zod?.def;
  if (def?.type === 'object' && def.shape) return Object.keys(def.shape);
  return undefined;
}

function issueMessages(iss: z.core.$ZodIssue, raw: unknown): ConfigIssue[] {
  const path = iss.path.map(String).join('.');
  switch (iss.code) {
    case 'unrecognized_keys': {
      const allowed = allowedKeys(iss.path);
      return iss.keys.map((k) => ({
        path: path ? `${path}.${k}` : k,
        message: `unknown field${allowed ? ` (expected one of: ${allowed.join(', ')})` : ''}`,
      }));
    }
    case 'invalid_type': {
      const got = getAt(raw, iss.path);
      const names: Record<string, string> = { object: 'a mapping', array: 'a list', tuple: 'a list', int: 'an integer', string: 'a string', boolean: 'true or false' };
      const exp = names[iss.expected] ?? iss.expected;
      if (got === undefined) return [{ path, message: `missing (expected ${exp})` }];
      return [{ path, message: `expected ${exp}, got ${describe(got)}` }];
    }
    case 'too_small': {
      const o = iss.origin;
      if (o === 'array' || o === 'set') return [{ path, message: `expected at least ${fmtNum(iss.minimum)} item(s)` }];
      if (o === 'string') return [{ path, message: 'expected a non-empty string' }];
      return [{ path, message: `expected number ${iss.inclusive ? '≥' : '>'} ${fmtNum(iss.minimum)}, got ${describe(getAt(raw, iss.path))}` }];
    }
    case 'too_big': {
      const o = iss.origin;
      if (o === 'array' || o === 'set') return [{ path, message: `expected at most ${fmtNum(iss.maximum)} item(s)` }];
      if (!/^(Too big|Invalid)/.test(iss.message)) return [{ path, message: `${iss.message}, got ${describe(getAt(raw, iss.path))}` }];
      return [{ path, message: `expected number ${iss.inclusive ? '≤' : '<'} ${fmtNum(iss.maximum)}, got ${describe(getAt(raw, iss.path))}` }];
    }
    case 'invalid_value':
      if (!iss.message.startsWith('Invalid')) return [{ path, message: `${iss.message}, got ${describe(getAt(raw, iss.path))}` }];
      return [{ path, message: `expected one of ${iss.values.map((v) => JSON.stringify(v)).join(', ')}, got ${describe(getAt(raw, iss.path))}` }];
    case 'not_multiple_of':
      return [{ path, message: `expected a multiple of ${fmtNum(iss.divisor)}` }];
    case 'invalid_format':
      return [{ path, message: `expected a ${iss.format}` }];
    default: {
      // custom refinements and union messages are written for users already
      let m = iss.message;
      if (m.startsWith('Invalid input: expected int')) m = `expected an integer, got ${describe(getAt(raw, iss.path))}`;
      return [{ path, message: m }];
    }
  }
}

function rewriteAliasPath(p: string, renamed: Map<string, string>): string {
  for (const [to, from] of renamed) {
    if (p === to || p.startsWith(`${to}.`)) return from + p.slice(to.length);
  }
  return p;
}

/** Half the largest stamp on the sky (arcsec): the smallest margin allowed (docs/config.md, `distributed.sub_tile_margin`). */
export function minimumMarginArcsec(cfg: { stamps: { tiers: number[] }; data: { pixel_scale: number } }): number {
  return (Math.max(...cfg.stamps.tiers) * cfg.data.pixel_scale) / 2;
}

/** Parses and validates a configuration; throws ConfigError listing every problem. */
export function parseConfig(text: string, options: ParseOptions = {}): ShineConfig {
  const file = options.file ?? '';
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length) {
    throw new ConfigError(
      file,
      doc.errors.map((e) => {
        const lp = e.linePos?.[0];
        return { path: '', message: `YAML syntax error${lp ? ` at line ${lp.line}, column ${lp.col}` : ''}: ${e.message.split('\n')[0].replace(/ at line \d+, column \d+:?\s*$/, '')}` };
      }),
    );
  }
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 1000 });
  } catch (e) {
    // yaml's guard against alias bombs ("billion laughs") throws a ReferenceError
    const why = /alias/i.test((e as Error).message ?? '') ? 'too many alias expansions (a YAML alias bomb?): at most 1000 are allowed' : String((e as Error).message ?? e);
    throw new ConfigError(file, [{ path: '', message: `YAML cannot be expanded: ${why}` }]);
  }
  if (raw === null || raw === undefined) raw = {};
  if (!isObj(raw)) throw new ConfigError(file, [{ path: '', message: `expected a mapping of sections at the top level, got ${describe(raw)}` }]);
  const input = structuredClone(raw) as Obj;
  const { renamed, issues } = applyAliases(input);
  const res = ConfigSchema.safeParse(input);
  if (!res.success) {
    for (const iss of res.error.issues) {
      for (const m of issueMessages(iss, input)) issues.push({ ...m, path: rewriteAliasPath(m.path, renamed) });
    }
  }
  if (issues.length || !res.success) throw new ConfigError(file, dedupe(issues));
  const c = res.data;

  // cross-field checks
  const post: ConfigIssue[] = [];
  const minMargin = minimumMarginArcsec(c);
  const marginArcsec = c.distributed.sub_tile_margin * 60;
  if (marginArcsec < minMargin) {
    post.push({
      path: rewriteAliasPath('distributed.sub_tile_margin', renamed),
      message: `expected number ≥ ${fmtNum(minMargin / 60)} arcmin (half the largest stamp: ${Math.max(...c.stamps.tiers)} px × ${c.data.pixel_scale}″ / 2 = ${fmtNum(minMargin)}″), got ${fmtNum(c.distributed.sub_tile_margin)}`,
    });
  }
  const extendedArcmin = c.tile.extended_arcmin ?? c.tile.core_arcmin + 2;
  if (extendedArcmin < c.tile.core_arcmin) {
    post.push({ path: 'tile.extended_arcmin', message: `expected number ≥ tile.core_arcmin (${fmtNum(c.tile.core_arcmin)}), got ${fmtNum(extendedArcmin)}` });
  }
  if (c.distributed.tile_source === 'custom' && !c.tile.center) {
    post.push({ path: 'tile.center', message: "missing (expected [ra, dec] in degrees when distributed.tile_source is 'custom')" });
  }
  const sameAs = (field: 'output_dir' | 'save_diagnostics' | 'save_model_images', outField: 'dir' | 'save_diagnostics' | 'save_model_images') => {
    const d = c.distributed[field];
    const given = getAt(raw, ['output', outField]);
    if (d !== null && given !== undefined && !deepEqual(d, given)) {
      post.push({ path: `distributed.${field}`, message: `conflicts with output.${outField} (${JSON.stringify(d)} vs ${JSON.stringify(given)}); give one of them` });
    }
    return d ?? c.output[outField];
  };
  const outDir = sameAs('output_dir', 'dir') as string;
  const saveDiag = sameAs('save_diagnostics', 'save_diagnostics') as boolean;
  const saveModel = sameAs('save_model_images', 'save_model_images') as boolean;
  if (c.sources.snr_min !== null && c.sources.snr_max !== null && !(c.sources.snr_max > c.sources.snr_min)) {
    post.push({ path: 'sources.snr_max', message: `expected number > sources.snr_min (${fmtNum(c.sources.snr_min)}), got ${fmtNum(c.sources.snr_max)}` });
  }
  if (post.length) throw new ConfigError(file, post);

  // paths relative to the configuration's folder
  const base = options.baseDir ?? (file ? dirOf(file) : '');
  const r = (p: string) => resolvePath(base, p);
  const rn = (p: string | null) => (p === null ? null : r(p));
  const output = { ...c.output, dir: r(outDir), save_diagnostics: saveDiag, save_model_images: saveModel };
  return {
    ...c,
    data: {
      ...c.data,
      exposures: c.data.exposures.map(r),
      backgrounds: c.data.backgrounds.map(r),
      psf: c.data.psf.map(r),
      mer_catalog: c.data.mer_catalog.map(r),
      tile_index: rn(c.data.tile_index),
    },
    tile: { ...c.tile, extended_arcmin: extendedArcmin },
    output,
    distributed: {
      ...c.distributed,
      exposure_archive: rn(c.distributed.exposure_archive),
      catalog_archive: rn(c.distributed.catalog_archive),
      scratch_dir: r(c.distributed.scratch_dir),
      output_dir: output.dir,
      save_diagnostics: saveDiag,
      save_model_images: saveModel,
    },
    truth: { sources: rn(c.truth.sources), shear: rn(c.truth.shear) },
    source: { file, dir: base || '.' },
  };
}

function dirOf(file: string): string {
  const s = file.replace(/\\/g, '/');
  const i = s.lastIndexOf('/');
  return i < 0 ? '' : i === 0 ? '/' : s.slice(0, i);
}

function dedupe(issues: ConfigIssue[]): ConfigIssue[] {
  const seen = new Set<string>();
  return issues.filter((i) => {
    const k = `${i.path}\0${i.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** The configuration every default gives (no file). */
export function defaultConfig(): ShineConfig {
  return parseConfig('');
}

/**
 * Sub-tile manifests (seed 000 §7.2, docs/prepare.md): one YAML file per sub-tile, written by
 * `shine prepare`, read by Stage 2 to build the ExposureSet. Runtime-agnostic: text in, text out.
 */
import { Document, isScalar, isSeq, parseDocument, visit } from 'yaml';
import { z } from 'zod';
import { ShineError } from '../errors.ts';

export const MANIFEST_FORMAT = 'shine-subtile-manifest';
export const MANIFEST_VERSION = 1;

const num = () => z.number().refine(Number.isFinite, { message: 'expected a finite number' });
const range = () => z.tuple([num(), num()]);
const nullableStr = () => z.string().min(1).nullable();

export const ManifestQuadrantSchema = z.strictObject({
  id: z.string().min(1),
  exposure: z.string().min(1),
  quadrant: z.string().min(1),
  file: z.string().min(1),
  sci_hdu: z.string().min(1),
  rms_hdu: z.string().min(1),
  flg_hdu: z.string().min(1),
  bkg_file: nullableStr(),
  bkg_hdu: nullableStr(),
  psf_file: nullableStr(),
  psf_hdu: nullableStr(),
  width: z.number().int().positive(),
  height: z.number().int().positive(),
  /** Sky outline [ra, dec] (deg): corners and edge midpoints. */
  outline: z.array(range()).min(3),
});

export const ManifestExposureSchema = z.strictObject({
  key: z.string().min(1),
  file: z.string().min(1),
  obs_id: z.number().int().nullable(),
  dither: z.number().int().nullable(),
  bkg_file: nullableStr(),
  psf_file: nullableStr(),
});

export const ManifestCatalogSchema = z.strictObject({
  file: z.string().min(1),
  hdu: z.union([z.string(), z.number().int()]),
  n_rows: z.number().int().min(0),
  n_selected: z.number().int().min(0),
  cuts: z.array(z.strictObject({ cut: z.string(), failed: z.number().int(), remaining: z.number().int() })),
});

const box = () => z.strictObject({ xi: range(), eta: range() });

export const ManifestSchema = z
  .strictObject({
    format: z.literal(MANIFEST_FORMAT),
    version: z.literal(MANIFEST_VERSION),
    tile_id: z.number().int().min(0),
    sub_tile_row: z.number().int().min(0),
    sub_tile_col: z.number().int().min(0),
    core_ra_range: range(),
    core_dec_range: range(),
    extended_ra_range: range(),
    extended_dec_range: range(),
    n_sources_extended: z.number().int().min(0),
    n_sources_core: z.number().int().min(0),
    n_quadrants: z.number().int().min(0),
    quadrant_ids: z.array(z.string()),
    created: z.string(),
    config: z.string(),
    tile: z.strictObject({
      ra: num(),
      dec: num(),
      core_arcmin: num(),
      extended_arcmin: num(),
      sub_tile_grid: z.tuple([z.number().int().positive(), z.number().int().positive()]),
      margin_arcsec: num(),
      frame: z.string(),
    }),
    sub_tile: z.strictObject({
      center: range(),
      core: box(),
      extended: box(),
    }),
    catalogs: z.array(ManifestCatalogSchema),
    sources: z.strictObject({
      catalog: z.array(z.number().int().min(0)),
      row: z.array(z.number().int().min(0)),
      object_id: z.array(z.string().regex(/^-?\d+$/, 'expected an integer as a string')),
      ra: z.array(num()),
      dec: z.array(num()),
      core: z.array(z.boolean()),
    }),
    exposures: z.array(ManifestExposureSchema),
    quadrants: z.array(ManifestQuadrantSchema),
  })
  .superRefine((m, ctx) => {
    const n = m.sources.row.length;
    for (const k of ['catalog', 'object_id', 'ra', 'dec', 'core'] as const) {
      if (m.sources[k].length !== n) ctx.addIssue({ code: 'custom', path: ['sources', k], message: `has ${m.sources[k].length} entries, sources.row has ${n}` });
    }
    if (m.n_sources_extended !== n) ctx.addIssue({ code: 'custom', path: ['n_sources_extended'], message: `is ${m.n_sources_extended}, the source list has ${n}` });
    const nCore = m.sources.core.filter(Boolean).length;
    if (m.n_sources_core !== nCore) ctx.addIssue({ code: 'custom', path: ['n_sources_core'], message: `is ${m.n_sources_core}, ${nCore} sources are flagged core` });
    if (m.n_quadrants !== m.quadrants.length) ctx.addIssue({ code: 'custom', path: ['n_quadrants'], message: `is ${m.n_quadrants}, the quadrant list has ${m.quadrants.length}` });
    const ids = m.quadrants.map((q) => q.id);
    if (ids.join('\n') !== m.quadrant_ids.join('\n')) ctx.addIssue({ code: 'custom', path: ['quadrant_ids'], message: 'does not match the ids of the quadrant list' });
    const keys = new Set(m.exposures.map((e) => e.key));
    m.quadrants.forEach((q, i) => {
      if (!keys.has(q.exposure)) ctx.addIssue({ code: 'custom', path: ['quadrants', i, 'exposure'], message: `names exposure '${q.exposure}', not in the exposure list` });
    });
    m.sources.catalog.forEach((c, i) => {
      if (c >= m.catalogs.length) ctx.addIssue({ code: 'custom', path: ['sources', 'catalog', i], message: `is ${c}, there are ${m.catalogs.length} catalog(s)` });
    });
  });

export type Manifest = z.output<typeof ManifestSchema>;
export type ManifestQuadrant = Manifest['quadrants'][number];

/** The manifest file name of a sub-tile. */
export function manifestFileName(tileId: number, row: number, col: number): string {
  return `manifest_${tileId}_${row}_${col}.yaml`;
}

/** YAML text of a manifest (lists of scalars in flow style, one line each). */
export function manifestToYaml(m: Manifest): string {
  const doc = new Document(m);
  visit(doc, {
    Seq(_, node) {
      if (node.items.every((it) => isScalar(it))) node.flow = true;
      else if (node.items.every((it) => isSeq(it) && it.items.every((x) => isScalar(x)))) node.flow = true;
    },
  });
  const head = `# SHINE sub-tile manifest (docs/prepare.md). Written by \`shine prepare\`; read by Stage 2.\n`;
  return head + doc.toString({ lineWidth: 0, flowCollectionPadding: false });
}

/** Parses and validates a manifest; a problem → ShineError naming the file and the field. */
export function parseManifest(text: string, file = 'manifest'): Manifest {
  const doc = parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length) {
    const e = doc.errors[0];
    const lp = e.linePos?.[0];
    throw new ShineError(`${file}: YAML syntax error${lp ? ` at line ${lp.line}, column ${lp.col}` : ''}: ${e.message.split('\n')[0].replace(/ at line \d+, column \d+:?\s*$/, '')}`);
  }
  const raw = doc.toJS();
  const res = ManifestSchema.safeParse(raw);
  if (!res.success) {
    const lines = res.error.issues.slice(0, 10).map((iss) => {
      const path = iss.path.map(String).join('.');
      const msg = iss.code === 'unrecognized_keys' ? `unknown field(s) ${iss.keys.join(', ')}` : iss.message;
      return `${file}: ${path ? `${path}: ` : ''}${msg}`;
    });
    if (res.error.issues.length > 10) lines.push(`${file}: … and ${res.error.issues.length - 10} more problem(s)`);
    throw new ShineError(`invalid sub-tile manifest\n${lines.join('\n')}`);
  }
  return res.data;
}

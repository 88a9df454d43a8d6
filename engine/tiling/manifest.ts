/**
 * Sub-tile manifests (docs/prepare.md): one YAML file per sub-tile, written by
 * `shine prepare`, read by Stage 2 to build the ExposureSet. Runtime-agnostic: text in, text out.
 */
import { Document, isScalar, isSeq, parseDocument, visit } from 'yaml';
import { z } from 'zod';
import { ShineError } from '../errors.ts';

export const MANIFEST_FORMAT = 'shine-subtile-manifest';
/** Version written. Version 1 (no `unmodelled` list) is still read: it means none was recorded. */
export const MANIFEST_VERSION = 2;
export const MANIFEST_VERSIONS_READ = [1, 2] as const;

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

/** A number that may be NaN (written `.nan`): catalog values that are missing or not positive. */
const numOrNan = () => z.union([z.number(), z.nan()]);

/** Why an unmodelled object is not modelled: the selection cut that removed it, or another reason. */
export const UNMODELLED_CUTS = ['snr', 'vis_det', 'spurious', 'point_like', 'det_quality', 'snr_max', 'deblended', 'max_per_sub_tile', 'outside_extended_area'] as const;

/**
 * Catalog objects in the pixels that are not modelled (docs/prepare.md): removed by the selection,
 * selected but beyond the extended area, or over sources.max_per_sub_tile, and whose mask disc
 * reaches the modelled area (the extended box grown by `search.beyond_extended_arcsec` plus the
 * object's radius under `search.rule`). Stage 2 masks them (config `masking`).
 */
export const ManifestUnmodelledSchema = z.strictObject({
  search: z.strictObject({
    /** How far modelled stamps reach beyond the extended box (arcsec): half the largest stamp + 1 pixel. */
    beyond_extended_arcsec: num(),
    /** The mask radius rule used for the search (the `masking` fields at prepare time). */
    rule: z.strictObject({
      footprint_scale: num(),
      footprint_min_arcsec: num(),
      halo_mag_max: num().nullable(),
      halo_radius_arcsec: num(),
      halo_mag_ref: num(),
      halo_max_arcsec: num(),
      /** Absent in manifests written before the rule existed (2026-12-08): null. */
      wing_flux_mag: num().nullable().default(null),
    }),
  }),
  catalog: z.array(z.number().int().min(0)),
  row: z.array(z.number().int().min(0)),
  object_id: z.array(z.string().regex(/^-?\d+$/, 'expected an integer as a string')),
  ra: z.array(num()),
  dec: z.array(num()),
  /** FLUX_DETECTION_TOTAL (µJy); NaN when not finite. */
  flux: z.array(numOrNan()),
  /** AB magnitude 23.9 − 2.5 log10(flux); NaN when the flux is not positive. */
  mag: z.array(numOrNan()),
  /** SEMIMAJOR_AXIS × data.pixel_scale (arcsec); NaN when not finite. */
  semimajor_arcsec: z.array(numOrNan()),
  /** POINT_LIKE_FLAG ≠ 0 (false when the catalog has no such column). */
  point_like: z.array(z.boolean()),
  cut: z.array(z.enum(UNMODELLED_CUTS)),
});

export const ManifestSchema = z
  .strictObject({
    format: z.literal(MANIFEST_FORMAT),
    version: z.union([z.literal(1), z.literal(2)], { error: `expected ${MANIFEST_VERSIONS_READ.join(' or ')}` }),
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
    /** Version 2: the unmodelled objects near the sub-tile. Absent (version 1): none recorded. */
    unmodelled: ManifestUnmodelledSchema.optional(),
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
    const u = m.unmodelled;
    if (u) {
      const nu = u.row.length;
      for (const k of ['catalog', 'object_id', 'ra', 'dec', 'flux', 'mag', 'semimajor_arcsec', 'point_like', 'cut'] as const) {
        if (u[k].length !== nu) ctx.addIssue({ code: 'custom', path: ['unmodelled', k], message: `has ${u[k].length} entries, unmodelled.row has ${nu}` });
      }
      u.catalog.forEach((c, i) => {
        if (c >= m.catalogs.length) ctx.addIssue({ code: 'custom', path: ['unmodelled', 'catalog', i], message: `is ${c}, there are ${m.catalogs.length} catalog(s)` });
      });
    }
  });

export type Manifest = z.output<typeof ManifestSchema>;
export type ManifestQuadrant = Manifest['quadrants'][number];
export type ManifestUnmodelled = NonNullable<Manifest['unmodelled']>;

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
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    const why = /alias/i.test((e as Error).message ?? '') ? 'too many alias expansions (a YAML alias bomb?)' : String((e as Error).message ?? e);
    throw new ShineError(`${file}: YAML cannot be expanded: ${why}`);
  }
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

/**
 * The configuration a calibration runs Stage 2 with (docs/calibrate.md): the simulator's
 * config.yaml with the priors chosen by `--priors` and the user's overrides deep-merged last.
 * Runtime-agnostic (text in, text out); the hash is the one cli/subtile.ts records in the
 * metadata (`inputs.config_hash`), so products can be matched to the configuration.
 */
import { parse, stringify } from 'yaml';
import { ShineError } from '../errors.ts';
import { hash64 } from '../util/hash.ts';

export type PriorsChoice = 'default' | 'shine';
export const PRIORS_CHOICES: readonly PriorsChoice[] = ['default', 'shine'];

/** SHINE's priors (docs/architecture.md "The forward model"), written out explicitly by `--priors shine`. */
export const SHINE_PRIORS = {
  shear: { type: 'normal', mean: 0.0, sigma: 0.05 },
  flux: { type: 'lognormal', center: 'catalog', sigma: 0.5 },
  hlr: { type: 'lognormal', center: 'catalog', sigma: 0.3 },
  ellipticity: { type: 'normal', mean: 0.0, sigma: 0.3 },
  offset: { type: 'normal', mean: 0.0, sigma_arcsec: 0.05 },
} as const;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => !!v && typeof v === 'object' && !Array.isArray(v);

/**
 * `over` deep-merged into `base` (objects merged key by key, anything else replaced); new
 * objects. A mapping whose `type` differs from the base's (a prior of another kind) replaces it.
 */
export function deepMerge(base: unknown, over: unknown): unknown {
  if (!isObj(base) || !isObj(over)) return structuredClone(over);
  if ('type' in over && over.type !== base.type) return structuredClone(over);
  const out: Obj = structuredClone(base);
  for (const [k, v] of Object.entries(over)) out[k] = k in out ? deepMerge(out[k], v) : structuredClone(v);
  return out;
}

/** A YAML mapping document as an object (an empty document is {}); `what` names it in errors. */
export function parseYamlMapping(text: string, what: string): Obj {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (e) {
    throw new ShineError(`not valid YAML: ${(e as Error).message.split('\n')[0]}`, { file: what });
  }
  if (doc === null || doc === undefined) return {};
  if (!isObj(doc)) throw new ShineError('expected a YAML mapping (key: value) at the top level', { file: what });
  return doc;
}

export interface DerivedConfigOptions {
  /** The simulator's config.yaml text. */
  simConfig: string;
  priors: PriorsChoice;
  /** Inference method written into inference.method (null: keep the simulator's). */
  method?: 'map' | 'vi' | 'nuts' | null;
  /** Parsed `--config-overrides` mapping, merged last. */
  overrides?: Obj | null;
  /** First comment lines (provenance). */
  header?: string[];
}

export interface DerivedConfig {
  text: string;
  hash: string;
  /** The document as an object (what was written). */
  doc: Obj;
}

/**
 * The derived configuration: `--priors default` removes `gal.priors` (the schema's defaults
 * apply, whatever they are when Stage 2 runs), `--priors shine` writes SHINE's explicitly; then
 * `inference.method` and the overrides. Paths stay relative to the simulation folder, so the
 * file is written next to the simulator's config.yaml.
 */
export function deriveConfig(o: DerivedConfigOptions): DerivedConfig {
  let doc = structuredClone(parseYamlMapping(o.simConfig, 'config.yaml'));
  const gal = isObj(doc.gal) ? doc.gal : {};
  if (o.priors === 'default') {
    delete gal.priors;
  } else if (o.priors === 'shine') {
    gal.priors = structuredClone(SHINE_PRIORS) as unknown as Obj;
  } else {
    throw new ShineError(`--priors must be default or shine, got '${String(o.priors)}'`, { field: 'priors' });
  }
  if (Object.keys(gal).length) doc.gal = gal;
  else delete doc.gal;
  if (o.method) {
    const inf = isObj(doc.inference) ? doc.inference : {};
    inf.method = o.method;
    doc.inference = inf;
  }
  if (o.overrides) doc = deepMerge(doc, o.overrides) as Obj;
  const head = (o.header ?? []).map((l) => `# ${l}\n`).join('');
  const text = head + stringify(doc, { lineWidth: 0 });
  return { text, hash: hash64(text), doc };
}

/**
 * Every field of the configuration schema, read from the zod schema itself (not from the
 * defaults, which hide nullable and union types), with a short type description. Used by
 * test/config/config.test.ts to check that docs/config.md lists each field with that type, and
 * by `npx tsx test/config/schema-fields.ts` to print the list (`--markdown`: one table row
 * skeleton per field).
 *
 * It reads zod v4's public-but-internal `_zod.def` records: object shapes, wrappers (default,
 * prefault, nullable, optional, pipe = preprocess) and the number checks. Priors and the galaxy
 * profile (discriminated unions) are leaves: their variants are documented in prose.
 */
import { ConfigSchema } from '../../engine/config/schema.ts';

/** The parts of a zod v4 definition this file reads. */
interface Def {
  type: string;
  error?: unknown;
  shape?: Record<string, Node>;
  innerType?: Node;
  out?: Node;
  options?: Node[];
  discriminator?: string;
  element?: Node;
  items?: Node[];
  values?: unknown[];
  entries?: Record<string, unknown>;
  checks?: Node[];
  check?: string;
  value?: number;
  inclusive?: boolean;
  format?: string;
  minimum?: number;
}
interface Node {
  _zod: { def: Def };
}

export interface SchemaField {
  /** Dotted path, e.g. `inference.nuts.chains`. */
  path: string;
  /** Type in the form docs/config.md prints it, e.g. `integer > 0`, `number or null`. */
  type: string;
}

const SAFE = 2 ** 53 - 1;

function numberType(def: Def): string {
  let integer = false;
  let finite = false;
  const rules: string[] = [];
  let lo: { value: number; inclusive: boolean } | null = null;
  let hi: { value: number; inclusive: boolean } | null = null;
  for (const c of def.checks ?? []) {
    const d = c._zod.def;
    // the ±(2^53 − 1) bounds are zod's own for integers, not the schema's
    const bound = d.value !== undefined && Math.abs(d.value) < SAFE ? { value: d.value, inclusive: !!d.inclusive } : null;
    if (d.check === 'number_format' && (d.format === 'safeint' || d.format === 'int32')) integer = true;
    else if (d.check === 'greater_than' && bound) lo = bound;
    else if (d.check === 'less_than' && bound) hi = bound;
    else if (d.check === 'custom') {
      // a refinement: the project's finite() helper, or a rule the type cannot say, quoted from its message
      const msg = customMessage(d);
      if (msg === 'expected a finite number') finite = true;
      else rules.push(msg ? msg.replace(/^expected /, '') : 'refined');
    }
  }
  const base = (integer ? 'integer' : finite ? 'finite number' : 'number') + (rules.length ? ` (${rules.join('; ')})` : '');
  if (lo && hi) return `${base} in ${lo.inclusive ? '[' : '('}${lo.value}, ${hi.value}${hi.inclusive ? ']' : ')'}`;
  if (lo) return `${base} ${lo.inclusive ? '≥' : '>'} ${lo.value}`;
  if (hi) return `${base} ${hi.inclusive ? '≤' : '<'} ${hi.value}`;
  return base;
}

/** The message of a refinement (zod keeps it as a function of the issue, or a string). */
function customMessage(d: Def): string | null {
  try {
    const e = typeof d.error === 'function' ? (d.error as (iss: object) => unknown)({}) : d.error;
    return typeof e === 'string' ? e : null;
  } catch {
    return null;
  }
}

/** A one-line description of a leaf schema. */
export function describeType(node: Node): string {
  const def = node._zod.def;
  switch (def.type) {
    case 'default':
    case 'prefault':
    case 'optional':
      return describeType(def.innerType!);
    case 'nullable':
      return `${describeType(def.innerType!)} or null`;
    case 'pipe':
      return describeType(def.out!);
    case 'number':
      return numberType(def);
    case 'string':
      return 'string';
    case 'boolean':
      return 'boolean';
    case 'literal':
      return (def.values ?? []).map((v) => JSON.stringify(v)).join(' or ');
    case 'enum':
      return Object.keys(def.entries ?? {}).map((v) => JSON.stringify(v)).join(' or ');
    case 'union':
      if (def.discriminator) return `{type: …} (${def.discriminator} ∈ ${def.options!.map((o) => describeType(o._zod.def.shape![def.discriminator!])).join(', ')})`;
      return def.options!.map(describeType).join(' or ');
    case 'array':
      return `list of ${describeType(def.element!)}`;
    case 'tuple':
      return `[${def.items!.map(describeType).join(', ')}]`;
    default:
      throw new Error(`schema-fields: zod type '${def.type}' has no description`);
  }
}

/** Unwraps defaults, nullables and preprocessing down to a strict object, or returns null. */
function objectOf(node: Node): Def | null {
  const def = node._zod.def;
  if (def.type === 'object') return def;
  if (def.type === 'default' || def.type === 'prefault' || def.type === 'optional') return objectOf(def.innerType!);
  return null;
}

/** Every leaf field of the configuration schema, in schema order. */
export function schemaFields(root: Node = ConfigSchema as unknown as Node): SchemaField[] {
  const out: SchemaField[] = [];
  const walk = (prefix: string, node: Node) => {
    const obj = objectOf(node);
    if (obj) {
      for (const [k, v] of Object.entries(obj.shape!)) walk(prefix ? `${prefix}.${k}` : k, v);
      return;
    }
    out.push({ path: prefix, type: describeType(node) });
  };
  walk('', root);
  return out;
}

// `npx tsx test/config/schema-fields.ts [--markdown]`
if (typeof process !== 'undefined' && process.argv[1]?.endsWith('schema-fields.ts')) {
  const md = process.argv.includes('--markdown');
  for (const f of schemaFields()) console.log(md ? `| \`${f.path}\` | ${f.type} | | |` : `${f.path}\t${f.type}`);
}

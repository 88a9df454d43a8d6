/**
 * The import graph of the project's own TypeScript: the engine core (engine/) imports
 * no `node:` module and nothing from the platform layers or the command line (so it runs in
 * Node, Deno and the browser), and no module imports itself through others (no cycles, type-only
 * imports included: a cycle means two modules that should be one, or a third that both need).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..', '..');
const DIRS = ['engine', 'platform', 'cli', 'app/src'];

function walk(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (p.endsWith('.ts')) out.push(p);
  }
  return out;
}

/** Every static `import … from '…'` / `export … from '…'` / side-effect `import '…'` specifier. */
function specifiers(text: string): string[] {
  const out: string[] = [];
  const re = /^\s*(?:import|export)\s+(?:type\s+)?(?:[^'";]*?\s+from\s+)?['"]([^'"]+)['"]/gm;
  for (let m = re.exec(text); m; m = re.exec(text)) out.push(m[1]);
  return out;
}

const files = DIRS.flatMap((d) => walk(join(ROOT, d)));
const graph = new Map<string, { local: string[]; external: string[] }>();
for (const f of files) {
  const local: string[] = [];
  const external: string[] = [];
  for (const s of specifiers(readFileSync(f, 'utf8'))) {
    if (s.startsWith('.')) local.push(resolve(dirname(f), s));
    else external.push(s);
  }
  graph.set(f, { local, external });
}
const rel = (f: string) => relative(ROOT, f);

/** Strongly connected components with more than one module, or a module importing itself (Tarjan). */
function cycles(): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v)!.local) {
      if (!graph.has(w)) continue;
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const comp: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        comp.push(rel(w));
      } while (w !== v);
      if (comp.length > 1 || graph.get(v)!.local.includes(v)) out.push(comp.sort());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  return out;
}

describe('import graph', () => {
  it('reads the project: hundreds of modules, relative imports that resolve to files', () => {
    expect(files.length).toBeGreaterThan(100);
    const unresolved: string[] = [];
    for (const [f, { local }] of graph) for (const t of local) if (!graph.has(t)) unresolved.push(`${rel(f)} → ${rel(t)}`);
    // everything imported relatively from these folders is one of their own .ts files
    expect(unresolved.filter((u) => !/→ (node_modules|package\.json)/.test(u))).toEqual([]);
  });

  it('the engine core (engine/) imports no node: module, no platform/ and no cli/ code', () => {
    const bad: string[] = [];
    for (const [f, { local, external }] of graph) {
      const r = rel(f);
      if (!r.startsWith('engine/')) continue;
      for (const e of external) if (e.startsWith('node:') || ['fs', 'path', 'os', 'child_process', 'worker_threads', 'url'].includes(e)) bad.push(`${r} imports ${e}`);
      for (const t of local) if (/^(platform|cli|app)\//.test(rel(t))) bad.push(`${r} imports ${rel(t)}`);
    }
    expect(bad).toEqual([]);
  });

  it('has no import cycles (type-only imports included)', () => {
    expect(cycles()).toEqual([]);
  });

  it('the cycle finder finds a planted cycle', () => {
    const a = join(ROOT, 'engine', '__planted_a.ts');
    const b = join(ROOT, 'engine', '__planted_b.ts');
    graph.set(a, { local: [b], external: [] });
    graph.set(b, { local: [a], external: [] });
    try {
      expect(cycles()).toEqual([['engine/__planted_a.ts', 'engine/__planted_b.ts']]);
    } finally {
      graph.delete(a);
      graph.delete(b);
    }
  });
});

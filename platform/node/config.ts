/**
 * Node side of the configuration: reading the YAML file (`loadConfig`) and expanding the glob
 * patterns of data.* paths / scanning the archives (`expandGlob`, `findFiles`).
 */
import { readFile, readdir, stat } from 'node:fs/promises';
import { resolve, join } from 'node:path';
import { parseConfig } from '../../engine/config/parse.ts';
import type { ShineConfig } from '../../engine/config/schema.ts';
import { hasGlob } from '../../engine/config/paths.ts';
import { ShineError } from '../../engine/errors.ts';

/** Reads and validates a configuration file; relative paths resolve against its folder. */
export async function loadConfig(path: string): Promise<ShineConfig> {
  const abs = resolve(path);
  let text: string;
  try {
    text = await readFile(abs, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : code === 'EACCES' ? 'permission denied' : String((e as Error).message);
    throw new ShineError(`cannot read the configuration: ${why}`, { file: path });
  }
  const cfg = parseConfig(text, { file: path, baseDir: resolve(abs, '..') });
  return { ...cfg, source: { file: abs, dir: cfg.source.dir } };
}

function globToRegExp(seg: string): RegExp {
  let re = '';
  for (let i = 0; i < seg.length; i++) {
    const c = seg[i];
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const j = seg.indexOf(']', i + 1);
      if (j < 0) re += '\\[';
      else {
        let body = seg.slice(i + 1, j);
        if (body.startsWith('!')) body = `^${body.slice(1)}`;
        re += `[${body.replace(/\\/g, '\\\\')}]`;
        i = j;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

async function isDir(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Files matching an absolute pattern with `*`, `?`, `[…]` in any component and `**` for any
 * number of folders. Sorted; hidden files are matched only by patterns starting with '.'. A
 * component naming an existing entry literally is that entry (folders called 'run[1]' or 'a*b').
 * A pattern without glob characters is returned as it is (existence is checked by the reader).
 */
export async function expandGlob(pattern: string): Promise<string[]> {
  if (!hasGlob(pattern)) return [pattern];
  // a file or folder whose name holds *, ?, [ or ] is matched literally first ('run[1]/a.fits')
  if (await exists(pattern)) return [resolve(pattern)];
  const abs = resolve(pattern);
  const parts = abs.split('/').filter((s, i) => s !== '' || i === 0);
  const out = new Set<string>();
  const walk = async (dir: string, k: number): Promise<void> => {
    if (k === parts.length) {
      out.add(dir);
      return;
    }
    const seg = parts[k];
    if (!hasGlob(seg) || (await exists(join(dir, seg)))) {
      const next = join(dir, seg);
      if (k === parts.length - 1) {
        try {
          await stat(next);
          out.add(next);
        } catch {
          /* no match */
        }
      } else if (await isDir(next)) await walk(next, k + 1);
      return;
    }
    let entries: Array<{ name: string; isDirectory(): boolean }>;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    if (seg === '**') {
      await walk(dir, k + 1);
      for (const e of entries) if (e.isDirectory() && !e.name.startsWith('.')) await walk(join(dir, e.name), k);
      return;
    }
    const re = globToRegExp(seg);
    for (const e of entries) {
      if (e.name.startsWith('.') && !seg.startsWith('.')) continue;
      if (!re.test(e.name)) continue;
      if (k === parts.length - 1) out.add(join(dir, e.name));
      else if (e.isDirectory()) await walk(join(dir, e.name), k + 1);
    }
  };
  await walk(parts[0] === '' ? '/' : parts[0], 1);
  return [...out].sort();
}

/** Expands every pattern of a list (order kept, duplicates dropped); an unmatched glob is an error. */
export async function expandPaths(patterns: readonly string[], field: string): Promise<string[]> {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const p of patterns) {
    const got = await expandGlob(p);
    if (got.length === 0) throw new ShineError(`the pattern '${p}' matches no file`, { field });
    for (const f of got) {
      if (!seen.has(f)) {
        seen.add(f);
        out.push(f);
      }
    }
  }
  return out;
}

/** Files under `root` (recursively) whose name matches `re`, sorted. */
export async function findFiles(root: string, re: RegExp): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (e) {
      if (dir === root) throw new ShineError(`cannot list the folder: ${(e as Error).message}`, { file: root });
      return;
    }
    for (const e of entries) {
      if (e.name.startsWith('.')) continue;
      const p = join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else if (re.test(e.name)) out.push(p);
    }
  };
  await walk(root);
  return out.sort();
}

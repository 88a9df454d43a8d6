/**
 * Runtime-agnostic path helpers for configuration files: '/'-separated paths (Windows drive
 * letters and back-slashes tolerated), URLs left alone.
 */

/** True for '/abs', 'C:\\abs', 'C:/abs', '\\\\server\\share' and 'scheme://…' URLs. */
export function isAbsolutePath(p: string): boolean {
  return p.startsWith('/') || /^[A-Za-z]:[\\/]/.test(p) || p.startsWith('\\\\') || /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(p);
}

/** Collapses '.', '..' and repeated separators ('/' output; a leading '/' or drive is kept). */
export function normalizePath(p: string): string {
  if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(p)) return p;
  const s = p.replace(/\\/g, '/');
  const m = /^([A-Za-z]:)?(\/*)/.exec(s)!;
  const root = (m[1] ?? '') + (m[2] ? '/' : '');
  const parts: string[] = [];
  for (const seg of s.slice(m[0].length).split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      if (parts.length && parts[parts.length - 1] !== '..') parts.pop();
      else if (!root) parts.push('..');
      continue;
    }
    parts.push(seg);
  }
  const out = root + parts.join('/');
  return out || (root ? root : '.');
}

/** `rel` resolved against the folder `base` (absolute paths and URLs returned as they are). */
export function resolvePath(base: string, rel: string): string {
  if (isAbsolutePath(rel)) return normalizePath(rel);
  if (!base) return normalizePath(rel);
  return normalizePath(`${base}/${rel}`);
}

/** The folder of a path ('.' for a bare name). */
export function dirnameOf(p: string): string {
  const s = p.replace(/\\/g, '/');
  const i = s.lastIndexOf('/');
  if (i < 0) return '.';
  if (i === 0) return '/';
  return s.slice(0, i);
}

/** The last component of a path. */
export function basenameOf(p: string): string {
  const s = p.replace(/\\/g, '/').replace(/\/+$/, '');
  return s.slice(s.lastIndexOf('/') + 1);
}

/** True when a path holds glob characters (*, ?, [). */
export function hasGlob(p: string): boolean {
  return /[*?[]/.test(p);
}

/**
 * Runtime-agnostic path helpers for configuration files: '/'-separated paths (Windows drive
 * letters and, in Windows paths only, back-slashes tolerated), URLs left alone.
 */

/** True for '/abs', 'C:\\abs', 'C:/abs', '\\\\server\\share' and 'scheme://…' URLs. */
export function isAbsolutePath(p: string): boolean {
  return p.startsWith('/') || /^[A-Za-z]:[\\/]/.test(p) || p.startsWith('\\\\') || /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(p);
}

/**
 * True for a Windows path ('C:\\…', 'C:/…', '\\\\server\\share'): only there is '\\' a separator. On
 * POSIX a back-slash is an ordinary character of a file name ('bs\\dir' is one folder).
 */
export function isWindowsPath(p: string): boolean {
  return /^[A-Za-z]:[\\/]/.test(p) || p.startsWith('\\\\');
}

const slashes = (p: string) => (isWindowsPath(p) ? p.replace(/\\/g, '/') : p);

/** Collapses '.', '..' and repeated separators ('/' output; a leading '/' or drive is kept). */
export function normalizePath(p: string): string {
  if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(p)) return p;
  const s = slashes(p);
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
  const s = slashes(p);
  const i = s.lastIndexOf('/');
  if (i < 0) return '.';
  if (i === 0) return '/';
  return s.slice(0, i);
}

/** The last component of a path (of a URL: of its path, without the query or fragment). */
export function basenameOf(p: string): string {
  if (isUrl(p)) p = p.replace(/[?#].*$/, '');
  const s = slashes(p).replace(/\/+$/, '');
  return s.slice(s.lastIndexOf('/') + 1);
}

/** True for 'scheme://…' URLs (http, https, s3, …). */
export function isUrl(p: string): boolean {
  return /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(p);
}

/**
 * True when a local path holds glob characters (*, ?, [). URLs are never globs (a URL folder
 * cannot be listed; '?' starts a URL's query): see {@link urlPatternProblem}.
 */
export function hasGlob(p: string): boolean {
  if (isUrl(p)) return false;
  return /[*?[]/.test(p);
}

/**
 * Why a URL cannot be used as an input path, or null: only http(s) URLs are read, and a URL
 * cannot be a glob pattern (a web folder cannot be listed: every file's URL must be given).
 */
export function urlPatternProblem(p: string): string | null {
  if (!isUrl(p)) return null;
  if (!/^https?:\/\//i.test(p)) return `unsupported URL scheme in '${p}' (only http:// and https:// URLs are read; for S3 use the bucket's https:// address)`;
  const afterHost = p.replace(/^[A-Za-z]+:\/\/[^/]*/, '').replace(/#.*$/, '');
  if (/[*[\]]/.test(afterHost)) {
    return `'${p}' looks like a glob pattern, but a URL folder cannot be listed: give each file's URL explicitly (glob patterns work for local paths only)`;
  }
  return null;
}

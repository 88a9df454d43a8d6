/**
 * Settings of remote (http/https) data access on Node: the configuration's `remote` section
 * (engine/config/schema.ts, docs/config.md) resolved into the values the block cache and the
 * request layer use (docs/remote-data.md).
 */
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import type { z } from 'zod';
import { RemoteSchema } from '../../engine/config/schema.ts';
import type { RedirectPolicy } from '../../engine/data/fits/http-source.ts';

/** The `remote` section of the configuration, as the YAML spells it: the zod schema's output type. */
export type RemoteConfig = z.output<typeof RemoteSchema>;

/** The schema's defaults (engine/config/schema.ts, docs/config.md `remote`), not restated here. */
export const REMOTE_DEFAULTS: RemoteConfig = RemoteSchema.parse({});

/** Resolved settings of remote access. */
export interface RemoteSettings {
  /** Folder of the block cache; null: no disk cache (plain ranged reads, whole files in memory). */
  cacheDir: string | null;
  concurrency: number;
  retries: number;
  backoffMs: number;
  /** Idle timeout of one request (ms; 0: none). */
  timeoutMs: number;
  blockSize: number;
  maxRequestBytes: number;
  /** Which HTTP redirects are followed (`remote.redirects`; default 'same_host'). */
  redirects?: RedirectPolicy;
  /** Extra request headers. */
  headers?: Record<string, string>;
  /** fetch implementation (tests); default the global fetch. */
  fetch?: typeof fetch;
}

/** The default cache folder: $SHINE_CACHE_DIR, else $XDG_CACHE_HOME/shine/remote, else ~/.cache/shine/remote. */
export function defaultCacheDir(): string {
  if (process.env.SHINE_CACHE_DIR) return resolve(process.env.SHINE_CACHE_DIR);
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'shine', 'remote');
}

/**
 * Settings from the configuration section (missing fields take the defaults). A relative
 * `cache_dir` is resolved against `baseDir` (the configuration's folder); $SHINE_CACHE_DIR, when
 * set, overrides `cache_dir`.
 */
export function remoteSettings(cfg: Partial<RemoteConfig> = {}, baseDir = '.'): RemoteSettings {
  const c = { ...REMOTE_DEFAULTS, ...Object.fromEntries(Object.entries(cfg).filter(([, v]) => v !== undefined)) } as RemoteConfig;
  let cacheDir: string | null = null;
  if (c.cache) {
    if (process.env.SHINE_CACHE_DIR) cacheDir = resolve(process.env.SHINE_CACHE_DIR);
    else if (c.cache_dir) cacheDir = resolve(baseDir, c.cache_dir);
    else cacheDir = defaultCacheDir();
  }
  return {
    cacheDir,
    concurrency: c.concurrency,
    retries: c.retries,
    backoffMs: c.backoff_ms,
    timeoutMs: Math.round(c.timeout_s * 1000),
    blockSize: Math.round(c.block_kib * 1024),
    maxRequestBytes: Math.round(c.max_request_mib * 1024 * 1024),
    redirects: c.redirects,
  };
}

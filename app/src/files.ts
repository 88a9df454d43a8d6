/**
 * Where the worker's FITS files come from: an in-memory store (the built-in simulation, files the
 * user dropped) or URLs. Each source maps the paths written in a config / manifest to bytes.
 */
import { DataError } from '../../engine/errors.ts';
import { FitsFile, type OpenOptions } from '../../engine/data/fits/file.ts';
import { httpSource } from '../../engine/data/fits/http-source.ts';
import type { ByteSource } from '../../engine/data/fits/source.ts';
import type { SimOutput } from '../../engine/sim/simulate.ts';
import { basenameOf, dirnameOf, isUrl } from '../../engine/config/paths.ts';
import { blobSource } from '../../platform/browser/files.ts';

export type OpenFits = (path: string, options?: OpenOptions) => Promise<FitsFile>;

/** Files held in memory under '/'-separated paths. */
export class MemoryStore {
  readonly files = new Map<string, Blob>();

  /** A SimOutput writing into this store under `root` (engine/sim/simulate.ts streams HDUs into it). */
  simOutput(root: string): SimOutput {
    return {
      open: async (rel: string) => {
        const chunks: BlobPart[] = [];
        return {
          append: async (cs: readonly Uint8Array[]) => {
            for (const c of cs) chunks.push(c as Uint8Array<ArrayBuffer>);
          },
          close: async () => {
            this.files.set(`${root}/${rel}`, new Blob(chunks));
          },
        };
      },
    };
  }

  get(path: string): Blob | undefined {
    return this.files.get(path);
  }

  open: OpenFits = async (path, options) => {
    const b = this.files.get(path);
    if (!b) throw new DataError('no such file in the simulated sub-tile', { file: path });
    return FitsFile.open(blobSource(b, path), options);
  };
}

/** Dropped / picked files, found by their base name whatever folder the config or manifest names. */
export class DroppedFiles {
  readonly byName = new Map<string, File>();
  constructor(files: File[]) {
    for (const f of files) this.byName.set(f.name, f);
  }
  open: OpenFits = async (path, options) => {
    const name = basenameOf(path);
    const f = this.byName.get(name);
    if (!f) {
      throw new DataError(`${name} is needed (named as ${path}) but is not among the files you opened; add it (drop the whole folder's files together)`, { file: name });
    }
    return FitsFile.open(blobSource(f, name), options);
  };
}

/**
 * Files by URL. Paths that are URLs are fetched as they are. Absolute paths written by `shine
 * prepare` on another machine are mapped: the part below the folder of the config named in the
 * manifest (`manifest.config`) is fetched below the folder of the config URL; else the file's last
 * two components, or its name, below that folder; else the path itself on the config's origin
 * (and under Vite's /@fs/ on the dev server). The first that answers is used.
 */
export class UrlFiles {
  private resolved = new Map<string, string>();
  constructor(
    readonly configUrl: string,
    /** The config file the manifest names (`manifest.config`), if any. */
    private clusterConfig: string | null,
  ) {}

  setClusterConfig(p: string | null): void {
    this.clusterConfig = p;
  }

  candidates(path: string): string[] {
    if (isUrl(path)) return [path];
    const dir = new URL('.', this.configUrl);
    const out: string[] = [];
    if (this.clusterConfig && !isUrl(this.clusterConfig)) {
      const cdir = dirnameOf(this.clusterConfig).replace(/\/+$/, '');
      if (path.startsWith(`${cdir}/`)) out.push(new URL(path.slice(cdir.length + 1), dir).href);
    }
    const parts = path.split('/').filter(Boolean);
    if (parts.length >= 2) out.push(new URL(parts.slice(-2).join('/'), dir).href);
    out.push(new URL(parts[parts.length - 1] ?? path, dir).href);
    if (path.startsWith('/')) {
      out.push(new URL(path, dir.origin).href);
      out.push(new URL(`/@fs${path}`, dir.origin).href);
    }
    return [...new Set(out)];
  }

  async resolve(path: string): Promise<string> {
    const hit = this.resolved.get(path);
    if (hit) return hit;
    const tried: string[] = [];
    for (const url of this.candidates(path)) {
      tried.push(url);
      try {
        const r = await fetch(url, { method: 'HEAD' });
        if (r.ok && !(r.headers.get('content-type') ?? '').includes('text/html')) {
          this.resolved.set(path, url);
          return url;
        }
      } catch {
        /* next candidate */
      }
    }
    throw new DataError(`cannot fetch it: tried ${tried.join(', ')}`, { file: path });
  }

  /** Byte ranges read, kept up to a budget: the images shown at load and each run read the same HDUs, fetched once when they fit. */
  readonly cache = new RangeCache();

  open: OpenFits = async (path, options) => FitsFile.open(this.cache.wrap(httpSource(await this.resolve(path))), options);
}

/**
 * The range cache's default budget. A small sub-tile's HDUs (the `ci` preset: a few MB) fit many
 * times over; a realistic one's (2.15 GB for the `subtile` preset's 52 quadrants) do not, and
 * holding them all would double the page's memory: the oldest ranges are dropped and a later run
 * fetches them again.
 */
export const RANGE_CACHE_BYTES = 256 * 2 ** 20;

/**
 * Byte ranges read through wrapped sources, by source name and (offset, length): the same range
 * asked again (the FITS reader reads an HDU with the same requests each time) is answered from
 * memory. Holds what was read, i.e. the sub-tile's HDUs, not whole files — at most `maxBytes` of
 * it: the least recently used ranges are dropped first, and a range larger than the budget is not
 * kept.
 */
export class RangeCache {
  private readonly sizes = new Map<string, number>();
  /** Insertion order is recency: a hit moves its range to the end, eviction takes from the front. */
  private readonly ranges = new Map<string, Uint8Array>();
  /** Bytes fetched from the underlying sources, bytes answered from memory, bytes held now. */
  fetched = 0;
  reused = 0;
  held = 0;

  constructor(readonly maxBytes = RANGE_CACHE_BYTES) {}

  wrap(src: ByteSource): ByteSource {
    return {
      name: src.name,
      size: async () => {
        const hit = this.sizes.get(src.name);
        if (hit !== undefined) return hit;
        const n = await src.size();
        this.sizes.set(src.name, n);
        return n;
      },
      read: async (offset, length) => {
        const key = `${src.name}\0${offset}:${length}`;
        const hit = this.ranges.get(key);
        if (hit) {
          this.ranges.delete(key);
          this.ranges.set(key, hit);
          this.reused += hit.length;
          return hit.slice(); // callers may mutate what they get
        }
        const b = await src.read(offset, length);
        this.fetched += b.length;
        this.keep(key, b);
        return b;
      },
      close: () => src.close(),
    };
  }

  private keep(key: string, b: Uint8Array): void {
    if (b.length > this.maxBytes) return;
    for (const [k, v] of this.ranges) {
      if (this.held + b.length <= this.maxBytes) break;
      this.ranges.delete(k);
      this.held -= v.length;
    }
    this.ranges.set(key, b.slice());
    this.held += b.length;
  }
}

/** Text of a URL, with an error naming the URL and the HTTP status. */
export async function fetchText(url: string, what: string): Promise<string> {
  let r: Response;
  try {
    r = await fetch(url);
  } catch (e) {
    throw new DataError(`cannot fetch the ${what}: ${(e as Error)?.message ?? String(e)}`, { file: url });
  }
  if (!r.ok) throw new DataError(`cannot fetch the ${what}: HTTP ${r.status} ${r.statusText}`, { file: url });
  return r.text();
}

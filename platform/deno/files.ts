/**
 * Deno file access for the FITS layer: a random-access ByteSource over `Deno.open` + seek.
 * (Type declarations for the few Deno APIs used are local so that `tsc` for Node checks this file.)
 */
import { DataError } from '../../engine/errors.ts';
import { FitsFile, type OpenOptions } from '../../engine/data/fits/file.ts';
import { httpSource } from '../../engine/data/fits/http-source.ts';
import type { ByteSource } from '../../engine/data/fits/source.ts';

interface DenoFsFile {
  seek(offset: number | bigint, whence: number): Promise<number>;
  read(p: Uint8Array): Promise<number | null>;
  stat(): Promise<{ size: number; isDirectory: boolean }>;
  close(): void;
}
interface DenoNs {
  open(path: string, options?: { read?: boolean }): Promise<DenoFsFile>;
  SeekMode: { Start: number };
}
declare const Deno: DenoNs;

export async function openFileSource(path: string): Promise<ByteSource> {
  let f: DenoFsFile;
  try {
    f = await Deno.open(path, { read: true });
  } catch (e) {
    const name = (e as Error)?.name;
    throw new DataError(`cannot open: ${name === 'NotFound' ? 'no such file' : ((e as Error)?.message ?? String(e))}`, { file: path });
  }
  const st = await f.stat();
  if (st.isDirectory) {
    f.close();
    throw new DataError('cannot open: is a directory', { file: path });
  }
  let closed = false;
  // reads are serialised: seek + read on one handle must not interleave
  let queue: Promise<unknown> = Promise.resolve();
  return {
    name: path,
    async size() {
      return (await f.stat()).size;
    },
    read(offset, length) {
      if (closed) return Promise.reject(new DataError('read after close', { file: path }));
      if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
        return Promise.reject(new DataError(`invalid byte range offset=${offset} length=${length}`, { file: path }));
      }
      const job = queue.then(async () => {
        const out = new Uint8Array(length);
        await f.seek(offset, Deno.SeekMode.Start);
        let got = 0;
        while (got < length) {
          const n = await f.read(out.subarray(got));
          if (n === null || n === 0) break;
          got += n;
        }
        return got === length ? out : out.subarray(0, got);
      });
      queue = job.catch(() => undefined);
      return job;
    },
    async close() {
      if (closed) return;
      closed = true;
      await queue;
      f.close();
    },
  };
}

/** Opens a FITS file from a local path or an http(s) URL. */
export async function openFits(pathOrUrl: string, options: OpenOptions = {}): Promise<FitsFile> {
  const src = /^https?:\/\//i.test(pathOrUrl) ? httpSource(pathOrUrl) : await openFileSource(pathOrUrl);
  return FitsFile.open(src, options);
}

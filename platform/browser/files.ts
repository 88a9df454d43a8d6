/**
 * Browser file access for the FITS layer: a random-access ByteSource over a Blob / File
 * (`Blob.slice(a, b).arrayBuffer()` reads only that range), and opening a File or URL as a FitsFile.
 */
import { DataError } from '../../engine/errors.ts';
import { FitsFile, type OpenOptions } from '../../engine/data/fits/file.ts';
import { httpSource } from '../../engine/data/fits/http-source.ts';
import type { ByteSource } from '../../engine/data/fits/source.ts';

export function blobSource(blob: Blob, name = (blob as File).name ?? '<blob>'): ByteSource {
  let closed = false;
  return {
    name,
    async size() {
      return blob.size;
    },
    async read(offset, length) {
      if (closed) throw new DataError('read after close', { file: name });
      if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
        throw new DataError(`invalid byte range offset=${offset} length=${length}`, { file: name });
      }
      const end = Math.min(blob.size, offset + length);
      if (end <= offset) return new Uint8Array(0);
      try {
        return new Uint8Array(await blob.slice(offset, end).arrayBuffer());
      } catch (e) {
        throw new DataError(`cannot read bytes ${offset}-${end - 1}: ${(e as Error)?.message ?? String(e)}`, { file: name });
      }
    },
    async close() {
      closed = true;
    },
  };
}

/** Opens a FITS file from a File/Blob or an http(s) URL (gzip detected from the magic bytes). */
export async function openFits(input: Blob | string, options: OpenOptions = {}): Promise<FitsFile> {
  const src = typeof input === 'string' ? httpSource(input) : blobSource(input);
  return FitsFile.open(src, options);
}

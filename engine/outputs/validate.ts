/**
 * Validation of product bytes (runtime-agnostic): used before writing (a bug never reaches the
 * disk) and by the completeness check that decides whether a sub-tile can be skipped on re-run.
 */
import { FitsFile } from '../data/fits/file.ts';
import { BLOCK } from '../data/fits/header.ts';
import { memorySource } from '../data/fits/source.ts';
import type { ProductKind, SubtileId } from './names.ts';
import { checkMetadataText } from './metadata.ts';
import { checkParamsTable, PARAMS_EXTNAME } from './params.ts';
import { checkShearTable, SHEAR_EXTNAME } from './shear.ts';

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** Problems with PNG bytes: signature, IHDR first, chunks well-formed and ending with IEND. */
export function checkPngBytes(bytes: Uint8Array): string[] {
  if (bytes.length < 8 || PNG_SIGNATURE.some((b, i) => bytes[i] !== b)) return ['not a PNG (bad signature)'];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let o = 8;
  let first = true;
  while (o + 12 <= bytes.length) {
    const len = view.getUint32(o);
    const type = String.fromCharCode(bytes[o + 4], bytes[o + 5], bytes[o + 6], bytes[o + 7]);
    if (first && type !== 'IHDR') return [`first PNG chunk is ${type}, expected IHDR`];
    first = false;
    const end = o + 12 + len;
    if (end > bytes.length) return [`PNG truncated: chunk ${type} needs ${len} bytes, ${bytes.length - o - 12} present`];
    if (type === 'IEND') return end === bytes.length ? [] : [`${bytes.length - end} bytes after IEND`];
    o = end;
  }
  return ['PNG truncated: no IEND chunk'];
}

async function checkFits(bytes: Uint8Array, kind: 'shear' | 'params', expected?: SubtileId): Promise<string[]> {
  if (bytes.length === 0) return ['empty file'];
  if (bytes.length % BLOCK !== 0) return [`size ${bytes.length} is not a multiple of ${BLOCK} bytes (truncated?)`];
  try {
    const f = await FitsFile.open(memorySource(bytes));
    const t = await f.readTable(kind === 'shear' ? SHEAR_EXTNAME : PARAMS_EXTNAME);
    return kind === 'shear' ? checkShearTable(t, expected) : checkParamsTable(t, expected);
  } catch (e) {
    return [(e as Error).message];
  }
}

/** Problems with the bytes of one product (empty list: valid). */
export async function checkProductBytes(kind: ProductKind, bytes: Uint8Array, expected?: SubtileId): Promise<string[]> {
  switch (kind) {
    case 'shear':
    case 'params':
      return checkFits(bytes, kind, expected);
    case 'diagnostics':
      return checkPngBytes(bytes);
    case 'metadata': {
      let text: string;
      try {
        text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
      } catch {
        return ['not UTF-8 text'];
      }
      return checkMetadataText(text, expected);
    }
  }
}

/**
 * The app's byte-range cache (app/src/files.ts RangeCache) against a counting source: a range read
 * twice is fetched once while it fits the budget; past the budget the least recently used ranges
 * go first, what is held never exceeds the budget, and every read returns the source's bytes.
 */
import { describe, it, expect } from 'vitest';
import { RangeCache } from '../../app/src/files.ts';
import type { ByteSource } from '../../engine/data/fits/source.ts';
import { mulberry32 } from '../../engine/util/rng.ts';

function source(name: string, size: number): { src: ByteSource; reads: Array<[number, number]>; bytes: Uint8Array } {
  const bytes = new Uint8Array(size);
  const r = mulberry32(size);
  for (let i = 0; i < size; i++) bytes[i] = Math.floor(r() * 256);
  const reads: Array<[number, number]> = [];
  const src: ByteSource = {
    name,
    size: async () => size,
    read: async (offset, length) => {
      reads.push([offset, length]);
      return bytes.slice(offset, offset + length);
    },
    close: async () => {},
  };
  return { src, reads, bytes };
}

describe('RangeCache', () => {
  it('answers a repeated range from memory while it fits, and returns a copy', async () => {
    const cache = new RangeCache(1000);
    const a = source('a', 5000);
    const w = cache.wrap(a.src);
    const first = await w.read(100, 300);
    first.fill(0); // a caller mutating what it got must not change the cache
    const again = await w.read(100, 300);
    expect(a.reads).toEqual([[100, 300]]);
    expect([...again]).toEqual([...a.bytes.subarray(100, 400)]);
    expect(cache.fetched).toBe(300);
    expect(cache.reused).toBe(300);
    // the same range of another source is another range
    const b = source('b', 5000);
    const wb = cache.wrap(b.src);
    expect([...(await wb.read(100, 300))]).toEqual([...b.bytes.subarray(100, 400)]);
    expect(b.reads.length).toBe(1);
  });

  it('holds at most its budget, dropping the least recently used ranges first', async () => {
    const cache = new RangeCache(1000);
    const a = source('a', 10_000);
    const w = cache.wrap(a.src);
    await w.read(0, 400); // A
    await w.read(400, 400); // B
    await w.read(0, 400); // A again: now the most recent
    await w.read(800, 400); // C: 1,200 > 1,000, B (least recent) goes
    expect(cache.held).toBeLessThanOrEqual(1000);
    a.reads.length = 0;
    await w.read(0, 400); // A kept
    await w.read(800, 400); // C kept
    expect(a.reads).toEqual([]);
    await w.read(400, 400); // B fetched again
    expect(a.reads).toEqual([[400, 400]]);
    // a range over the budget is read through, not kept
    const big = await w.read(1000, 2000);
    expect([...big]).toEqual([...a.bytes.subarray(1000, 3000)]);
    await w.read(1000, 2000);
    expect(a.reads.filter(([o]) => o === 1000).length).toBe(2);
    // random reads: always the source's bytes, never over the budget
    const r = mulberry32(7);
    for (let k = 0; k < 300; k++) {
      const off = Math.floor(r() * 9000);
      const len = 1 + Math.floor(r() * 500);
      expect([...(await w.read(off, len))]).toEqual([...a.bytes.subarray(off, off + len)]);
      expect(cache.held).toBeLessThanOrEqual(1000);
    }
  });
});

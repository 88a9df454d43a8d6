/**
 * Speed of the image path (a Euclid VIS quadrant, 2048 × 2066 float32), the browser Blob source
 * (Blob exists in Node too), and `shine fits-info`.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'fflate';
import { FitsFile, countingSource, writeFits } from '../../engine/data/fits/index.ts';
import { openFits, writeFileAtomic } from '../../platform/node/files.ts';
import { blobSource } from '../../platform/browser/files.ts';
import { tempDir } from './helpers.ts';

const W = 2048;
const H = 2066;
let dir = '';
let path = '';

// pixel value with an exactly known float32 (integers and halves below 2^23 are exact)
const pix = (i: number) => ((i * 7919) % 1000003) * 0.5 - 250000;

beforeAll(async () => {
  dir = tempDir();
  path = join(dir, 'quadrant.fits');
  const data = Float32Array.from({ length: W * H }, (_, i) => pix(i));
  await writeFileAtomic(path, writeFits([{ kind: 'empty' }, { name: '3-4.F.SCI', data, shape: [W, H] }, { name: '3-4.F.FLG', data: new Int32Array(W * H), shape: [W, H] }]));
});

describe('image read speed', () => {
  it('2048 × 2066 float32 quadrant: one read, byte swap in place', async () => {
    const times: number[] = [];
    for (let rep = 0; rep < 3; rep++) {
      const t0 = performance.now();
      const f = await openFits(path);
      const img = await f.readImageFloat32('3-4.F.SCI');
      times.push(performance.now() - t0);
      expect(img.shape).toEqual([W, H]);
      for (const i of [0, 1, W, W * H - 1, 1234567]) expect(img.data[i]).toBe(pix(i));
      await f.close();
    }
    const best = Math.min(...times);
    console.log(`readImageFloat32 2048x2066 float32 (16.9 MB): best ${best.toFixed(1)} ms of ${times.map((t) => t.toFixed(1)).join(', ')}`);
  });

  it('Blob source reads only the ranges asked for', async () => {
    const bytes = readFileSync(path);
    const src = countingSource(blobSource(new Blob([bytes]), 'quadrant.fits'));
    const f = await FitsFile.open(src);
    const img = await f.readImageFloat32('3-4.F.SCI');
    expect(img.data[W * H - 1]).toBe(pix(W * H - 1));
    expect(src.stats.bytes).toBeLessThan(W * H * 4 + 4 * 2880 * 3);
  });

  it('gzip: decompressed in chunks, same pixels', async () => {
    const gz = join(dir, 'quadrant.fits.gz');
    writeFileSync(gz, gzipSync(readFileSync(path), { level: 1 }));
    const t0 = performance.now();
    const f = await openFits(gz);
    const img = await f.readImageFloat32('3-4.F.SCI');
    console.log(`gunzip + read 2048x2066 quadrant file: ${(performance.now() - t0).toFixed(0)} ms`);
    for (const i of [0, 77, W * H - 1]) expect(img.data[i]).toBe(pix(i));
  });
});

describe('shine fits-info', () => {
  const shine = (args: string[]) =>
    spawnSync(process.execPath, ['--import', 'tsx', 'cli/shine.ts', 'fits-info', ...args], { encoding: 'utf8' });

  it('lists HDUs as text and JSON', () => {
    const bytes = writeFits([
      { kind: 'empty' },
      { name: 'SCI', data: new Float32Array(6), shape: [3, 2] },
      { kind: 'bintable', name: 'CAT', columns: [{ name: 'ID', data: BigInt64Array.from([1n]) }, { name: 'PSF', format: '441E', data: new Float32Array(441), unit: 'adu' }] },
    ]);
    const p = join(dir, 'info.fits');
    writeFileSync(p, bytes);
    const r = shine([p]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/1 +SCI +image +3 × 2 +BITPIX -32/);
    expect(r.stdout).toMatch(/2 +CAT +bintable +1 rows × 2 columns: ID K, PSF 441E/);
    const j = JSON.parse(shine([p, '--json']).stdout);
    expect(j.hdus.map((h: { name: string }) => h.name)).toEqual(['', 'SCI', 'CAT']);
    expect(j.hdus[1].shape).toEqual([3, 2]);
    expect(j.hdus[2].columns).toEqual([
      { name: 'ID', format: 'K' },
      { name: 'PSF', format: '441E', unit: 'adu' },
    ]);
  });

  it('exits 1 with a one-line error on bad input', () => {
    const p = join(dir, 'trunc.fits');
    writeFileSync(p, readFileSync(path).subarray(0, 100000));
    const r = shine([p]);
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^shine: file .*trunc\.fits, HDU 1 \(3-4\.F\.SCI\), key NAXIS2: file truncated/);
    const m = shine([join(dir, 'nope.fits')]);
    expect(m.status).toBe(1);
    expect(m.stderr).toMatch(/^shine: file .*nope\.fits: cannot open: no such file/);
  });
});

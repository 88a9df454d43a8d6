import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { writeFits } from '../../engine/data/fits/write.ts';
import { openFits } from '../../platform/node/files.ts';
import { commandExitCode } from '../../cli/command.ts';
import { python } from '../fits/helpers.ts';
import crossmatchCommand from '../../cli/commands/crossmatch.ts';
import { mulberry32 as rng } from '../../engine/util/rng.ts';

let dir = '';


/** Runs the command in-process; returns exit code, stdout and stderr. */
async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((...a) => void out.push(a.join(' ')));
  const error = vi.spyOn(console, 'error').mockImplementation((...a) => void err.push(a.join(' ')));
  try {
    const code = await commandExitCode(() => crossmatchCommand.run(args));
    return { code, out: out.join('\n'), err: err.join('\n') };
  } finally {
    log.mockRestore();
    error.mockRestore();
  }
}

const N = 3000;
const truth = { flux: new Float64Array(N), ra: new Float64Array(N), dec: new Float64Array(N) };

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'shine-xmatch-'));
  const r = rng(3);
  const raB = new Float64Array(N);
  const decB = new Float64Array(N);
  const fluxB = new Float32Array(N);
  const id = new Int32Array(N);
  for (let i = 0; i < N; i++) {
    // rows < 2500 (those in B) in a 0.5 deg box straddling RA = 0; the others far away, unmatched
    truth.ra[i] = (360 + (r() - 0.5) * 0.5) % 360;
    truth.dec[i] = (i < 2500 ? 45 : 40) + (r() - 0.5) * 0.5;
    truth.flux[i] = 100 + 50 * r();
    raB[i] = (truth.ra[i] + ((r() - 0.5) * 0.1) / 3600 / Math.cos((45 * Math.PI) / 180) + 360) % 360;
    decB[i] = truth.dec[i] + ((r() - 0.5) * 0.1) / 3600;
    fluxB[i] = truth.flux[i] + 2 + (r() - 0.5);
    id[i] = i;
  }
  // A: the truth (first 2500 rows only in B), B: measured with an offset of +2 in FLUX
  writeFileSync(
    join(dir, 'a.fits'),
    writeFits([
      { kind: 'empty' },
      {
        kind: 'bintable',
        name: 'TRUTH',
        columns: [
          { name: 'RA', data: truth.ra, unit: 'deg' },
          { name: 'DEC', data: truth.dec, unit: 'deg' },
          { name: 'FLUX', data: truth.flux },
          { name: 'ID', data: id },
          { name: 'NAME', data: Array.from(id, (i) => `src${i}`) },
        ],
      },
    ]),
  );
  const M = 2500;
  writeFileSync(
    join(dir, 'b.fits'),
    writeFits([
      { kind: 'empty' },
      {
        kind: 'bintable',
        columns: [
          { name: 'RIGHT_ASCENSION', data: raB.slice(0, M) },
          { name: 'DECLINATION', data: decB.slice(0, M) },
          { name: 'flux', data: fluxB.slice(0, M) },
          { name: 'E1', data: new Float32Array(M).fill(0.1) },
        ],
      },
    ]),
  );
  writeFileSync(join(dir, 'image.fits'), writeFits([{ kind: 'image', data: new Float32Array(16), shape: [4, 4] }]));
  writeFileSync(
    join(dir, 'nodec.fits'),
    writeFits([{ kind: 'empty' }, { kind: 'bintable', columns: [{ name: 'RA', data: new Float64Array(3) }, { name: 'X', data: new Float64Array(3) }] }]),
  );
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('shine crossmatch', () => {
  it('reports fractions, separations and column differences; --out reads back', async () => {
    const out = join(dir, 'm.fits');
    const res = await run([join(dir, 'a.fits'), join(dir, 'b.fits'), '--radius', '0.3', '--out', out, '--json']);
    expect(res.code, res.err).toBe(0);
    const rep = JSON.parse(res.out);
    expect(rep.nA).toBe(N);
    expect(rep.nB).toBe(2500);
    expect(rep.nMatched).toBe(2500);
    expect(rep.fractionA).toBeCloseTo(2500 / N, 12);
    expect(rep.fractionB).toBe(1);
    expect(rep.raColumns.b).toEqual(['RIGHT_ASCENSION', 'DECLINATION']);

    const f = await openFits(out);
    const t = await f.readTable('MATCHES');
    await f.close();
    expect(t.nRows).toBe(2500);
    const ia = t.column('INDEX_A').data as Int32Array;
    const ib = t.column('INDEX_B').data as Int32Array;
    const sep = t.column('SEP_ARCSEC').data as Float64Array;
    // B row j was made from A row j
    for (let k = 0; k < t.nRows; k++) expect(ia[k]).toBe(ib[k]);
    expect(Array.from((t.column('A_NAME').data as string[]).slice(0, 3))).toEqual(['src0', 'src1', 'src2']);
    expect((t.column('A_FLUX').data as Float64Array)[5]).toBe(truth.flux[ia[5]]);
    expect(t.column('B_flux').data).toBeInstanceOf(Float32Array);
    // independent statistics from the written pairs
    const sorted = Float64Array.from(sep).sort();
    expect(rep.sepMedianArcsec).toBeCloseTo((sorted[1249] + sorted[1250]) / 2, 12);
    const fa = t.column('A_FLUX').data as Float64Array;
    const fb = t.column('B_flux').data as Float32Array;
    const d = Float64Array.from(fa, (x, k) => fb[k] - x).sort();
    const med = (d[1249] + d[1250]) / 2;
    const mad = Float64Array.from(d, (x) => Math.abs(x - med)).sort();
    const flux = rep.differences.find((x: { column: string }) => x.column === 'FLUX');
    expect(flux.median).toBeCloseTo(med, 9);
    expect(flux.scatter).toBeCloseTo(1.4826 * ((mad[1249] + mad[1250]) / 2), 9);
    // the construction: offset +2, uniform noise of width 1 (σ_MAD = 1.4826 × 0.25)
    expect(flux.median).toBeCloseTo(2, 1);
    expect(flux.scatter).toBeCloseTo(0.37, 1);
    expect(rep.differences.map((x: { column: string }) => x.column)).toEqual(['FLUX']);
  });

  it('astropy reads the match table', () => {
    const out = join(dir, 'm.fits');
    const py = `import sys; from astropy.table import Table; t = Table.read(sys.argv[1], hdu='MATCHES'); print(len(t), t['INDEX_A'].dtype, t['A_NAME'][0], t.colnames[:4])`;
    const r = spawnSync(python(), ['-c', py, out], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('2500 >i4 src0');
  });

  it('--unique and human-readable output', async () => {
    const res = await run([join(dir, 'a.fits'), join(dir, 'b.fits'), '--radius', '0.3', '--unique']);
    expect(res.code, res.err).toBe(0);
    expect(res.out).toMatch(/83\.33 % of A, 100\.00 % of B/);
    expect(res.out).toMatch(/one-to-one/);
  });

  it('bad input: missing column, not a table, missing file → exit 1 naming file and column', async () => {
    const nodec = join(dir, 'nodec.fits');
    let r = await run([join(dir, 'a.fits'), nodec, '--radius', '1']);
    expect(r.code).toBe(1);
    expect(r.err).toContain(nodec);
    expect(r.err).toMatch(/DEC/);
    r = await run([join(dir, 'a.fits'), join(dir, 'b.fits'), '--radius', '1', '--ra-col', 'ALPHA']);
    expect(r.code).toBe(1);
    expect(r.err).toContain('a.fits');
    expect(r.err).toContain('ALPHA');
    const img = join(dir, 'image.fits');
    r = await run([img, join(dir, 'b.fits'), '--radius', '1']);
    expect(r.code).toBe(1);
    expect(r.err).toContain(img);
    expect(r.err).toMatch(/binary table/);
    r = await run([join(dir, 'missing.fits'), join(dir, 'b.fits'), '--radius', '1']);
    expect(r.code).toBe(1);
    expect(r.err).toContain('missing.fits');
    r = await run([join(dir, 'a.fits'), join(dir, 'b.fits')]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/--radius/);
  });

  it('the shine dispatcher exits 1 on bad input', () => {
    const r = spawnSync('npx', ['tsx', 'cli/shine.ts', 'crossmatch', join(dir, 'a.fits'), join(dir, 'nodec.fits'), '--radius', '1'], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('nodec.fits');
  }, 30_000);
});

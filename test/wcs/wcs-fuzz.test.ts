/**
 * Fuzzing the WCS header parser and transforms: arbitrary values for every WCS key either give a
 * WCS or a DataError (never another exception, never a hang); transforms of any WCS return
 * (possibly NaN) numbers in bounded time.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createTpvWcs, headerFromCards, parseWcs, tpvHeaderCards } from '../../engine/data/wcs/index.ts';
import { DataError } from '../../engine/errors.ts';

const S = 0.1 / 3600;
const base = Object.fromEntries(
  tpvHeaderCards(
    createTpvWcs({
      crpix: [-2400, 4390],
      crval: [57.99, -51.5],
      cd: [-S, 1e-7, 1e-7, S],
      pv1: [0, 1, 0, 0, 3e-3, -2e-3, 1e-3, 1e-2, -4e-3, 6e-3, 2e-3],
      pv2: [0, 1, 0, 0, -1e-3, 2.5e-3, 3e-3, -5e-3, 7e-3, 1e-3, -8e-3],
    }),
  ).map((c) => [c[0], c[1]]),
) as Record<string, unknown>;
const keys = Object.keys(base);

const anyValue = fc.oneof(
  fc.double(),
  fc.integer(),
  fc.string({ maxLength: 12 }),
  fc.constantFrom('RA---TPV', 'DEC--TPV', 'RA---TAN-SIP', 'DEC--SIP', 'RA---ZPN', '1.5D-3', '', ' ', 'NaN', 'deg', 'rad'),
  fc.boolean(),
  fc.constant(null),
  fc.constant(undefined),
  fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }),
);

describe('WCS fuzz', () => {
  it('random key values: a WCS or a DataError, and transforms terminate', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom(...keys, 'A_ORDER', 'B_ORDER', 'LONPOLE', 'PC1_1', 'CDELT1', 'PV1_39'), anyValue), { maxLength: 6 }), (edits) => {
        const h: Record<string, unknown> = { ...base };
        for (const [k, v] of edits) {
          if (v === undefined) delete h[k];
          else h[k] = v;
        }
        let wcs;
        try {
          wcs = parseWcs(headerFromCards(h), { file: 'fuzz.fits', hdu: 1 });
        } catch (e) {
          expect(e).toBeInstanceOf(DataError);
          expect((e as Error).message).toMatch(/fuzz\.fits/);
          return;
        }
        const [ra, dec] = wcs.pixelToSky(100, 200);
        // a fuzzed WCS may have no sky position for this pixel (NaN), but a position it gives is on
        // the sphere: RA in [0, 360), Dec in [−90, 90] — never ±Infinity or an unwrapped angle
        expect(Number.isNaN(ra) || (ra >= 0 && ra < 360), `ra = ${ra}`).toBe(true);
        expect(Number.isNaN(dec) || (dec >= -90 && dec <= 90), `dec = ${dec}`).toBe(true);
        const r = wcs.skyToPixelDetailed(Number.isFinite(ra) ? ra : 10, Number.isFinite(dec) ? dec : 0);
        expect(r.iterations).toBeLessThanOrEqual(100);
        const j = wcs.localJacobian(5, 5);
        expect(j.length).toBe(4);
      }),
      { numRuns: 1500 },
    );
  });
});

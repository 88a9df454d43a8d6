/**
 * The configuration's priors (`gal.priors`, docs/config.md) as the inference's per-parameter
 * PriorSpec (engine/infer/priors.ts), typed from the configuration schema.
 */
import type { ShineConfig } from '../config/index.ts';
import type { PriorSpec } from '../infer/index.ts';
import type { PosteriorPriors } from '../infer/posterior.ts';

type ConfigPriors = ShineConfig['gal']['priors'];
/** Shear, offsets, ν, B/T: normal, uniform or fixed. */
type SignedPrior = ConfigPriors['shear'];
/** Ellipticities: ba14 besides the signed ones. */
type EllipticityPrior = ConfigPriors['ellipticity'];
/** Flux, hlr, bulge hlr: lognormal and a catalog-valued fixed besides normal and uniform. */
type PositivePrior = ConfigPriors['flux'];

function signed(s: SignedPrior | EllipticityPrior): PriorSpec {
  switch (s.type) {
    case 'normal':
      return { type: 'normal', mean: s.mean, sigma: s.sigma };
    case 'uniform':
      return { type: 'uniform', low: s.low, high: s.high };
    case 'ba14':
      return { type: 'ba14', sigma: s.sigma };
    case 'fixed':
      return { type: 'fixed', value: s.value };
  }
}

/**
 * Config priors → PriorSpec per parameter, and the catalog centres of the lognormal flux and hlr
 * priors (a numeric `center` replaces the catalog value of every source).
 */
export function priorsFromConfig(cfg: ShineConfig, catalog: { flux: Float64Array; hlr: Float64Array }): { priors: PosteriorPriors; catalog: { flux: Float64Array; hlr: Float64Array } } {
  const p = cfg.gal.priors;
  const cat = { flux: catalog.flux.slice(), hlr: catalog.hlr.slice() };
  const positive = (s: PositivePrior, key: 'flux' | 'hlr'): PriorSpec => {
    if (s.type === 'lognormal') {
      if (typeof s.center === 'number') cat[key].fill(s.center);
      return { type: 'lognormal', sigma: s.sigma };
    }
    if (s.type === 'fixed') return s.value === 'catalog' ? { type: 'fixed' } : { type: 'fixed', value: s.value };
    return signed(s);
  };
  const bulgeHlr = (s: PositivePrior): PriorSpec =>
    // centred on the bulge's starting value unless a numeric centre is given
    s.type === 'lognormal' ? { type: 'lognormal', sigma: s.sigma, ...(typeof s.center === 'number' ? { mu: Math.log(s.center) } : {}) } : s.type === 'fixed' ? (s.value === 'catalog' ? { type: 'fixed' } : { type: 'fixed', value: s.value }) : signed(s);
  return {
    priors: {
      g1: signed(p.shear),
      g2: signed(p.shear),
      flux: positive(p.flux, 'flux'),
      hlr: positive(p.hlr, 'hlr'),
      e1: signed(p.ellipticity),
      e2: signed(p.ellipticity),
      dx: signed(p.offset),
      dy: signed(p.offset),
      ellipticityMax: p.ellipticity_max,
      // the profile parameters' priors (absent: PROFILE_DEFAULT_PRIORS)
      profile: {
        ...(p.nu ? { nu: signed(p.nu) } : {}),
        ...(p.bulge_fraction ? { bulgeFrac: signed(p.bulge_fraction) } : {}),
        ...(p.bulge_hlr ? { bulgeHlr: bulgeHlr(p.bulge_hlr) } : {}),
        ...(p.bulge_ellipticity ? { bulgeE1: signed(p.bulge_ellipticity), bulgeE2: signed(p.bulge_ellipticity) } : {}),
      },
    },
    catalog: cat,
  };
}

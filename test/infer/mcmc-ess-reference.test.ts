/**
 * R̂, bulk-ESS and tail-ESS against the reference R code of Vehtari et al. 2021 (the `posterior`
 * package: `rhat`, `ess_bulk`, `ess_tail`), ported to NumPy in test/app/fixtures/fits_oracle.py
 * (which the app's Chromium test also uses on the draws the page exports). The expected numbers
 * below are that port's output on these chains (AR(1) series from a fixed LCG), written down here
 * so this test needs no Python. Short and strongly correlated chains are included: there the
 * truncation of Geyer's sequence at lag n − 4 decides the ESS (where this code used to differ).
 */
import { describe, it, expect } from 'vitest';
import { essBulk, essTail, rhat } from '../../engine/infer/mcmc-diagnostics.ts';

const CASES: Array<{ chains: number; draws: number; phi: number; rhat: number; essBulk: number; essTail: number }> = [
  { chains: 2, draws: 20, phi: 0.3, rhat: 1.0894326846110827, essBulk: 17.69271080762636, essTail: 18.947368421052627 },
  { chains: 2, draws: 40, phi: 0.6, rhat: 1.1414395048528827, essBulk: 11.751251064065361, essTail: 83.22224338221291 },
  { chains: 4, draws: 100, phi: 0.9, rhat: 1.1968667515042906, essBulk: 15.528536663182965, essTail: 76.66512100328428 },
  { chains: 1, draws: 30, phi: 0.2, rhat: 1.065628551996938, essBulk: 20.191627671556528, essTail: 19.712140175219027 },
  { chains: 2, draws: 20, phi: 0.95, rhat: 1.645466556294186, essBulk: 4.942184371348331, essTail: 23.498694516971263 },
  { chains: 3, draws: 16, phi: -0.5, rhat: 1.0099823401722172, essBulk: 80.69957939402819, essTail: 80.17582417582422 },
];

describe('MCMC diagnostics equal the posterior package reference (NumPy port)', () => {
  it('R̂, bulk and tail ESS of AR(1) chains, short and correlated ones included', () => {
    let seed = 1;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    const normal = () => Math.sqrt(-2 * Math.log(rnd() + 1e-12)) * Math.cos(2 * Math.PI * rnd());
    for (const c of CASES) {
      const ch = Array.from({ length: c.chains }, () => {
        let x = normal();
        return Array.from({ length: c.draws }, () => (x = c.phi * x + normal()));
      });
      const what = `${c.chains} × ${c.draws}, φ ${c.phi}`;
      expect(Math.abs(rhat(ch) / c.rhat - 1), what).toBeLessThan(1e-12);
      expect(Math.abs(essBulk(ch) / c.essBulk - 1), what).toBeLessThan(1e-12);
      expect(Math.abs(essTail(ch) / c.essTail - 1), what).toBeLessThan(1e-12);
    }
  });
});

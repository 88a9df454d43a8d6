#!/usr/bin/env python3
"""Shear bias of the joint MAP against the marginal posterior, in a toy without pixels.

Each of N galaxies has an intrinsic distortion e_i (ba14 prior, sigma 0.3, as the pipeline's
default) and is observed through a likelihood centred exactly on its sheared shape (noise-free,
as a `shine calibrate --noise-free` run), of width s_i (lognormal around --s, distortion units):

  euclid     -log L_i = |d(shear(e_i, g)) - d_obs,i|^2 / 2 s_i^2   (Euclidean in distortion)
  invariant  -log L_i = D(shear(e_i, g), obs_i)^2 / 2 s_i^2        (D: hyperbolic distance on
             the unit disc of reduced-shear ellipticities, which shears leave unchanged: the
             likelihood of a well-resolved galaxy without PSF)

The shear acts as the Moebius map eps -> (eps + g)/(1 + conj(g) eps) on the reduced-shear
ellipticity eps; distortion d = 2 eps/(1 + |eps|^2). The estimators (flat shear prior):

  profile    argmax_g max_e log p(g, e | data)      the pipeline's MAP
  laplace    argmax_g [max_e log p - 1/2 log det H_ee(g)]   the Laplace marginal of g

both on the 4-rotation ring of `shine calibrate` (intrinsic shapes turned by 0, 45, 90, 135 deg;
shear +-g on each component). Prints m1, m2 per trial and the mean. NumPy + SciPy only.

  python3 scripts/toy/map-bias.py --n 27 --s 0.1 --trials 3 --likelihood euclid
"""
import argparse
import json
import numpy as np
from scipy.optimize import minimize

SIGMA_E = 0.3


def shear(eps, g):
    return (eps + g) / (1 + np.conj(g) * eps)


def to_dist(eps):
    return 2 * eps / (1 + np.abs(eps) ** 2)


def to_eps(d):
    return d / (1 + np.sqrt(1 - np.abs(d) ** 2))


def hyp(a, b):
    return 2 * np.arctanh(np.minimum(np.abs((a - b) / (1 - np.conj(b) * a)), 1 - 1e-15))


def nlp(e, g, obs, s, kind):
    """-log(likelihood x ba14 prior) per galaxy, e: intrinsic distortions (complex array)."""
    r2 = np.abs(e) ** 2
    with np.errstate(invalid='ignore', divide='ignore'):
        model = shear(to_eps(e), g)
        if kind == 'euclid':
            like = np.abs(to_dist(model) - to_dist(obs)) ** 2 / (2 * s * s)
        else:
            like = hyp(model, obs) ** 2 / (2 * s * s)
        out = like - (2 * np.log1p(-r2) - r2 / (2 * SIGMA_E ** 2))
    return np.where(r2 < 1, out, np.inf)


def hess2(f, e, h):
    """Per-galaxy 2x2 Hessian of f (vectorised over galaxies) by central differences."""
    f0 = f(e)
    fx1, fx0, fy1, fy0 = f(e + h), f(e - h), f(e + 1j * h), f(e - 1j * h)
    fxy = f(e + h + 1j * h) - f(e + h - 1j * h) - f(e - h + 1j * h) + f(e - h - 1j * h)
    grad = ((fx1 - fx0) / (2 * h), (fy1 - fy0) / (2 * h))
    H = ((fx1 - 2 * f0 + fx0) / h ** 2, fxy / (4 * h * h), (fy1 - 2 * f0 + fy0) / h ** 2)
    return f0, grad, H


def profile_e(g, obs, s, kind, e0):
    """Each galaxy's best intrinsic shape at this shear (vectorised Newton)."""
    e = e0.copy()
    f = lambda x: nlp(x, g, obs, s, kind)
    for _ in range(60):
        _, (gx, gy), (hxx, hxy, hyy) = hess2(f, e, 1e-5)
        det = hxx * hyy - hxy ** 2
        dx = -(hyy * gx - hxy * gy) / det
        dy = -(-hxy * gx + hxx * gy) / det
        e = e + dx + 1j * dy
        if np.max(np.abs(dx) + np.abs(dy)) < 1e-13:
            break
    f0, _, (hxx, hxy, hyy) = hess2(f, e, 1e-4)
    return e, np.sum(f0), np.sum(np.log(hxx * hyy - hxy ** 2))


def estimate(obs, s, kind, which):
    e0 = to_dist(obs).copy()

    def objective(gv):
        _, val, logdet = profile_e(gv[0] + 1j * gv[1], obs, s, kind, e0)
        return val + (0.5 * logdet if which == 'laplace' else 0.0)

    r = minimize(objective, [0.0, 0.0], method='Nelder-Mead', options={'xatol': 1e-9, 'fatol': 1e-12, 'maxiter': 600})
    return r.x[0] + 1j * r.x[1]


def ring(intrinsic, s, kind, which, g=0.02, R=4):
    out = {}
    for comp, unit in ((1, 1), (2, 1j)):
        mean = {}
        for sign in (1, -1):
            fits = [estimate(shear(to_eps(intrinsic * np.exp(2j * np.pi * k / R)), sign * g * unit), s, kind, which) for k in range(R)]
            mean[sign] = np.mean(fits)
        part = (lambda z: z.real) if comp == 1 else (lambda z: z.imag)
        out[f'm{comp}'] = (part(mean[1]) - part(mean[-1])) / (2 * g) - 1
        out[f'c{comp}'] = (part(mean[1]) + part(mean[-1])) / 2
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--n', type=int, default=27, help='galaxies per sub-tile (27: a ci sub-tile)')
    ap.add_argument('--s', type=float, default=0.1, help='median likelihood width in distortion')
    ap.add_argument('--trials', type=int, default=3)
    ap.add_argument('--likelihood', choices=['euclid', 'invariant'], default='euclid')
    ap.add_argument('--estimators', default='profile,laplace')
    ap.add_argument('--seed', type=int, default=2)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    rows = []
    for t in range(a.trials):
        d = rng.normal(0, 0.26, 3 * a.n) + 1j * rng.normal(0, 0.26, 3 * a.n)
        d = d[np.abs(d) < 0.9][: a.n]
        s = a.s * np.exp(rng.normal(0, 0.5, a.n))
        row = {w: ring(d, s, a.likelihood, w) for w in a.estimators.split(',')}
        rows.append(row)
        print(f'trial {t}: ' + '  '.join(f"{w} m1 {r['m1']:+.5f} m2 {r['m2']:+.5f} c1 {r['c1']:+.1e}" for w, r in row.items()), flush=True)
    summary = {}
    for w in a.estimators.split(','):
        for k in ('m1', 'm2', 'c1', 'c2'):
            v = np.array([r[w][k] for r in rows])
            summary[f'{w}.{k}'] = {'mean': float(v.mean()), 'sem': float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else None}
        print(f"{w:8s} m1 {summary[w + '.m1']['mean']:+.5f}  m2 {summary[w + '.m2']['mean']:+.5f}  (n {len(rows)}, sem {summary[w + '.m1']['sem']})")
    print(json.dumps({'n': a.n, 's': a.s, 'likelihood': a.likelihood, 'trials': a.trials, 'summary': summary}))


if __name__ == '__main__':
    main()

#!/usr/bin/env python3
"""Scale every RMS HDU of the VIS DET files under a folder (in place), with astropy.

Used for the S/N test of docs/calibrate.md: the same pixels, catalog, masks and selection, with
the per-pixel noise level the fit assumes multiplied by FACTOR, so the likelihood is sharper by
1/FACTOR². Work on a copy of a calibration's `sims/` (the simulation manifests stay valid: the
DET files are read, not re-simulated).

usage: python3 scripts/sharpen-rms.py SIMS_DIR FACTOR        e.g.  cal/sharp10/sims 0.1
"""
import glob
import sys

from astropy.io import fits


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    root, factor = sys.argv[1], float(sys.argv[2])
    if not factor > 0:
        print(f"sharpen-rms: FACTOR must be > 0, got {sys.argv[2]}", file=sys.stderr)
        return 2
    files = sorted(glob.glob(f"{root}/**/VIS/*-DET-*.fits", recursive=True))
    if not files:
        print(f"sharpen-rms: no VIS DET files under {root}", file=sys.stderr)
        return 1
    n = 0
    for path in files:
        with fits.open(path, mode="update") as hdus:
            for hdu in hdus:
                if hdu.name.endswith(".RMS"):
                    hdu.data = (hdu.data * factor).astype("float32")
                    n += 1
    print(f"sharpen-rms: {n} RMS HDUs in {len(files)} DET files scaled by {factor}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

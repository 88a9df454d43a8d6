#!/usr/bin/env bash
# Cost of alias-complete rendering (docs/forward-model.md "Aliasing"): `shine bench` per stamp tier
# with native PSF stamps (N = 0), q = 3 stamps band-limited (N = 0), q = 3 with N = 1 and q = 5
# with N = 2, and Spergel profiles at tier 64, all in one run so that the ratios compare like with like. Prints one JSON object per
# configuration, then a table of medians and ratios to the native N = 0 figure of the same tier.
#   scripts/bench-alias.sh [SOURCES=40] [QUADRANTS=2] [REPEATS=5] [SIZE=768x768]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
S=${1:-40}; Q=${2:-2}; R=${3:-5}; SIZE=${4:-768x768}
out=$(mktemp)
for tier in 64 128 256; do
  for cfg in "1 0" "3 0" "3 1" "5 2"; do
    set -- $cfg
    npx --no-install tsx cli/shine.ts bench --sources "$S" --quadrants "$Q" --tier "$tier" --repeats "$R" --size "$SIZE" \
      --psf-oversampling "$1" --alias-orders "$2" --json | tail -1 | tee -a "$out"
  done
done
# per profile: Spergel ν = −0.6 and 2 against the exponential (native PSF, tier 64)
for nu in -0.6 2; do
  npx --no-install tsx cli/shine.ts bench --sources "$S" --quadrants "$Q" --tier 64 --repeats "$R" --size "$SIZE" \
    --spergel-nu "$nu" --json | tail -1 | tee -a "$out"
done
node -e '
const rows = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
const base = {};
for (const r of rows) if (r.psfOversampling === 1 && r.aliasOrders === 0 && r.profile === "exponential") base[r.tier] = r;
console.log(`adapter: ${rows[0].adapter}`);
console.log("| tier | profile | PSF q | N | pairs | stamps ms | gradient ms | gradient / native | build ms | GPU MiB | MiB / native |");
console.log("|---|---|---|---|---|---|---|---|---|---|---|");
for (const r of rows) {
  const b = base[r.tier];
  console.log(`| ${r.tier} | ${r.profile} | ${r.psfOversampling} | ${r.aliasOrders} | ${r.pairs} | ${r.renderMs.toFixed(1)} | ${r.gradientMs.toFixed(1)} | ${(r.gradientMs / b.gradientMs).toFixed(2)} | ${r.buildMs.toFixed(0)} | ${(r.peakGpuBytes / 2 ** 20).toFixed(1)} | ${(r.peakGpuBytes / b.peakGpuBytes).toFixed(2)} |`);
}' "$out"
rm -f "$out"

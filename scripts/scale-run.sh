#!/usr/bin/env bash
# The realistic sub-tile end to end on this machine (docs/plan.md "Scale runs"); not part of the
# default test suite (SHINE_TEST_STEPS=scale runs it from test/run-all.sh).
#
#   scripts/scale-run.sh [--dir D] [--preset subtile] [--seed S] [--shear G1,G2] [--quick] [--max-iterations I] [--check]
#
#   1. simulates the `subtile` preset (or --preset P) into D/sim (skipped when D/sim/config.yaml exists; ~8 min and
#      2.2 GB on a 2-core machine);
#   2. shine prepare for the simulated sub-tile (skipped when its manifest exists);
#   3. shine plan for it (what it needs, how it will run);
#   4. cli/subtile.ts (MAP + Laplace) under /usr/bin/time -v, then the summary: wall time per stage,
#      peak host RSS, the plan and ĝ ± σ̂ against the truth (scripts/scale-summary.ts);
#      --quick instead: shine bench --stages with one MAP iteration and no Laplace (load, build,
#      compile, one gradient, peak RSS) — minutes instead of hours on a CPU adapter.
#   --check: exit 1 unless ĝ is within 3σ̂ of the truth (step 4 only).
#   --shear-estimator map: report the MAP's shear with its Laplace errors, without the Laplace-marginal
#      step (inference.map.shear_estimator; the step costs ~4× the errors' evaluations).
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=/tmp/shine-scale
SEED=3
PRESET=subtile
SHEAR=0.02,-0.01
QUICK=0
CHECK=()
MAXIT=()
ESTIMATOR=
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) DIR=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --preset) PRESET=$2; shift 2 ;;
    --shear) SHEAR=$2; shift 2 ;;
    --quick) QUICK=1; shift ;;
    --check) CHECK=(--check); shift ;;
    --max-iterations) MAXIT=(--max-iterations "$2"); shift 2 ;;
    --shear-estimator) ESTIMATOR=$2; shift 2 ;;
    *) echo "scale-run.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
SHINE=(npx --no-install tsx cli/shine.ts)
SIM="$DIR/sim"
CFG="$SIM/config.yaml"
mkdir -p "$DIR"
stamp() { date -u +%H:%M:%S; }

if [ ! -f "$CFG" ]; then
  echo "[$(stamp)] simulate --preset $PRESET --seed $SEED --shear $SHEAR → $SIM"
  /usr/bin/time -v -o "$DIR/time-simulate.txt" "${SHINE[@]}" simulate --preset "$PRESET" --seed "$SEED" --shear "$SHEAR" --out "$SIM"
  grep -E "Elapsed|Maximum resident" "$DIR/time-simulate.txt"
  du -sh "$SIM"
fi
TILE=$(sed -n 's/^ *tile_id: *\([0-9]*\).*/\1/p' "$CFG" | head -1)
RC=$(sed -n 's/^ *simulated_sub_tile: *\[\([0-9]*\), *\([0-9]*\)\].*/\1 \2/p' "$CFG")
ROW=${RC% *}
COL=${RC#* }
SCRATCH=$(sed -n 's/^ *scratch_dir: *\(.*\)$/\1/p' "$CFG" | head -1)
MANIFEST="${SCRATCH:-$SIM/scratch}/tile_$TILE/manifest_${TILE}_${ROW}_${COL}.yaml"
case "$MANIFEST" in /*) ;; *) MANIFEST="$SIM/$MANIFEST" ;; esac
if [ ! -f "$MANIFEST" ]; then
  echo "[$(stamp)] prepare tile $TILE sub-tile ($ROW, $COL)"
  /usr/bin/time -v -o "$DIR/time-prepare.txt" "${SHINE[@]}" prepare --config "$CFG" --tile-id "$TILE" --sub-tile "$ROW,$COL" --quiet
  grep -E "Elapsed|Maximum resident" "$DIR/time-prepare.txt"
fi

echo "[$(stamp)] plan"
"${SHINE[@]}" plan --config "$CFG" --tile-id "$TILE" --sub-tile "$ROW,$COL" 2>&1 | grep --line-buffered -v '^Warning'

if [ "$QUICK" = 1 ]; then
  echo "[$(stamp)] bench --stages (one MAP iteration, no Laplace)"
  /usr/bin/time -v -o "$DIR/time-stages.txt" "${SHINE[@]}" bench --stages --config "$CFG" --tile-id "$TILE" --sub-tile "$ROW,$COL" --repeats 1 --max-iterations 1 --no-laplace 2>&1 | grep --line-buffered -v '^Warning'
  grep -E "Elapsed|Maximum resident" "$DIR/time-stages.txt"
  exit 0
fi

OUT="$DIR/out"
echo "[$(stamp)] subtile ($ROW, $COL): MAP + Laplace → $OUT"
if [ ${#MAXIT[@]} -gt 0 ] || [ -n "$ESTIMATOR" ]; then
  # a changed fit: a copy of the configuration with inference.map.max_iterations / shear_estimator set
  # (next to the original: its relative paths stay valid; inference.methods.map is the alias of inference.map)
  CFG2="$SIM/config-scale.yaml"
  MAXIT_N=${MAXIT[1]:-} ESTIMATOR=$ESTIMATOR npx --no-install tsx -e "
    const fs = require('node:fs'); const Y = require('yaml');
    const d = Y.parseDocument(fs.readFileSync('$CFG', 'utf8'));
    const at = d.hasIn(['inference', 'methods', 'map']) ? ['inference', 'methods', 'map'] : ['inference', 'map'];
    if (process.env.MAXIT_N) d.setIn([...at, 'max_iterations'], Number(process.env.MAXIT_N));
    if (process.env.ESTIMATOR) d.setIn([...at, 'shear_estimator'], process.env.ESTIMATOR);
    fs.writeFileSync('$CFG2', String(d));"
  CFG=$CFG2
fi
/usr/bin/time -v -o "$DIR/time-subtile.txt" npx --no-install tsx cli/subtile.ts --config "$CFG" --tile-id "$TILE" --sub-tile-row "$ROW" --sub-tile-col "$COL" --manifest "$MANIFEST" --out "$OUT" --force 2>&1 | grep --line-buffered -v '^Warning'
echo "[$(stamp)] summary"
npx --no-install tsx scripts/scale-summary.ts --metadata "$OUT/metadata_${TILE}_${ROW}_${COL}.yaml" --truth "$SIM/truth/shear.fits" --row "$ROW" --col "$COL" --time "$DIR/time-subtile.txt" "${CHECK[@]}"

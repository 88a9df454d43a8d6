#!/usr/bin/env bash
# A whole MER tile end to end on this machine (docs/plan.md "The whole tile"); not part of the
# default test suite (SHINE_TEST_STEPS=scale-tile runs it from test/run-all.sh).
#
#   scripts/scale-tile.sh [--dir D] [--preset tile|minitile] [--seed S] [--shear G1,G2]
#                         [--max-iterations I] [--no-laplace] [--time-limit SECONDS] [--jobs N]
#
#   1. simulates the preset (default `tile`: 448 full quadrants, ~29 GB, ~30 min on 2 cores) into
#      D/sim, skipped when D/sim/config.yaml exists;
#   2. Stage 1 for the whole tile (`shine prepare`), skipped when the tile is prepared;
#   3. `shine plan` for every sub-tile;
#   4. `shine run --executor local` over the tile (Stage 2 for its 16 sub-tiles, then Stage 3),
#      under /usr/bin/time -v; with --time-limit it is stopped after that many seconds (the
#      sub-tiles it finished stay: products are written atomically);
#   5. `shine status`: what is done, what is pending.
#   Running the script again resumes: steps 1–2 are skipped, step 4 skips every complete sub-tile.
#   --max-iterations / --no-laplace fit a copy of the configuration with a shorter MAP or without
#   the Laplace errors (D/sim/config-scale.yaml; such products are not those of the default
#   configuration, and a later run without the options redoes them).
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=/tmp/shine-scale-tile
SEED=3
PRESET=tile
SHEAR=0.02,-0.01
MAXIT=""
NOLAPLACE=0
LIMIT=""
JOBS=1
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) DIR=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --preset) PRESET=$2; shift 2 ;;
    --shear) SHEAR=$2; shift 2 ;;
    --max-iterations) MAXIT=$2; shift 2 ;;
    --no-laplace) NOLAPLACE=1; shift ;;
    --time-limit) LIMIT=$2; shift 2 ;;
    --jobs) JOBS=$2; shift 2 ;;
    *) echo "scale-tile.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
case "$PRESET" in tile|minitile) ;; *) echo "scale-tile.sh: --preset must be tile or minitile (whole-tile presets), got $PRESET" >&2; exit 2 ;; esac
case "$LIMIT" in ''|*[!0-9]*) [ -z "$LIMIT" ] || { echo "scale-tile.sh: --time-limit must be a whole number of seconds, got $LIMIT" >&2; exit 2; } ;; esac
SHINE=(npx --no-install tsx cli/shine.ts)
SIM="$DIR/sim"
CFG="$SIM/config.yaml"
mkdir -p "$DIR"
stamp() { date -u +%H:%M:%S; }
# keep the peak RSS and wall time lines of a /usr/bin/time -v report
timing() { grep -E "Elapsed|Maximum resident" "$1" | sed 's/^[[:space:]]*/  /'; }

if [ ! -f "$CFG" ]; then
  echo "[$(stamp)] simulate --preset $PRESET --seed $SEED --shear $SHEAR → $SIM"
  /usr/bin/time -v -o "$DIR/time-simulate.txt" "${SHINE[@]}" simulate --preset "$PRESET" --seed "$SEED" --shear "$SHEAR" --out "$SIM"
  timing "$DIR/time-simulate.txt"
  du -sh "$SIM"
fi
TILE=$(sed -n 's/^ *tile_id: *\([0-9]*\).*/\1/p' "$CFG" | head -1)

RUNCFG=$CFG
if [ -n "$MAXIT" ] || [ "$NOLAPLACE" = 1 ]; then
  # a copy next to the original, so that its relative paths stay valid
  RUNCFG="$SIM/config-scale.yaml"
  npx --no-install tsx -e "
    const fs = require('node:fs'); const Y = require('yaml');
    const d = Y.parseDocument(fs.readFileSync('$CFG', 'utf8'));
    const at = d.hasIn(['inference', 'methods', 'map']) ? ['inference', 'methods', 'map'] : ['inference', 'map'];
    if ('$MAXIT' !== '') d.setIn([...at, 'max_iterations'], Number('$MAXIT'));
    if ($NOLAPLACE === 1) d.setIn([...at, 'laplace'], false);
    fs.writeFileSync('$RUNCFG', String(d));"
fi

SCRATCH=$(sed -n 's/^ *scratch_dir: *\(.*\)$/\1/p' "$CFG" | head -1)
PREPARED="${SCRATCH:-scratch}/tile_$TILE/prepare_$TILE.yaml"
case "$PREPARED" in /*) ;; *) PREPARED="$SIM/$PREPARED" ;; esac
if [ ! -f "$PREPARED" ]; then
  echo "[$(stamp)] prepare tile $TILE (every sub-tile)"
  /usr/bin/time -v -o "$DIR/time-prepare.txt" "${SHINE[@]}" prepare --config "$CFG" --tile-id "$TILE" 2>&1 | grep --line-buffered -v '^Warning'
  timing "$DIR/time-prepare.txt"
fi

echo "[$(stamp)] plan (every sub-tile)"
"${SHINE[@]}" plan --config "$RUNCFG" --tile-id "$TILE" 2>&1 | grep --line-buffered -v '^Warning'

echo "[$(stamp)] run --executor local --tiles $TILE --jobs $JOBS${LIMIT:+ (at most $LIMIT s)}"
RUN=("${SHINE[@]}" run --executor local --config "$RUNCFG" --tiles "$TILE" --out "$DIR/run" --jobs "$JOBS")
rc=0
if [ -n "$LIMIT" ]; then
  # timeout signals its whole process group: shine run, its sub-tile processes; the run's lock is
  # released on the signal and unfinished sub-tiles leave no products
  /usr/bin/time -v -o "$DIR/time-run.txt" timeout "$LIMIT" "${RUN[@]}" 2>&1 | grep --line-buffered -v '^Warning' || rc=${PIPESTATUS[0]}
else
  /usr/bin/time -v -o "$DIR/time-run.txt" "${RUN[@]}" 2>&1 | grep --line-buffered -v '^Warning' || rc=${PIPESTATUS[0]}
fi
timing "$DIR/time-run.txt"

echo "[$(stamp)] status"
"${SHINE[@]}" status --config "$RUNCFG" --tiles "$TILE" --out "$DIR/run" 2>&1 | grep -v '^Warning' || true
if [ "$rc" -eq 124 ]; then
  echo "[$(stamp)] time limit of $LIMIT s reached: run the same command again to resume"
  exit 0
fi
exit "$rc"

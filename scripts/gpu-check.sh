#!/usr/bin/env bash
# scripts/gpu-check.sh [--quick] [--out DIR] [--adapter X] [--budget S] [--skip-big] [--skip A,B] [--only A,B] [--from-source]
#
# The prepared GPU check of issue 14 (docs/gpu-check.md): `shine doctor --json` and `shine bench
# --json` at the sizes below, every step under its own timeout (one failure or hang loses only that
# step), the whole inside a wall-clock budget (default 450 s: under 8 minutes with the set-up), a
# one-screen summary table at the end, JSON in the out folder:
#
#   summary.json   adapter and, per step: status, pairs, gradient ms (median), build ms, peak GPU MiB, …
#   doctor.json    `shine doctor --json` (runtime, adapter, limits, features, every kernel check)
#   bench.json     { steps: { <step>: `shine bench --json` } }
#   gpu-check.log  environment (Vulkan loader, ICD, GPU), every step's command line and stderr
#
# (four files: the device tool brings back at most eight from $OUT.)
#
# Runtime: with a pack (.gpu/ from scripts/gpu-pack.sh: Node, Dawn's linux-x64 binding, the CLI as
# one bundle, the Vulkan loader) it needs nothing else — that is how it runs on the lent GPU
# machine, which has no Node and no network. Without one (or with --from-source) it runs
# `node_modules/.bin/tsx cli/shine.ts`, as everywhere else.
#
# Adapter: --adapter X, else $SHINE_ADAPTER, else 'vulkan' when an NVIDIA GPU or Vulkan ICD is
# there, else 'auto' (llvmpipe on a machine without a GPU).
#
# --quick: tiny scenes (512×516 quadrants), for the CPU adapter (about a minute here) and the test.
# Exit code 0 when every step that ran passed.
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
QUICK=0
OUT=""
ADAPTER="${SHINE_ADAPTER:-}"
BUDGET=""
SKIP=""
ONLY=""
FROM_SOURCE=0
REPEATS=""
GPU_DIR="${SHINE_GPU_DIR:-$REPO/.gpu}"
# Where the pack is unpacked (outside the pack, so that .gpu/ stays small enough to carry).
RUN_DIR="${SHINE_GPU_RUN:-${TMPDIR:-/tmp}/shine-gpu-run}"
SOURCE_HASH_ONLY=0

usage() { sed -n '2,30p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --out) OUT="${2:?--out needs a folder}"; shift ;;
    --out=*) OUT="${1#--out=}" ;;
    --adapter) ADAPTER="${2:?--adapter needs a value}"; shift ;;
    --adapter=*) ADAPTER="${1#--adapter=}" ;;
    --budget) BUDGET="${2:?--budget needs seconds}"; shift ;;
    --repeats) REPEATS="${2:?--repeats needs a number}"; shift ;;
    --skip-big) SKIP="$SKIP,bench-2500x6-mixed" ;;
    --skip) SKIP="$SKIP,${2:?--skip needs step names}"; shift ;;
    --only) ONLY="${2:?--only needs step names}"; shift ;;
    --from-source) FROM_SOURCE=1 ;;
    --source-hash) SOURCE_HASH_ONLY=1 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "gpu-check: unknown option '$1' (try --help)" >&2; exit 2 ;;
  esac
  shift
done

# A hash of the sources a bundle is made from (gpu-pack.sh records it; a mismatch = stale bundle).
source_hash() {
  (cd "$REPO" && find engine cli platform scripts/gpu-summary.ts -type f -name '*.ts' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)
}
if [ "$SOURCE_HASH_ONLY" = 1 ]; then source_hash; exit 0; fi

[ -n "$OUT" ] || OUT="$REPO/out/gpu-check"
mkdir -p "$OUT" || exit 2
OUT="$(cd "$OUT" && pwd)"
LOG="$OUT/gpu-check.log"
: >"$LOG"
rm -f "$OUT/summary.json" "$OUT/doctor.json" "$OUT/bench.json" "$OUT/raw-steps.tgz"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
: >"$WORK/steps.tsv"
T0=$SECONDS
if [ -z "$BUDGET" ]; then
  # --quick: the CPU adapter of a shared 2-core machine, where the doctor alone can take minutes
  if [ "$QUICK" = 1 ]; then BUDGET=420; else BUDGET=450; fi
fi

say() { echo "gpu-check: $*" | tee -a "$LOG"; }
logcmd() { { echo "\$ $*"; "$@" 2>&1; echo; } >>"$LOG"; }

# ---------------------------------------------------------------- runtime: packed or node_modules
MODE=""
STALE=""
declare -a SHINE SUMMARY
if [ "$FROM_SOURCE" = 0 ] && [ -f "$GPU_DIR/app/shine.mjs" ] && [ -f "$GPU_DIR/node.xz" ]; then
  MODE=packed
  mkdir -p "$RUN_DIR" || exit 2
  # Decompress once per machine (kept in $RUN_DIR between runs); xz, else Python's lzma.
  unxz_to() { # unxz_to SRC.xz DEST
    local src=$1 dest=$2 stamp
    stamp="$(cksum <"$src")"
    if [ -f "$dest" ] && [ "$(cat "$dest.stamp" 2>/dev/null)" = "$stamp" ]; then return 0; fi
    { command -v xz >/dev/null 2>&1 && xz -dc "$src" >"$dest.tmp" 2>/dev/null; } ||
      python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$src" "$dest.tmp" ||
      { echo "gpu-check: could not decompress $src (no xz, no python3?)" >&2; return 1; }
    chmod +x "$dest.tmp" && mv "$dest.tmp" "$dest" && echo "$stamp" >"$dest.stamp"
  }
  unxz_to "$GPU_DIR/node.xz" "$RUN_DIR/node" || exit 2
  DAWN_XZ="$GPU_DIR/app/node_modules/webgpu/dist/linux-x64/dawn.node.xz"
  unxz_to "$DAWN_XZ" "$RUN_DIR/dawn.node" || exit 2
  rm -rf "$RUN_DIR/app"
  cp -r "$GPU_DIR/app" "$RUN_DIR/app" || exit 2
  rm -f "$RUN_DIR/app/node_modules/webgpu/dist/linux-x64/dawn.node.xz"
  ln -sf "$RUN_DIR/dawn.node" "$RUN_DIR/app/node_modules/webgpu/dist/linux-x64/dawn.node"
  # Carried shared libraries (Vulkan loader, libglvnd, X11 client libs) for the sonames the system
  # lacks only: a system copy always wins, and nothing is written outside $RUN_DIR.
  rm -rf "$RUN_DIR/lib"
  mkdir -p "$RUN_DIR/lib"
  have="$( (ldconfig -p 2>/dev/null || /sbin/ldconfig -p 2>/dev/null) | awk '{print $1}')"
  for f in "$GPU_DIR"/sysroot/usr/lib/x86_64-linux-gnu/lib*.so.*; do
    [ -e "$f" ] || continue
    b="$(basename "$f")"
    [[ "$b" =~ ^lib[^/]*\.so\.[0-9]+$ ]] || continue # sonames only (libfoo.so.1, not libfoo.so.1.2.3)
    grep -qxF "$b" <<<"$have" || ln -sf "$f" "$RUN_DIR/lib/$b"
  done
  if ls "$RUN_DIR/lib/"* >/dev/null 2>&1; then export LD_LIBRARY_PATH="$RUN_DIR/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"; fi
  NODE="$RUN_DIR/node"
  SHINE=("$NODE" "$RUN_DIR/app/shine.mjs")
  SUMMARY=("$NODE" "$RUN_DIR/app/gpu-summary.mjs")
  PACKED_HASH="$(cat "$GPU_DIR/sources.sha256" 2>/dev/null)"
  if [ "$PACKED_HASH" != "$(source_hash)" ]; then
    STALE="bundle made from other sources than this tree (packed ${PACKED_HASH:-?}, tree $(source_hash)): run scripts/gpu-pack.sh again"
  fi
else
  MODE=node_modules
  if [ ! -x "$REPO/node_modules/.bin/tsx" ]; then
    echo "gpu-check: neither a pack ($GPU_DIR: run scripts/gpu-pack.sh) nor node_modules (npm ci) is here" >&2
    exit 2
  fi
  NODE="$(command -v node)"
  SHINE=("$REPO/node_modules/.bin/tsx" "$REPO/cli/shine.ts")
  SUMMARY=("$REPO/node_modules/.bin/tsx" "$REPO/scripts/gpu-summary.ts")
fi

# ---------------------------------------------------------------- Vulkan driver and adapter choice
NV_ICD=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ] && [ -f "$NV_ICD" ]; then export VK_DRIVER_FILES="$NV_ICD"; fi
# For the OpenGL fallback below (Dawn's GL backend on NVIDIA's EGL, through libglvnd).
NV_EGL=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
if [ -z "${__EGL_VENDOR_LIBRARY_FILENAMES:-}" ] && [ -f "$NV_EGL" ]; then export __EGL_VENDOR_LIBRARY_FILENAMES="$NV_EGL"; fi
ADAPTER_AUTO=0
HAS_GPU=0
if [ -e /dev/nvidia0 ] || [ -f "$NV_ICD" ] || [ -f /usr/share/vulkan/icd.d/nvidia_icd.json ] || [ -f /etc/vulkan/icd.d/nvidia_icd.json ]; then HAS_GPU=1; fi
if [ -z "$ADAPTER" ]; then
  if [ "$HAS_GPU" = 1 ]; then ADAPTER=vulkan; ADAPTER_AUTO=1; else ADAPTER=auto; fi
fi
export SHINE_ADAPTER="$ADAPTER"
export EGL_PLATFORM="${EGL_PLATFORM:-surfaceless}"
export NO_COLOR=1

[ -n "$STALE" ] && say "WARNING: $STALE"
say "mode $MODE ($("$NODE" --version 2>/dev/null || echo 'node missing')), adapter '$ADAPTER', $([ "$QUICK" = 1 ] && echo quick || echo full) sizes, budget ${BUDGET} s, out $OUT"
{
  echo "=== environment"
  echo "date: $(date -u +%FT%TZ)  host: $(hostname 2>/dev/null)  arch: $(uname -m)  kernel: $(uname -r)  cpus: $(nproc 2>/dev/null)"
  echo "mode: $MODE  node: $NODE  shine: ${SHINE[*]}"
  echo "SHINE_ADAPTER=$SHINE_ADAPTER  VK_DRIVER_FILES=${VK_DRIVER_FILES:-}  VK_ICD_FILENAMES=${VK_ICD_FILENAMES:-}  LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
  [ "$MODE" = packed ] && echo "carried libraries used: $(ls "$RUN_DIR/lib" 2>/dev/null | tr '\n' ' ')" && cat "$GPU_DIR/MANIFEST.txt" 2>/dev/null
  echo
} >>"$LOG"
command -v nvidia-smi >/dev/null 2>&1 && logcmd nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
logcmd sh -c 'ldconfig -p 2>/dev/null | grep -Ei "vulkan|GLdispatch|GLX_nvidia" || echo "(no libvulkan / libGLdispatch in ldconfig)"'
for icd in "${VK_DRIVER_FILES:-}" /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
  [ -n "$icd" ] && [ -f "$icd" ] || continue
  logcmd cat "$icd"
  lib="$(sed -n 's/.*"library_path" *: *"\([^"]*\)".*/\1/p' "$icd" | head -1)"
  [ -n "$lib" ] || continue
  [ "${lib#/}" = "$lib" ] && lib="$( (ldconfig -p 2>/dev/null || true) | awk -v l="$lib" '$1 == l {print $NF; exit}')"
  [ -n "$lib" ] && [ -f "$lib" ] && logcmd sh -c "ldd '$lib' | grep -E 'not found|GLdispatch|X11|vulkan' || true"
  break
done

# ---------------------------------------------------------------- steps
# step NAME TIMEOUT_S shine-args…   (skipped by --skip/--only, or when the budget is nearly spent)
step() {
  local name=$1 limit=$2
  shift 2
  local args="$*"
  if [ -n "$ONLY" ] && [[ ",$ONLY," != *",$name,"* ]]; then return 0; fi
  if [[ ",$SKIP," == *",$name,"* ]]; then
    printf '%s\tskipped\t-\t-\t-\t%s\t%s\n' "$name" "skipped by request" "$args" >>"$WORK/steps.tsv"
    say "$name: skipped (by request)"
    return 0
  fi
  local left=$((BUDGET - (SECONDS - T0)))
  if [ "$left" -lt 20 ]; then
    printf '%s\tskipped\t-\t-\t-\t%s\t%s\n' "$name" "budget of ${BUDGET} s spent" "$args" >>"$WORK/steps.tsv"
    say "$name: skipped (budget of ${BUDGET} s spent)"
    return 0
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  {
    echo "=== $name (timeout ${limit} s)"
    echo "\$ ${SHINE[*]} $args"
  } >>"$LOG"
  local t1=$SECONDS rc=0
  timeout --kill-after=10 "$limit" "${SHINE[@]}" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" </dev/null || rc=$?
  local dt=$((SECONDS - t1))
  cat "$WORK/$name.err" >>"$LOG"
  echo "--- $name: exit $rc in ${dt} s" >>"$LOG"
  printf '%s\tran\t%s\t%s\t%s\t-\t%s\n' "$name" "$rc" "$dt" "$limit" "$args" >>"$WORK/steps.tsv"
  if [ "$rc" -eq 0 ]; then
    say "$name: exit 0 in ${dt} s"
  else
    say "$name: exit $rc in ${dt} s$([ "$rc" -eq 124 ] || [ "$rc" -eq 137 ] && echo " (timed out after ${limit} s)")"
    tail -n 6 "$WORK/$name.err" | sed 's/^/    /'
  fi
}

# A marked place for a step that does not exist yet: shown as TODO in the table, never run.
todo_step() {
  local name=$1 why=$2
  if [ -n "$ONLY" ] && [[ ",$ONLY," != *",$name,"* ]]; then return 0; fi
  printf '%s\ttodo\t-\t-\t-\t%s\t-\n' "$name" "$why" >>"$WORK/steps.tsv"
}

# doctor; then, when Vulkan was chosen here (not asked for) and Dawn found no Vulkan adapter, the
# other steps on Dawn's OpenGL backend (NVIDIA's EGL), so that the run still gives numbers; the
# Vulkan doctor stays FAIL in the summary.
doctor_step() {
  step doctor "$1" doctor --json
  if [ "$ADAPTER_AUTO" = 1 ] && [ -f "$WORK/doctor.err" ] && grep -q "adapter 'vulkan' is not available" "$WORK/doctor.err"; then
    export SHINE_ADAPTER=opengl
    say "Vulkan adapter not available: the other steps on --adapter opengl"
    ONLY="${ONLY:+$ONLY,doctor-opengl}"
    step doctor-opengl "$1" doctor --json
  fi
}

if [ "$QUICK" = 1 ]; then
  R="${REPEATS:-2}"
  Q=(--size 512x516 --repeats "$R" --json)
  doctor_step 300
  step bench-250x4 120 bench --sources 20 --quadrants 2 "${Q[@]}"
  step bench-1000x4 120 bench --sources 50 --quadrants 2 "${Q[@]}"
  step bench-2500x6-mixed 150 bench --sources 30 --quadrants 3 --tier mixed "${Q[@]}"
  step bench-1000x4-replicas8 120 bench --sources 20 --quadrants 2 --replicas 4 "${Q[@]}"
  step bench-1000x4-psf3 120 bench --sources 20 --quadrants 2 --psf-oversampling 3 "${Q[@]}"
else
  # H100 estimate (docs/gpu-check.md): each step is mostly process start, Dawn/Vulkan start-up, the
  # synthetic scene on the CPU and pipeline compile; the timed gradients are milliseconds. FFT 128
  # (--fft-factor 2), the grid of the README's CPU tables; the stage runs below use the pipeline's
  # default (stamps.fft_factor 1.5)
  R="${REPEATS:-10}"
  doctor_step 120
  step bench-250x4 90 bench --sources 250 --quadrants 4 --repeats "$R" --fft-factor 2 --json
  step bench-1000x4 120 bench --sources 1000 --quadrants 4 --repeats "$R" --fft-factor 2 --json
  step bench-2500x6-mixed 240 bench --sources 2500 --quadrants 6 --tier mixed --repeats "$R" --fft-factor 2 --json
  step bench-1000x4-replicas8 150 bench --sources 1000 --quadrants 4 --replicas 8 --repeats "$R" --fft-factor 2 --json
  step bench-1000x4-psf3 150 bench --sources 1000 --quadrants 4 --psf-oversampling 3 --repeats "$R" --fft-factor 2 --json
fi

# ---- `shine bench --stages` (docs/bench.md) on a prepared sub-tile, MAP and NUTS (4 chains, short):
# a `subtile`-preset simulation (the `ci` preset with --quick), Stage 1 for sub-tile (1, 1), then
# the two stage benchmarks. Their JSON goes into bench.json (the out folder stays at <= 8 files).
SIM="$WORK/sim"
# the set-up runs when a stages step will (--only stages-…; not when --skip names both)
if [ -n "$ONLY" ] && [[ ",$ONLY," == *",stages-"* ]]; then ONLY="$ONLY,setup-simulate,setup-prepare"; fi
if [[ ",$SKIP," == *",stages-map,"* && ",$SKIP," == *",stages-nuts,"* ]]; then SKIP="$SKIP,setup-simulate,setup-prepare"; fi
if [ "$QUICK" = 1 ]; then
  step setup-simulate 120 simulate --preset ci --seed 1 --out "$SIM"
  SMAP=(--max-iterations 3 --no-laplace --repeats 2)
  SNUTS=(--chains 4 --warmup 2 --samples 3 --max-tree-depth 3 --init catalog --repeats 2)
  SLIMIT=120
else
  step setup-simulate 240 simulate --preset subtile --seed 3 --threads "$(nproc 2>/dev/null || echo 4)" --out "$SIM"
  SMAP=(--max-iterations 200 --repeats "$R")
  SNUTS=(--chains 4 --warmup 30 --samples 30 --max-tree-depth 5 --repeats "$R")
  SLIMIT=180
fi
if [ -f "$SIM/config.yaml" ]; then
  step setup-prepare 120 prepare --config "$SIM/config.yaml" --sub-tile 1,1 --quiet
  step stages-map "$SLIMIT" bench --stages --config "$SIM/config.yaml" --tile-id 102018211 --sub-tile 1,1 --method map "${SMAP[@]}" --json
  step stages-nuts "$SLIMIT" bench --stages --config "$SIM/config.yaml" --tile-id 102018211 --sub-tile 1,1 --method nuts "${SNUTS[@]}" --json
else
  todo_step stages-map 'no simulated sub-tile (setup-simulate did not run or failed)'
  todo_step stages-nuts 'no simulated sub-tile (setup-simulate did not run or failed)'
fi

# ---------------------------------------------------------------- summary
WALL=$((SECONDS - T0))
GPU_NAME="$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 || true)"
echo "=== summary" >>"$LOG"
rc=0
"${SUMMARY[@]}" --work "$WORK" --out "$OUT" \
  --meta "mode=$MODE" --meta "node=$("$NODE" --version 2>/dev/null)" --meta "adapterChoice=$SHINE_ADAPTER" \
  --meta "sizes=$([ "$QUICK" = 1 ] && echo quick || echo full)" --meta "wallS=$WALL" --meta "budgetS=$BUDGET" \
  --meta "host=$(hostname 2>/dev/null)" --meta "cpus=$(nproc 2>/dev/null)" \
  ${GPU_NAME:+--meta "gpu=$GPU_NAME"} ${STALE:+--meta "stale=yes"} \
  2>&1 | tee -a "$LOG" || rc=$?
if [ "$rc" -ge 2 ] || [ ! -f "$OUT/summary.json" ]; then
  # The summary program itself failed: keep the raw outputs (one file, within the 8-file limit).
  tar -czf "$OUT/raw-steps.tgz" -C "$WORK" . 2>>"$LOG"
  say "summary failed (exit $rc); raw step outputs in $OUT/raw-steps.tgz"
  [ "$rc" -eq 0 ] && rc=2
fi
say "done in $((SECONDS - T0)) s"
exit "$rc"

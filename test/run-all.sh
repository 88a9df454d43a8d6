#!/usr/bin/env bash
# The README's test command (`npm test`): type check, Node tests (vitest), the Deno smoke task and
# the in-browser kernel checks and the browser app (Playwright + Chromium). Runs every step, prints a summary, exits 1
# if any step failed.
#
#   SHINE_TEST_STEPS="typecheck node"   run only some steps (typecheck node limits deno browser app)
#   SHINE_TEST_STEPS=scale               the realistic sub-tile (scripts/scale-run.sh; not in the default steps)
#   SHINE_TEST_STEPS=scale-tile          the whole tile preset (scripts/scale-tile.sh; not in the default steps)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export EGL_PLATFORM="${EGL_PLATFORM:-surfaceless}"
export NO_COLOR="${NO_COLOR:-1}"
export NPM_CONFIG_UPDATE_NOTIFIER=false

STEPS="${SHINE_TEST_STEPS:-typecheck node limits deno browser app}"
# every temporary folder of this run (tests, Chromium, Deno) under one folder removed at the end:
# the tests make their data (simulations of up to ~0.7 GB), and a run must not leave them behind
# (SHINE_KEEP_TMP=1 keeps it for a post-mortem)
RUN_TMP=$(mktemp -d "${TMPDIR:-/tmp}/shine-test-run-XXXXXX")
export TMPDIR="$RUN_TMP"
if [ "${SHINE_KEEP_TMP:-0}" != 1 ]; then trap 'rm -rf "$RUN_TMP"' EXIT; else echo "temporary files: $RUN_TMP"; fi
declare -a NAMES=() RESULTS=() TIMES=()
failed=0

# run_step <name> <timeout seconds> <command...>
run_step() {
  local name=$1 limit=$2
  shift 2
  case " $STEPS " in *" $name "*) ;; *) return 0 ;; esac
  echo
  echo "=== [$name] $* (timeout ${limit}s)"
  local t0=$SECONDS rc=0
  timeout --kill-after=30 "$limit" "$@" </dev/null || rc=$?
  local dt=$((SECONDS - t0))
  NAMES+=("$name")
  TIMES+=("${dt}s")
  if [ "$rc" -eq 0 ]; then
    RESULTS+=("PASS")
  elif [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    RESULTS+=("FAIL (timed out after ${limit}s)")
    failed=1
  else
    RESULTS+=("FAIL (exit $rc)")
    failed=1
  fi
  echo "=== [$name] ${RESULTS[-1]} in ${dt}s"
}

run_step typecheck 600 npx --no-install tsc --noEmit -p .
run_step node 2400 npx --no-install vitest run
# the engine and FFT again on WebGPU's default limits (128 invocations, 16 KiB workgroup storage)
run_step limits 900 env SHINE_LIMITS=default npx --no-install vitest run test/engine test/kernels
run_step deno 900 npx --no-install deno task test:smoke
run_step browser 1500 npx --no-install vitest run --config test/browser/vitest.config.ts
# the browser app (app/): built, served statically, driven in Chromium; zscale against astropy
run_step app 900 npx --no-install vitest run --config test/app/vitest.config.ts
# the realistic sub-tile end to end (MAP + Laplace on the `subtile` preset: hours on a CPU adapter);
# only when asked: SHINE_TEST_STEPS=scale (scripts/scale-run.sh, docs/plan.md "Scale runs")
run_step scale 36000 bash scripts/scale-run.sh --check
# the whole `tile` preset: simulate (~29 GB), Stage 1, plan, shine run over its 16 sub-tiles (days on
# a CPU adapter; resumable): only when asked, SHINE_TEST_STEPS=scale-tile (scripts/scale-tile.sh)
run_step scale-tile 86400 bash scripts/scale-tile.sh

echo
echo "=== summary"
for i in "${!NAMES[@]}"; do
  printf '  %-10s %-34s %s\n' "${NAMES[$i]}" "${RESULTS[$i]}" "${TIMES[$i]}"
done
if [ "$failed" -ne 0 ]; then
  echo "=== FAILED"
  exit 1
fi
echo "=== all passed"

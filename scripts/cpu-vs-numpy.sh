#!/usr/bin/env bash
# The CPU engine against the NumPy + scipy.fft baseline of the same gradient math (issue 14 item 4,
# docs/bench.md "Against NumPy"), side by side in one run: for each round, at 1,000 and at 4,000
# (source, quadrant) pairs (64-px tier, 4 quadrants of 2048 × 2066), the baseline
# (../shared/bench/cpu_baseline.py, FFT 128) then the engine (`shine bench`, FFT = fft-factor × 64),
# alternately, so that both see the same load. Prints per size the medians over rounds, the ratio
# baseline / engine (median of the per-round ratios) and the engine's 4000/1000 linearity, in wall
# time and in process CPU time (all threads: numpy's FFT workers, llvmpipe's rasteriser threads),
# the steadier figure when the machine is shared. The baseline's CPU time: the same script run with
# time.perf_counter replaced by time.process_time (its file is not modified).
#
#   bash scripts/cpu-vs-numpy.sh [--rounds 3] [--repeats 5] [--fft-factor 2] [--sizes 1000,4000] [--out FILE.json]
#
# Needs a python3 with numpy and scipy (Debian: apt-get install python3-scipy). Prefix with
# `nice -n 10` on a shared machine; the numbers are then only comparable within one run.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=3
REPEATS=5
FACTOR=2
SIZES=1000,4000
OUT=""
BASELINE="${SHINE_NUMPY_BASELINE:-../shared/bench/cpu_baseline.py}"
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS="$2"; shift 2 ;;
    --repeats) REPEATS="$2"; shift 2 ;;
    --fft-factor) FACTOR="$2"; shift 2 ;;
    --sizes) SIZES="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --baseline) BASELINE="$2"; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "cpu-vs-numpy: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
PY="${PYTHON:-python3}"
if ! "$PY" -c 'import numpy, scipy.fft' 2>/dev/null; then
  echo "cpu-vs-numpy: $PY lacks numpy/scipy (Debian: apt-get install python3-scipy)" >&2
  exit 2
fi
[ -f "$BASELINE" ] || { echo "cpu-vs-numpy: baseline script $BASELINE not found (--baseline PATH)" >&2; exit 2; }
TSX=node_modules/.bin/tsx
RAW=$(mktemp)
trap 'rm -f "$RAW"' EXIT
IFS=, read -r -a SIZE_LIST <<< "$SIZES"
for ((r = 1; r <= ROUNDS; r++)); do
  for pairs in "${SIZE_LIST[@]}"; do
    src=$((pairs / 4))
    b=$("$PY" "$BASELINE" --sources "$src" --quadrants 4 --fft 128 --stamp 64 --repeats "$REPEATS" --json)
    echo "{\"round\": $r, \"pairs\": $pairs, \"who\": \"numpy\", \"r\": $b}" >> "$RAW"
    c=$("$PY" -c 'import runpy, sys, time; time.perf_counter = time.process_time; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name="__main__")' \
      "$BASELINE" --sources "$src" --quadrants 4 --fft 128 --stamp 64 --repeats "$REPEATS" --json)
    echo "{\"round\": $r, \"pairs\": $pairs, \"who\": \"numpyCpu\", \"r\": $c}" >> "$RAW"
    e=$("$TSX" cli/shine.ts bench --sources "$src" --quadrants 4 --tier 64 --fft-factor "$FACTOR" --repeats "$REPEATS" --json 2>/dev/null | tail -n 1)
    echo "{\"round\": $r, \"pairs\": $pairs, \"who\": \"engine\", \"r\": $e}" >> "$RAW"
    echo "cpu-vs-numpy: round $r, $pairs pairs: numpy $(echo "$b" | "$PY" -c 'import json,sys; print(round(json.load(sys.stdin)["gradientMs"]))') ms, engine $(echo "$e" | "$PY" -c 'import json,sys; print(round(json.load(sys.stdin)["gradientMs"]))') ms" >&2
  done
done
"$PY" - "$RAW" "$OUT" "$FACTOR" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
out, factor = sys.argv[2], float(sys.argv[3])
by = {}
for x in rows:
    by.setdefault((x['pairs'], x['round']), {})[x['who']] = x['r']
sizes = sorted({p for p, _ in by})
def cpu_ratio(x):
    return x['numpyCpu']['gradientMs'] / x['engine']['gradientCpuMs'] if 'numpyCpu' in x and x['engine'].get('gradientCpuMs') else None
summary = {'fftFactor': factor, 'engineFft': round(64 * factor), 'baselineFft': 128, 'sizes': []}
adapter = next(x['r']['adapter'] for x in rows if x['who'] == 'engine')
print(f"engine on {adapter}, FFT {round(64 * factor)}; baseline numpy+scipy.fft float32, FFT 128 ({rows[0]['r']['workers']} workers)")
print(f"{'pairs':>6} {'numpy ms':>9} {'engine ms':>9} {'ratio':>6} {'numpy CPU':>9} {'engine CPU':>10} {'CPU ratio':>9}  per-round wall / CPU ratios")
for p in sizes:
    rs = [by[(q, r)] for (q, r) in sorted(by) if q == p and 'numpy' in by[(q, r)] and 'engine' in by[(q, r)]]
    nm = [x['numpy']['gradientMs'] for x in rs]
    em = [x['engine']['gradientMs'] for x in rs]
    ratios = [a / b for a, b in zip(nm, em)]
    cr = [v for v in (cpu_ratio(x) for x in rs) if v is not None]
    nc = [x['numpyCpu']['gradientMs'] for x in rs if 'numpyCpu' in x]
    ec = [x['engine']['gradientCpuMs'] for x in rs if x['engine'].get('gradientCpuMs')]
    s = {'pairs': p, 'numpyMs': statistics.median(nm), 'engineMs': statistics.median(em), 'ratio': statistics.median(ratios), 'ratios': ratios, 'numpySamples': nm, 'engineSamples': em,
         'numpyCpuMs': statistics.median(nc) if nc else None, 'engineCpuMs': statistics.median(ec) if ec else None, 'cpuRatio': statistics.median(cr) if cr else None, 'cpuRatios': cr}
    summary['sizes'].append(s)
    f0 = lambda v: f"{v:.0f}" if v is not None else '-'
    print(f"{p:>6} {s['numpyMs']:>9.0f} {s['engineMs']:>9.0f} {s['ratio']:>6.2f} {f0(s['numpyCpuMs']):>9} {f0(s['engineCpuMs']):>10} {(format(s['cpuRatio'], '.2f') if cr else '-'):>9}  {' '.join(f'{v:.2f}' for v in ratios)} / {' '.join(f'{v:.2f}' for v in cr)}")
if len(sizes) >= 2:
    lo, hi = summary['sizes'][0], summary['sizes'][-1]
    rounds = sorted({r for (q, r) in by})
    both = [r for r in rounds if 'engine' in by.get((hi['pairs'], r), {}) and 'engine' in by.get((lo['pairs'], r), {})]
    lin = [by[(hi['pairs'], r)]['engine']['gradientMs'] / by[(lo['pairs'], r)]['engine']['gradientMs'] for r in both]
    linc = [by[(hi['pairs'], r)]['engine']['gradientCpuMs'] / by[(lo['pairs'], r)]['engine']['gradientCpuMs'] for r in both if by[(lo['pairs'], r)]['engine'].get('gradientCpuMs')]
    summary['linearity'] = {'from': lo['pairs'], 'to': hi['pairs'], 'ratio': statistics.median(lin), 'perRound': lin, 'cpuRatio': statistics.median(linc) if linc else None, 'cpuPerRound': linc}
    print(f"engine {hi['pairs']}/{lo['pairs']}-pair time: wall {statistics.median(lin):.2f} (per round {' '.join(f'{v:.2f}' for v in lin)}), CPU {statistics.median(linc) if linc else float('nan'):.2f} ({' '.join(f'{v:.2f}' for v in linc)}); {hi['pairs'] / lo['pairs']:.0f} = linear")
if out:
    json.dump(summary, open(out, 'w'), indent=1)
    print(f"cpu-vs-numpy: written {out}")
EOF

#!/usr/bin/env bash
# The CPU engine against the NumPy + scipy.fft baseline of the same gradient math (issue 14 item 4,
# docs/bench.md "Against NumPy"), side by side in one run: each round, at 1,000 and at 4,000
# (source, quadrant) pairs (64-px tier, 4 quadrants of 2048 × 2066), the baseline
# (../shared/bench/cpu_baseline.py, FFT 128) then the engine (`shine bench --gradient-only`, FFT =
# fft-factor × 64, each factor asked for), alternately, so that all see the same load. Prints per
# size and factor the medians over rounds, the ratio baseline / engine (median of the per-round
# ratios) and the engine's 4000/1000 time ratio (linear = 4), in wall time and in process CPU time
# (all threads: numpy's FFT workers, llvmpipe's rasteriser threads) — the steadier figure when the
# machine is shared. The baseline's CPU time comes from the same run: a wrapper records
# time.process_time beside each time.perf_counter call of the script (its file is not modified).
#
#   bash scripts/cpu-vs-numpy.sh [--rounds 3] [--repeats 5] [--fft-factor 2[,1.5,…]] [--sizes 1000,4000] [--out FILE.json]
#
# Needs a python3 with numpy and scipy (Debian: apt-get install python3-scipy). Prefix with
# `nice -n 10` on a shared machine; the numbers are then only comparable within one run.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=3
REPEATS=5
FACTORS=2
SIZES=1000,4000
OUT=""
BASELINE="${SHINE_NUMPY_BASELINE:-../shared/bench/cpu_baseline.py}"
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS="$2"; shift 2 ;;
    --repeats) REPEATS="$2"; shift 2 ;;
    --fft-factor) FACTORS="$2"; shift 2 ;;
    --sizes) SIZES="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --baseline) BASELINE="$2"; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
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
# The baseline with its perf_counter calls also reading the process CPU clock: the script times
# `t0 = perf_counter(); evaluate(); perf_counter() - t0`, so consecutive calls after the warm-up
# pair up; the wrapper prints {"cpuMs": median CPU ms per evaluation} after the script's JSON.
WRAP='import json, runpy, statistics, sys, time
wall = time.perf_counter
marks = []
def pc():
    marks.append(time.process_time())
    return wall()
time.perf_counter = pc
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
cpu = [1000 * (marks[i + 1] - marks[i]) for i in range(0, len(marks) - 1, 2)]
print(json.dumps({"cpuMs": statistics.median(cpu), "cpuSamplesMs": cpu}))'
IFS=, read -r -a SIZE_LIST <<< "$SIZES"
IFS=, read -r -a FACTOR_LIST <<< "$FACTORS"
for ((r = 1; r <= ROUNDS; r++)); do
  for pairs in "${SIZE_LIST[@]}"; do
    src=$((pairs / 4))
    out=$("$PY" -c "$WRAP" "$BASELINE" --sources "$src" --quadrants 4 --fft 128 --stamp 64 --repeats "$REPEATS" --json)
    b=$(echo "$out" | grep '"baseline"' | tail -n 1)
    c=$(echo "$out" | grep '"cpuMs"' | tail -n 1)
    echo "{\"round\": $r, \"pairs\": $pairs, \"who\": \"numpy\", \"r\": $b, \"cpu\": $c}" >> "$RAW"
    msg="round $r, $pairs pairs: numpy $(echo "$b" | "$PY" -c 'import json,sys; print(round(json.load(sys.stdin)["gradientMs"]))') ms"
    for f in "${FACTOR_LIST[@]}"; do
      e=$("$TSX" cli/shine.ts bench --sources "$src" --quadrants 4 --tier 64 --fft-factor "$f" --repeats "$REPEATS" --gradient-only --json 2>/dev/null | tail -n 1)
      echo "{\"round\": $r, \"pairs\": $pairs, \"who\": \"engine\", \"factor\": $f, \"r\": $e}" >> "$RAW"
      msg="$msg, engine ×$f $(echo "$e" | "$PY" -c 'import json,sys; print(round(json.load(sys.stdin)["gradientMs"]))') ms"
    done
    echo "cpu-vs-numpy: $msg" >&2
  done
done
"$PY" - "$RAW" "$OUT" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
out = sys.argv[2]
numpy = {(x['pairs'], x['round']): x for x in rows if x['who'] == 'numpy'}
engine = {(x['pairs'], x['round'], x['factor']): x['r'] for x in rows if x['who'] == 'engine'}
sizes = sorted({p for p, _ in numpy})
rounds = sorted({r for _, r in numpy})
factors = sorted({f for _, _, f in engine}, reverse=True)
med = lambda xs: statistics.median(xs) if xs else float('nan')
adapter = next(iter(engine.values()))['adapter']
print(f"engine on {adapter}; baseline numpy+scipy.fft float32, FFT 128 ({rows[0]['r']['workers']} workers); {len(rounds)} round(s), alternating")
print(f"{'pairs':>6} {'FFT':>4} {'numpy ms':>9} {'engine ms':>9} {'ratio':>6} {'numpy CPU':>9} {'engine CPU':>10} {'CPU ratio':>9}  per-round wall / CPU ratios")
summary = {'baselineFft': 128, 'rounds': len(rounds), 'adapter': adapter, 'results': []}
for f in factors:
    for p in sizes:
        rs = [r for r in rounds if (p, r) in numpy and (p, r, f) in engine]
        nm = [numpy[(p, r)]['r']['gradientMs'] for r in rs]
        nc = [numpy[(p, r)]['cpu']['cpuMs'] for r in rs]
        em = [engine[(p, r, f)]['gradientMs'] for r in rs]
        ec = [engine[(p, r, f)]['gradientCpuMs'] for r in rs]
        wr = [a / b for a, b in zip(nm, em)]
        cr = [a / b for a, b in zip(nc, ec)]
        s = {'pairs': p, 'fftFactor': f, 'engineFft': round(64 * f), 'numpyMs': med(nm), 'engineMs': med(em), 'ratio': med(wr), 'ratios': wr,
             'numpyCpuMs': med(nc), 'engineCpuMs': med(ec), 'cpuRatio': med(cr), 'cpuRatios': cr}
        summary['results'].append(s)
        print(f"{p:>6} {s['engineFft']:>4} {s['numpyMs']:>9.0f} {s['engineMs']:>9.0f} {s['ratio']:>6.2f} {s['numpyCpuMs']:>9.0f} {s['engineCpuMs']:>10.0f} {s['cpuRatio']:>9.2f}  {' '.join(f'{v:.2f}' for v in wr)} / {' '.join(f'{v:.2f}' for v in cr)}")
    if len(sizes) >= 2:
        lo, hi = sizes[0], sizes[-1]
        both = [r for r in rounds if (lo, r, f) in engine and (hi, r, f) in engine]
        lin = [engine[(hi, r, f)]['gradientMs'] / engine[(lo, r, f)]['gradientMs'] for r in both]
        linc = [engine[(hi, r, f)]['gradientCpuMs'] / engine[(lo, r, f)]['gradientCpuMs'] for r in both]
        summary.setdefault('linearity', []).append({'fftFactor': f, 'from': lo, 'to': hi, 'ratio': med(lin), 'perRound': lin, 'cpuRatio': med(linc), 'cpuPerRound': linc})
        print(f"  FFT {round(64 * f)}: engine {hi}/{lo}-pair time wall {med(lin):.2f} ({' '.join(f'{v:.2f}' for v in lin)}), CPU {med(linc):.2f} ({' '.join(f'{v:.2f}' for v in linc)}); {hi / lo:.0f} = linear")
if out:
    json.dump(summary, open(out, 'w'), indent=1)
    print(f"cpu-vs-numpy: written {out}")
EOF

#!/usr/bin/env bash
# Regenerates the README's performance table: every row runs geca and its
# PyTorch counterpart (an independent re-implementation of the official
# module tree, engine/testdata/golden.py) in the same run, on this machine,
# and prints the table with the load average before and after each row (a
# busy machine shows there). Best of REPS runs on both sides.
#
#   scripts/perf.sh            (make perf; REPS=3, PYTHON=/usr/bin/python3)
#
# Needs python3-torch (scripts/deps.sh golden). Leaves OPENBLAS_* as the
# environment sets them, except the thread count of each row.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-/usr/bin/python3}
REPS=${REPS:-3}
if ! "$PY" -c 'import torch' 2>/dev/null; then
	echo "perf: $PY has no torch (run scripts/deps.sh golden)" >&2
	exit 1
fi
load() { cut -d' ' -f1 /proc/loadavg; }
log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT

# goBest REGEX CPU BENCHTIME: best ns/op of the engine benchmark, in ms.
goBest() {
	go test -tags openblas ./engine -run '^$' -bench "$1" -cpu "$2" -benchtime "$3" -count "$REPS" >"$log/go.txt"
	awk '/^Benchmark/ { v = $3 / 1e6; if (best == "" || v < best) best = v } END { printf "%.1f", best }' "$log/go.txt"
}
# pyBest PATTERN FILE: the "best N ms" of the matching line of bench_torch.py.
pyBest() { grep -F "$1" "$2" | sed -E 's/.*best +([0-9.]+) ms.*/\1/' | head -1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1fx", b / a }'; }

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
echo "$(go version | cut -d' ' -f3-), $("$PY" -c 'import torch; print("torch", torch.__version__)'), OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}"
echo
echo "| what | geca | PyTorch | ratio | load before/after |"
echo "|---|---|---|---|---|"

l0=$(load)
g=$(goBest 'Update/GeCA-S/B=1$' 2 10x)
OPENBLAS_NUM_THREADS=2 "$PY" engine/testdata/bench_torch.py --threads 2 --repeat "$REPS" --presets GeCA-S >"$log/t2.txt"
p=$(pyBest 'GeCA-S   B=1  one update' "$log/t2.txt")
echo "| GeCA-S cell update of the 32x32 grid, rate 0.5, batch 1, 2 threads | $g ms | $p ms | $(ratio "$g" "$p") | $l0 / $(load) |"

l0=$(load)
gs=$(goBest 'Call/GeCA-S/B=1$' 1 2x)
gx=$(goBest 'Call/GeCA-XS/B=1$' 1 3x)
OPENBLAS_NUM_THREADS=1 "$PY" engine/testdata/bench_torch.py --threads 1 --repeat "$REPS" >"$log/t1.txt"
ps=$(pyBest 'GeCA-S   B=1  denoiser call' "$log/t1.txt")
px=$(pyBest 'GeCA-XS  B=1  denoiser call' "$log/t1.txt")
echo "| GeCA-S denoiser call, M = 12, batch 1, 1 thread | $gs ms | $ps ms | $(ratio "$gs" "$ps") | $l0 / $(load) |"
echo "| GeCA-XS denoiser call, M = 12, batch 1, 1 thread | $gx ms | $px ms | $(ratio "$gx" "$px") | $l0 / $(load) |"

l0=$(load)
OPENBLAS_NUM_THREADS=2 "$PY" engine/vae/testdata/bench_full.py --threads 2 --reps "$REPS" >"$log/vae.txt"
pv=$(sed -nE 's/^pytorch .* best ([0-9.]+) s.*/\1/p' "$log/vae.txt")
gv=$(awk '/^go .*BenchmarkDecodeSD/ { for (i = 1; i < NF; i++) if ($(i+1) == "ns/op") print $i / 1e9 }' "$log/vae.txt" | sort -g | head -1)
rm -rf "$(sed -nE 's/^folder ([^:]+):.*/\1/p' "$log/vae.txt")"
echo "| SD VAE decode, 32x32x4 latent to 256x256, 2 threads | $(printf '%.2f' "$gv") s | $pv s | $(ratio "$gv" "$pv") | $l0 / $(load) |"

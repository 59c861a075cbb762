#!/usr/bin/env bash
# The GPU engine's check on a machine with an NVIDIA GPU: parity with the CPU
# engine and speed, printed as one table. It builds nothing: it runs two
# binaries built beforehand on a machine with Go (the GPU machine needs only
# the NVIDIA driver, glibc 2.34 or newer, bash and coreutils).
#
# 1. Build, where the repository, Go and the CUDA headers are (the headers
#    and the libcuda link stub come from scripts/cuda-headers.sh):
#
#      engine/cuda/devicecheck.sh --build DIR [--openblas]
#
#    DIR then holds gpu.test (the GPU tests and benchmarks, and the CPU
#    engine for the CPU figures: pure Go, or with --openblas on OpenBLAS with
#    its libraries in DIR/lib, about 40 MB more), geca-cuda (the GPU build of
#    geca: needs only libcuda.so.1) and this script; about 30 MB without
#    OpenBLAS.
#
#    DIR/torch holds torch_bench.py and the PyTorch re-implementation of
#    the official model it times; where python3 has a CUDA PyTorch, the
#    table gets PyTorch's figures on the same GPU beside the Go engine's.
#
# 2. Copy DIR to the GPU machine and run:
#
#      DIR/devicecheck.sh
#
# It stops by itself within DEVICECHECK_SECONDS (default 290 s; each step
# has its own time limit as well) and exits 0 when the parity tests pass.
set -uo pipefail

if [[ ${1:-} == --build ]]; then
	out=${2:?usage: devicecheck.sh --build DIR [--openblas]}
	tags=cuda
	[[ ${3:-} == --openblas ]] && tags='cuda openblas'
	set -e
	root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
	mkdir -p "$out"
	out=$(cd "$out" && pwd)
	cd "$root"
	eval "$(scripts/cuda-headers.sh)"
	go test -tags "$tags" -ldflags '-s -w' -c -o "$out/gpu.test" ./engine/cuda/gpu
	go build -tags cuda -ldflags '-s -w' -o "$out/geca-cuda" ./cmd/geca
	cp engine/cuda/devicecheck.sh "$out/"
	# PyTorch's figures, for machines with a CUDA PyTorch as python3.
	mkdir -p "$out/torch"
	cp engine/cuda/torch_bench.py "$out/torch/"
	cp engine/testdata/golden.py "$out/torch/engine_golden.py"
	cp engine/diffusion/testdata/golden.py "$out/torch/diffusion_golden.py"
	if [[ $tags == *openblas* ]]; then
		# OpenBLAS and the Fortran runtime it needs, for machines without them.
		mkdir -p "$out/lib"
		for lib in libopenblas.so.0 libgfortran.so.5 libquadmath.so.0; do
			path=$(ldd "$out/gpu.test" | awk -v l="$lib" '$1 == l {print $3}')
			[[ -n $path ]] && cp -L "$path" "$out/lib/$lib"
		done
	fi
	echo "built $out ($(du -sh "$out" | cut -f1)):"
	ls -la "$out"
	exit 0
fi

dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export LD_LIBRARY_PATH="$dir/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
limit=${DEVICECHECK_SECONDS:-290}
start=$SECONDS
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

for b in gpu.test geca-cuda; do
	if [[ ! -x $dir/$b ]]; then
		echo "devicecheck: $dir/$b is missing; build the folder with: engine/cuda/devicecheck.sh --build DIR" >&2
		exit 2
	fi
done

# step NAME SECONDS CMD...: runs CMD with its output in $tmp/NAME.log, within
# its own limit and what is left of the whole budget.
step() {
	local name=$1 t=$2
	shift 2
	local left=$((limit - (SECONDS - start)))
	((t > left)) && t=$left
	if ((t < 5)); then
		echo "  $name: skipped (time budget spent)"
		echo "SKIPPED" >"$tmp/$name.log"
		return 124
	fi
	local s=$SECONDS rc=0
	timeout -k 5 "$t" "$@" >"$tmp/$name.log" 2>&1 || rc=$?
	echo "  $name: exit $rc, $((SECONDS - s)) s"
	return $rc
}

echo "geca device check ($(date -u '+%Y-%m-%d %H:%M UTC'))"
if command -v nvidia-smi >/dev/null; then
	nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | sed 's/^/  GPU: /'
fi
echo "  CPU: $(nproc) cores, $(awk -F: '/model name/ {print $2; exit}' /proc/cpuinfo | sed 's/^ *//')"
toolkit=$(ldd "$dir/geca-cuda" | grep -E 'libcudart|libcublas|libnvrtc|libcudnn|libnvJitLink' || true)
echo "  geca-cuda needs: $(ldd "$dir/geca-cuda" | awk '$1 ~ /^lib/ {print $1}' | tr '\n' ' ')"
if [[ -n $toolkit ]]; then
	echo "  FAIL: geca-cuda links CUDA toolkit libraries: $toolkit"
	fail=1
fi

# cuBLAS for the cublas column: as the loader or /usr/local/cuda finds it,
# else in a CUDA toolkit elsewhere or a PyTorch install's wheels.
if [[ -z ${GECA_CUBLAS_LIB:-} ]] && ! ldconfig -p 2>/dev/null | grep -qE 'libcublas\.so\.1[123] ' &&
	! ls /usr/local/cuda/lib64/libcublas.so.1[123] >/dev/null 2>&1; then
	lib=$(ls /usr/local/cuda*/lib64/libcublas.so.1[123] /usr/local/cuda*/targets/*/lib/libcublas.so.1[123] 2>/dev/null | head -1)
	if [[ -z $lib ]] && command -v python3 >/dev/null; then
		lib=$(python3 -c '
import glob, os, site
dirs = site.getsitepackages() + [site.getusersitepackages()]
for d in dirs:
    for pat in ("nvidia/**/libcublas.so.1[123]", "torch/lib/libcublas.so.1[123]"):
        hits = sorted(glob.glob(os.path.join(d, pat), recursive=True))
        if hits:
            print(hits[-1])
            raise SystemExit
' 2>/dev/null)
	fi
	[[ -n $lib ]] && export GECA_CUBLAS_LIB=$lib
fi
echo "  cuBLAS: ${GECA_CUBLAS_LIB:-as the dynamic loader finds it}"

echo "steps:"
step version 30 "$dir/geca-cuda" version || fail=1
step parity 150 "$dir/gpu.test" -test.run 'Parity|CPUEngine' -test.v || fail=1
step gpubench 90 "$dir/gpu.test" -test.run '^$' -test.bench '^Benchmark(Update|Call)/b[18]/(gpu|cublas|tf32|bf16)$' -test.benchtime 20x
step sample 150 "$dir/gpu.test" -test.run '^$' -test.bench '^BenchmarkSample/' -test.benchtime 1x
export dir tmp
ckpt=$tmp/geca-s-random.safetensors
export ckpt
# e2e times the GPU build of geca sampling from a checkpoint file.
e2e() {
	local s=$EPOCHREALTIME
	"$dir/geca-cuda" sample --ckpt "$ckpt" --device cuda --steps 250 --cfg 1.5 --n 1 --class 3 --npy "$tmp/x.npy" --quiet || return
	awk -v a="$s" -v b="$EPOCHREALTIME" 'BEGIN { printf "E2E %.3f\n", b - a }'
}
export -f e2e
if step ckpt 60 env GECA_WRITE_CKPT="$ckpt" "$dir/gpu.test" -test.run '^TestWriteCheckpoint$'; then
	step e2e 60 bash -c e2e
fi
# PyTorch on the same GPU, run as the official code runs (torch_bench.py).
if python3 -c 'import torch' 2>/dev/null; then
	step torch 120 python3 "$dir/torch/torch_bench.py" --device cuda
else
	echo "  torch: skipped (python3 has no torch)"
fi
step cpubench 90 "$dir/gpu.test" -test.run '^$' -test.bench '^Benchmark(Update|Call)/b1/cpu$' -test.benchtime 2x
step cpubench8 90 "$dir/gpu.test" -test.run '^$' -test.bench '^Benchmark(Update|Call)/b8/cpu$' -test.benchtime 1x

# ---- the table ---------------------------------------------------------------------

declare -A ns torch
while read -r name v; do
	ns[$name]=$v
done < <(cat "$tmp"/*bench*.log "$tmp/sample.log" 2>/dev/null |
	awk '/^Benchmark/ && / ns\/op/ { n = $1; sub(/-[0-9]+$/, "", n); sub(/^Benchmark/, "", n); for (i = 2; i <= NF; i++) if ($(i+1) == "ns/op") print n, $i }')
# torch_bench.py's lines: "TORCH Name NS", or "TORCH Name EST NS" for a
# sample estimated from its calls rather than run.
while read -r name v; do
	torch[$name]=$v
done < <(awk '$1 == "TORCH" && $2 ~ /\// { print $2, ($3 == "EST" ? "~" $4 : $3) }' "$tmp/torch.log" 2>/dev/null)

# fmt NS: a duration for the table; a leading ~ marks an estimate.
fmt() {
	awk -v n="$1" 'BEGIN {
		if (n == "") { printf "n/a"; exit }
		pre = ""
		if (substr(n, 1, 1) == "~") { pre = "~"; n = substr(n, 2) }
		s = n / 1e9
		if (s >= 120) printf "%s%.1f min", pre, s / 60
		else if (s >= 1) printf "%s%.2f s", pre, s
		else if (s >= 1e-3) printf "%s%.2f ms", pre, s * 1e3
		else printf "%s%.0f us", pre, s * 1e6 }'
}
# ratio A B: how many times B is faster than A.
ratio() {
	awk -v a="${1#\~}" -v b="${2#\~}" 'BEGIN { if (a == "" || b == "" || b == 0) printf "n/a"; else if (a / b >= 10) printf "%.0fx", a / b; else printf "%.1fx", a / b }'
}
row() {
	printf '%-42s %10s %10s %10s %10s %13s %14s %8s %8s\n' "$@"
}

echo
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
echo "GeCA-S (random weights, 32x32 grid, D 768), CFG 1.5: batch b = 2b grids; ${gpu:-GPU}"
cpuEngine=$(awk '/CPUENGINE/ {sub(/.*CPUENGINE /, ""); print; exit}' "$tmp/parity.log" 2>/dev/null)
echo "CPU engine: ${cpuEngine:-unknown}"
torchInfo=$(awk '$1 == "TORCH" && ($2 == "INFO" || $2 == "SKIP") {$1 = ""; $2 = ""; sub(/^ +/, ""); print; exit}' "$tmp/torch.log" 2>/dev/null)
echo "PyTorch: ${torchInfo:-not run} (official module structure, torch_bench.py)"
row "" "GPU FP32" "cuBLAS" "GPU TF32" "GPU BF16" "PyTorch GPU" "CPU" "vs torch" "vs CPU"
# line LABEL NAME: one row from the benchmarks named NAME.
line() {
	local label=$1 n=$2 cpu=${ns[$2/cpu]:-}
	if [[ $n == Sample/* && -z $cpu ]]; then
		# The CPU takes minutes for a sample: 250 of its calls instead.
		local c=${ns[Call/${n#Sample/}/cpu]:-}
		[[ -n $c ]] && cpu="~$(awk -v c="$c" 'BEGIN { printf "%.0f", 250 * c }')"
	fi
	row "$label" "$(fmt "${ns[$n/gpu]:-}")" "$(fmt "${ns[$n/cublas]:-}")" "$(fmt "${ns[$n/tf32]:-}")" "$(fmt "${ns[$n/bf16]:-}")" \
		"$(fmt "${torch[$n]:-}")" "$(fmt "$cpu")" "$(ratio "${torch[$n]:-}" "${ns[$n/gpu]:-}")" "$(ratio "$cpu" "${ns[$n/gpu]:-}")"
}
for b in 1 8; do line "one cell update, batch $b" "Update/b$b"; done
for b in 1 8; do line "one denoiser call (12 updates), batch $b" "Call/b$b"; done
for b in 1 8; do line "250-step CFG sample, batch $b" "Sample/b$b"; done
e2e=$(awk '/^E2E/ {print $2}' "$tmp/e2e.log" 2>/dev/null)
row "geca-cuda sample, 250 steps, batch 1 (CLI)" "${e2e:+$(awk -v s="$e2e" 'BEGIN { printf "%.2f s", s }')}"
echo "  (~: estimated as 250 denoiser calls. vs: the FP32 GPU engine's speed-up (own kernels). cuBLAS: FP32"
echo "   products by cuBLAS (geca worker --cublas), n/a where none was found. CLI: wall time of the"
echo "   whole command, start-up and JIT included. PyTorch keeps its defaults: FP32, cuDNN convolutions in TF32.)"
if grep -q '^TORCH FAIL' "$tmp/torch.log" 2>/dev/null; then
	grep '^TORCH FAIL' "$tmp/torch.log" | sed 's/^TORCH /  PyTorch: /'
fi
echo
echo "parity with the CPU engine after a 12-update call (relative error within fp32 and cublas 1e-4, tf32 3e-2, bf16 5e-2):"
grep -h 'PARITY' "$tmp/parity.log" | sed 's/^ *[a-z_]*\.go:[0-9]*: PARITY /  /'
if grep -q '^--- FAIL' "$tmp/parity.log" || ! grep -q '^PASS' "$tmp/parity.log"; then
	echo "  FAIL:"
	grep -E -- '--- FAIL|gpu_test.go' "$tmp/parity.log" | grep -v PARITY | head -20 | sed 's/^/    /'
	fail=1
elif grep -q 'SKIP: no usable' "$tmp/parity.log"; then
	echo "  SKIPPED: $(grep -h 'SKIP' "$tmp/parity.log" | head -1)"
	fail=1
else
	echo "  PASS"
fi
for s in version gpubench sample e2e torch cpubench cpubench8; do
	if [[ -f $tmp/$s.log ]] && grep -qE '^(FAIL|panic|--- FAIL|Traceback)|geca: the GPU engine cannot start' "$tmp/$s.log"; then
		echo "step $s failed:"
		tail -15 "$tmp/$s.log" | sed 's/^/  /'
	fi
done
echo "total $((SECONDS - start)) s"
if ((fail)); then
	echo "DEVICE CHECK: FAIL"
	exit 1
fi
echo "DEVICE CHECK: PASS"

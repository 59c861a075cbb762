#!/usr/bin/env bash
# Fetches the two files needed to compile (not run) the `cuda` build tag:
# cuda.h and the libcuda.so link stub, both from Debian's nvidia-cuda-dev
# package in the non-free component. Nothing is installed: the .deb is
# downloaded, the two files are extracted into DIR, and the .deb is deleted.
# NVIDIA's licence forbids committing cuda.h; DIR is a cache (default
# .cache/cuda, ignored by git).
#
#   scripts/cuda-headers.sh [DIR]
#
# Prints the CGO_CFLAGS and CGO_LDFLAGS to use, as shell assignments:
#   eval "$(scripts/cuda-headers.sh)"; go build -tags cuda ./...
#
# The apt sources of the machine are left alone: non-free is enabled in a
# private apt configuration (its own sources list and package lists under
# DIR) used only for this download, with the mirror of the machine's own
# Debian sources.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$root/.cache/cuda}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
inc=$dir/usr/include
stub=$dir/usr/lib/x86_64-linux-gnu/stubs

emit() {
	echo "export CGO_CFLAGS=\"-I$inc\" CGO_LDFLAGS=\"-L$stub\""
}

if [[ -s $inc/cuda.h && -s $stub/libcuda.so ]]; then
	echo "cuda-headers: cached in $dir" >&2
	emit
	exit 0
fi

for tool in apt-get dpkg-deb; do
	command -v "$tool" >/dev/null || { echo "cuda-headers: $tool not found (Debian needed)" >&2; exit 1; }
done

# The machine's Debian mirror and suite, from deb822 or one-line sources.
mirror="" suite=""
if [[ -r /etc/apt/sources.list.d/debian.sources ]]; then
	mirror=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
	suite=$(awk '/^Suites:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
fi
if [[ -z $mirror ]]; then
	read -r mirror suite < <(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
		awk '$1 == "deb" && $2 !~ /security/ && $2 !~ /^\[/ {print $2, $3; exit}') || true
fi
mirror=${mirror:-http://deb.debian.org/debian}
suite=${suite:-$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")}
keyring=/usr/share/keyrings/debian-archive-keyring.gpg

apt_dir=$dir/apt
mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial" "$apt_dir/sources.d"
echo "deb [signed-by=$keyring] $mirror $suite non-free" >"$apt_dir/sources.list"
apt=(apt-get -q
	-o "Dir::Etc::SourceList=$apt_dir/sources.list"
	-o "Dir::Etc::SourceParts=$apt_dir/sources.d"
	-o "Dir::State::Lists=$apt_dir/lists"
	-o "Dir::Cache::Archives=$apt_dir/archives"
	-o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache="
	-o "APT::Sandbox::User=root")

start=$SECONDS
echo "cuda-headers: fetching nvidia-cuda-dev from $mirror $suite non-free" >&2
"${apt[@]}" update >&2
(cd "$apt_dir/archives" && "${apt[@]}" download nvidia-cuda-dev >&2)
deb=$(ls "$apt_dir"/archives/nvidia-cuda-dev_*.deb)
dpkg-deb --fsys-tarfile "$deb" |
	tar -x -C "$dir" ./usr/include/cuda.h ./usr/lib/x86_64-linux-gnu/stubs/libcuda.so
rm -rf "$apt_dir"
[[ -s $inc/cuda.h && -s $stub/libcuda.so ]] || { echo "cuda-headers: extraction failed" >&2; exit 1; }
echo "cuda-headers: cuda.h ($(grep -m1 -o 'CUDA_VERSION [0-9]*' "$inc/cuda.h")) and libcuda.so stub in $dir, $((SECONDS - start)) s" >&2
emit

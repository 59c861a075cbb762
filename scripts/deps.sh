#!/usr/bin/env bash
# Installs the Debian packages geca needs, and only those that are missing.
#
#   scripts/deps.sh [--dry-run] GROUP...
#
# Groups:
#   build   compile geca: make, C and C++ compilers and pkg-config for cgo (C++: the GPU
#           kernels run on the CPU emulator in tests), the headers Gio's
#           window backends link against (Wayland, X11, xkbcommon, EGL/GLES,
#           Vulkan), and OpenBLAS for the fast matrix products (-tags openblas)
#   run     the shared libraries the geca binary loads at start-up
#   test    headless GUI rendering without a display (Mesa's software EGL and
#           Vulkan drivers), Xvfb for smoke tests of a real window, and the
#           data the training tests read: Fashion-MNIST and the Noto Color
#           Emoji font
#   golden  PyTorch and NumPy for regenerating test fixtures (*/testdata/*.py)
#
# Presence is checked with dpkg-query; apt-get update and install run only
# when something is missing. apt-get runs through sudo when not root.
# GECA_SKIP_DEPS=1 skips everything (for systems set up by other means).
set -euo pipefail

declare -A GROUP
GROUP[build]="make gcc g++ libc6-dev pkg-config libwayland-dev libx11-dev libx11-xcb-dev libxkbcommon-dev libxkbcommon-x11-dev libegl-dev libgles-dev libffi-dev libxcursor-dev libxfixes-dev libvulkan-dev libopenblas-dev"
GROUP[run]="libc6 libegl1 libegl-mesa0 libgl1-mesa-dri libwayland-client0 libwayland-cursor0 libwayland-egl1 libxkbcommon0 libxkbcommon-x11-0 libx11-6 libx11-xcb1 libxcursor1 libxfixes3 libopenblas0"
GROUP[test]="libegl1 libegl-mesa0 libgl1-mesa-dri mesa-vulkan-drivers xvfb xauth dataset-fashion-mnist fonts-noto-color-emoji"
GROUP[golden]="python3 python3-numpy python3-torch"

usage() {
	echo "usage: scripts/deps.sh [--dry-run] GROUP...   (groups: build run test golden)" >&2
	exit 2
}

dry=0
groups=()
for a in "$@"; do
	case "$a" in
	--dry-run | -n) dry=1 ;;
	-h | --help) usage ;;
	-*) echo "deps: unknown flag $a" >&2; usage ;;
	*)
		if [[ -z "${GROUP[$a]+x}" ]]; then
			echo "deps: unknown group '$a'" >&2
			usage
		fi
		groups+=("$a")
		;;
	esac
done
[[ ${#groups[@]} -gt 0 ]] || usage

if [[ "${GECA_SKIP_DEPS:-}" == 1 ]]; then
	echo "deps: GECA_SKIP_DEPS=1, not checking system packages"
	exit 0
fi

wanted=()
for g in "${groups[@]}"; do
	for p in ${GROUP[$g]}; do
		[[ " ${wanted[*]-} " == *" $p "* ]] || wanted+=("$p")
	done
done

if ! command -v dpkg-query >/dev/null 2>&1; then
	echo "deps: dpkg-query not found: this is not a Debian-like system." >&2
	echo "deps: install the equivalents of: ${wanted[*]}" >&2
	echo "deps: (or set GECA_SKIP_DEPS=1 once they are there)" >&2
	exit 1
fi

# A package counts as present when dpkg reports it installed ("ii"); any
# other state (absent, removed with config left, half-installed) is missing.
missing=()
for p in "${wanted[@]}"; do
	status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
	[[ "$status" == ii* ]] || missing+=("$p")
done

if [[ ${#missing[@]} -eq 0 ]]; then
	echo "deps: ${groups[*]}: all ${#wanted[@]} packages present"
	exit 0
fi

echo "deps: ${groups[*]}: missing ${missing[*]}"
if [[ $dry == 1 ]]; then
	exit 0
fi

sudo=()
if [[ $(id -u) -ne 0 ]]; then
	if command -v sudo >/dev/null 2>&1; then
		sudo=(sudo)
	else
		echo "deps: not root and sudo is not installed; as root run:" >&2
		echo "  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" >&2
		exit 1
	fi
fi

apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 -q)
start=$SECONDS
"${apt[@]}" update
"${apt[@]}" install -y --no-install-recommends "${missing[@]}"
echo "deps: installed ${#missing[@]} packages in $((SECONDS - start)) s"

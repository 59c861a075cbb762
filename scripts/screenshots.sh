#!/usr/bin/env bash
# Retakes the viewer's screenshots in docs/images from the real window: a
# virtual X display (Xvfb), the window driven with xdotool, the screen
# captured with ImageMagick's import (Debian: xvfb xdotool imagemagick).
# docs/viewer.md shows them; each block below says what it presses.
#
#   scripts/screenshots.sh            (writes docs/images/viewer-*.png and emoji-regrow.gif)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
for tool in Xvfb xdotool import convert; do
	command -v "$tool" >/dev/null || { echo "screenshots: $tool is missing" >&2; exit 1; }
done
out=docs/images
tmp=$(mktemp -d)
bin=$tmp/bin/geca
go build -tags openblas -o "$bin" ./cmd/geca

display=:$((90 + RANDOM % 9))
xvfb=
viewer=
cleanup() {
	[ -n "$viewer" ] && kill "$viewer" 2>/dev/null || true
	[ -n "$xvfb" ] && kill "$xvfb" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
Xvfb "$display" -screen 0 1280x800x24 >/dev/null 2>&1 &
xvfb=$!
export DISPLAY=$display
sleep 1

# open ARGS...: a fresh viewer (paused, its own empty config), focused.
open() {
	[ -n "$viewer" ] && { kill "$viewer" 2>/dev/null || true; wait "$viewer" 2>/dev/null || true; }
	HOME=$tmp XDG_CONFIG_HOME=$tmp "$bin" view --paused "$@" >"$tmp/view.log" 2>&1 &
	viewer=$!
	for _ in $(seq 50); do
		xdotool search --name '^geca' >/dev/null 2>&1 && break
		sleep 0.2
	done
	sleep 1.5
	xdotool windowfocus --sync "$(xdotool search --name '^geca' | head -1)"
}
# keys N KEY...: each KEY N times, with time for the runner to follow.
keys() {
	local n=$1
	shift
	for k in "$@"; do
		for _ in $(seq "$n"); do
			xdotool key "$k"
			sleep 0.12
		done
	done
	sleep 0.8
}
shot() { import -window root "$out/$1"; }
# cell I J: the screen point of cell (i, j) of a 32x32 or 28x28 grid drawn in
# the canvas's square (197..742, 71..616 at 1280x800).
cell() { echo $((197 + ($2 * 545 + 272) / $3)) $((71 + ($1 * 545 + 272) / $3)); }

# The demo preset, five updates into the first timestep.
open
keys 1 shift+d space r
keys 5 Right
shot viewer-demo.png

# x₀ late in the run with the seed's reach dimmed, a cell selected.
open
keys 35 t
keys 5 Right
keys 1 1 shift+i
xdotool mousemove $(cell 14 15 28) click 1
sleep 0.5
xdotool mousemove 1100 580
sleep 0.8
shot viewer-growth.png

# Compare M/2, M, 2M from the start, in the seed-influence view.
open
keys 1 shift+k i
keys 12 Right
shot viewer-compare.png

# The smallest window.
open
xdotool windowsize "$(xdotool search --name '^geca' | head -1)" 900 600
sleep 1
keys 20 t
keys 8 Right
keys 1 1
import -window "$(xdotool search --name '^geca' | head -1)" "$out/viewer-900x600.png"

# The emoji model's regrowth: a sunflower grows, a band across it is blanked
# half-way through the run (in the middle of a timestep), and it regrows.
# Frames of the canvas only, every third timestep.
open --model emoji
xdotool mousemove 1075 371 click 1
xdotool key ctrl+a
xdotool type 5
xdotool key Return
sleep 0.8
frames=$tmp/frames
mkdir -p "$frames"
n=0
grab() { import -window root -crop 546x546+197+71 +repage -resize 50% "$frames/$(printf %03d $n).png"; n=$((n + 1)); }
for i in $(seq 25); do
	keys 1 t
	[ $((i % 3)) -eq 1 ] && grab
done
keys 4 Right
grab

read -r x0 y0 <<<"$(cell 16 6 32)"
read -r x1 y1 <<<"$(cell 16 25 32)"
xdotool mousemove "$x0" "$y0" mousedown 1
for x in $(seq "$x0" 30 "$x1") "$x1"; do
	xdotool mousemove "$x" "$y0"
	sleep 0.03
done
xdotool mouseup 1
sleep 0.8
grab
grab # the damage stays on screen a little longer
shot emoji-damaged.png
keys 4 Right
grab
for i in $(seq 25); do
	keys 1 t
	[ $((i % 3)) -eq 0 ] && grab
done
grab
grab
shot emoji-regrown.png
convert -delay 35 -loop 0 "$frames"/*.png -layers Optimize "$out/emoji-regrow.gif"
echo "screenshots: wrote $out/viewer-{demo,growth,compare,900x600}.png, $out/emoji-{damaged,regrown}.png and $out/emoji-regrow.gif"

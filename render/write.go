package render

import (
	"errors"
	"fmt"
	"geca/internal/safefile"
	"image"
	"image/color"
	"image/draw"
	"image/gif"
	"image/png"
	"io"
	"sort"
)

// WritePNG writes img to path as PNG.
func WritePNG(path string, img image.Image) error {
	return writeFile(path, func(w io.Writer) error { return png.Encode(w, img) })
}

// WriteGIF writes an animated, endlessly looping GIF of frames, each shown for
// delayCS hundredths of a second. All frames must have the same size. They
// share one palette built from the colours of every frame: exact when the
// animation uses at most 256 colours (crisp, no dithering), otherwise a
// median-cut palette with Floyd-Steinberg dithering.
func WriteGIF(path string, frames []image.Image, delayCS int) error {
	if len(frames) == 0 {
		return fmt.Errorf("write %s: no frames", path)
	}
	return writeFile(path, func(w io.Writer) error { return EncodeGIF(w, frames, delayCS) })
}

// EncodeGIF is WriteGIF to a writer.
func EncodeGIF(w io.Writer, frames []image.Image, delayCS int) error {
	if len(frames) == 0 {
		return errors.New("gif: no frames")
	}
	if delayCS < 1 {
		delayCS = 1
	}
	b0 := frames[0].Bounds()
	for i, f := range frames {
		if f.Bounds().Size() != b0.Size() {
			return fmt.Errorf("gif: frame %d is %v, frame 0 is %v", i, f.Bounds().Size(), b0.Size())
		}
	}
	pal, exact := Palette(frames, 256)
	var drawer draw.Drawer = draw.FloydSteinberg
	if exact {
		drawer = draw.Src
	}
	anim := &gif.GIF{LoopCount: 0}
	for _, f := range frames {
		pm := image.NewPaletted(image.Rect(0, 0, b0.Dx(), b0.Dy()), pal)
		drawer.Draw(pm, pm.Rect, f, f.Bounds().Min)
		anim.Image = append(anim.Image, pm)
		anim.Delay = append(anim.Delay, delayCS)
	}
	return gif.EncodeAll(w, anim)
}

// Palette returns at most n colours (n <= 256) that represent the opaque
// colours of imgs, and whether it holds every colour exactly. Beyond n
// distinct colours it runs median cut over the colour histogram: boxes are
// split at the weighted median of their longest axis until there are n, and
// each box contributes its weighted mean.
func Palette(imgs []image.Image, n int) (color.Palette, bool) {
	hist := map[[3]uint8]int{}
	for _, im := range imgs {
		b := im.Bounds()
		if rgba, ok := im.(*image.RGBA); ok {
			for y := b.Min.Y; y < b.Max.Y; y++ {
				row := rgba.Pix[rgba.PixOffset(b.Min.X, y):rgba.PixOffset(b.Max.X, y)]
				for x := 0; x < len(row); x += 4 {
					hist[[3]uint8{row[x], row[x+1], row[x+2]}]++
				}
			}
			continue
		}
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				c := color.RGBAModel.Convert(im.At(x, y)).(color.RGBA)
				hist[[3]uint8{c.R, c.G, c.B}]++
			}
		}
	}
	type entry struct {
		c [3]uint8
		n int
	}
	all := make([]entry, 0, len(hist))
	for c, k := range hist {
		all = append(all, entry{c, k})
	}
	// a fixed order makes the palette (and the file) deterministic
	sort.Slice(all, func(i, j int) bool {
		a, b := all[i].c, all[j].c
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		if a[1] != b[1] {
			return a[1] < b[1]
		}
		return a[2] < b[2]
	})
	if len(all) <= n {
		pal := make(color.Palette, len(all))
		for i, e := range all {
			pal[i] = color.RGBA{e.c[0], e.c[1], e.c[2], 255}
		}
		if len(pal) == 0 {
			pal = color.Palette{color.RGBA{0, 0, 0, 255}}
		}
		return pal, true
	}
	boxes := [][]entry{all}
	for len(boxes) < n {
		// split the box with the largest (range x pixel count); stop if none can be split
		best, bestScore, bestAxis := -1, 0, 0
		for i, bx := range boxes {
			if len(bx) < 2 {
				continue
			}
			lo, hi := [3]uint8{255, 255, 255}, [3]uint8{}
			total := 0
			for _, e := range bx {
				for d := 0; d < 3; d++ {
					lo[d] = min(lo[d], e.c[d])
					hi[d] = max(hi[d], e.c[d])
				}
				total += e.n
			}
			axis, rng := 0, 0
			for d := 0; d < 3; d++ {
				if r := int(hi[d]) - int(lo[d]); r > rng {
					axis, rng = d, r
				}
			}
			if score := rng * total; rng > 0 && score > bestScore {
				best, bestScore, bestAxis = i, score, axis
			}
		}
		if best < 0 {
			break
		}
		bx := boxes[best]
		sort.SliceStable(bx, func(i, j int) bool { return bx[i].c[bestAxis] < bx[j].c[bestAxis] })
		total := 0
		for _, e := range bx {
			total += e.n
		}
		cut, acc := 1, 0
		for i, e := range bx[:len(bx)-1] {
			acc += e.n
			cut = i + 1
			if 2*acc >= total {
				break
			}
		}
		boxes[best] = bx[:cut]
		boxes = append(boxes, bx[cut:])
	}
	pal := make(color.Palette, len(boxes))
	for i, bx := range boxes {
		var s [3]int
		t := 0
		for _, e := range bx {
			for d := 0; d < 3; d++ {
				s[d] += int(e.c[d]) * e.n
			}
			t += e.n
		}
		pal[i] = color.RGBA{uint8((s[0] + t/2) / t), uint8((s[1] + t/2) / t), uint8((s[2] + t/2) / t), 255}
	}
	return pal, false
}

// writeFile writes path whole or not at all (internal/safefile): an
// interrupted or failed export never leaves a truncated image over an old one.
func writeFile(path string, enc func(io.Writer) error) error {
	return safefile.Write(path, enc)
}

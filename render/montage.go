package render

import (
	"image"
	"image/color"
	"image/draw"
	"sync"

	xdraw "golang.org/x/image/draw"
	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
)

// Upscale enlarges img by an integer factor with nearest-neighbour sampling,
// so every cell stays a crisp square. scale < 1 is treated as 1.
func Upscale(img image.Image, scale int) *image.RGBA {
	if scale < 1 {
		scale = 1
	}
	b := img.Bounds()
	dst := image.NewRGBA(image.Rect(0, 0, b.Dx()*scale, b.Dy()*scale))
	xdraw.NearestNeighbor.Scale(dst, dst.Rect, img, b, xdraw.Src, nil)
	return dst
}

// Montage colours.
var (
	MontageBackground = color.RGBA{250, 250, 250, 255}
	MontageText       = color.RGBA{30, 30, 36, 255}
)

const montageGap = 4 // pixels between tiles

var (
	labelOnce sync.Once
	labelFace font.Face
)

// LabelFace is the font montages use: Go Regular at 13 px, or the built-in
// 7x13 bitmap face if that cannot be loaded.
func LabelFace() font.Face {
	labelOnce.Do(func() {
		labelFace = basicfont.Face7x13
		f, err := opentype.Parse(goregular.TTF)
		if err != nil {
			return
		}
		face, err := opentype.NewFace(f, &opentype.FaceOptions{Size: 13, DPI: 72, Hinting: font.HintingFull})
		if err == nil {
			labelFace = face
		}
	})
	return labelFace
}

// Montage lays out rows of images as a grid, each upscaled by scale with
// nearest-neighbour sampling, with optional row labels on the left and column
// labels on top (nil or empty to omit). Tiles of one column share the width
// of the widest; missing (nil) tiles are left blank.
func Montage(rows [][]image.Image, rowLabels, colLabels []string, scale int) image.Image {
	if scale < 1 {
		scale = 1
	}
	face := LabelFace()
	metrics := face.Metrics()
	lineH := (metrics.Ascent + metrics.Descent).Ceil()
	ncol := 0
	for _, r := range rows {
		ncol = max(ncol, len(r))
	}
	colW := make([]int, ncol)
	rowH := make([]int, len(rows))
	for i, r := range rows {
		for j, im := range r {
			if im == nil {
				continue
			}
			b := im.Bounds()
			colW[j] = max(colW[j], b.Dx()*scale)
			rowH[i] = max(rowH[i], b.Dy()*scale)
		}
	}
	labelW := 0
	for _, s := range rowLabels {
		labelW = max(labelW, font.MeasureString(face, s).Ceil())
	}
	left := montageGap
	if labelW > 0 {
		left += labelW + montageGap
		for i := range rowH { // a label never overlaps its neighbours
			rowH[i] = max(rowH[i], lineH)
		}
	}
	top := montageGap
	hasCol := false
	for j, s := range colLabels {
		if s != "" {
			hasCol = true
		}
		if j < ncol {
			colW[j] = max(colW[j], font.MeasureString(face, s).Ceil())
		}
	}
	if hasCol {
		top += lineH + montageGap
	}
	width, height := left, top
	for _, cw := range colW {
		width += cw + montageGap
	}
	for _, rh := range rowH {
		height += rh + montageGap
	}
	dst := image.NewRGBA(image.Rect(0, 0, width, height))
	draw.Draw(dst, dst.Rect, image.NewUniform(MontageBackground), image.Point{}, draw.Src)
	text := func(s string, x, baseline int) {
		d := font.Drawer{Dst: dst, Src: image.NewUniform(MontageText), Face: face,
			Dot: fixed.P(x, baseline)}
		d.DrawString(s)
	}
	x := left
	for j := 0; j < ncol; j++ {
		if j < len(colLabels) && colLabels[j] != "" {
			tw := font.MeasureString(face, colLabels[j]).Ceil()
			text(colLabels[j], x+(colW[j]-tw)/2, montageGap+metrics.Ascent.Ceil())
		}
		x += colW[j] + montageGap
	}
	y := top
	for i, r := range rows {
		if i < len(rowLabels) && rowLabels[i] != "" {
			text(rowLabels[i], montageGap, y+(rowH[i]-lineH)/2+metrics.Ascent.Ceil())
		}
		x := left
		for j := 0; j < ncol; j++ {
			if j < len(r) && r[j] != nil {
				b := r[j].Bounds()
				tr := image.Rect(x, y, x+b.Dx()*scale, y+b.Dy()*scale)
				xdraw.NearestNeighbor.Scale(dst, tr, r[j], b, xdraw.Src, nil)
			}
			x += colW[j] + montageGap
		}
		y += rowH[i] + montageGap
	}
	return dst
}
